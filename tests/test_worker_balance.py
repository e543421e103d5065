"""A worker busy with connections leaves a new one to an idle worker first, so connections arriving together
(wrk's, a load balancer's pool) are not all taken by the one worker that happened to be awake.

Where connections land under load is timing, measured in benchmarks (docs/benchmarks.md: before this, one of
two workers sat idle through 2 of 12 served steps at 4 and 16 connections, and 4 of 10 in another run); here,
deterministically, what one worker's `accept` does with a real listening socket."""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Iterator

import pytest

from cds_service.worker import WholeRequestWorker


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)  # as gunicorn's listeners are
    yield server
    server.close()


@pytest.fixture
def waits() -> list[float]:
    return []


def a_worker(
    connections: int, kept_alive: int, monkeypatch, waits: list[float]
) -> tuple[WholeRequestWorker, list[object]]:
    """A worker holding `connections`, `kept_alive` of them idle between requests; what it accepts and how
    long it leaves a connection to others are recorded (this worker's wait only, never the process's sleep)."""
    busy = WholeRequestWorker.__new__(WholeRequestWorker)  # no gunicorn arbiter: only `accept` is under test
    busy.cfg, busy.nr_conns, busy.keepalived_conns = None, connections, deque(range(kept_alive))
    accepted: list[object] = []
    monkeypatch.setattr(busy, "enqueue_req", accepted.append)
    monkeypatch.setattr(busy, "leave_to_an_idle_worker", lambda: waits.append(busy.LEAVE_SECONDS))
    return busy, accepted


def test_an_idle_worker_accepts_at_once(listener, waits, monkeypatch):
    idle, accepted = a_worker(0, 0, monkeypatch, waits)
    with socket.create_connection(listener.getsockname()):
        idle.accept(listener)
    assert waits == [] and len(accepted) == 1 and idle.nr_conns == 1


def test_a_worker_reading_or_serving_a_connection_leaves_a_new_one_a_moment_then_takes_it(listener, waits, monkeypatch):
    busy, accepted = a_worker(1, 0, monkeypatch, waits)
    with socket.create_connection(listener.getsockname()):
        busy.accept(listener)
    assert waits == [WholeRequestWorker.LEAVE_SECONDS], "an idle worker gets the moment to take it first"
    assert len(accepted) == 1 and busy.nr_conns == 2, "nobody took it: the busy worker does, never drops it"


def test_connections_idle_between_requests_do_not_delay_accepting(listener, waits, monkeypatch):
    pooled, accepted = a_worker(3, 3, monkeypatch, waits)
    with socket.create_connection(listener.getsockname()):
        pooled.accept(listener)
    assert waits == [] and len(accepted) == 1


def test_a_connection_another_worker_took_meanwhile_is_let_go(listener, waits, monkeypatch):
    busy, accepted = a_worker(1, 0, monkeypatch, waits)
    busy.accept(listener)  # woken, but by the time it looks the other worker has accepted: nothing waits
    assert waits == [WholeRequestWorker.LEAVE_SECONDS]
    assert accepted == [] and busy.nr_conns == 1
