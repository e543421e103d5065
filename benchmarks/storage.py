"""Storage alone: a hook call's transaction (screen two cards, write the audit row, its cards and the
alert state), from 1 and 4 threads of one process sharing one store, on a SQLite file and on
PostgreSQL (127.0.0.1:5432, a schema of its own). No HTTP and no evaluation, so the figure is the
database's: on SQLite the commit's fsync, which calls of one process share (group commit); on
PostgreSQL the round trips. `python -m benchmarks.storage [seconds per step]`.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from cds_service.alert_fatigue import Policy
from cds_service.issued_card import IssuedCard
from cds_service.storage import Store
from cds_service.storage.alert_state import Screened, screen
from cds_service.storage.audit import record_call
from cds_service.storage.engine import upgrade
from tests.conftest import postgres_schema

NOW = datetime(2026, 11, 19, tzinfo=UTC)
POLICY = Policy(repeat_window=timedelta(0))
CALL = {
    "received_at": NOW,
    "service_id": "cytopenia-review",
    "hook": "patient-view",
    "hook_instance": str(uuid.uuid4()),
    "client_issuer": None,
    "client_tenant": None,
    "status": 200,
    "data_sources": {"bloodCounts": {"origin": "prefetch", "resources": [f"Observation/o-{i}" for i in range(30)]}},
    "latency_ms": {"gather": 0.2, "evaluate": 1.0, "fatigue": 0.3},
    "total_ms": 3.0,
}


def _cards() -> list[IssuedCard]:
    return [
        IssuedCard(str(uuid.uuid4()), "warning", "neutropenia", "Observation/anc=0.4", 3, (str(uuid.uuid4()),)),
        IssuedCard(str(uuid.uuid4()), "warning", "thrombocytopenia", "Observation/plt=40", 2, (str(uuid.uuid4()),)),
    ]


def _hook_call(patient_key: str) -> Any:
    def work(connection: Connection) -> list[Screened]:
        screened, showings = screen(connection, "cytopenia-review", patient_key, _cards(), NOW, POLICY)
        record_call(connection, CALL | {"patient_key": patient_key}, screened, showings)
        return screened

    return work


def transactions_per_second(database_url: str, threads: int, seconds: float) -> tuple[float, float]:
    """(transactions/s, median wall ms per transaction); each call names a patient of its own."""
    store = Store(database_url, pool_size=threads)
    upgrade(store.engine)
    counted, walls = [0] * threads, []
    start = time.monotonic() + 0.5  # the first half second warms up
    stop = start + seconds

    def caller(n: int) -> None:
        i = 0
        while (began := time.monotonic()) < stop:
            store.hook_call_transaction(_hook_call(f"{n}-{i}"))
            i += 1
            if began > start:
                counted[n] += 1
                walls.append((time.monotonic() - began) * 1000)

    workers = [threading.Thread(target=caller, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.engine.dispose()
    return sum(counted) / seconds, statistics.median(walls)


@contextmanager
def _sqlite() -> Iterator[str]:
    yield f"sqlite:///{tempfile.mkdtemp(prefix='cytopenia-storage-')}/bench.sqlite3"


def main(seconds: float = 5.0) -> None:
    print(f"storage alone, a hook call's transaction (2 cards); load average {os.getloadavg()[0]:.1f}")
    for name, database in (("SQLite file", _sqlite), ("PostgreSQL", lambda: postgres_schema("cytopenia_bench"))):
        try:
            with database() as url:
                for threads in (1, 4):
                    rate, wall = transactions_per_second(url, threads, seconds)
                    print(f"  {name:<12} {threads} thread(s): {rate:7.1f} transactions/s, median {wall:.2f} ms")
        except OperationalError as error:
            print(f"  {name}: skipped, not reachable ({error.orig})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
