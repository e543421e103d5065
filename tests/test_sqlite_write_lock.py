"""SQLite: a hook call that finds the write lock held by another process waits for it without idling its
worker (its compute turn goes to the worker's other calls meanwhile), and gives up after the busy timeout."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import OperationalError

from cds_service.compute_turn import computing
from cds_service.storage import engine as storage_engine
from cds_service.storage.engine import in_transaction
from cds_service.storage.models import HookCallRecord
from tests.conftest import AS_OF

WAIT = 30  # seconds: generous, so that a loaded machine cannot fail a test that should pass


@pytest.fixture
def other_writer(sqlite_store) -> Iterator[sqlite3.Connection]:
    """Another process's connection holding the write lock (a transaction begun, not yet committed)."""
    connection = sqlite3.connect(sqlite_store.engine.url.database, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    yield connection
    connection.close()


def write_audit_row(connection: Connection) -> int:
    connection.execute(
        HookCallRecord.__table__.insert().values(
            received_at=AS_OF, service_id="locked", status=200, data_sources={}, latency_ms={}, total_ms=1.0
        )
    )
    return connection.execute(select(func.count()).select_from(HookCallRecord.__table__)).scalar_one()


def test_a_call_waiting_for_another_process_write_lock_hands_its_turn_on_and_then_writes(sqlite_store, other_writer):
    outcome: dict[str, object] = {}
    has_turn = threading.Event()

    def hook_call() -> None:
        with computing():  # as a served call holds its worker's turn
            has_turn.set()
            try:
                outcome["rows"] = sqlite_store.hook_call_transaction(write_audit_row)
            except Exception as error:  # reported by the assertions below
                outcome["error"] = error

    call = threading.Thread(target=hook_call)
    call.start()
    assert has_turn.wait(WAIT)
    other_call_computed = threading.Event()

    def other_call() -> None:
        with computing():
            other_call_computed.set()

    # While the lock is held, the waiting call must let another call of its worker compute.
    threading.Thread(target=other_call, daemon=True).start()
    assert other_call_computed.wait(WAIT), "the call held its worker's turn while waiting for the write lock"
    assert call.is_alive() and not outcome, f"the call did not wait for the lock: {outcome}"
    other_writer.execute("COMMIT")
    call.join(WAIT)
    assert outcome == {"rows": 1}


def test_a_write_lock_never_let_go_fails_the_call_after_the_busy_timeout(sqlite_store, other_writer, monkeypatch):
    """The wait is the configured one: with 0.5 s, the call gives up well before SQLite's own 30 s."""
    monkeypatch.setattr(storage_engine, "SQLITE_BUSY_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"):
        sqlite_store.hook_call_transaction(write_audit_row)
    assert time.monotonic() - started < 10, "the call waited past its busy timeout"
    other_writer.execute("COMMIT")
    assert sqlite_store.hook_call_transaction(write_audit_row) == 1  # works again once the lock is let go


def test_after_waiting_for_the_lock_a_connection_keeps_its_busy_timeout(sqlite_store, other_writer):
    """Other statements on the connection (reports, the SMART app's reads) still wait SQLite's busy timeout."""
    releaser = threading.Timer(0.2, other_writer.execute, ("COMMIT",))
    releaser.start()
    assert in_transaction(sqlite_store.engine, write_audit_row) == 1
    releaser.join()
    timeout = in_transaction(sqlite_store.engine, lambda c: c.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
    assert timeout == storage_engine.SQLITE_BUSY_SECONDS * 1000


def test_a_lock_held_for_long_is_tried_for_ever_less_often(sqlite_store, other_writer, monkeypatch):
    """A backup or a long report holding the lock for seconds must not cost the waiting calls a CPU."""
    tries = []
    began = storage_engine._began_immediate
    monkeypatch.setattr(
        storage_engine, "_began_immediate", lambda *a, **k: tries.append(time.monotonic()) or began(*a, **k)
    )
    releaser = threading.Timer(1.0, other_writer.execute, ("COMMIT",))
    releaser.start()
    assert sqlite_store.hook_call_transaction(write_audit_row) == 1
    releaser.join()
    shortest, longest = storage_engine.LOCK_POLL_SECONDS, storage_engine.LOCK_POLL_LONGEST_SECONDS
    waited = tries[-1] - tries[0]
    fast = storage_engine.LOCK_POLL_FAST_FOR_SECONDS / shortest
    ramp = math.ceil(math.log2(longest / shortest)) + 2  # the doubling pauses, the first try and the last
    assert len(tries) <= fast + waited / longest + ramp, f"{len(tries)} tries in {waited:.2f} s"
