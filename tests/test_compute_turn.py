"""A worker's threads take turns to compute but never wait for each other's waits: a call waiting for a
slow FHIR server does not hold up the other calls of its worker (`cds_service.compute_turn`)."""

from __future__ import annotations

import copy
import json
import threading

import pytest
import requests

from tests.conftest import EXAMPLES
from tests.misbehaving_fhir import fhir, serving, slow
from tests.served import Server

pytestmark = pytest.mark.server
FHIR_WAIT_MS = 8000  # the fetching call waits this long for its FHIR server; the other call needs milliseconds


def test_a_call_waiting_for_a_slow_fhir_server_does_not_hold_up_the_worker(tmp_path):
    prefetched = json.loads((EXAMPLES / "patient-view-neutropenia.json").read_text(encoding="utf-8"))
    never_in_time = slow(30, fhir({"resourceType": "Bundle", "type": "searchset"}))
    with serving({"*": never_in_time}) as (base, seen):
        fetching = copy.deepcopy(prefetched)
        del fetching["prefetch"]
        fetching["fhirServer"] = base
        server = Server(tmp_path, "--dev", workers=1, fhir_deadline_ms=str(FHIR_WAIT_MS))
        try:
            waiting_call: list[requests.Response] = []
            first = threading.Thread(
                target=lambda: waiting_call.append(
                    requests.post(server.url + "/cds-services/cytopenia-review", json=fetching, timeout=60)
                )
            )
            first.start()
            server.wait_until(lambda: bool(seen), "the first call never reached its FHIR server")
            answered = requests.post(server.url + "/cds-services/cytopenia-review", json=prefetched, timeout=60)
            still_waiting = first.is_alive()
            first.join(timeout=60)
            assert answered.status_code == 200, server.output()[-3000:]
            assert answered.json()["cards"], "the prefetched call was answered without its cards"
            assert still_waiting, (
                "the prefetched call was answered only after the call waiting for its FHIR server; "
                f"server output:\n{server.output()[-3000:]}"
            )
            assert waiting_call and waiting_call[0].status_code in (200, 412), server.output()[-3000:]
        finally:
            server.stop()
