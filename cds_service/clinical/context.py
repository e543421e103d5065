"""A cytopenia read against the chart: what is already documented, what on the chart may explain it,
and which problem-list entry the chart supports when a significant cytopenia is not documented.

Pure functions over findings and a ClinicalRecord. Every rule is a cited row in `clinical/data`:
`documented_by.csv` (which diagnoses document which finding), `cytopenia_causes.csv` (conditions and
drug groups that may explain it), `problem_list_codes.csv` (the ICD-10-CM code choice) and
`unexplained_next_steps.csv` (what to consider when nothing explains a persisting cytopenia).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from cds_service.clinical.findings import Assessment, Finding, FindingKind
from cds_service.clinical.knowledge import PACKAGE, threshold
from cds_service.clinical.order_knowledge import ClozapineBand, clozapine_bands
from cds_service.knowledge_tables import knowledge_loader, read_table
from fhir_mappings import ClinicalRecord
from fhir_mappings.facts import CodedFact
from fhir_mappings.medications import MedicationFact

TAKING = frozenset({"active", "on-hold"})
"""A drug the patient is taking: a draft order has not been given yet, a stopped one no longer is."""
CHEMOTHERAPY_GROUP = "cytotoxic_chemotherapy"
TREATMENT = "treatment"


@dataclass(frozen=True, slots=True)
class CauseRule:
    source_kind: str
    key: str
    cause: str
    findings: frozenset[FindingKind]
    label: str
    source: str


@dataclass(frozen=True, slots=True)
class CodeRule:
    finding: FindingKind
    basis: str
    system: str
    code: str
    display: str
    reason: str
    unless_found: frozenset[FindingKind]
    source: str


@dataclass(frozen=True, slots=True)
class NextStep:
    short: str  # a few words, for a card line; `text` says it in full
    text: str
    source: str


def _kinds(text: str) -> frozenset[FindingKind]:
    if text == "all":
        return frozenset(FindingKind)
    return frozenset(FindingKind(k) for k in text.split(";") if k)


@knowledge_loader
def cause_rules() -> tuple[CauseRule, ...]:
    return tuple(
        CauseRule(r["source_kind"], r["key"], r["cause"], _kinds(r["findings"]), r["label"], r["source"])
        for r in read_table(PACKAGE, "cytopenia_causes.csv")
    )


@knowledge_loader
def documenting_categories() -> dict[FindingKind, frozenset[str]]:
    found: dict[FindingKind, set[str]] = {}
    for row in read_table(PACKAGE, "documented_by.csv"):
        found.setdefault(FindingKind(row["finding"]), set()).add(row["category"])
    return {kind: frozenset(categories) for kind, categories in found.items()}


@knowledge_loader
def code_rules() -> dict[FindingKind, tuple[CodeRule, ...]]:
    """Per finding, most specific first: chemotherapy, other drug, unspecified."""
    rules: dict[FindingKind, list[CodeRule]] = {}
    for r in read_table(PACKAGE, "problem_list_codes.csv"):
        rule = CodeRule(
            FindingKind(r["finding"]),
            r["basis"],
            r["system"],
            r["code"],
            r["display"],
            r["reason"],
            _kinds(r["unless_found"]),
            r["source"],
        )
        rules.setdefault(rule.finding, []).append(rule)
    return {kind: tuple(found) for kind, found in rules.items()}


@knowledge_loader
def unexplained_next_steps() -> tuple[NextStep, ...]:
    return tuple(
        NextStep(r["short"], r["text"], r["source"]) for r in read_table(PACKAGE, "unexplained_next_steps.csv")
    )


@dataclass(frozen=True, slots=True)
class Documented:
    display: str
    code: str
    since: date | None
    source: str


@dataclass(frozen=True, slots=True)
class Contributor:
    """Something on the chart that may explain the finding, with the resources that say so."""

    cause: str
    what: str
    why: str
    sources: tuple[str, ...]
    code: str | None = None
    since: date | None = None
    last_ordered: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProblemListEntry:
    """The Condition the chart supports adding, with the reason for the code chosen."""

    system: str
    code: str
    display: str
    reason: str
    source: str
    onset: datetime | None
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChartCoverage:
    """Which parts of the chart the service could read; what was not read is said, never assumed empty."""

    conditions: bool = True
    medications: bool = True
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FindingContext:
    kind: FindingKind
    documented: tuple[Documented, ...] = ()
    previously_documented: tuple[Documented, ...] = ()
    contributors: tuple[Contributor, ...] = ()
    treatments: tuple[Contributor, ...] = ()
    not_checked: tuple[str, ...] = ()
    next_steps: tuple[NextStep, ...] = ()
    problem_list: ProblemListEntry | None = None
    problem_list_note: str | None = None
    known_and_stable: bool = False
    clozapine: ClozapineBand | None = None

    @property
    def unexplained(self) -> bool:
        """Nothing explains it, and the whole chart was read (an unread chart explains nothing either way)."""
        return not self.contributors and not self.not_checked


def _known_then(record: ClinicalRecord, as_of: datetime) -> tuple[list[CodedFact], list[MedicationFact]]:
    """Conditions and orders as they stood at `as_of`: nothing recorded later is known yet, and a
    Condition resolved after `as_of` was still active then."""
    day = as_of.date()
    conditions = [
        replace(c, status="active") if c.status == "resolved" and c.abated is not None and c.abated > day else c
        for c in record.conditions
        if c.since is None or c.since <= day
    ]
    medications = [m for m in record.medications if m.authored_on is None or m.authored_on <= as_of]
    return conditions, medications


def _documented(
    kind: FindingKind, conditions: list[CodedFact]
) -> tuple[tuple[Documented, ...], tuple[Documented, ...]]:
    categories = documenting_categories().get(kind, frozenset())
    active: dict[str, Documented] = {}
    resolved: dict[str, Documented] = {}
    for c in conditions:
        if c.category in categories:
            target = active if c.status == "active" else resolved
            target.setdefault(
                c.source, Documented(c.display or c.category.replace("_", " "), c.code, c.since, c.source)
            )
    return tuple(active.values()), tuple(d for source, d in resolved.items() if source not in active)


def _condition_contributors(kind: FindingKind, conditions: list[CodedFact]) -> list[Contributor]:
    rules = {r.key: r for r in cause_rules() if r.source_kind == "condition" and kind in r.findings}
    found: dict[str, Contributor] = {}
    for c in conditions:
        rule = rules.get(c.category)
        if rule is None or c.status != "active" or c.source in found:
            continue
        found[c.source] = Contributor(rule.cause, c.display or rule.label, rule.label, (c.source,), c.code, c.since)
    return list(found.values())


def _taken(medications: list[MedicationFact]) -> list[MedicationFact]:
    return [m for m in medications if m.status in TAKING]


def _last_ordered(orders: Iterable[MedicationFact]) -> datetime | None:
    return max((m.authored_on for m in orders if m.authored_on), default=None)


def _medication_contributors(
    kind: FindingKind, medications: list[MedicationFact]
) -> tuple[list[Contributor], list[Contributor]]:
    """(causes, treatments already on the chart); a chemotherapy regimen is one contributor with its last date."""
    causes: list[Contributor] = []
    treatments: list[Contributor] = []
    taken = _taken(medications)
    chemotherapy = [m for m in taken if m.in_group(CHEMOTHERAPY_GROUP)]
    if chemotherapy and kind in _rule("medication", CHEMOTHERAPY_GROUP).findings:
        names = ", ".join(dict.fromkeys(i for m in chemotherapy for i in m.ingredients))
        causes.append(
            Contributor(
                "chemotherapy_radiation",
                f"active chemotherapy: {names}",
                _rule("medication", CHEMOTHERAPY_GROUP).label,
                tuple(m.source for m in chemotherapy),
                last_ordered=_last_ordered(chemotherapy),
            )
        )
    for m in taken:
        if m.in_group(CHEMOTHERAPY_GROUP):
            continue
        rule = next(
            (r for r in cause_rules() if r.source_kind == "medication" and m.in_group(r.key) and kind in r.findings),
            None,
        )
        if rule is None:
            continue
        contributor = Contributor(
            rule.cause, ", ".join(m.ingredients), rule.label, (m.source,), last_ordered=m.authored_on
        )
        (treatments if rule.cause == TREATMENT else causes).append(contributor)
    return causes, treatments


def _rule(source_kind: str, key: str) -> CauseRule:
    return next(r for r in cause_rules() if r.source_kind == source_kind and r.key == key)


def _stable(finding: Finding) -> bool:
    """No worse than before: an earlier result was at least as low, and the latest is not falling."""
    if finding.lineages:
        return all(_stable(f) for f in finding.lineages)
    trend = finding.trend
    return bool(trend and trend.count >= 2 and trend.nadir.time < finding.latest.time and not trend.falling)


def _chronic(documented: tuple[Documented, ...], as_of: datetime) -> bool:
    days = threshold("persistent_cytopenia_days").value
    return any(d.since is not None and d.since <= (as_of - timedelta(days=days)).date() for d in documented)


def _clozapine_band(
    finding: Finding, record: ClinicalRecord, medications: list[MedicationFact]
) -> ClozapineBand | None:
    """The clozapine label's band and action for the latest ANC, when clozapine is being taken and the ANC is low."""
    if finding.kind is not FindingKind.NEUTROPENIA or not any(m.in_group("clozapine") for m in _taken(medications)):
        return None
    population = "duffy_null" if record.has_condition("duffy_null") else "general"
    bands = clozapine_bands()[population]
    band = next(b for b in reversed(bands) if finding.latest.value >= b.anc_at_least)
    return None if band is bands[-1] else band


def qualifies_for_problem_list(finding: Finding) -> bool:
    """Clinically significant: CTCAE grade 2 or worse, or any pancytopenia (issue #9)."""
    return finding.significant and (finding.kind is FindingKind.PANCYTOPENIA or finding.grade_number >= 2)


def _onset(finding: Finding) -> datetime | None:
    if finding.lineages:
        starts = [f.trend.low_since for f in finding.lineages if f.trend and f.trend.low_since]
        return max(starts) if len(starts) == len(finding.lineages) else None
    return finding.trend.low_since if finding.trend else None


def _evidence(finding: Finding) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.source for f in (finding.lineages or (finding,)) for m in f.latest.evidence))


def _code_choice(
    finding: Finding, chemotherapy: list[str], drug_causes: list[Contributor], coverage: ChartCoverage
) -> ProblemListEntry:
    """The most specific code whose basis the chart shows; the reason names what on the chart supports it."""
    for rule in code_rules()[finding.kind]:
        if rule.basis == "chemotherapy" and chemotherapy:
            support = "; ".join(chemotherapy)
        elif rule.basis == "other_drug" and drug_causes:
            support = "; ".join(f"{c.what} ({', '.join(c.sources)})" for c in drug_causes)
        elif rule.basis == "unspecified":
            support = "" if coverage.medications else "active medications could not be read"
        else:
            continue
        reason = rule.reason + (f": {support}" if support else "")
        return ProblemListEntry(
            rule.system, rule.code, rule.display, reason, rule.source, _onset(finding), _evidence(finding)
        )
    raise LookupError(f"no problem-list code rule for {finding.kind}")


def _chemotherapy_support(conditions: list[CodedFact], medications: list[MedicationFact]) -> list[str]:
    """What on the chart shows active cancer chemotherapy: a cytotoxic order being taken or a chemotherapy Condition."""
    support = [
        f"{', '.join(m.ingredients)} ({m.source}" + (f", ordered {m.authored_on:%Y-%m-%d})" if m.authored_on else ")")
        for m in _taken(medications)
        if m.in_group(CHEMOTHERAPY_GROUP)
    ]
    support += [
        f"{c.display} ({c.source})" for c in conditions if c.category == "chemotherapy" and c.status == "active"
    ]
    return support


def finding_context(
    finding: Finding,
    record: ClinicalRecord,
    as_of: datetime,
    coverage: ChartCoverage = ChartCoverage(),
    significant_kinds: frozenset[FindingKind] = frozenset(),
) -> FindingContext:
    """The chart around one finding; `significant_kinds` are the other findings that qualify for the problem list."""
    kind = finding.kind
    conditions, medications = _known_then(record, as_of)
    not_checked = []
    if not coverage.conditions:
        not_checked.append("the problem list (Conditions could not be read)")
    if not coverage.medications:
        not_checked.append("active medications (MedicationRequests could not be read)")
    not_checked.extend(coverage.reasons)
    documented, previously = _documented(kind, conditions)
    drug_causes, treatments = _medication_contributors(kind, medications)
    contributors = [*drug_causes, *_condition_contributors(kind, conditions)]
    entry, note = None, None
    if qualifies_for_problem_list(finding) and not documented:
        rules = code_rules()[kind]
        covered_by = rules[0].unless_found & significant_kinds
        if covered_by:
            note = f"Problem-list entry: see the {' / '.join(sorted(covered_by))} card, whose code covers this finding."
        elif not coverage.conditions:
            note = "No problem-list suggestion: the problem list could not be read, so it may already be documented."
        else:
            other_drugs = [c for c in drug_causes if c.cause == "medication"]
            entry = _code_choice(finding, _chemotherapy_support(conditions, medications), other_drugs, coverage)
    context = FindingContext(
        kind=kind,
        documented=documented,
        previously_documented=previously,
        contributors=tuple(contributors),
        treatments=tuple(treatments),
        not_checked=tuple(not_checked),
        problem_list=entry,
        problem_list_note=note,
        known_and_stable=bool(documented) and _chronic(documented, as_of) and _stable(finding),
        clozapine=_clozapine_band(finding, record, medications),
    )
    if context.unexplained and not documented and finding.persistent and finding.significant:
        return replace(context, next_steps=unexplained_next_steps())
    return context


def chart_context(
    assessment: Assessment, record: ClinicalRecord, coverage: ChartCoverage = ChartCoverage()
) -> dict[FindingKind, FindingContext]:
    """Context for every finding of an assessment, by kind."""
    significant = frozenset(f.kind for f in assessment.findings if qualifies_for_problem_list(f))
    return {
        f.kind: finding_context(f, record, assessment.as_of, coverage, significant - {f.kind})
        for f in assessment.findings
    }
