"""Requests at the caps finish well inside the worker timeout: the slowest request each cap allows, timed in
process on SQLite and on PostgreSQL (`python -m benchmarks.caps`; PostgreSQL from CYTOPENIA_BENCH_POSTGRES_URL,
default the test database; skipped if unreachable).

Cases: feedback with the most items a request may carry (overrides with a reason, resent so half are
duplicates), feedback far over the cap (10,000 items, refused with 413), an order-sign with the most draft
orders allowed, and a patient-view whose prefetch fills the whole body size cap with Observations.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import sqlalchemy

from benchmarks.payloads import FIXTURES, SOURCE, _load
from cds_service.app import create_app
from cds_service.config import Settings
from cds_service.http.caps import MAX_DRAFT_ORDERS, MAX_FEEDBACK_ITEMS
from cds_service.serving import gunicorn_options

RUNS = 5
POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"
CLOZAPINE = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2626", "display": "clozapine"}


def feedback(items: int) -> bytes:
    reason = {"reason": {"system": "urn:cytopenia-cds:override-reason", "code": "not-relevant"}}
    return orjson.dumps(
        {
            "feedback": [
                {
                    "card": str(uuid.uuid4()) if n % 2 else f"resent-{n}",
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-11-20T10:05:00Z",
                    "overrideReason": reason,
                }
                for n in range(items)
            ]
        }
    )


def order_sign(orders: int) -> bytes:
    drafts = [
        {
            "resourceType": "MedicationRequest",
            "id": f"draft-{n}",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/bench"},
            "medicationCodeableConcept": {"coding": [CLOZAPINE], "text": "clozapine 25 mg tablet"},
        }
        for n in range(orders)
    ]
    return orjson.dumps(
        {
            "hook": "order-sign",
            "hookInstance": str(uuid.uuid4()),
            "context": {
                "userId": "Practitioner/bench",
                "patientId": "bench",
                "draftOrders": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": d} for d in drafts],
                },
            },
            "prefetch": {"patient": {"resourceType": "Patient", "id": "bench", "birthDate": "1970-01-01"}},
        }
    )


def full_prefetch(limit: int) -> tuple[bytes, int]:
    """A patient-view whose prefetch is as many (renumbered) Observations as fit under the body cap."""
    items = _load(FIXTURES / SOURCE)
    patient = next(r for r in items if r["resourceType"] == "Patient")
    observations = [r for r in items if r["resourceType"] == "Observation"]
    one = len(orjson.dumps(observations)) / len(observations)
    count = int(limit * 0.95 / one)
    entries = [{"resource": {**observations[n % len(observations)], "id": f"o{n}"}} for n in range(count)]
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench", "patientId": patient["id"]},
        "prefetch": {
            "patient": patient,
            "bloodCounts": {"resourceType": "Bundle", "type": "searchset", "entry": entries},
        },
    }
    return orjson.dumps(body), count


def timed(client, path: str, body: bytes, status: int) -> list[float]:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.post(path, data=body, content_type="application/json")
        timings.append(time.perf_counter() - started)
        assert response.status_code == status, (path, response.status_code, response.get_data(as_text=True)[:300])
    return timings


def reachable(url: str) -> bool:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect():
            return True
    except sqlalchemy.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def main() -> int:
    databases = {"sqlite": f"sqlite:///{Path(tempfile.mkdtemp(prefix='cytopenia-caps-')) / 'caps.sqlite3'}"}
    postgres = os.environ.get("CYTOPENIA_BENCH_POSTGRES_URL", POSTGRES_URL)
    if reachable(postgres):
        schema = f"cytopenia_caps_{uuid.uuid4().hex[:8]}"
        admin = sqlalchemy.create_engine(postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        databases["postgresql"] = f"{postgres}?options=-csearch_path%3D{schema}"
    settings = Settings(dev=True, repeat_window_hours=0)
    timeout = gunicorn_options(settings)["timeout"]
    prefetch, observations = full_prefetch(settings.max_request_bytes)
    cases = [
        (
            f"feedback, {MAX_FEEDBACK_ITEMS} items (the cap)",
            "/cds-services/cytopenia-review/feedback",
            feedback(MAX_FEEDBACK_ITEMS),
            200,
        ),
        ("feedback, 10000 items (over: 413)", "/cds-services/cytopenia-review/feedback", feedback(10_000), 413),
        (
            f"order-sign, {MAX_DRAFT_ORDERS} draft orders (the cap)",
            "/cds-services/myelotoxic-order-check",
            order_sign(MAX_DRAFT_ORDERS),
            200,
        ),
        (f"patient-view, {observations} Observations (body cap)", "/cds-services/cytopenia-review", prefetch, 200),
    ]
    print(f"requests at the caps, in process, {RUNS} runs each; worker timeout {timeout} s")
    print(f"{'database':<11} {'request':<52} {'KiB':>6} {'median s':>9} {'max s':>7} {'of timeout':>10}")
    worst = 0.0
    try:
        for name, url in databases.items():
            client = create_app(settings.model_copy(update={"database_url": url})).test_client()
            for label, path, body, status in cases:
                timings = timed(client, path, body, status)
                worst = max(worst, max(timings))
                print(
                    f"{name:<11} {label:<52} {len(body) / 1024:>6.0f} {statistics.median(timings):>9.3f} "
                    f"{max(timings):>7.3f} {max(timings) / timeout:>9.1%}"
                )
    finally:
        if "postgresql" in databases:
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()
    verdict = "met" if worst <= timeout / 10 else "MISSED"
    print(f"slowest {worst:.2f} s; target at most a tenth of the worker timeout ({timeout / 10:g} s): {verdict}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
