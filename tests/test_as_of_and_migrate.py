"""`serve --as-of` for demos on historical data (development only); `migrate` owns the schema when asked to."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_service import cli
from cds_service.app import create_app
from cds_service.config import ConfigError, Settings


def cards(app, body) -> list[dict]:
    response = app.test_client().post("/cds-services/cytopenia-review", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["cards"]


def test_as_of_evaluates_a_years_old_chart_as_if_it_were_that_day(example_request):
    """The example's counts are from 2026-11-19: five years later they are stale; as of the next day they are not."""
    later = datetime(2031, 11, 20, tzinfo=UTC)
    stale = cards(create_app(Settings(dev=True, database_url="sqlite://"), clock=lambda: later), example_request)
    demo = Settings(dev=True, database_url="sqlite://", as_of="2026-11-20T10:00:00")
    assert demo.as_of == datetime(2026, 11, 20, 10, tzinfo=UTC)
    current = cards(create_app(demo, clock=lambda: later), example_request)
    assert any(c["summary"].startswith("Pancytopenia: ANC 0.4") for c in current)
    assert [c["summary"] for c in current] != [c["summary"] for c in stale]


def test_serve_refuses_as_of_outside_development_mode(monkeypatch, capsys):
    monkeypatch.delenv("CYTOPENIA_CONFIG", raising=False)
    monkeypatch.setenv("CYTOPENIA_DEV", "0")
    assert cli.main(["serve", "--as-of", "2019-03-01T09:00:00Z", "--port", "1"]) == 2
    assert "as_of: only in development mode" in capsys.readouterr().err


def test_with_migrate_on_start_off_the_service_waits_for_the_migrate_command(tmp_path, monkeypatch):
    database_url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    settings = Settings(dev=True, database_url=database_url, migrate_on_start=False)
    with pytest.raises(ConfigError, match="cytopenia-cds migrate"):
        create_app(settings)
    monkeypatch.delenv("CYTOPENIA_CONFIG", raising=False)
    monkeypatch.setenv("CYTOPENIA_DATABASE_URL", database_url)
    assert cli.main(["migrate"]) == 0
    assert create_app(settings).test_client().get("/cds-services").status_code == 200


def test_the_default_database_lives_in_the_per_user_data_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("CYTOPENIA_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Settings(dev=True).database_url == f"sqlite:///{tmp_path}/cytopenia-cds/cytopenia-cds.sqlite3"
