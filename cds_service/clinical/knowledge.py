"""The clinical knowledge tables in `clinical/data`, loaded once; each row carries its citation."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from cds_service.knowledge_tables import KnowledgeError, Row, knowledge_loader, read_table, required
from fhir_mappings import Analyte
from fhir_mappings.knowledge import unit_key

PACKAGE = "cds_service.clinical"


@dataclass(frozen=True, slots=True)
class GradeCut:
    term: str
    grade: int
    below: float
    source: str
    cited_as: str  # the edition a card names the grade by ("CTCAE v5 grade 3")


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float
    unit: str
    source: str
    cited_default: float | None = None  # set when the site changed the value: the cited one it replaced
    cited_as: str = ""  # the short citation a card names the rule by ("IDSA 2010"), where the row gives one


@dataclass(frozen=True, slots=True)
class AnaemiaCutoff:
    population: str
    sex: str
    min_age_months: int
    max_age_months: int | None
    pregnancy_trimester: int | None
    anaemia_below: float
    mild_from: float | None
    moderate_from: float | None
    source: str
    cited_as: str


@knowledge_loader
def ctcae_cuts() -> dict[tuple[Analyte, str], tuple[GradeCut, ...]]:
    """Grade cut-offs per (analyte, unit key), most severe first.

    CTCAE prints its own cut-offs in each unit (Hb 10.0 g/dL = 6.2 mmol/L = 100 g/L); these are
    rounded, so a value is graded against the cut-offs in the unit the lab reported it in.
    """
    cuts: dict[tuple[Analyte, str], list[GradeCut]] = {}
    for row in read_table(PACKAGE, "ctcae_grades.csv"):
        cuts.setdefault((Analyte(row["analyte"]), unit_key(row["unit"])), []).append(
            GradeCut(row["term"], int(row["grade"]), float(row["below"]), row["source"], required(row, "cited_as"))
        )
    return {key: tuple(sorted(rows, key=lambda c: -c.grade)) for key, rows in cuts.items()}


@knowledge_loader
def neutropenia_bands() -> tuple[tuple[str, float, str], ...]:
    """(band, below, source), most severe first."""
    rows = read_table(PACKAGE, "neutropenia_bands.csv")
    return tuple(sorted(((r["band"], float(r["below"]), r["source"]) for r in rows), key=lambda b: b[1]))


# The thresholds a card names by their short citation ("lower limit 1.21 ×10⁹/L, Hibbs 2025").
CITED_THRESHOLDS = frozenset({"duffy_null_lln_absolute_neutrophil_count"})


@knowledge_loader
def thresholds() -> dict[str, Threshold]:
    """The site-tunable thresholds; one of `CITED_THRESHOLDS` without a `cited_as` stops the start."""
    return {
        r["name"]: Threshold(
            float(r["value"]),
            r["unit"],
            r["source"],
            cited_as=required(r, "cited_as") if r["name"] in CITED_THRESHOLDS else r["cited_as"],
        )
        for r in read_table(PACKAGE, "thresholds.csv")
    }


# The site's overrides for the call being evaluated, set by the HTTP layer from the app that serves it
# (each app keeps its own: `create_app` builds them with `site_thresholds`).
SITE_THRESHOLDS: ContextVar[Mapping[str, Threshold]] = ContextVar("site_thresholds", default=MappingProxyType({}))


def site_threshold(cited: Threshold, value: float) -> Threshold:
    """A site's value for a cited threshold; its source says so and keeps the citation it departs from."""
    if value == cited.value:
        return cited
    source = f"Site setting {value:g} {cited.unit} (cited default {cited.value:g} {cited.unit}: {cited.source})"
    # A card that names the rule's citation must not lend it to the site's number.
    cited_as = f"site setting, cited default {cited.value:g} ({cited.cited_as})" if cited.cited_as else ""
    return Threshold(value, cited.unit, source, cited_default=cited.value, cited_as=cited_as)


def site_thresholds(overrides: Mapping[str, float]) -> dict[str, Threshold]:
    """A site's overrides (configuration) as thresholds that keep their citation."""
    table = thresholds()
    return {name: site_threshold(table[name], value) for name, value in overrides.items()}


def threshold(name: str) -> Threshold:
    return SITE_THRESHOLDS.get().get(name) or thresholds()[name]


def _number(text: str) -> float | None:
    return float(text) if text else None


@knowledge_loader
def anaemia_cutoffs() -> tuple[AnaemiaCutoff, ...]:
    return tuple(
        AnaemiaCutoff(
            r["population"],
            r["sex"],
            int(r["min_age_months"]),
            int(r["max_age_months"]) if r["max_age_months"] else None,
            int(r["pregnancy_trimester"]) if r["pregnancy_trimester"] else None,
            float(r["anaemia_below"]),
            _number(r["mild_from"]),
            _number(r["moderate_from"]),
            r["source"],
            required(r, "cited_as"),
        )
        for r in read_table(PACKAGE, "who_anaemia.csv")
    )


@knowledge_loader
def who_citation() -> str:
    """The guideline the haemoglobin cut-offs come from, as every row of `who_anaemia.csv` cites it."""
    cited = {cutoff.cited_as for cutoff in anaemia_cutoffs()}
    if len(cited) != 1:
        raise KnowledgeError(f"{PACKAGE.replace('.', '/')}/data/who_anaemia.csv: rows cite {sorted(cited)}, not one")
    return cited.pop()


def _named_value(r: Row) -> Threshold:
    return Threshold(float(r["value"]), r["unit"], r["source"], cited_as=r.get("cited_as", ""))


@cache
def _named_values(name: str) -> dict[str, Threshold]:
    return {r["name"]: _named_value(r) for r in read_table(PACKAGE, name)}


# The febrile-neutropenia rules a card names by their short citation ("IDSA 2010 (ANC <0.5)").
CITED_FN_RULES = frozenset(
    {"idsa_fever_single", "ctcae_fever_single", "idsa_neutropenia_anc", "ctcae_fn_anc", "antibiotics_within_minutes"}
)


@knowledge_loader
def _cited_fn_rules() -> None:
    """Each rule a card cites by name has its `cited_as`: an empty one stops the start, naming the row."""
    for r in read_table(PACKAGE, "febrile_neutropenia.csv"):
        if r["name"] in CITED_FN_RULES:
            required(r, "cited_as")


def fn_rule(name: str) -> Threshold:
    """A febrile-neutropenia threshold (`febrile_neutropenia.csv`), with its citation."""
    return _named_values("febrile_neutropenia.csv")[name]


def risk_cutoff(name: str) -> Threshold:
    """A MASCC or CISNE cut-off or weight (`risk_cutoffs.csv`), with its citation."""
    return _named_values("risk_cutoffs.csv")[name]


@knowledge_loader
def mascc_points() -> dict[str, tuple[int, str, str]]:
    """MASCC item -> (points, 'computed' or 'judgement', source)."""
    return {r["item"]: (int(r["points"]), r["kind"], r["source"]) for r in read_table(PACKAGE, "mascc.csv")}


@dataclass(frozen=True, slots=True)
class Criterion:
    """A row of a criteria table: a named criterion, its cut-off where it has one, its words and source."""

    name: str
    value: float | None
    text: str
    source: str
    cited_as: str


@knowledge_loader
def gcsf_criteria() -> dict[str, Criterion]:
    """ASCO's criteria for considering a CSF in febrile neutropenia (`gcsf_criteria.csv`); a card cites each
    by its `cited_as`, so none may lack one."""
    return {
        r["criterion"]: Criterion(r["criterion"], _number(r["value"]), r["text"], r["source"], required(r, "cited_as"))
        for r in read_table(PACKAGE, "gcsf_criteria.csv")
    }


@dataclass(frozen=True, slots=True)
class Prophylaxis:
    kind: str
    agents: str
    condition: str
    stop_rule: str
    source: str


@knowledge_loader
def prophylaxis() -> tuple[Prophylaxis, ...]:
    """ASCO/IDSA 2018 prophylaxis per kind, each with its stop rule (`prophylaxis.csv`)."""
    return tuple(
        Prophylaxis(r["kind"], r["agents"], r["condition"], r["continue_until"], r["source"])
        for r in read_table(PACKAGE, "prophylaxis.csv")
    )


@knowledge_loader
def seed_guidance() -> dict[str, tuple[str, str]]:
    """One-line guidance said only when the record triggers it: name -> (text, source)."""
    return {r["name"]: (r["text"], r["source"]) for r in read_table(PACKAGE, "seed_guidance.csv")}
