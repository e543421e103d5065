"""The order-safety tables in `clinical/data`, loaded once; each row carries its citation."""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.clinical.knowledge import PACKAGE
from cds_service.knowledge_tables import KnowledgeError, knowledge_loader, read_table, required


@dataclass(frozen=True, slots=True)
class ClozapineBand:
    population: str
    band: str
    label: str
    anc_at_least: float
    anc_below: float | None
    interrupt: bool
    haematology_consult: bool
    indicator: str | None
    action_text: str
    monitoring: str
    source: str


@dataclass(frozen=True, slots=True)
class MonitoringInterval:
    months_from: int
    months_to: int | None
    days: float
    text: str
    source: str


@dataclass(frozen=True, slots=True)
class TkiThresholds:
    ingredient: str
    setting: str
    stop_anc_below: float
    stop_platelets_below: float
    resume_anc: float
    resume_platelets: float
    resume_comparison: str
    resume_text: str
    cited_as: str
    source: str

    def resumes_at(self, anc: float, platelets: float) -> bool:
        """The row's own comparison: imatinib resumes at ANC >=1.5, nilotinib only above 1.0 (ELN 2016)."""
        if self.resume_comparison == ">":
            return anc > self.resume_anc and platelets > self.resume_platelets
        return anc >= self.resume_anc and platelets >= self.resume_platelets


@dataclass(frozen=True, slots=True)
class RuleParameter:
    value: str
    unit: str
    source: str
    cited_as: str  # the short citation a card prints for this parameter's rule, where it names one

    @property
    def number(self) -> float:
        return float(self.value)

    @property
    def items(self) -> frozenset[str]:
        return frozenset(self.value.split(";"))


@knowledge_loader
def clozapine_bands() -> dict[str, tuple[ClozapineBand, ...]]:
    """Bands per population ('general', 'duffy_null'), most severe first."""
    bands: dict[str, list[ClozapineBand]] = {}
    for r in read_table(PACKAGE, "clozapine_anc.csv"):
        bands.setdefault(r["population"], []).append(
            ClozapineBand(
                r["population"],
                r["band"],
                r["label"],
                float(r["anc_at_least"]),
                float(r["anc_below"]) if r["anc_below"] else None,
                r["action"] == "interrupt",
                r["haematology_consult"] == "yes",
                r["indicator"] or None,
                r["action_text"],
                r["monitoring"],
                r["source"],
            )
        )
    return {p: tuple(sorted(rows, key=lambda b: b.anc_at_least)) for p, rows in bands.items()}


@knowledge_loader
def clozapine_intervals() -> tuple[MonitoringInterval, ...]:
    return tuple(
        MonitoringInterval(
            int(r["months_from"]),
            int(r["months_to"]) if r["months_to"] else None,
            float(r["interval_days"]),
            r["interval_text"],
            r["source"],
        )
        for r in read_table(PACKAGE, "clozapine_monitoring.csv")
    )


# The notes every clozapine order card prints, by the row's `note`.
CLOZAPINE_NOTES = ("rems_ended",)


@knowledge_loader
def clozapine_notes() -> dict[str, str]:
    """note -> the text the clozapine card prints (`clozapine_notes.csv`): the REMS change is dated by its
    source, so a row without its text, or a note the card prints without a row, stops the start."""
    notes = {r["note"]: required(r, "text") for r in read_table(PACKAGE, "clozapine_notes.csv")}
    if missing := [note for note in CLOZAPINE_NOTES if note not in notes]:
        raise KnowledgeError(f"{PACKAGE.replace('.', '/')}/data/clozapine_notes.csv: no row for {missing}")
    return notes


@knowledge_loader
def tki_thresholds() -> dict[str, TkiThresholds]:
    return {
        r["ingredient"]: TkiThresholds(
            r["ingredient"],
            r["setting"],
            float(r["stop_anc_below"]),
            float(r["stop_platelets_below"]),
            float(r["resume_anc"]),
            float(r["resume_platelets"]),
            r["resume_comparison"],
            r["resume_text"],
            required(r, "cited_as"),
            r["source"],
        )
        for r in read_table(PACKAGE, "tki_cytopenia.csv")
    }


# The parameters whose citation an order card prints ("Andersohn 2007", "boxed warning").
CITED_PARAMETERS = frozenset(
    {
        ("agranulocytosis_risk", "severe_anc_below"),
        ("deferiprone", "interrupt_anc_below"),
        ("vancomycin", "indication_categories"),
        ("fluoroquinolone_prophylaxis", "fn_context_categories"),
    }
)


@knowledge_loader
def _parameters() -> dict[tuple[str, str], RuleParameter]:
    """Every (rule, name); one a card cites (`CITED_PARAMETERS`) without a `cited_as` stops the start."""
    return {
        (r["rule"], r["name"]): RuleParameter(
            r["value"],
            r["unit"],
            r["source"],
            required(r, "cited_as") if (r["rule"], r["name"]) in CITED_PARAMETERS else r["cited_as"],
        )
        for r in read_table(PACKAGE, "order_rules.csv")
    }


def parameter(rule: str, name: str) -> RuleParameter:
    return _parameters()[(rule, name)]
