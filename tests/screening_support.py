"""The small screening population (made from the Synthea fixtures), with bad input mixed in."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson

from cds_service.screening.generate import write
from tests.conftest import FIXTURES

AS_OF = datetime(2021, 2, 1, tzinfo=UTC)
PATIENTS = 48
MISSING_PATIENT = "no-such-patient"
BAD_LINES = {
    "not JSON": b"this line is not JSON\n",
    "resource of a type the screen does not read": b'{"resourceType": "Basic", "id": "b1"}\n',
    "refers to no Patient in the export": orjson.dumps(
        {"resourceType": "Condition", "id": "c-orphan", "subject": {"reference": f"Patient/{MISSING_PATIENT}"}}
    )
    + b"\n",
}


def small_population(folder: Path) -> Path:
    write(FIXTURES / "synthea-r4", folder, AS_OF, patients=PATIENTS)
    return folder


def with_bad_input(folder: Path) -> Path:
    """The small population plus one of each kind of bad input; the last line of a file is cut off."""
    first_patient = orjson.loads((folder / "Patient.ndjson").read_bytes().split(b"\n", 1)[0])["id"]
    unknown_unit = {
        "resourceType": "Observation",
        "id": "anc-in-furlongs",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
        "subject": {"reference": f"Patient/{first_patient}"},
        "effectiveDateTime": "2021-01-30T08:00:00Z",
        "valueQuantity": {"value": 0.2, "unit": "furlongs", "code": "furlongs"},
    }
    mistyped = {**unknown_unit, "id": "anc-as-text", "valueQuantity": {"value": "low", "unit": "10*3/uL"}}
    with (folder / "Extra.ndjson").open("wb") as handle:
        handle.write(b"".join(BAD_LINES.values()))
        handle.write(orjson.dumps(unknown_unit) + b"\n")
        handle.write(orjson.dumps(mistyped) + b"\n")  # JSON, but a value the hooks reject: not 'not JSON'
        handle.write(b'{"resourceType": "Observation", "id": "cut-off", "status": "fin')
    return folder


def resources_by_patient(folder: Path) -> dict[str, list[dict]]:
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(folder.glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if resource.get("resourceType") == "Patient":
                by_patient[resource["id"]].insert(0, resource)
            else:
                reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
                by_patient[reference.rsplit("/", 1)[-1]].append(resource)
    return {p: r for p, r in by_patient.items() if r and r[0].get("resourceType") == "Patient"}
