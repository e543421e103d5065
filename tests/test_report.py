"""`cytopenia-cds report` against a seeded database (SQLite and PostgreSQL): the figures are right."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import insert

from cds_service.cli import main
from cds_service.storage import open_store
from cds_service.storage.models import CardRecord, FeedbackRecord, HookCallRecord
from tests.conftest import AS_OF

SYSTEM = "urn:cytopenia-cds:override-reason"


def seed(database_url: str) -> None:
    """Ten neutropenia calls (10..100 ms; 8 cards shown, 2 held back), one anaemia call, one older call."""
    store = open_store(database_url)
    call = {
        "service_id": "cytopenia-review",
        "hook": "patient-view",
        "status": 200,
        "data_sources": {},
        "latency_ms": {},
    }
    card = {
        "service_id": "cytopenia-review",
        "indicator": "warning",
        "grade": 3,
        "patient_key": "k",
        "shown_before": None,
    }
    feedback = []

    def answer(n: int, outcome: str, **extra) -> None:
        feedback.append(
            {
                "fingerprint": f"fp-{len(feedback)}",
                "received_at": AS_OF,
                "service_id": "cytopenia-review",
                "card_uuid": f"n{n}",
                "known_card": True,
                "outcome": outcome,
                "outcome_at": AS_OF,
                "accepted_suggestions": [],
                "override_system": None,
                "override_code": None,
                "user_comment": None,
                **extra,
            }
        )

    with store.engine.begin() as connection:
        for n in range(1, 11):
            connection.execute(insert(HookCallRecord).values(id=n, received_at=AS_OF, total_ms=10.0 * n, **call))
            connection.execute(
                insert(CardRecord).values(
                    uuid=f"n{n}",
                    call_id=n,
                    issued_at=AS_OF + timedelta(days=n % 2),
                    finding="neutropenia",
                    suggestion_uuids=["s1", "s2"],
                    shown=n <= 8,
                    suppressed=None if n <= 8 else "repeat",
                    **card,
                )
            )
        connection.execute(insert(HookCallRecord).values(id=11, received_at=AS_OF, total_ms=5.0, **call))
        connection.execute(
            insert(CardRecord).values(
                uuid="a1",
                call_id=11,
                issued_at=AS_OF,
                finding="anaemia",
                suggestion_uuids=[],
                shown=True,
                suppressed=None,
                **card,
            )
        )
        old = AS_OF - timedelta(days=30)
        connection.execute(insert(HookCallRecord).values(id=12, received_at=old, total_ms=999.0, **call))
        connection.execute(
            insert(CardRecord).values(
                uuid="old",
                call_id=12,
                issued_at=old,
                finding="neutropenia",
                suggestion_uuids=[],
                shown=True,
                suppressed=None,
                **card,
            )
        )
        answer(1, "accepted", accepted_suggestions=["s1", "s2"])
        answer(2, "accepted", accepted_suggestions=["s1"])
        answer(3, "accepted", accepted_suggestions=["s2"])
        answer(3, "accepted", accepted_suggestions=["s2"], outcome_at=AS_OF + timedelta(minutes=1))
        answer(4, "overridden", override_system=SYSTEM, override_code="already-managed")
        answer(5, "overridden", override_system=SYSTEM, override_code="already-managed")
        answer(6, "overridden", override_system=SYSTEM, override_code="not-relevant")
        answer(7, "overridden", user_comment="seen by haematology")
        feedback.append({**feedback[0], "fingerprint": "fp-unknown", "card_uuid": "never-issued", "known_card": False})
        connection.execute(insert(FeedbackRecord), feedback)
    store.engine.dispose()


def report(monkeypatch, capsys, database_url: str, *args: str) -> str:
    monkeypatch.setenv("CYTOPENIA_DATABASE_URL", database_url)
    assert main(["report", "--since", "2026-11-01", *args]) == 0
    return capsys.readouterr().out


def test_report_figures_per_service_and_finding(database_url, monkeypatch, capsys):
    seed(database_url)
    document = json.loads(report(monkeypatch, capsys, database_url, "--format", "json"))
    rows = {row["finding"]: row for row in document["rows"]}
    neutropenia = rows["neutropenia"]
    assert (neutropenia["shown"], neutropenia["accepted"], neutropenia["overridden"]) == (8, 3, 4)
    assert neutropenia["override_rate"] == 0.5
    assert neutropenia["suggestions_accepted"] == 4
    assert neutropenia["suppressed_repeats"] == 2
    assert neutropenia["top_override_reasons"] == [
        {"reason": "Already known and being managed", "count": 2},
        {"reason": "(comment only)", "count": 1},
        {"reason": "Not clinically relevant for this patient", "count": 1},
    ]
    assert (neutropenia["latency_p50_ms"], neutropenia["latency_p95_ms"], neutropenia["latency_p99_ms"]) == (
        50,
        100,
        100,
    )
    assert (rows["anaemia"]["shown"], rows["anaemia"]["override_rate"], rows["anaemia"]["latency_p50_ms"]) == (1, 0, 5)
    assert document["unknownCardFeedback"] == 1


def test_report_as_csv_and_table(database_url, monkeypatch, capsys):
    seed(database_url)
    table = list(csv.DictReader(io.StringIO(report(monkeypatch, capsys, database_url, "--format", "csv"))))
    assert [(r["finding"], r["shown"], r["override_rate"]) for r in table] == [
        ("anaemia", "1", "0.0"),
        ("neutropenia", "8", "0.5"),
    ]
    text = report(monkeypatch, capsys, database_url)
    assert "50%" in text and "Already known and being managed (2)" in text
    assert "never issued: 1" in text


@pytest.mark.slow
def test_report_chart_is_a_png(database_url, monkeypatch, capsys, tmp_path):
    seed(database_url)
    chart = tmp_path / "override-rates.png"
    report(monkeypatch, capsys, database_url, "--chart", str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
