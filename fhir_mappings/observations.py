"""Observation -> Measurement, with every rejection explained."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from cds_service.knowledge_tables import knowledge_loader, read_table
from fhir_mappings.codes import CodeMeaning, meaning_of
from fhir_mappings.facts import CodedFact, DataIssue, Measurement
from fhir_mappings.knowledge import AnalyteSpec, LabCode, analyte_specs
from fhir_mappings.resources import Json, codings, concept_text
from fhir_mappings.times import parse_datetime
from fhir_mappings.units import UnusableValue, normalise

USABLE_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})
NOT_USED_STATUSES = {
    "registered": "is registered but has no result yet",
    "cancelled": "was cancelled",
    "entered-in-error": "was entered in error",
}


@knowledge_loader
def _pregnancy_answers() -> dict[tuple[str, str], str]:
    """Answer code -> 'pregnant' / 'not_pregnant' / 'unknown' from `pregnancy_status.csv` (its questions are
    in `codes.code_index`)."""
    rows = read_table("fhir_mappings", "pregnancy_status.csv")
    return {(r["system"], r["code"]): r["meaning"] for r in rows if r["role"] == "answer"}


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
    """Reads the Observations of one patient; keeps the issues, and of each result only its latest version.

    One result per analyte and draw: a later version of the same draw replaces an earlier one. Later
    means reported later (meta.lastUpdated or issued); without those, a final result replaces a
    preliminary one and a corrected one replaces both (FHIR Observation.status order). A result grouped
    by neither a report nor a specimen is its own draw.
    """

    def __init__(self, patient_id: str | None, draws: dict[str, Draw]):
        self._patient_id = patient_id
        self._draws = draws
        # The subject references that name this patient, spelled once rather than for every Observation.
        self._subjects = frozenset({f"Patient/{patient_id}", f"urn:uuid:{patient_id}", patient_id})
        self._subject_suffix = f"/Patient/{patient_id}"
        self._latest: dict[tuple, Measurement] = {}
        self.issues: list[DataIssue] = []
        self.pregnancy_status: list[CodedFact] = []

    @property
    def measurements(self) -> list[Measurement]:
        """The latest version of every result read, in the order their draws were first read."""
        return list(self._latest.values())

    def read(self, resource: Json, meaning: CodeMeaning) -> None:
        """`meaning` is `meaning_of(resource["code"])`, which the caller has already looked up."""
        if meaning.pregnancy_status:
            self._read_pregnancy_status(f"Observation/{resource.get('id', '?')}", resource)
            return
        components = resource.get("component")
        if meaning.lab is None and not components:
            return  # most of a chart's Observations: no code the service reads, and no parts that could have one
        parts = [(meaning.lab, resource)] if meaning.lab else []
        for component in components or ():
            if isinstance(component, dict) and (component_code := meaning_of(component.get("code")).lab):
                parts.append((component_code, component))
        if not parts:
            return
        source = f"Observation/{resource.get('id', '?')}"
        status = resource.get("status")
        if status in NOT_USED_STATUSES:
            self._reject(source, f"{NOT_USED_STATUSES[status]} (status '{status}'): not used")
            return
        if status not in USABLE_STATUSES:
            self._reject(source, f"has status '{status}', which is not a usable result status")
            return
        if not self._belongs_to_patient(resource.get("subject")):
            self._reject(source, "is not attributed to this patient (subject missing or different)")
            return
        report = self._draws.get(source)
        time = effective_time(resource) or (report.time if report else None)
        if time is None:
            self._reject(source, "has no usable effective time")
            return
        own_draw = time.isoformat()
        draw = report.report if report else _specimen(resource) or own_draw
        versions_of = draw if draw != own_draw else source
        reported_at = parse_datetime((resource.get("meta") or {}).get("lastUpdated")) or parse_datetime(
            resource.get("issued")
        )
        for code, element in parts:
            self._read_value(source, code, element, time, status, draw, versions_of, reported_at)

    def _read_value(
        self,
        source: str,
        code: LabCode,
        element: Json,
        time: datetime,
        status: str,
        draw: str,
        versions_of: str,
        reported_at: datetime | None = None,
    ) -> None:
        """`versions_of` is what the versions of this result share: its draw, or the Observation itself."""
        spec = analyte_specs()[code.analyte]
        quantity = element.get("valueQuantity")
        if (
            not isinstance(quantity, dict)
            or isinstance(quantity.get("value"), bool)
            or not isinstance(quantity.get("value"), (int, float))
        ):
            absent = element.get("dataAbsentReason")
            reason = f" (data absent: {_first_code(absent)})" if absent else ""
            self._reject(source, f"{spec.label} has no numeric value{reason}")
            return
        value = float(quantity["value"])
        unit = quantity.get("code") or quantity.get("unit")
        reported = f"{value:g} {quantity.get('unit') or unit or ''}".strip()
        comparator = quantity.get("comparator")
        try:
            normalised = normalise(value, unit, spec)
        except UnusableValue as problem:
            self._reject(source, str(problem))
            return
        note = normalised.note
        if comparator:
            note = "; ".join(filter(None, [note, f"reported with comparator '{comparator}'"]))
        measurement = Measurement(
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
            note=note,
            reported_value=value,
            reported_unit=unit,
            reported_at=reported_at,
        )
        key = (code.analyte, versions_of, time)
        held = self._latest.get(key)
        if held is None or _version(measurement) >= _version(held):
            self._latest[key] = measurement

    def _read_pregnancy_status(self, source: str, resource: Json) -> None:
        """A pregnancy-status Observation (IPS, LOINC 82810-3) as a fact 'pregnant' / 'not_pregnant' / 'unknown'."""
        answers = _pregnancy_answers()
        if resource.get("status") in USABLE_STATUSES and self._belongs_to_patient(resource.get("subject")):
            value = resource.get("valueCodeableConcept")
            meaning = next(
                (answers[k] for c in codings(value) if (k := (c.get("system"), c.get("code"))) in answers), None
            )
            time = effective_time(resource)
            if meaning and time:
                self.pregnancy_status.append(
                    CodedFact(meaning, concept_text(value) or meaning, "LOINC 82810-3", source, time.date())
                )

    def _belongs_to_patient(self, subject: Any) -> bool:
        if self._patient_id is None:
            return True
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if not isinstance(reference, str):
            return False
        return reference in self._subjects or reference.endswith(self._subject_suffix)

    def _reject(self, source: str, problem: str) -> None:
        self.issues.append(DataIssue(source, problem))


def _reference_low(element: Json, unit: str | None, spec: AnalyteSpec) -> float | None:
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


def _specimen(resource: Json) -> str | None:
    specimen = resource.get("specimen")
    reference = specimen.get("reference") if isinstance(specimen, dict) else None
    return reference if isinstance(reference, str) else None


def _first_code(concept: Any) -> str:
    return next((str(c.get("code")) for c in codings(concept) if c.get("code")), "unspecified")


STATUS_RANK = {"preliminary": 0, "final": 1, "amended": 2, "corrected": 2}


def _version(m: Measurement) -> tuple:
    return (m.reported_at is not None, m.reported_at or m.time, STATUS_RANK.get(m.status, 1))
