"""Feedback survives a killed worker: a burst through a real 3-worker server, one worker SIGKILLed mid-burst,
the server restarted; every feedback answered 200 is in the database exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy

from cds_service.storage.models import FeedbackRecord
from tests.conftest import free_port, wait_until_serving

pytestmark = pytest.mark.server
BURST = 300
CLI = [sys.executable, "-m", "cds_service.cli", "serve", "--dev", "--workers", "3"]


class Server:
    def __init__(self, database_url: str, log: Path):
        self.port = free_port()
        env = {**os.environ, "CYTOPENIA_DATABASE_URL": database_url, "CYTOPENIA_AUDIT_KEY": "durability"}
        self.process = subprocess.Popen(
            [*CLI, "--port", str(self.port)], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=log.parent
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_until_serving(
                f"{self.url}/cds-services",
                self.process,
                log.read_text,
                ready=lambda response: response.status_code == 200 and len(self.workers()) == 3,
            )
        except BaseException:
            self.stop()
            raise

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def item(n: int) -> dict:
    return {
        "card": f"burst-{n}",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-20T10:05:00Z",
        "overrideReason": {"reason": {"system": "urn:cytopenia-cds:override-reason", "code": "not-relevant"}},
    }


def test_feedback_answered_200_survives_a_killed_worker_and_a_restart(database_url, tmp_path):
    server = Server(database_url, tmp_path / "server.log")
    answered: list[int] = []
    killed = threading.Event()
    session = threading.local()

    def post(n: int) -> None:
        if n == BURST // 3 and not killed.is_set():
            os.kill(server.workers()[0], signal.SIGKILL)
            killed.set()
        if not hasattr(session, "client"):
            session.client = requests.Session()
        try:
            response = session.client.post(
                f"{server.url}/cds-services/cytopenia-review/feedback",
                json={"feedback": [item(n % (BURST // 2))]},
                timeout=10,
            )
        except requests.RequestException:
            return
        if response.status_code == 200:
            answered.append(n % (BURST // 2))

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(post, range(BURST)))
        assert killed.is_set()
    finally:
        server.stop()
    assert len(answered) > BURST // 2, "most of the burst should have been answered"
    server = Server(database_url, tmp_path / "server.log")  # restarts on the same database
    server.stop()
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = Counter(connection.execute(sqlalchemy.select(FeedbackRecord.card_uuid)).scalars())
    finally:
        engine.dispose()
    assert {f"burst-{n}" for n in answered} <= set(stored), "every feedback answered 200 is stored"
    assert max(stored.values()) == 1, "each distinct feedback is stored once, even when resent"
