"""A worker that exits (SIGTERM, a SIGHUP reload, a timeout) must leave the service answering: the shared
Prometheus folder belongs to the gunicorn master, and a dead worker's files are marked dead, not removed."""

from __future__ import annotations

import os
import re
import signal

import pytest
import requests

from tests.conftest import EXAMPLES
from tests.served import Server

pytestmark = pytest.mark.server
EXAMPLE = (EXAMPLES / "patient-view-neutropenia.json").read_bytes()


@pytest.fixture
def server(tmp_path):
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("timeout = 4\ngraceful_timeout = 2\n")
    running = Server(tmp_path, "--dev", "--gunicorn-config", str(config))
    yield running
    assert running.stop() == 0, running.output()[-6000:]


def assert_answering(server: Server) -> None:
    """Probes, metrics and a hook call all answer 200 (each tried on several connections, so every worker)."""
    for _ in range(6):
        for path in ("/healthz", "/readyz", "/metrics"):
            response = requests.get(server.url + path, timeout=10)
            assert response.status_code == 200, (path, response.text[:500], server.output()[-4000:])
        call = requests.post(
            server.url + "/cds-services/cytopenia-review",
            data=EXAMPLE,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert call.status_code == 200, (call.text[:500], server.output()[-4000:])


def replaced(server: Server, before: set[int], count: int = 1):
    return lambda: len(server.workers()) == server.workers_expected and len(set(server.workers()) - before) >= count


def hook_calls_counted(server: Server) -> float:
    text = requests.get(server.url + "/metrics", timeout=10).text
    counted = re.findall(r'^cytopenia_hook_request_duration_seconds_count\{[^}]*status="200"[^}]*\} (\S+)$', text, re.M)
    return sum(float(n) for n in counted)


def test_a_worker_terminated_gracefully_leaves_the_service_answering_and_its_counts(server):
    assert_answering(server)
    counted = hook_calls_counted(server)
    before = set(server.workers())
    os.kill(min(before), signal.SIGTERM)
    server.wait_until(replaced(server, before), "the terminated worker was not replaced")
    assert hook_calls_counted(server) == counted >= 6  # the dead worker's counts stay in the exposition
    assert_answering(server)


def test_a_reload_leaves_the_service_answering(server):
    assert_answering(server)
    before = set(server.workers())
    os.kill(server.process.pid, signal.SIGHUP)
    server.wait_until(replaced(server, before, count=2), "the workers were not replaced after SIGHUP")
    assert_answering(server)


def test_a_worker_timeout_leaves_the_service_answering(server):
    """A stopped worker misses its heartbeat; gunicorn aborts it (SIGABRT, handled once it runs again)."""
    assert_answering(server)
    before = set(server.workers())
    stuck = min(before)
    os.kill(stuck, signal.SIGSTOP)
    server.wait_until(lambda: "WORKER TIMEOUT" in server.output(), "gunicorn did not notice the stuck worker")
    os.kill(stuck, signal.SIGCONT)
    server.wait_until(replaced(server, before), "the timed-out worker was not replaced")
    assert_answering(server)
