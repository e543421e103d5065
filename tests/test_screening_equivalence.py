"""The screen says what the chart says: for every patient of the small population, the worklist equals
the cards the hooks return through the HTTP API for the same resources at the same as-of (repeat
hold-back off), data-gap cards aside (a worklist lists findings, not patients without counts)."""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from pathlib import Path

import pytest

from cds_service.clinical.knowledge import SITE_THRESHOLDS
from cds_service.hooks import cytopenia_review, febrile_neutropenia
from cds_service.screening.evaluate import ORDER_SIGN, hook_data, renewal_bundle
from cds_service.screening.run import Options, screen
from tests.screening_support import AS_OF, resources_by_patient, small_population

pytestmark = pytest.mark.slow  # the screen and the hooks over every fixture patient

# The cards that say data are missing rather than report a finding (cards/cytopenia.py data_gap_card,
# cards/febrile_neutropenia.py not_excluded_card without a current ANC).
DATA_GAP_SUMMARIES = (
    "Cytopenia not assessed",
    "Blood counts partly unusable",
    "Febrile neutropenia not assessed",
    "No blood count in the last",
)


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> Path:
    return small_population(tmp_path_factory.mktemp("population"))


# The service as shipped, and a site that raised two lower limits and reads temperatures over 72 h.
SITES = {
    "cited defaults": {},
    "site settings": {
        "thresholds": {"default_lln_platelets": 170.0, "default_lln_absolute_neutrophil_count": 2.0},
        "fever_lookback_hours": 72.0,
    },
}


@pytest.fixture(scope="module", params=sorted(SITES))
def site(request) -> dict:
    yield SITES[request.param]
    SITE_THRESHOLDS.set({})  # the next test starts from the cited values


@pytest.fixture(scope="module")
def worklist(population, site, tmp_path_factory) -> dict[str, Counter]:
    out = tmp_path_factory.mktemp("screen")
    options = Options(
        as_of=AS_OF,
        processes=2,
        progress=False,
        chart=False,
        thresholds=tuple(sorted(site.get("thresholds", {}).items())),
        fever_lookback_hours=site.get("fever_lookback_hours"),
    )
    summary = screen(population, out, options)
    assert summary.balanced()
    by_patient: dict[str, Counter] = {}
    with (out / "worklist.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["service"] != "screen":  # the held-TKI rule has no hook to compare with
                by_patient.setdefault(row["patient"], Counter())[(row["service"], row["indicator"], row["why"])] += 1
    return by_patient


def _prefetch(service, resources: list[dict], patient_id: str) -> dict:
    data = hook_data(service, resources, patient_id)
    prefetch = {}
    for template in service.prefetch:
        found = data.by_key[template.key]
        if "?" in template.query:
            prefetch[template.key] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(found),
                "entry": [{"resource": r} for r in found],
            }
        elif found:
            prefetch[template.key] = found[0]
    return prefetch


def _cards(client, service, patient_id: str, resources: list[dict], hook: str, **context) -> list[dict]:
    body = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/screen-equivalence", "patientId": patient_id, **context},
        "prefetch": _prefetch(service, resources, patient_id),
    }
    response = client.post(f"/cds-services/{service.id}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_json()["cards"]


def test_screen_findings_equal_the_hooks_findings_for_every_patient(population, site, worklist, make_app):
    client = make_app(as_of=AS_OF, repeat_window_hours=0, **site).test_client()
    compared = 0
    for patient_id, resources in resources_by_patient(population).items():
        cards = []
        for service in (cytopenia_review.SERVICE, febrile_neutropenia.SERVICE):
            cards += [(service.id, c) for c in _cards(client, service, patient_id, resources, "patient-view")]
        drafts = renewal_bundle(resources)
        if drafts["entry"]:
            cards += [
                (ORDER_SIGN.id, c)
                for c in _cards(client, ORDER_SIGN, patient_id, resources, "order-sign", draftOrders=drafts)
            ]
        hooks = Counter(
            (service_id, c["indicator"], c["summary"])
            for service_id, c in cards
            if not c["summary"].startswith(DATA_GAP_SUMMARIES)
        )
        assert worklist.get(patient_id, Counter()) == hooks, patient_id
        compared += 1
    assert compared == len(resources_by_patient(population))
    assert sum(sum(c.values()) for c in worklist.values()) > 50, "the population must flag enough to compare"
