"""WHO 2024 haemoglobin cut-offs for the patient's age, sex and pregnancy, pregnancy read from the record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.clinical.knowledge import AnaemiaCutoff, anaemia_cutoffs, threshold
from fhir_mappings import ClinicalRecord, Demographics

TRIMESTER_CATEGORIES = {"pregnancy_trimester_1": 1, "pregnancy_trimester_2": 2, "pregnancy_trimester_3": 3}


@dataclass(frozen=True, slots=True)
class Pregnancy:
    """What the record says: 'pregnant', 'not_pregnant' or 'unknown', the trimester if coded, and the source."""

    status: str
    trimester: int | None = None
    evidence: str | None = None


def pregnancy(record: ClinicalRecord, on: date) -> Pregnancy:
    """The latest pregnancy-status Observation, unless a pregnancy Condition is newer; the trimester from
    the newest trimester-coded Condition (ICD-10-CM Z34.x1-x3)."""
    coded = [
        c
        for c in record.conditions
        if c.status == "active"
        and (c.category == "pregnancy" or c.category in TRIMESTER_CATEGORIES)
        and (c.since is None or c.since <= on)
    ]
    stated = [o for o in record.pregnancy_status if o.since is None or o.since <= on]
    latest_statement = max(stated, key=lambda o: o.since or date.min, default=None)
    latest_coded = max(coded, key=lambda c: c.since or date.min, default=None)
    if latest_statement and latest_statement.category != "pregnant":
        if latest_coded is None or (latest_coded.since or date.min) <= (latest_statement.since or date.min):
            return Pregnancy(latest_statement.category, None, latest_statement.source)
    newest = latest_coded or latest_statement
    if newest is None:
        return Pregnancy("unknown")
    staged = [c for c in coded if c.category in TRIMESTER_CATEGORIES]
    trimester = TRIMESTER_CATEGORIES[max(staged, key=lambda c: c.since or date.min).category] if staged else None
    return Pregnancy("pregnant", trimester, newest.source)


def pregnancy_possible(demographics: Demographics, on: date) -> bool:
    """A woman of reproductive age (WHO: 15-49 years), for whom an unknown pregnancy status is worth saying."""
    months = demographics.age_in_months(on)
    if demographics.sex != "female" or months is None:
        return False
    years = months // 12
    return threshold("pregnancy_possible_from_years").value <= years <= threshold("pregnancy_possible_to_years").value


def who_cutoff(demographics: Demographics, on: date, trimester: int | None = None) -> AnaemiaCutoff | None:
    """The matching WHO population, or None when age or (for adolescents and adults) sex is unknown, or the
    patient is younger than the youngest WHO population (6 months)."""
    age = demographics.age_in_months(on)
    if age is None:
        return None
    for cutoff in anaemia_cutoffs():
        if age < cutoff.min_age_months or (cutoff.max_age_months is not None and age >= cutoff.max_age_months):
            continue
        if cutoff.sex != "any" and cutoff.sex != demographics.sex:
            continue
        if cutoff.pregnancy_trimester != trimester:
            continue
        return cutoff
    return None


def youngest_who_months() -> int:
    return min(c.min_age_months for c in anaemia_cutoffs())


def who_severity(hemoglobin: float, cutoff: AnaemiaCutoff) -> str | None:
    """mild / moderate / severe by WHO 2011 (kept by WHO 2024); None where the bands are unverified."""
    if hemoglobin >= cutoff.anaemia_below or cutoff.mild_from is None or cutoff.moderate_from is None:
        return None
    if hemoglobin >= cutoff.mild_from:
        return "mild"
    return "moderate" if hemoglobin >= cutoff.moderate_from else "severe"
