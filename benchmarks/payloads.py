"""The benchmark requests, built from the Synthea R4 fixtures (../shared/fixtures, or CYTOPENIA_FIXTURES).

typical = Thanh Mosciski's Patient + his 30 newest CBC Observations up to his WBC nadir + 10 Conditions,
all prefetched (patient-view to cytopenia-review); large = Patient + the 500 newest Observations of mixed
codes up to the nadir (his and eight other Synthea patients', re-attributed) + 50 Conditions. Both are
evaluated as of the WBC nadir and hold nothing dated after it, so the service reads every result and
builds cards; `moved_to` shifts every date so a served call (which reads the real clock)
sees the same chart on the same relative days.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_service.request import resources_in
from fhir_mappings.times import parse_datetime

FIXTURES = Path(os.environ.get("CYTOPENIA_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
SOURCE = "synthea-r4/Thanh_Mosciski_6b7b47bf-5bfb-475e-b5f6-955fde83a44f.json"
CBC_CODES = {"6690-2", "718-7", "777-3", "4544-3", "789-8", "787-2", "785-6", "786-4", "21000-5", "32207-3", "32623-1"}
WBC = "6690-2"
FHIR_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _load(path: Path) -> list[dict]:
    return list(resources_in(orjson.loads(path.read_bytes())))


def _time_of(observation: dict) -> datetime:
    return parse_datetime(observation.get("effectiveDateTime")) or datetime.min.replace(tzinfo=None)


def _codes(observation: dict) -> set[str]:
    return {c.get("code") for c in observation.get("code", {}).get("coding", ())}


def _searchset(items: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in items]}


def _borrowed(kind: str, patient_id: str, sources: list[Path]) -> list[dict]:
    """Resources of other Synthea patients re-attributed to the benchmark patient, to reach the sizes."""
    return [
        {**r, "id": f"{n}-{r.get('id')}", "subject": {"reference": f"urn:uuid:{patient_id}"}}
        for n, path in enumerate(sources)
        for r in _load(path)
        if r["resourceType"] == kind
    ]


def payloads() -> tuple[dict[str, bytes], datetime]:
    """{"typical": body, "large": body} and the moment they are evaluated at (the WBC nadir)."""
    items = _load(FIXTURES / SOURCE)
    patient = next(r for r in items if r["resourceType"] == "Patient")
    others = [path for path in sorted((FIXTURES / "synthea-r4").glob("*.json")) if path.name not in SOURCE][:8]
    observations = [r for r in items if r["resourceType"] == "Observation"]
    observations = sorted(observations + _borrowed("Observation", patient["id"], others), key=_time_of, reverse=True)
    conditions = [r for r in items if r["resourceType"] == "Condition"] + _borrowed("Condition", patient["id"], others)
    own_wbc = [o for o in items if o["resourceType"] == "Observation" and WBC in _codes(o)]
    as_of = _time_of(min(own_wbc, key=lambda o: o["valueQuantity"]["value"]))
    charted = [o for o in observations if _time_of(o) <= as_of]  # what the chart held at the nadir
    cbc = [o for o in charted if _codes(o) & CBC_CODES]

    def body(obs: list[dict], conds: list[dict]) -> bytes:
        return orjson.dumps(
            {
                "hook": "patient-view",
                "hookInstance": str(uuid.uuid4()),
                "context": {"userId": "Practitioner/bench", "patientId": patient["id"]},
                "prefetch": {"patient": patient, "bloodCounts": _searchset(obs), "conditions": _searchset(conds)},
            }
        )

    if len(cbc) < 30 or len(charted) < 500 or len(conditions) < 50:
        sys.exit("the Synthea fixtures are too small for the benchmark payloads")
    return {"typical": body(cbc[:30], conditions[:10]), "large": body(charted[:500], conditions[:50])}, as_of


def _shift(value: Any, days: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, days) for v in value]
    if isinstance(value, str) and FHIR_DATE.match(value):
        moved = (date.fromisoformat(value[:10]) + days).isoformat()
        return moved + value[10:]
    return value


def moved_to(body: bytes, as_of: datetime, now: datetime) -> bytes:
    """The same chart with every date moved by whole days so that `as_of` falls within the day before `now`
    (never after it: a result dated later than the server's clock is not yet a result, and the call would
    answer no cards)."""
    return orjson.dumps(_shift(orjson.loads(body), timedelta(days=(now - as_of).days)))
