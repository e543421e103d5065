"""A synthetic population made from the real Synthea fixtures, for tests and benchmarks.

Each copy of a fixture patient gets new ids, references rewritten to them, blood-count values
scaled by a few percent, and every few copies a clozapine, BCR-ABL TKI or chemotherapy order and
low ANCs (some with a fever) near the as-of time, so every rule of the screen has patients to flag.
Codes come from the project's own terminology tables (`fhir_mappings/data`), never typed here.

    python -m cds_service.screening.generate ../shared/fixtures/synthea-r4 OUT --patients 60
    python -m cds_service.screening.generate ../shared/fixtures/synthea-r4 OUT --observations 1000000
"""

from __future__ import annotations

import argparse
import gzip
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from fhir_mappings.knowledge import analyte_specs, lab_codes, read_table

TYPES = ("Patient", "Observation", "Condition", "MedicationRequest", "Encounter", "AllergyIntolerance")
SCALED_DIMENSIONS = frozenset({"count", "hemoglobin"})
NAMESPACE = uuid.UUID("6f1c1a52-5d1e-4c55-9d0c-2b1f3a7e8c11")
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
Json = dict[str, Any]


def _code_for(analyte: str) -> tuple[str, str]:
    """The automated-count LOINC code the lab table lists first for an analyte, with its display."""
    lab = next(c for c in lab_codes().values() if c.analyte.value == analyte)
    return lab.code, lab.display


def _drug(ingredient: str) -> Json:
    """A medication concept with the ingredient's RxNorm code where the table has one, else its name."""
    row = next(r for r in read_table("fhir_mappings", "drug_ingredients.csv") if r["ingredient"] == ingredient)
    if row["rxcui"]:
        return {"coding": [{"system": RXNORM, "code": row["rxcui"], "display": ingredient}], "text": ingredient}
    return {"text": f"{ingredient} injection"}


def _bundles(folder: Path) -> list[list[Json]]:
    return [
        [e["resource"] for e in orjson.loads(path.read_bytes()).get("entry", ()) if "resource" in e]
        for path in sorted(folder.glob("*.json"))
    ]


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: (_reference(v, ids) if k == "reference" else _rewrite(v, ids)) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


def _reference(reference: Any, ids: dict[str, str]) -> Any:
    if not isinstance(reference, str):
        return reference
    old = reference.removeprefix("urn:uuid:").rsplit("/", 1)[-1]
    return ids.get(old, reference)


def _scale(resource: Json, factor: float) -> None:
    specs = analyte_specs()
    for element in (resource, *(resource.get("component") or ())):
        codes = [c.get("code") for c in (element.get("code") or {}).get("coding", ()) if c.get("system") == LOINC]
        lab = next((lab_codes()[c] for c in codes if c in lab_codes()), None)
        quantity = element.get("valueQuantity")
        if lab and specs[lab.analyte].dimension in SCALED_DIMENSIONS and isinstance(quantity, dict):
            if isinstance(quantity.get("value"), (int, float)):
                quantity["value"] = round(quantity["value"] * factor, 2)


def _observation(patient: str, analyte: str, value: float, unit: str, time: datetime, ident: str) -> Json:
    code, display = _code_for(analyte)
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": time.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def _order(patient: str, ingredient: str, status: str, authored: datetime, ident: str) -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": _drug(ingredient),
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": authored.isoformat(),
    }


def _scenario(copy: int, patient: str, as_of: datetime, rng: random.Random) -> list[Json]:
    """Extra orders and counts for every few copies: the patients the worklist exists for."""
    new = iter(str(uuid.uuid5(NAMESPACE, f"{patient}:extra:{i}")) for i in range(100))
    kind = copy % 8
    days = timedelta(days=1)
    extra: list[Json] = []
    if kind == 1:  # clozapine for a year, last ANC normal but weeks old: ANC overdue
        extra.append(_order(patient, "clozapine", "active", as_of - 365 * days, next(new)))
        extra.append(_observation(patient, "absolute_neutrophil_count", 3.2, "10*3/uL", as_of - 40 * days, next(new)))
    elif kind == 2:  # clozapine with an ANC in an interrupt band
        extra.append(_order(patient, "clozapine", "active", as_of - 200 * days, next(new)))
        anc = round(rng.uniform(0.3, 0.9), 2)
        extra.append(_observation(patient, "absolute_neutrophil_count", anc, "10*3/uL", as_of - 2 * days, next(new)))
    elif kind == 3:  # imatinib with low counts, and one held order never restarted
        extra.append(_order(patient, "imatinib", "active", as_of - 90 * days, next(new)))
        extra.append(_order(patient, "imatinib", "on-hold", as_of - 30 * days, next(new)))
        anc = round(rng.uniform(0.6, 0.95), 2)
        extra.append(_observation(patient, "absolute_neutrophil_count", anc, "10*3/uL", as_of - 1 * days, next(new)))
    elif kind == 4:  # chemotherapy with a grade 4 ANC and a fever: febrile neutropenia
        extra.append(_order(patient, "oxaliplatin", "active", as_of - 10 * days, next(new)))
        anc = round(rng.uniform(0.1, 0.4), 2)
        extra.append(
            _observation(
                patient, "absolute_neutrophil_count", anc, "10*3/uL", as_of - 6 * timedelta(hours=1), next(new)
            )
        )
        extra.append(_observation(patient, "body_temperature", 38.6, "Cel", as_of - 2 * timedelta(hours=1), next(new)))
    elif kind == 5:  # a low ANC on its own, no order
        anc = round(rng.uniform(0.8, 1.4), 2)
        extra.append(_observation(patient, "absolute_neutrophil_count", anc, "10*3/uL", as_of - 3 * days, next(new)))
    return extra


def population(fixtures: Path, as_of: datetime, seed: int = 18) -> Iterator[Json]:
    """Endless copies of the fixture patients (stop when you have enough), resource by resource."""
    rng = random.Random(seed)
    bundles = _bundles(fixtures)
    copy = 0
    while True:
        for resources in bundles:
            ids: dict[str, str] = {}
            for r in resources:
                if r.get("resourceType") in TYPES and r.get("id"):
                    ids[r["id"]] = f"{r['resourceType']}/{uuid.uuid5(NAMESPACE, str(copy) + ':' + r['id'])}"
            factor = rng.uniform(0.96, 1.04)
            patient = None
            for r in resources:
                if r.get("resourceType") not in TYPES:
                    continue
                new = _rewrite(r, ids)
                new["id"] = ids[r["id"]].split("/", 1)[1]
                if new["resourceType"] == "Patient":
                    patient = new["id"]
                elif new["resourceType"] == "Observation":
                    _scale(new, factor)
                yield new
            if patient:
                yield from _scenario(copy, patient, as_of, rng)
            copy += 1


def write(
    fixtures: Path,
    out: Path,
    as_of: datetime,
    patients: int | None = None,
    observations: int | None = None,
    compress: bool = False,
) -> dict[str, int]:
    """NDJSON per resource type; stops after `patients` patients or once `observations` are written."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".ndjson.gz" if compress else ".ndjson"
    opener = gzip.open if compress else open
    handles = {t: opener(out / f"{t}{suffix}", "wb") for t in TYPES}
    counts = dict.fromkeys(TYPES, 0)
    try:
        for resource in population(fixtures, as_of):
            kind = resource["resourceType"]
            if kind == "Patient" and (
                (patients is not None and counts["Patient"] >= patients)
                or (observations is not None and counts["Observation"] >= observations)
            ):
                break
            handles[kind].write(orjson.dumps(resource) + b"\n")
            counts[kind] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixtures", type=Path, help="folder of Synthea R4 bundles (../shared/fixtures/synthea-r4)")
    parser.add_argument("out", type=Path)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--patients", type=int)
    size.add_argument("--observations", type=int)
    parser.add_argument("--as-of", default="2021-02-01T00:00:00+00:00", help="time the scenarios are placed around")
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args(argv)
    as_of = datetime.fromisoformat(args.as_of)
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    counts = write(args.fixtures, args.out, as_of, args.patients, args.observations, args.gzip)
    print(", ".join(f"{n} {t}" for t, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
