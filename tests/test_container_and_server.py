"""The deployable artefacts: a lint-clean Dockerfile, and `cytopenia-cds serve` under gunicorn with shared metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from cds_service.config import Settings
from cds_service.serving import gunicorn_options
from tests.conftest import EXAMPLES, ROOT, free_port, wait_until_serving


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [hadolint, str(ROOT / "docker" / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_runs_serve_as_a_non_root_user_with_a_healthcheck():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "USER 10001" in final_stage and "HEALTHCHECK" in final_stage
    assert "/healthz" in final_stage and '"serve"' in final_stage
    assert "gcc" not in final_stage and "build-essential" not in final_stage


def test_gunicorn_settings_follow_the_configuration(tmp_path):
    options = gunicorn_options(Settings(dev=True, port=9000, deadlines={"request_seconds": 40}))
    assert options["bind"] == "127.0.0.1:9000"
    assert options["workers"] == len(os.sched_getaffinity(0))
    assert options["preload_app"] is True and options["control_socket_disable"] is True
    assert options["timeout"] == 80
    site = tmp_path / "gunicorn.conf.py"
    site.write_text("keepalive = 2\nworkers = 7\n")
    assert gunicorn_options(Settings(dev=True, workers=3), str(site)) | {"child_exit": None} == options | {
        "bind": "127.0.0.1:8080",
        "workers": 3,
        "keepalive": 2,
        "timeout": 30,
        "child_exit": None,
    }


def fetch(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


@pytest.mark.server
def test_serve_under_gunicorn_aggregates_metrics_across_workers(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "HOME": "/nonexistent",
        "CYTOPENIA_DATABASE_URL": f"sqlite:///{tmp_path / 'cds.sqlite3'}",
    }
    env.pop("CYTOPENIA_CONFIG", None)
    log = tmp_path / "server.log"
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "cytopenia-cds"),
            "serve",
            "--dev",
            "--port",
            str(port),
            "--workers",
            "2",
            "--gunicorn-config",
            str(ROOT / "docker" / "gunicorn.conf.py"),
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/readyz", server, log.read_text, ready=lambda response: response.status_code == 200)
        body = (EXAMPLES / "patient-view-neutropenia.json").read_bytes()
        answers = [fetch(f"{base}/cds-services/cytopenia-review", body) for _ in range(6)]
        assert all(status == 200 for status, _ in answers)
        assert json.loads(answers[0][1])["cards"]  # later calls repeat it: held back by alert-fatigue control
        metrics = fetch(f"{base}/metrics")[1].decode()
        count = (
            'cytopenia_hook_request_duration_seconds_count{hook="patient-view",service="cytopenia-review",status="200"}'
        )
        assert f"{count} 6.0" in metrics
    finally:
        server.terminate()
        server.wait(timeout=30)
    output = log.read_text()
    assert server.returncode == 0, output
    assert '"event":"request"' in output and '"route":"/cds-services/<service_id>"' in output


@pytest.mark.server
@pytest.mark.parametrize("folder_exists", [False, True], ids=["image-default", "running-server"])
def test_one_shot_commands_leave_the_servers_metrics_folder_alone(tmp_path, folder_exists):
    """The image sets PROMETHEUS_MULTIPROC_DIR for `serve`; `config check` and `evaluate` run in the same
    image (before a deployment, or inside a running container) must neither fail on it nor write to it."""
    metrics = tmp_path / "metrics"
    if folder_exists:
        metrics.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "CYTOPENIA_DEV": "1"}
    env.pop("CYTOPENIA_CONFIG", None)
    command = str(Path(sys.executable).parent / "cytopenia-cds")
    for args in (["config", "check"], ["evaluate", str(EXAMPLES / "patient-view-neutropenia.json")]):
        result = subprocess.run([command, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["cards"][0]["summary"].startswith("Pancytopenia: ANC 0.")
    assert not metrics.exists() or not any(metrics.iterdir())
