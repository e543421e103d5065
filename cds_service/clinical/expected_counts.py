"""Whether this chart calls for blood counts, so that their absence is worth a card.

A drug that needs counts (cytotoxic chemotherapy, clozapine, a BCR-ABL TKI), a fever, or a documented
cytopenia. A patient with none of these and no CBC is simply a patient without a CBC: nothing to say.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings import ClinicalRecord

COUNT_DRUG_GROUPS = ("cytotoxic_chemotherapy", "clozapine", "bcr_abl_tki")
KNOWN_CYTOPENIA = frozenset(
    {
        "documented_neutropenia",
        "febrile_neutropenia",
        "documented_pancytopenia",
        "aplastic_anaemia",
        "documented_leukopenia",
        "documented_thrombocytopenia",
    }
)


@dataclass(frozen=True, slots=True)
class CountsExpected:
    """Why this chart calls for blood counts: a drug that needs them, a fever, a known cytopenia."""

    drugs: tuple[str, ...] = ()
    fever: bool = False
    known_cytopenia: str | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        return (*self.drugs, *(("fever",) if self.fever else ()), *filter(None, (self.known_cytopenia,)))

    @property
    def neutropenia_risk(self) -> bool:
        """A reason to suspect neutropenia itself (a fever alone is not one)."""
        return bool(self.drugs or self.known_cytopenia)

    def __bool__(self) -> bool:
        return bool(self.reasons)


NOTHING_EXPECTED = CountsExpected()


def counts_expected(record: ClinicalRecord, febrile: bool) -> CountsExpected:
    drugs = [
        ", ".join(dict.fromkeys(i for m in taken for i in m.ingredients))
        for group in COUNT_DRUG_GROUPS
        if (taken := record.active_medications(group))
    ]
    known = next(
        (
            c.display or c.category.replace("_", " ")
            for c in record.conditions
            if c.category in KNOWN_CYTOPENIA and c.status == "active"
        ),
        None,
    )
    return CountsExpected(tuple(drugs), febrile, known)
