"""SQLite: the hook calls of one process share a commit (one fsync for all calls queued meanwhile), and
each is answered only after the commit that holds its work; one call failing costs only its own work."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, event, func, select

from cds_service.storage import Store
from cds_service.storage.models import HookCallRecord
from tests.conftest import AS_OF

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller")
FOLLOWERS = 5


def audit(name: str, fail: bool = False) -> Callable[[Connection], str]:
    """Work that writes one audit row and answers with its caller's context variable."""

    def work(connection: Connection) -> str:
        connection.execute(
            HookCallRecord.__table__.insert().values(
                received_at=AS_OF, service_id=name, status=200, data_sources={}, latency_ms={}, total_ms=1.0
            )
        )
        if fail:
            raise ValueError(name)
        return CALLER.get()

    return work


def calls_during_a_commit(sqlite_store: Store, works: list[Callable[[Connection], str]]) -> dict[str, Any]:
    """The first call leads and holds its transaction open until the others have queued behind it."""
    release, answers = threading.Event(), {}

    def leader_work(connection: Connection) -> str:
        release.wait(30)
        return audit("leader")(connection)

    def call(name: str, work: Callable[[Connection], str]) -> None:
        CALLER.set(name)
        try:
            answers[name] = sqlite_store.hook_call_transaction(work)
        except Exception as error:
            answers[name] = error

    threads = [threading.Thread(target=call, args=("leader", leader_work))]
    threads[0].start()
    while not sqlite_store._group_commit._leading:  # type: ignore[union-attr]
        time.sleep(0.001)
    threads += [threading.Thread(target=call, args=(f"call-{i}", work)) for i, work in enumerate(works)]
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 30
    while len(sqlite_store._group_commit._queued) < len(works) and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.001)
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def stored_services(sqlite_store: Store) -> set[str]:
    with sqlite_store.engine.connect() as connection:
        return set(connection.execute(select(HookCallRecord.service_id)).scalars())


def test_calls_queued_during_a_commit_share_the_next_one_and_each_runs_in_its_own_context(sqlite_store):
    commits = []
    event.listen(sqlite_store.engine, "commit", lambda _connection: commits.append(1))
    answers = calls_during_a_commit(sqlite_store, [audit(f"call-{i}") for i in range(FOLLOWERS)])
    assert answers == {"leader": "leader"} | {f"call-{i}": f"call-{i}" for i in range(FOLLOWERS)}
    assert len(commits) == 2, "the leader's commit, then one for every call that queued behind it"
    assert stored_services(sqlite_store) == set(answers)


def test_a_call_that_fails_in_a_shared_transaction_rolls_back_only_its_own_work(sqlite_store):
    works = [audit(f"call-{i}", fail=i == 2) for i in range(FOLLOWERS)]
    answers = calls_during_a_commit(sqlite_store, works)
    assert isinstance(answers.pop("call-2"), ValueError)
    assert answers == {"leader": "leader"} | {f"call-{i}": f"call-{i}" for i in range(FOLLOWERS) if i != 2}
    assert stored_services(sqlite_store) == set(answers)


def test_when_the_shared_commit_fails_every_call_of_it_hears_so_and_nothing_of_it_is_stored(sqlite_store):
    failing = {"commits": 0}

    def fail_the_second_commit(_connection: Connection) -> None:
        failing["commits"] += 1
        if failing["commits"] == 2:
            raise OSError("disk full")

    event.listen(sqlite_store.engine, "commit", fail_the_second_commit)
    answers = calls_during_a_commit(sqlite_store, [audit(f"call-{i}") for i in range(FOLLOWERS)])
    assert answers.pop("leader") == "leader"
    assert all(isinstance(error, OSError) for error in answers.values()) and len(answers) == FOLLOWERS
    with sqlite_store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(HookCallRecord)).scalar_one() == 1
