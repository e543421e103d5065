"""A trust configuration that cannot be used stops the server at start-up, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service import cli
from cds_service.app import create_app
from cds_service.config import ConfigError, load_settings
from tests.jwt_support import SigningKey, write_jwks

GOOD_CLIENT = """
[[clients]]
issuer = "https://ehr.test"
jwks_file = "{jwks}"
algorithms = ["RS384"]
"""


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """A TOML file, deployed as the README says: the audit key and database come from the environment."""
    jwks = write_jwks(tmp_path / "ehr.json", SigningKey.generate("ES384"))
    monkeypatch.setenv("CYTOPENIA_AUDIT_KEY", "test-audit-key")
    monkeypatch.setenv("CYTOPENIA_DATABASE_URL", "sqlite://")

    def write(text: str):
        path = tmp_path / "cytopenia.toml"
        path.write_text(text.replace("{jwks}", str(jwks)), encoding="utf-8")
        monkeypatch.setenv("CYTOPENIA_CONFIG", str(path))
        return path

    return write


def start(path):
    return create_app(load_settings(path))


BAD_CONFIGS = {
    "public_base_url: required": "workers = 1\n" + GOOD_CLIENT,
    "public_base_url: must be an https URL": 'workers = 1\npublic_base_url = "http://cds.test"\n' + GOOD_CLIENT,
    "clients.0.algorithms": 'public_base_url = "https://cds.test"\n' + GOOD_CLIENT.replace('"RS384"', '"HS256"'),
    "clients.0: Value error, client 'https://ehr.test' needs exactly one of jwks_url or jwks_file": 'public_base_url = "https://cds.test"\n'
    + GOOD_CLIENT
    + 'jwks_url = "https://ehr.test/jwks"\n',
    "clients[0].jwks_file": 'workers = 1\npublic_base_url = "https://cds.test"\n'
    + GOOD_CLIENT.replace("{jwks}", "/nonexistent/keys.json"),
    "clients[0].jwks_url: must be an https URL": 'workers = 1\npublic_base_url = "https://cds.test"\n[[clients]]\n'
    'issuer = "https://ehr.test"\njwks_url = "http://ehr.test/jwks.json"\n',
    "clients[1].issuer": 'workers = 1\npublic_base_url = "https://cds.test"\n' + GOOD_CLIENT + GOOD_CLIENT,
    "redis_url: required with more than one worker": 'workers = 2\npublic_base_url = "https://cds.test"\n'
    + GOOD_CLIENT,
    "redis_url: cannot reach Redis": 'public_base_url = "https://cds.test"\nredis_url = "redis://127.0.0.1:1/0"\n'
    + GOOD_CLIENT,
    "rate_limit": 'workers = 1\npublic_base_url = "https://cds.test"\nrate_limit = "plenty"\n' + GOOD_CLIENT,
    "clients.0.issuer": 'public_base_url = "https://cds.test"\n' + GOOD_CLIENT.replace('"https://ehr.test"', '" "'),
}


@pytest.mark.parametrize("field", BAD_CONFIGS)
def test_bad_trust_configuration_is_refused_naming_the_field(config_file, field):
    with pytest.raises(ConfigError) as refused:
        start(config_file(BAD_CONFIGS[field]))
    assert field in str(refused.value)


def test_the_cli_prints_the_problem_and_exits_2(config_file, capsys):
    path = config_file("workers = 1\n" + GOOD_CLIENT)
    assert cli.main(["serve", "--config", str(path)]) == 2
    assert "public_base_url" in capsys.readouterr().err


def test_a_complete_production_configuration_starts(config_file):
    app = start(
        config_file('workers = 1\npublic_base_url = "https://cds.test/"\njwt_leeway_seconds = 10\n' + GOOD_CLIENT)
    )
    assert app.test_client().get("/cds-services").status_code == 401


def test_the_documented_registration_example_is_a_valid_configuration(config_file):
    guide = Path(__file__).resolve().parent.parent / "docs" / "integration" / "registering-an-ehr.md"
    example = guide.read_text(encoding="utf-8").split("```toml\n", 1)[1].split("```", 1)[0]
    settings = load_settings(config_file(example))
    assert settings.clients[0].algorithms == ["RS384"] and settings.public_base_url.startswith("https://")
    assert create_app(settings).test_client().get("/cds-services").status_code == 401
