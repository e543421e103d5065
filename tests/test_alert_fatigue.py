"""Alert-fatigue control on SQLite and PostgreSQL: no repeats for an unchanged patient, snooze on override,
worse findings and critical cards always shown, and the database (not a process) deciding across workers."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Connection

from cards import Card, Source
from cds_service.alert_fatigue import Candidate, LastShown, Policy, Suppressed, held_back
from cds_service.http.audit import issued_card
from cds_service.storage import Store
from cds_service.storage.alert_state import Screened, remember, screen
from cds_service.storage.engine import in_transaction, upgrade
from cds_service.storage.models import CardRecord
from tests.conftest import AS_OF
from tests.storage_helpers import cards_for, rows, summaries

POLICY = Policy(repeat_window=timedelta(hours=24))


@pytest.fixture
def example_request(example_request: dict) -> dict:
    """The example patient's white cells only: a neutropenia card whose grade follows the ANC."""
    entries = example_request["prefetch"]["bloodCounts"]["entry"]
    entries[:] = [e for e in entries if not e["resource"]["id"].startswith(("hb-", "plt-"))]
    return example_request


def screen_card(
    store: Store, service_id: str, card: Card, now, policy: Policy = POLICY, *, as_hook_call: bool = False
) -> Screened:
    """One card screened in its own transaction, as a hook call does with all of its cards (`as_hook_call`:
    through the store's hook-call transaction, which SQLite shares among the calls of one process)."""

    def screen_and_remember(connection: Connection) -> Screened:
        (screened,), showings = screen(connection, service_id, "patient-key", [issued_card(card)], now, policy)
        remember(connection, showings)
        return screened

    if as_hook_call:
        return store.hook_call_transaction(screen_and_remember)
    return in_transaction(store.engine, screen_and_remember)


def with_anc(request: dict, value: float, observation_id: str = "anc-20261119") -> dict:
    changed = copy.deepcopy(request)
    for entry in changed["prefetch"]["bloodCounts"]["entry"]:
        if entry["resource"]["id"] == "anc-20261119":
            entry["resource"]["id"] = observation_id
            entry["resource"]["valueQuantity"]["value"] = value
    return changed


def neutropenia(cards: list[dict]) -> dict | None:
    return next((c for c in cards if c["summary"].startswith("Neutropenia")), None)


def test_the_same_unchanged_patient_does_not_get_the_same_cards_again(app, example_request):
    client = app.test_client()
    first = cards_for(client, example_request)
    assert "Neutropenia" in summaries(first)
    assert cards_for(client, example_request) == []
    held = [r for r in rows(app, CardRecord) if not r.shown]
    assert len(held) == len(first) and {r.suppressed for r in held} == {"repeat"}


def test_after_the_window_the_card_returns_saying_when_it_was_shown(app, clock, example_request):
    client = app.test_client()
    cards_for(client, example_request)
    clock.now = AS_OF + timedelta(hours=25)
    card = neutropenia(cards_for(client, example_request))
    assert card and "Shown before on 2026-11-20 10:00 UTC" in card["detail"]


def test_a_new_result_or_a_higher_grade_is_shown_within_the_window(app, example_request):
    client = app.test_client()
    assert "grade 2" in neutropenia(cards_for(client, with_anc(example_request, 1.2)))["summary"]
    assert neutropenia(cards_for(client, with_anc(example_request, 1.1, "anc-repeat"))), "a new result is shown"
    worse = neutropenia(cards_for(client, with_anc(example_request, 0.8, "anc-repeat")))
    assert worse and "grade 3" in worse["summary"] and "Shown before on" in worse["detail"]


def test_an_override_with_a_reason_snoozes_the_card_unless_it_gets_worse(app, clock, example_request):
    client = app.test_client()
    card = neutropenia(cards_for(client, with_anc(example_request, 1.2)))
    override = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-20T10:01:00Z",
        "overrideReason": {"reason": {"system": "urn:cytopenia-cds:override-reason", "code": "already-managed"}},
    }
    assert client.post("/cds-services/cytopenia-review/feedback", json={"feedback": [override]}).status_code == 200
    clock.now = AS_OF + timedelta(hours=30)
    assert neutropenia(cards_for(client, with_anc(example_request, 1.1, "anc-new"))) is None, "snoozed: same grade"
    assert neutropenia(cards_for(client, with_anc(example_request, 0.4, "anc-newer"))), "worse: grade 4 is shown"


def test_an_override_without_a_reason_does_not_snooze(app, clock, example_request):
    client = app.test_client()
    card = neutropenia(cards_for(client, example_request))
    override = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:01:00Z"}
    client.post("/cds-services/cytopenia-review/feedback", json={"feedback": [override]})
    clock.now = AS_OF + timedelta(hours=25)
    assert neutropenia(cards_for(client, example_request))


def test_critical_cards_are_never_held_back():
    last = LastShown("same", grade=4, at=AS_OF, snoozed_until=AS_OF + timedelta(days=3))
    assert held_back(Candidate("critical", "same", 4), last, AS_OF + timedelta(minutes=1), POLICY) is None
    assert held_back(Candidate("warning", "same", 4), last, AS_OF + timedelta(minutes=1), POLICY) is Suppressed.SNOOZED
    assert held_back(Candidate("info", None, 0), last, AS_OF, POLICY) is None, "no triggering result: always shown"


def febrile_neutropenia() -> Card:
    return Card(
        summary="Febrile neutropenia",
        indicator="critical",
        source=Source("test"),
        finding="febrile_neutropenia",
        trigger="Observation/anc=0.3;Observation/temp=38.6",
        grade=4,
    )


def test_critical_cards_are_shown_every_time_through_the_database(database_url):
    store = Store(database_url)
    try:
        upgrade(store.engine)
        results = [screen_card(store, "fn", febrile_neutropenia(), AS_OF + timedelta(minutes=i)) for i in range(3)]
        assert all(r.shown for r in results)
        assert results[2].shown_before == AS_OF + timedelta(minutes=1)
    finally:
        store.engine.dispose()


def _raced(calls: list[Callable[[], bool]]) -> list[bool]:
    """Start every call at once (one thread each) and return what each answered."""
    start = threading.Barrier(len(calls))
    answers: list[bool] = []

    def run(call: Callable[[], bool]) -> None:
        start.wait()
        answers.append(call())

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_concurrent_workers_show_a_repeat_once(database_url):
    """Eight workers with their own connections race to show the same card: the database lets one win."""
    stores = [Store(database_url) for _ in range(8)]
    upgrade(stores[0].engine)
    card = febrile_neutropenia()
    warning = Card(
        summary="Neutropenia",
        indicator="warning",
        source=Source("test"),
        finding="neutropenia",
        trigger=card.trigger,
        grade=4,
    )
    try:
        shown = _raced([lambda s=s: screen_card(s, "cytopenia-review", warning, AS_OF).shown for s in stores])
        assert sorted(shown) == [False] * 7 + [True]
    finally:
        for store in stores:
            store.engine.dispose()


def test_concurrent_calls_in_one_process_show_a_repeat_once(database_url):
    """Eight threads of one worker race to show the same card (SQLite: in one shared commit): one wins."""
    store = Store(database_url)
    upgrade(store.engine)
    warning = replace(febrile_neutropenia(), indicator="warning", finding="neutropenia")
    try:
        shown = _raced([lambda: screen_card(store, "cytopenia-review", warning, AS_OF, as_hook_call=True).shown] * 8)
        assert sorted(shown) == [False] * 7 + [True]
    finally:
        store.engine.dispose()


def test_a_hook_call_holds_the_patients_turn_and_its_writes_until_it_commits(database_url):
    """PostgreSQL: the patient's lock is taken inside the call's own transaction (its BEGIN goes with the
    lock, `sql.sent_with_the_next`): until the call commits, the lock stays held and its alert state
    stays unseen by any other call."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite takes the database's write lock with BEGIN IMMEDIATE")
    store = Store(database_url)
    upgrade(store.engine)
    warning = replace(febrile_neutropenia(), indicator="warning", finding="neutropenia")
    inside, release, backend = threading.Event(), threading.Event(), {}

    def screen_then_hold(connection: Connection) -> Screened:
        cards = [issued_card(warning)]
        (screened,), showings = screen(connection, "cytopenia-review", "patient-key", cards, AS_OF, POLICY)
        remember(connection, showings)
        backend["pid"] = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        inside.set()
        release.wait(30)
        return screened

    call = threading.Thread(target=store.hook_call_transaction, args=(screen_then_hold,))
    call.start()
    try:
        assert inside.wait(30)
        with store.engine.connect() as other:
            locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %(pid)s AND granted"
            assert other.exec_driver_sql(locks, backend).scalar_one() == 1
            assert other.exec_driver_sql("SELECT count(*) FROM alert_state").scalar_one() == 0
            other.rollback()
            release.set()
            call.join(30)
            assert other.exec_driver_sql(locks, backend).scalar_one() == 0
            assert other.exec_driver_sql("SELECT count(*) FROM alert_state").scalar_one() == 1
    finally:
        release.set()
        call.join(30)
        store.engine.dispose()


def test_held_back_repeats_are_counted_for_the_dashboard(make_app, example_request):
    from prometheus_client import REGISTRY

    def held() -> float:
        return REGISTRY.get_sample_value("cytopenia_suppressed_repeats_total", {"service": "cytopenia-review"}) or 0.0

    client = make_app().test_client()
    first = client.post("/cds-services/cytopenia-review", json=example_request).get_json()["cards"]
    before = held()
    assert client.post("/cds-services/cytopenia-review", json=example_request).get_json()["cards"] == []
    assert held() == before + len(first)
