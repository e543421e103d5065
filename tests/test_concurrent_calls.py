"""Two gunicorn workers answering for the same patient at once, on SQLite and PostgreSQL: with a repeat
window of 0 every call gets every card (no call's timestamp makes another's look like a repeat), and
every answered call has its audit row."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from cds_service.storage.models import CardRecord, HookCallRecord
from tests.conftest import EXAMPLES

CLI = str(Path(sys.executable).with_name("cytopenia-cds"))
CLIENTS, CALLS_EACH = 8, 25

pytestmark = pytest.mark.server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(database_url: str, folder: Path) -> tuple[subprocess.Popen, str, Path]:
    port, log = free_port(), folder / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYTOPENIA_")} | {
        "CYTOPENIA_DATABASE_URL": database_url,
        "CYTOPENIA_REPEAT_WINDOW_HOURS": "0",
        "CYTOPENIA_RATE_LIMIT": "1000000 per minute",
    }
    process = subprocess.Popen(
        [CLI, "serve", "--dev", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base, log
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"server did not start: {log.read_text()}")
        time.sleep(0.2)


def test_concurrent_calls_on_two_workers_with_no_repeat_window_hold_nothing_back(database_url, tmp_path):
    body = json.loads((EXAMPLES / "patient-view-neutropenia.json").read_text(encoding="utf-8"))
    process, base, log = serve(database_url, tmp_path)
    answers: list[tuple[int, int]] = []
    start = threading.Barrier(CLIENTS)

    def clinician() -> None:
        with requests.Session() as session:
            start.wait()
            for _ in range(CALLS_EACH):
                response = session.post(f"{base}/cds-services/cytopenia-review", json=body, timeout=60)
                answers.append((response.status_code, len(response.json().get("cards", ()))))

    try:
        threads = [threading.Thread(target=clinician) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert len(answers) == CLIENTS * CALLS_EACH, log.read_text()
    assert {status for status, _ in answers} == {200}, log.read_text()
    assert len({cards for _, cards in answers}) == 1, f"some calls got fewer cards: {sorted(set(answers))}"
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            calls = connection.execute(select(func.count()).select_from(HookCallRecord)).scalar_one()
            held = connection.execute(select(func.count()).where(CardRecord.shown.is_(False))).scalar_one()
    finally:
        engine.dispose()
    assert calls == CLIENTS * CALLS_EACH, "every answered call has its audit row"
    assert held == 0, f"{held} cards held back as repeats with a repeat window of 0"
