"""`config check` is the pre-flight: it refuses exactly what `serve` refuses, all errors at once, and warns."""

from __future__ import annotations

import pytest

from cds_service import cli
from cds_service.app import create_app
from cds_service.config import ConfigError, load_settings
from tests.jwt_support import SigningKey, write_jwks

CLIENT = '[[clients]]\nissuer = "https://ehr.test"\njwks_file = "{jwks}"\nalgorithms = ["RS384"]\n'
HTTP_CLIENT = '[[clients]]\nissuer = "https://ehr.test"\njwks_url = "http://ehr.test/jwks.json"\n'
PRODUCTION = 'public_base_url = "https://cds.test"\naudit_key = "k"\nworkers = 1\n'

# name: (TOML, verdict, what the output must name)
CONFIGURATIONS = {
    "development": ("dev = true\n", "ok", ["dev"]),
    "development as of a past date": ('dev = true\nas_of = "2019-03-01T09:00:00Z"\n', "ok", []),
    "production complete": (PRODUCTION + CLIENT, "ok", []),
    "no trusted clients": (
        'public_base_url = "https://cds.test"\naudit_key = "k"\nworkers = 1\n',
        "refused",
        ["clients"],
    ),
    "no audit key": ('public_base_url = "https://cds.test"\nworkers = 1\n' + CLIENT, "refused", ["audit_key"]),
    "http public_base_url": (
        'public_base_url = "http://cds.test"\naudit_key = "k"\nworkers = 1\n' + CLIENT,
        "refused",
        ["public_base_url"],
    ),
    "missing public_base_url": ('audit_key = "k"\nworkers = 1\n' + CLIENT, "refused", ["public_base_url"]),
    "http jwks_url": (PRODUCTION + HTTP_CLIENT, "refused", ["clients[0].jwks_url"]),
    "several workers without Redis": (
        'public_base_url = "https://cds.test"\naudit_key = "k"\nworkers = 4\n' + CLIENT,
        "refused",
        ["redis_url"],
    ),
    "unreadable key file": (PRODUCTION + CLIENT.replace("{jwks}", "/nonexistent.json"), "refused", ["jwks_file"]),
    "issuer twice": (PRODUCTION + CLIENT + CLIENT, "refused", ["clients[1].issuer"]),
    "bad rate limit": (PRODUCTION + 'rate_limit = "plenty"\n' + CLIENT, "refused", ["rate_limit"]),
    "unknown service": ("dev = true\nservices_enabled = ['no-such-service']\n", "refused", ["services_enabled"]),
    "retired service id": ("dev = true\nservices_enabled = ['myelotoxic-order-check']\n", "ok", []),
    "as_of in production": (PRODUCTION + 'as_of = "2019-03-01T09:00:00Z"\n' + CLIENT, "refused", ["as_of"]),
    "everything wrong at once": (
        'public_base_url = "http://cds.test"\nworkers = 3\n' + HTTP_CLIENT,
        "refused",
        ["public_base_url", "audit_key", "redis_url", "clients[0].jwks_url"],
    ),
    "database URL that is not one": ('dev = true\ndatabase_url = "cds database"\n', "refused", ["database_url"]),
    "database driver not installed": (
        'dev = true\ndatabase_url = "mysql+mysqldb://cds:pw@db/cds"\n',
        "refused",
        ["database_url: its driver"],
    ),
    "SQLite where it cannot be written": (
        'dev = true\ndatabase_url = "sqlite:////dev/null/cds.sqlite3"\n',
        "refused",
        ["cannot write the SQLite database"],
    ),
    "Redis URL of another kind": ('dev = true\nredis_url = "http://127.0.0.1:6379"\n', "refused", ["redis_url"]),
    "http token introspection in production": (
        PRODUCTION + '[smart_app]\nintrospection_url = "http://ehr.test/introspect"\n' + CLIENT,
        "refused",
        ["smart_app.introspection_url"],
    ),
    "wildcard CORS": (PRODUCTION + 'cors_origins = ["*"]\n' + CLIENT, "ok", ["warning: cors_origins"]),
    "http FHIR server": (
        PRODUCTION + CLIENT + 'fhir_servers = ["http://fhir.test/r4"]\n',
        "ok",
        ["warning: clients[0].fhir_servers"],
    ),
}


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    for name in ("CYTOPENIA_CONFIG", "CYTOPENIA_DEV", "CYTOPENIA_AUDIT_KEY", "CYTOPENIA_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CYTOPENIA_DATABASE_URL", "sqlite://")
    jwks = write_jwks(tmp_path / "ehr.json", SigningKey.generate("RS384"))

    def write(text: str):
        if "database_url" in text:  # the file's own, not the environment's
            monkeypatch.delenv("CYTOPENIA_DATABASE_URL", raising=False)
        path = tmp_path / "site.toml"
        path.write_text(text.replace("{jwks}", str(jwks)), encoding="utf-8")
        return path

    return write


def serve_verdict(path) -> str:
    """What `serve` does with the file, up to the point where gunicorn would take over."""
    try:
        create_app(load_settings(path))
    except ConfigError:
        return "refused"
    return "ok"


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_config_check_and_serve_give_the_same_verdict(config_file, capsys, name):
    text, verdict, named = CONFIGURATIONS[name]
    path = config_file(text)
    status = cli.main(["config", "check", "--config", str(path)])
    err = capsys.readouterr().err
    assert {0: "ok", 2: "refused"}[status] == verdict, err
    assert serve_verdict(path) == verdict
    for setting in named:
        assert setting in err


def test_every_error_is_reported_at_once_with_its_setting(config_file, capsys):
    path = config_file(CONFIGURATIONS["everything wrong at once"][0])
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4
    with pytest.raises(ConfigError) as refused:
        create_app(load_settings(path))
    assert all(line.removeprefix("error: ") in str(refused.value) for line in errors)


def test_online_check_reports_an_unreachable_redis_and_database(config_file, capsys, monkeypatch):
    monkeypatch.delenv("CYTOPENIA_DATABASE_URL")
    path = config_file(
        PRODUCTION
        + 'redis_url = "redis://127.0.0.1:1/0"\ndatabase_url = "postgresql+psycopg://nobody@127.0.0.1:1/none"\n'
        + CLIENT
    )
    assert cli.main(["config", "check", "--config", str(path)]) == 0
    assert "not checked" in capsys.readouterr().err
    assert cli.main(["config", "check", "--online", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "redis_url: cannot reach Redis" in err and "database_url: cannot reach the database" in err


def test_serve_says_so_when_it_starts_with_an_insecure_choice(config_file, caplog):
    path = config_file(PRODUCTION + 'cors_origins = ["*"]\n' + CLIENT + 'fhir_servers = ["http://fhir.test/r4"]\n')
    with caplog.at_level("WARNING"):
        create_app(load_settings(path))
    assert "cors_origins: '*'" in caplog.text
    assert "clients[0].fhir_servers: http://fhir.test/r4 is not https" in caplog.text
