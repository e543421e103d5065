"""Fallback path: a patient-view call with nothing prefetched, against the real FHIR engine (Medplum).

Prints the whole call's latency, the engine's own time for the same queries (sent in parallel, as the
service sends them) and the difference: what the service adds on top of the FHIR server.
Run: `make bench`, or `.venv/bin/python -m benchmarks.fallback` (needs `npm ci --prefix tests/fhir_server`).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from cds_service.app import create_app
from cds_service.config import Settings
from cds_service.data_access.templates import fill
from cds_service.hooks.cytopenia_review import SERVICE
from tests.conftest import load_fixture
from tests.fhir_engine import FhirEngine

PATIENT_FILE = "synthea-r4/Whitney_Ortiz_b9bbc884-486e-4159-9bf3-c666ecb90df7.json"
PATIENT = "2744ab6f-91dd-4e4f-8208-fe52ee2c27d1"
AS_OF = datetime(2016, 1, 20, tzinfo=UTC)
WARM_UP, RUNS = 3, 15


def _percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms"


def _timed(action, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    engine = FhirEngine.start()
    try:
        engine.load(load_fixture(PATIENT_FILE))
        settings = Settings(dev=True, fhir_deadline_ms=5000, fhir_read_timeout_ms=5000, database_url="sqlite://")
        client = create_app(settings, clock=lambda: AS_OF).test_client()
        context = {"userId": "Practitioner/bench", "patientId": PATIENT}
        request = {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": context,
            "fhirServer": engine.base,
            "fhirAuthorization": {
                "access_token": "bench",
                "token_type": "Bearer",
                "expires_in": 60,
                "scope": "patient/*.read",
                "subject": "bench",
            },
        }
        urls = [f"{engine.base}/{fill(t.query, context)}" for t in SERVICE.prefetch]
        pool = ThreadPoolExecutor(len(urls))
        # One session per thread (a Session is not thread-safe); kept across runs, so the figure is the
        # engine's time and not TCP set-up.
        local = threading.local()

        def get(url: str) -> requests.Response:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            try:
                return local.session.get(url, headers={"Authorization": "Bearer bench"})
            except requests.ConnectionError:  # the engine closed an idle pooled connection: one new one, as
                return local.session.get(url, headers={"Authorization": "Bearer bench"})  # our transport does

        def engine_alone():
            for response in pool.map(get, urls):
                response.raise_for_status()

        def whole_call():
            response = client.post("/cds-services/cytopenia-review", json=request)
            assert response.status_code == 200, response.get_data(as_text=True)

        for action in (engine_alone, whole_call):
            _timed(action, WARM_UP)
        engine_ms, call_ms = [], []
        for _ in range(RUNS):  # interleaved, so both see the same machine load
            engine_ms += _timed(engine_alone, 1)
            call_ms += _timed(whole_call, 1)
        added = [c - e for c, e in zip(call_ms, engine_ms, strict=True)]
        print(f"fallback path, patient-view, nothing prefetched ({len(urls)} queries in parallel, {RUNS} runs):")
        print(f"  whole hook call       {_percentiles(call_ms)}")
        print(f"  FHIR engine alone     {_percentiles(engine_ms)}")
        print(f"  added by the service  {_percentiles(added)}")
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
