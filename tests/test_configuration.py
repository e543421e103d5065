"""One configuration: `config check` shows it masked and stops on a bad file; site thresholds change the cards."""

from __future__ import annotations

import json

import pytest

from cds_service.cli import main
from cds_service.config import load_settings
from tests.conftest import assert_valid


@pytest.fixture(autouse=True)
def _no_config_from_environment(monkeypatch):
    """`load_settings(FILE)` exports CYTOPENIA_CONFIG; restore its absence after each test."""
    monkeypatch.setenv("CYTOPENIA_CONFIG", "")
    monkeypatch.delenv("CYTOPENIA_CONFIG")


def write(tmp_path, text: str):
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_check_prints_effective_configuration_with_secrets_masked(tmp_path, capsys, monkeypatch):
    path = write(
        tmp_path,
        'dev = true\nredis_url = "redis://:hunter2@127.0.0.1:6379/0"\n'
        "[thresholds]\nstale_result_days = 14\n[deadlines]\nrequest_seconds = 5\n",
    )
    monkeypatch.setenv("CYTOPENIA_DATABASE_URL", "postgresql://cds:s3cret@db.example.org/cds")
    assert main(["config", "check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "s3cret" not in out
    report = json.loads(out)
    assert report["redis_url"] == "redis://:***@127.0.0.1:6379/0"
    assert report["database_url"] == "postgresql://cds:***@db.example.org/cds"
    assert report["deadlines"]["request_seconds"] == 5
    stale = report["thresholds"]["stale_result_days"]
    assert stale["value"] == 14 and stale["changed"] is True and stale["cited_default"] == 7
    assert "clinical-knowledge" in stale["source"]
    assert report["thresholds"]["platelet_transfusion"]["changed"] is False


def test_config_check_names_each_bad_field_and_fails(tmp_path, capsys):
    path = write(tmp_path, "dev = true\nworkers = 0\n[thresholds]\nstale_result_days = 14\nnonsense = 3\n")
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "workers" in err and "greater than or equal to 1" in err
    assert "unknown threshold nonsense" in err


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "dev = true\nport = 9000\n")
    monkeypatch.setenv("CYTOPENIA_PORT", "9100")
    assert load_settings(path).port == 9100


@pytest.mark.parametrize(
    "text, field",
    [
        ("dev = true\n[thresholds]\nplatelet_transfusion = -1\n", "must be a positive number"),
        ("dev = true\nservices_enabled = ['no-such-service']\n", "services_enabled"),
        ("port = 8080\n", "no trusted EHR clients"),
        ("dev = true\n[deadlines]\nrequest_secs = 3\n", "deadlines.request_secs"),
    ],
)
def test_config_check_rejects(tmp_path, capsys, text, field):
    assert main(["config", "check", "--config", str(write(tmp_path, text))]) == 2
    assert field in capsys.readouterr().err


def test_bad_file_stops_the_server_naming_the_field(tmp_path, capsys):
    path = write(tmp_path, "dev = true\nport = 'eighty'\n")
    assert main(["serve", "--config", str(path)]) == 2
    assert "port" in capsys.readouterr().err


def test_site_threshold_changes_the_card_and_says_so(make_app, example_request):
    """A site raising the platelet transfusion threshold sees it on cards, with the cited default kept."""
    default = make_app(repeat_window_hours=0).test_client()
    before = default.post("/cds-services/cytopenia-review", json=example_request).get_json()
    app = make_app(thresholds={"platelet_transfusion": 100})
    tuned = app.test_client().post("/cds-services/cytopenia-review", json=example_request).get_json()
    assert_valid("response", tuned)

    def labels(document):
        return [s["label"] for c in document["cards"] for s in c.get("suggestions", ())]

    assert not any("platelet transfusion" in label for label in labels(before))
    assert any("below 100" in label for label in labels(tuned))
    tuned_threshold = app.extensions["cytopenia.thresholds"]["platelet_transfusion"]
    assert tuned_threshold.cited_default == 10 and "cited default 10" in tuned_threshold.source
    after = default.post("/cds-services/cytopenia-review", json=example_request).get_json()
    assert not any("platelet transfusion" in label for label in labels(after)), "the tuned app leaked its setting"


def test_a_tuned_threshold_is_not_printed_under_the_citation_of_the_value_it_replaced():
    from cds_service.clinical.knowledge import site_thresholds, thresholds

    name = "duffy_null_lln_absolute_neutrophil_count"
    cited = thresholds()[name]
    assert site_thresholds({name: cited.value})[name].cited_as == cited.cited_as == "Hibbs 2025"
    tuned = site_thresholds({name: 1.0})[name]
    assert tuned.cited_as == f"site setting, cited default {cited.value:g} (Hibbs 2025)"


def test_disabled_service_is_neither_discovered_nor_callable(make_app, example_request):
    client = make_app(services_enabled=[]).test_client()
    assert client.get("/cds-services").get_json() == {"services": []}
    assert client.post("/cds-services/cytopenia-review", json=example_request).status_code == 404
