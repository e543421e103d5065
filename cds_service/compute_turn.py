"""One call computes at a time in a worker process; while it waits (a commit, a FHIR server, Redis, the
EHR's token endpoints) the next one computes.

CPython runs one thread's Python at a time. When gunicorn's threads all compute at once, a thread
back from a wait (a commit, a FHIR read) queues for the interpreter behind a computing thread for up
to the switch interval (5 ms), and a call meets several waits: measured with 2 workers of 4 threads,
4 connections were answered more slowly than 1 (156 against 193 calls a second on PostgreSQL; 164
against 261 on SQLite). Taking turns keeps the threads for what they are for, overlapping waits,
without most of that queueing. Short waits (a statement inside a transaction) keep the turn: handing it
on at each would queue the call behind another's computing as often. A thread that does not hold the
turn (tests, the command-line tools) waits as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_turn = threading.Lock()
_this_thread = threading.local()


def _holds() -> bool:
    return getattr(_this_thread, "holds", False)


@contextmanager
def computing() -> Iterator[None]:
    """Hold this process's turn to compute (re-entrant: a thread that holds it keeps it)."""
    if _holds():
        yield
        return
    _turn.acquire()
    _this_thread.holds = True
    try:
        yield
    finally:
        _this_thread.holds = False
        _turn.release()


@contextmanager
def waiting() -> Iterator[None]:
    """Around a wait that computes little: the turn goes to another call meanwhile and is taken back
    after. Nothing that waits for the turn may be waited for inside, or the two would wait for each other."""
    if not _holds():
        yield
        return
    _this_thread.holds = False
    _turn.release()
    try:
        yield
    finally:
        _turn.acquire()
        _this_thread.holds = True


def taking_turns(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app whose calls compute in turns; the response body is sent after, outside the turn."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with computing():
            return wsgi_app(environ, start_response)

    return app
