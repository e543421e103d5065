"""WHO 2024 haemoglobin cut-offs for the patient's age, sex and pregnancy."""

from __future__ import annotations

from datetime import date

from cds_service.clinical.knowledge import AnaemiaCutoff, anaemia_cutoffs
from fhir_mappings import Demographics


def who_cutoff(demographics: Demographics, on: date) -> AnaemiaCutoff | None:
    """The matching WHO population, or None when age or (for adolescents and adults) sex is unknown."""
    age = demographics.age_in_months(on)
    if age is None:
        return None
    for cutoff in anaemia_cutoffs():
        if age < cutoff.min_age_months or (cutoff.max_age_months is not None and age >= cutoff.max_age_months):
            continue
        if cutoff.sex != "any" and cutoff.sex != demographics.sex:
            continue
        if cutoff.pregnancy_trimester != demographics.pregnancy_trimester:
            continue
        return cutoff
    return None


def who_severity(hemoglobin: float, cutoff: AnaemiaCutoff) -> str | None:
    """mild / moderate / severe by WHO 2011 (kept by WHO 2024); None where the bands are unverified."""
    if hemoglobin >= cutoff.anaemia_below or cutoff.mild_from is None or cutoff.moderate_from is None:
        return None
    if hemoglobin >= cutoff.mild_from:
        return "mild"
    return "moderate" if hemoglobin >= cutoff.moderate_from else "severe"
