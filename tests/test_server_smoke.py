"""The real thing: `cytopenia-cds serve` as a process on a free port, and the `evaluate` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import EXAMPLES, assert_valid, free_port, wait_until_serving

CLI = str(Path(sys.executable).with_name("cytopenia-cds"))
EXAMPLE = EXAMPLES / "patient-view-neutropenia.json"

pytestmark = pytest.mark.server


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without the developer's CYTOPENIA_* settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYTOPENIA_")}
    return env | {f"CYTOPENIA_{name.upper()}": value for name, value in settings.items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("server")
    log = folder / "stderr.log"
    process = subprocess.Popen(
        [CLI, "serve", "--dev", "--port", str(port), "--workers", "1"],
        env=clean_env(database_url=f"sqlite:///{folder / 'cds.sqlite3'}"),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/cds-services", process, log.read_text)
        yield base, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_discovery_over_http(server):
    base, _ = server
    response = requests.get(f"{base}/cds-services", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert_valid("discovery", response.json())
    assert "cytopenia-review" in [s["id"] for s in response.json()["services"]]


def test_sample_request_over_http_gets_cards(server):
    base, _ = server
    response = requests.post(
        f"{base}/cds-services/cytopenia-review",
        data=EXAMPLE.read_bytes(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert_valid("response", response.json())
    assert response.json()["cards"]


def test_dev_mode_says_so_loudly_at_start(server):
    _, log = server
    assert "WARNING: DEVELOPMENT MODE" in log.read_text()


def test_gunicorns_own_log_lines_are_json(server):
    _, log = server
    gunicorn = [json.loads(line) for line in log.read_text().splitlines() if '"gunicorn.error"' in line]
    assert any(line["event"].startswith("Listening at") for line in gunicorn)
    assert "[INFO] Booting worker" not in log.read_text()


def test_without_dev_and_without_trusted_clients_the_server_refuses_to_start():
    result = subprocess.run(
        [CLI, "serve", "--port", str(free_port())], env=clean_env(), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "refusing to start" in result.stderr
    assert "clients: no trusted EHR clients are configured" in result.stderr
    assert "--dev" in result.stderr


def test_evaluate_prints_the_graded_cards():
    result = subprocess.run(
        [CLI, "evaluate", str(EXAMPLE), "--as-of", "2026-11-20T10:00:00Z"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert_valid("response", document)
    assert any(c["summary"].startswith("Pancytopenia: ANC 0.4") for c in document["cards"])
