"""Observation -> Measurement, with every rejection explained."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from fhir_mappings.facts import Analyte, DataIssue, Measurement
from fhir_mappings.knowledge import LabCode, analyte_specs, lab_codes
from fhir_mappings.resources import Json, codings, concept_text
from fhir_mappings.times import parse_datetime
from fhir_mappings.units import UnusableValue, normalise

LOINC = "http://loinc.org"
USABLE_STATUSES = frozenset({"final", "amended", "corrected"})
PRELIMINARY_STATUSES = frozenset({"preliminary"})
IGNORED_STATUSES = frozenset({"cancelled", "entered-in-error", "registered"})


def recognised_code(concept: Any) -> LabCode | None:
    table = lab_codes()
    for coding in codings(concept):
        if coding.get("system") == LOINC and (known := table.get(coding.get("code"))):
            return known
    return None


class Draw(NamedTuple):
    """The DiagnosticReport that groups results from one specimen, and its time."""

    report: str
    time: datetime | None


def effective_time(resource: Json) -> datetime | None:
    period = resource.get("effectivePeriod")
    return (
        parse_datetime(resource.get("effectiveDateTime"))
        or parse_datetime(resource.get("effectiveInstant"))
        or (parse_datetime(period.get("start")) if isinstance(period, dict) else None)
        or parse_datetime(resource.get("issued"))
    )


class ObservationReader:
    """Reads the Observations of one patient; keeps the issues and preliminary-only analytes."""

    def __init__(self, patient_id: str | None, draws: dict[str, Draw]):
        self._patient_id = patient_id
        self._draws = draws
        self.measurements: list[Measurement] = []
        self.issues: list[DataIssue] = []
        self.preliminary: set[Analyte] = set()
        self.preliminary_results: list[Measurement] = []

    def read(self, resource: Json) -> None:
        source = f"Observation/{resource.get('id', '?')}"
        known = recognised_code(resource.get("code"))
        parts = [(known, resource)] if known else []
        for component in resource.get("component") or ():
            if isinstance(component, dict) and (component_code := recognised_code(component.get("code"))):
                parts.append((component_code, component))
        if not parts:
            return
        status = resource.get("status")
        if status in IGNORED_STATUSES:
            return
        if status in PRELIMINARY_STATUSES:
            self.preliminary.update(code.analyte for code, _ in parts)
            values, _problems = self._values(resource, source, parts, status)
            self.preliminary_results.extend(values)
            return
        if status not in USABLE_STATUSES:
            self._reject(source, f"has status '{status}', which is not a usable result status")
            return
        values, problems = self._values(resource, source, parts, status)
        self.measurements.extend(values)
        self.issues.extend(problems)

    def _values(self, resource: Json, source: str, parts, status) -> tuple[list[Measurement], list[DataIssue]]:
        """The values of one result and why any could not be used. A preliminary result's problems are
        not reported: it is never used for a grade, only shown as preliminary."""
        values: list[Measurement] = []
        problems: list[DataIssue] = []
        if not self._belongs_to_patient(resource.get("subject")):
            return values, [DataIssue(source, "is not attributed to this patient (subject missing or different)")]
        report = self._draws.get(source)
        time = effective_time(resource) or (report.time if report else None)
        if time is None:
            return values, [DataIssue(source, "has no usable effective time")]
        draw = report.report if report else _specimen(resource) or time.isoformat()
        site = _site(resource)
        for code, element in parts:
            value = self._read_value(source, code, element, time, status, draw, site)
            if isinstance(value, Measurement):
                values.append(value)
            else:
                problems.append(value)
        return values, problems

    def _read_value(
        self, source, code: LabCode, element: Json, time, status, draw, site=None
    ) -> Measurement | DataIssue:
        spec = analyte_specs()[code.analyte]
        quantity = element.get("valueQuantity")
        if (
            not isinstance(quantity, dict)
            or isinstance(quantity.get("value"), bool)
            or not isinstance(quantity.get("value"), (int, float))
        ):
            absent = element.get("dataAbsentReason")
            reason = f" (data absent: {_first_code(absent)})" if absent else ""
            return DataIssue(source, f"{spec.label} has no numeric value{reason}")
        value = float(quantity["value"])
        unit = quantity.get("code") or quantity.get("unit")
        reported = f"{value:g} {quantity.get('unit') or unit or ''}".strip()
        comparator = quantity.get("comparator")
        try:
            normalised = normalise(value, unit, spec)
        except UnusableValue as problem:
            return DataIssue(source, str(problem))
        note = normalised.note
        if comparator:
            note = "; ".join(filter(None, [note, f"reported with comparator '{comparator}'"]))
        return Measurement(
            analyte=code.analyte,
            value=normalised.value,
            unit=spec.canonical_unit,
            time=time,
            source=source,
            code=code.code,
            reported=reported,
            status=status,
            reference_low=_reference_low(element, unit, spec),
            draw=draw,
            method=code.method,
            note=note,
            site=site,
            reported_value=value,
            reported_unit=unit,
        )

    def _belongs_to_patient(self, subject: Any) -> bool:
        if self._patient_id is None:
            return True
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if not isinstance(reference, str):
            return False
        pid = self._patient_id
        return reference in (f"Patient/{pid}", f"urn:uuid:{pid}", pid) or reference.endswith(f"/Patient/{pid}")

    def _reject(self, source: str, problem: str) -> None:
        self.issues.append(DataIssue(source, problem))


def _reference_low(element: Json, unit: str | None, spec) -> float | None:
    """The lab's lower limit, in the canonical unit; a zero or unreadable limit is no limit."""
    for reference_range in element.get("referenceRange") or ():
        low = reference_range.get("low") if isinstance(reference_range, dict) else None
        if not isinstance(low, dict) or not isinstance(low.get("value"), (int, float)) or low["value"] <= 0:
            continue
        try:
            return normalise(float(low["value"]), low.get("code") or low.get("unit") or unit, spec).value
        except UnusableValue:
            return None
    return None


def _site(resource: Json) -> str | None:
    """Where or how it was measured, as coded or written (e.g. a temperature's body site)."""
    texts = [concept_text(resource.get(element)) for element in ("bodySite", "method")]
    return "; ".join(t for t in texts if t) or None


def _specimen(resource: Json) -> str | None:
    specimen = resource.get("specimen")
    reference = specimen.get("reference") if isinstance(specimen, dict) else None
    return reference if isinstance(reference, str) else None


def _first_code(concept: Any) -> str:
    return next((str(c.get("code")) for c in codings(concept) if c.get("code")), "unspecified")
