"""Order safety: a drafted myelotoxic drug, G-CSF or neutropenia antibiotic against the latest counts.

Pure functions over facts: the drafts of one order-select/order-sign call, the patient's record and
the moment of evaluation. Each rule returns at most one OrderAlert per draft, or None when the order
is safe. A count older than the rule's window is stated as such, never read as normal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cds_service.clinical.cytopenia import as_of_view
from cds_service.clinical.grading import ctcae_grade
from cds_service.clinical.knowledge import threshold
from cds_service.clinical.order_knowledge import (
    ClozapineBand,
    clozapine_bands,
    clozapine_intervals,
    clozapine_notes,
    parameter,
    tki_thresholds,
)
from cds_service.clinical.series import Point, direct_series, neutrophil_series
from fhir_mappings import Analyte, ClinicalRecord
from fhir_mappings.medications import MedicationFact
from fhir_mappings.orders import DraftOrder, planned_start

SEVERITY = {"info": 0, "warning": 1, "critical": 2}
COUNTS, MEDICATIONS, CONDITIONS = "counts", "medications", "conditions"


@dataclass(frozen=True, slots=True)
class CountStatus:
    """The latest value of one analyte, its age, and whether it is current for the rule's window."""

    label: str
    unit: str
    point: Point | None
    age_days: float | None
    window_days: float | None
    unavailable: str | None = None

    @property
    def stale(self) -> bool:
        return (
            self.point is not None
            and self.age_days is not None  # set whenever `point` is
            and self.window_days is not None
            and self.age_days > self.window_days
        )

    @property
    def current(self) -> Point | None:
        return self.point if self.point is not None and not self.stale else None

    def gap(self) -> str | None:
        """Why this count cannot be relied on, in words, or None when it is current."""
        if self.unavailable:
            return f"{self.label} not available ({self.unavailable})"
        if self.point is None:
            return f"no {self.label} on record"
        if self.stale:
            return f"latest {self.label} is {self.age_days:.0f} days old (window {self.window_days:g} days)"
        return None

    def short_gap(self) -> str | None:
        """The gap in a few words, for a card summary."""
        if self.unavailable:
            return f"{self.label} not sent"
        if self.point is None:
            return f"no {self.label} on record"
        return f"{self.label} {self.age_days:.0f} days old" if self.stale else None


@dataclass(frozen=True, slots=True)
class OrderAlert:
    rule: str
    draft: DraftOrder
    indicator: str
    summary: str
    statements: tuple[str, ...]
    evidence: tuple[CountStatus, ...]
    source: str
    order_count: bool = False
    hold: bool = False
    consult: bool = False


@dataclass(frozen=True, slots=True)
class PatientState:
    """What the rules may know about the patient at `as_of`; `unavailable` says which data never came."""

    record: ClinicalRecord
    as_of: datetime
    drafts: tuple[DraftOrder, ...]
    unavailable: Mapping[str, str] = field(default_factory=dict)
    anc: tuple[Point, ...] = ()
    platelets: tuple[Point, ...] = ()
    weight: tuple[Point, ...] = ()

    def status(self, label: str, points: tuple[Point, ...], window: float | None, unit: str = "×10⁹/L") -> CountStatus:
        if COUNTS in self.unavailable and not points:
            return CountStatus(label, unit, None, None, window, self.unavailable[COUNTS])
        latest = points[-1] if points else None
        age = (self.as_of - latest.time).total_seconds() / 86400 if latest else None
        return CountStatus(label, unit, latest, age, window)

    def others(self, group: str, draft: DraftOrder) -> tuple[MedicationFact, ...]:
        """Active orders in a group other than this draft (a draft may also appear in the prefetch)."""
        return tuple(m for m in self.record.active_medications(group) if m.source != draft.reference)


def patient_state(
    record: ClinicalRecord, as_of: datetime, drafts: tuple[DraftOrder, ...], unavailable: Mapping[str, str]
) -> PatientState:
    record = as_of_view(record, as_of)
    return PatientState(
        record,
        as_of,
        drafts,
        dict(unavailable),
        neutrophil_series(record),
        direct_series(record, Analyte.PLATELETS),
        direct_series(record, Analyte.BODY_WEIGHT),
    )


def _name(draft: DraftOrder) -> str:
    return draft.medication.ingredients[0].capitalize() if draft.medication else draft.reference


def _value(point: Point) -> str:
    """A count as clinicians write it: ANC 1.0, 0.3, 0.495 (never rounded onto a limit), platelets 45."""
    if point.value >= 10:
        return f"{point.value:.0f}"
    text = f"{point.value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _gaps(*statuses: CountStatus) -> list[str]:
    return [g for s in statuses if (g := s.gap())]


def _counts_needed(
    rule: str,
    draft: DraftOrder,
    needed: tuple[CountStatus, ...],
    evidence: tuple[CountStatus, ...],
    indicator: str,
    checked: str,
    source: str,
    statements: tuple[str, ...] = (),
    hold: bool = False,
) -> OrderAlert:
    """The card for a rule that cannot be checked: missing or stale counts are said, never taken as normal."""
    gaps = _gaps(*needed)
    short = ", ".join(g for s in needed if (g := s.short_gap()))
    return OrderAlert(
        rule,
        draft,
        indicator,
        f"{_name(draft)}: {short}: {checked} not checked, order a CBC with differential",
        (
            f"{checked[0].upper()}{checked[1:]} could not be checked: {'; '.join(gaps)}. This is not a statement that "
            "the counts are normal.",
            *statements,
        ),
        evidence,
        source,
        order_count=True,
        hold=hold,
    )


def _clozapine_band(population: str, anc: float) -> ClozapineBand:
    return next(b for b in reversed(clozapine_bands()[population]) if anc >= b.anc_at_least)


def _clozapine_window(prior: tuple[MedicationFact, ...], as_of: datetime) -> tuple[float, str]:
    """Monitoring window from the label's interval for the treatment month; no prior order = new start."""
    starts = [m.authored_on for m in prior if m.authored_on]
    if not prior:
        baseline = parameter("clozapine", "baseline_window_days")
        return baseline.number, f"baseline ANC before starting (no older than {baseline.number:g} days)"
    if not starts:
        first = clozapine_intervals()[0]
        return first.days, f"{first.text}: treatment start unknown"
    months = (as_of - min(starts)).days / 30.4375
    interval = next(i for i in clozapine_intervals() if i.months_to is None or months < i.months_to)
    return interval.days, f"{interval.text}: on clozapine since {min(starts):%Y-%m-%d}"


def clozapine(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    population = "duffy_null" if s.record.has_condition("duffy_null") else "general"
    prior = s.others("clozapine", draft)
    window, interval = _clozapine_window(prior, s.as_of)
    anc, platelets = s.status("ANC", s.anc, window), s.status("platelets", s.platelets, window)
    normal = clozapine_bands()[population][-1]
    notes = [clozapine_notes()["rems_ended"]]
    if MEDICATIONS in s.unavailable:
        notes.append(f"Active medications not available ({s.unavailable[MEDICATIONS]}): treated as a new start.")
    if population == "duffy_null":
        notes.append("Duffy-null / benign ethnic neutropenia documented: the label's BEN table is used.")
    source = normal.source
    if anc.point is None:
        return _counts_needed(
            "clozapine",
            draft,
            (anc,),
            (anc, platelets),
            "warning",
            "clozapine ANC table",
            source,
            (
                f"Before starting, the label requires an ANC in the normal range (≥{normal.anc_at_least:g} "
                "×10⁹/L for this population).",
                f"Monitoring interval: {interval}.",
                *notes,
            ),
            hold=True,
        )
    band = _clozapine_band(population, anc.point.value)
    if band is normal:  # one monitoring instruction: the routine interval only while in the normal range
        notes.insert(0, f"Monitoring interval: {interval}.")
    new_start = not prior
    baselines = sum(1 for p in s.anc if p.value >= normal.anc_at_least)
    needed = int(parameter("clozapine", "baseline_ancs_duffy_null").number)
    second_baseline = population == "duffy_null" and new_start and band is normal and baselines < needed
    if band is normal and not anc.stale and not second_baseline:
        return None
    indicator = band.indicator or "warning"
    statements = [band.action_text, f"Monitoring ({band.label}): {band.monitoring}"]
    if new_start and band is not normal:
        indicator = max(indicator, "warning", key=SEVERITY.__getitem__)
        statements.insert(
            0,
            f"New start: the label starts clozapine only in the {normal.label} (ANC ≥{normal.anc_at_least:g} ×10⁹/L).",
        )
    if band is not normal:
        summary = (
            f"Clozapine: ANC {_value(anc.point)} ×10⁹/L, {band.label}: {'interrupt' if band.interrupt else 'continue'}"
        )
        summary += ", haematology consult" if band.haematology_consult else ""
    elif second_baseline:
        summary = f"Clozapine (BEN): {baselines} baseline ANC on record; the label asks for {needed} before starting"
        source = parameter("clozapine", "baseline_ancs_duffy_null").source
    else:
        summary = f"Clozapine: latest ANC {_value(anc.point)} ×10⁹/L"
    if anc.stale:
        summary += f" ({anc.age_days:.0f} days old, ANC due)"
        statements.append(
            f"The latest ANC is {anc.age_days:.0f} days old, older than the {window:g}-day window: "
            "it does not show the current count."
        )
    return OrderAlert(
        "clozapine",
        draft,
        indicator,
        summary,
        (*statements, *notes),
        (anc, platelets),
        band.source if band is not normal else source,
        order_count=True,
        hold=band.interrupt,
        consult=band.haematology_consult,
    )


def _held_before(draft: DraftOrder, s: PatientState, ingredient: str) -> MedicationFact | None:
    """The previous order of this TKI when it is on hold or stopped: the draft restarts it."""
    restart = parameter("bcr_abl_tki", "restart_after_statuses").items
    earlier = [
        m
        for m in s.record.medications
        if m.source != draft.reference and ingredient in m.ingredients and m.status in restart | {"active"}
    ]
    if any(m.status == "active" for m in earlier):
        return None
    return max(earlier, key=lambda m: m.authored_on or s.as_of, default=None)


def bcr_abl_tki(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    rows = [tki_thresholds()[i] for i in _drug(draft).ingredients if i in tki_thresholds()]
    if not rows:
        return None
    t = rows[0]
    window = parameter("bcr_abl_tki", "count_window_days").number
    anc, platelets = s.status("ANC", s.anc, window), s.status("platelets", s.platelets, window)
    setting = f"{t.cited_as} thresholds for {t.setting}; accelerated/blast phase thresholds differ."
    held = _held_before(draft, s, t.ingredient)
    if held is not None and anc.point and platelets.point:
        if not t.resumes_at(anc.point.value, platelets.point.value):
            op = "≥" if t.resume_comparison == ">=" else ">"
            return OrderAlert(
                "bcr_abl_tki",
                draft,
                "warning",
                f"{_name(draft)} restart at ANC {_value(anc.point)}, platelets {_value(platelets.point)} ×10⁹/L: "
                f"{t.cited_as} resumes at ANC {op}{t.resume_anc:g} and platelets {op}{t.resume_platelets:g}",
                (
                    f"Previous order {held.source} is {held.status}: this order restarts it.",
                    t.resume_text,
                    setting,
                    *(f"Note: {g}." for g in _gaps(anc, platelets)),
                ),
                (anc, platelets),
                t.source,
                order_count=True,
                hold=True,
            )
    low = []
    if anc.point and anc.point.value < t.stop_anc_below:
        low.append(f"ANC {_value(anc.point)} ×10⁹/L (stop below {t.stop_anc_below:.1f})")
    if platelets.point and platelets.point.value < t.stop_platelets_below:
        low.append(f"platelets {_value(platelets.point)} ×10⁹/L (stop below {t.stop_platelets_below:g})")
    if low:
        return OrderAlert(
            "bcr_abl_tki",
            draft,
            "warning",
            f"{_name(draft)}: {', '.join(low)}: {t.cited_as} says stop until counts recover",
            (t.resume_text, setting, *(f"Note: {g}." for g in _gaps(anc, platelets))),
            (anc, platelets),
            t.source,
            order_count=True,
            hold=True,
        )
    if _gaps(anc, platelets):
        return _counts_needed(
            "bcr_abl_tki",
            draft,
            (anc, platelets),
            (anc, platelets),
            "info",
            f"{t.cited_as} stop thresholds",
            t.source,
            (
                f"Stop if ANC <{t.stop_anc_below:.1f} and/or platelets <{t.stop_platelets_below:g} ×10⁹/L. "
                f"{t.resume_text}",
                setting,
            ),
        )
    return None


def deferiprone(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    limit = parameter("deferiprone", "interrupt_anc_below")
    window = parameter("deferiprone", "count_window_days")
    anc, platelets = s.status("ANC", s.anc, window.number), s.status("platelets", s.platelets, window.number)
    weekly = f"The label asks for an ANC before starting and weekly monitoring (window {window.number:g} days)."
    if anc.point and anc.point.value < limit.number:
        return OrderAlert(
            "deferiprone",
            draft,
            "warning",
            f"Deferiprone: ANC {_value(anc.point)} ×10⁹/L is below {limit.number:g}: interrupt deferiprone",
            (
                f"Interrupt deferiprone if ANC <{limit.number:g} ×10⁹/L ({limit.cited_as}).",
                weekly,
                *(f"Note: {g}." for g in _gaps(anc)),
            ),
            (anc, platelets),
            limit.source,
            order_count=True,
            hold=True,
        )
    if anc.gap():
        return _counts_needed(
            "deferiprone",
            draft,
            (anc,),
            (anc, platelets),
            "warning",
            "deferiprone ANC limit",
            window.source,
            (weekly,),
            hold=True,
        )
    return None


def _lower_limit(s: PatientState, point: Point) -> tuple[float, str]:
    if s.record.has_condition("duffy_null"):
        danc = threshold("duffy_null_lln_absolute_neutrophil_count")
        return danc.value, "Duffy-null reference interval"
    if point.reference_low is not None:
        return point.reference_low, "the lab's reference range"
    return threshold("default_lln_absolute_neutrophil_count").value, "default lower limit"


def agranulocytosis_risk(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    severe = parameter("agranulocytosis_risk", "severe_anc_below")
    window = parameter("agranulocytosis_risk", "count_window_days").number
    anc, platelets = s.status("ANC", s.anc, window), s.status("platelets", s.platelets, window)
    risk = f"{_name(draft)} is among the drugs most often reported to cause agranulocytosis ({severe.cited_as})."
    if anc.point and anc.point.value < severe.number:
        return OrderAlert(
            "agranulocytosis_risk",
            draft,
            "warning",
            f"{_name(draft)}: ANC {_value(anc.point)} ×10⁹/L, severe neutropenia (agranulocytosis range)",
            (
                risk,
                f"Agranulocytosis is ANC <{severe.number:g} ×10⁹/L; consider whether the drug is the cause "
                "before continuing it.",
                *(f"Note: {g}." for g in _gaps(anc)),
            ),
            (anc, platelets),
            severe.source,
            order_count=True,
            hold=True,
        )
    if anc.gap():
        return _counts_needed(
            "agranulocytosis_risk",
            draft,
            (anc,),
            (anc, platelets),
            "info",
            "drug-induced neutropenia",
            severe.source,
            (risk,),
        )
    if len(s.anc) >= 2 and s.anc[-1].value < s.anc[-2].value:
        limit, basis = _lower_limit(s, s.anc[-1])
        if s.anc[-1].value < limit:
            previous = s.anc[-2]
            return OrderAlert(
                "agranulocytosis_risk",
                draft,
                "info",
                f"{_name(draft)}: ANC falling, {_value(previous)} to {_value(s.anc[-1])} ×10⁹/L, below the lower limit",
                (
                    risk,
                    f"ANC fell from {_value(previous)} ({previous.time:%Y-%m-%d}) to {_value(s.anc[-1])} ×10⁹/L, "
                    f"below {limit:g} ×10⁹/L ({basis}).",
                    "Consider repeating the count and watching for fever.",
                ),
                (anc, platelets),
                severe.source,
                order_count=True,
            )
    return None


def cytotoxic_chemotherapy(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    grade_limit = parameter("cytotoxic_chemotherapy", "warn_at_ctcae_grade")
    window = parameter("cytotoxic_chemotherapy", "count_window_days").number
    anc, platelets = s.status("ANC", s.anc, window), s.status("platelets", s.platelets, window)
    low = []
    for status, analyte in ((anc, Analyte.ABSOLUTE_NEUTROPHIL_COUNT), (platelets, Analyte.PLATELETS)):
        point = status.point
        grade = ctcae_grade(analyte, point.value, None) if point else None
        if point is not None and grade and grade.grade >= grade_limit.number:
            low.append(f"{status.label} {_value(point)} ({grade.label})")
    protocol = "Check the regimen's treatment parameters (minimum ANC and platelets to treat) before giving this cycle."
    if low:
        return OrderAlert(
            "cytotoxic_chemotherapy",
            draft,
            "warning",
            f"{_name(draft)}: {', '.join(low)}: check the protocol's treatment parameters",
            (protocol, *(f"Note: {g}." for g in _gaps(anc, platelets))),
            (anc, platelets),
            grade_limit.source,
            order_count=True,
            hold=True,
        )
    if _gaps(anc, platelets):
        return _counts_needed(
            "cytotoxic_chemotherapy",
            draft,
            (anc, platelets),
            (anc, platelets),
            "info",
            "treatment parameters",
            grade_limit.source,
            (protocol,),
        )
    return None


def _drug(draft: DraftOrder) -> MedicationFact:
    """The draft's medication: check_orders runs the rules only on drafts that have one."""
    assert draft.medication is not None
    return draft.medication


def _timed(medication: MedicationFact) -> datetime | None:
    return planned_start(medication.resource) if medication.resource else medication.authored_on


def _timing_conflict(dose: datetime, chemo: datetime, key: str) -> bool:
    before = timedelta(hours=parameter(key, "chemotherapy_hours_before_dose").number)
    after = timedelta(days=parameter(key, "chemotherapy_days_after_dose").number)
    return dose - before < chemo < dose + after


def g_csf_timing(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    """G-CSF too close to cytotoxic chemotherapy, whichever of the two is the draft."""
    medication = _drug(draft)
    own_time = draft.planned_start or s.as_of
    pairs: list[tuple[MedicationFact | DraftOrder, datetime, datetime, str]] = []
    if medication.in_group("g_csf"):
        key = "long_acting_g_csf" if medication.in_group("long_acting_g_csf") else "g_csf"
        chemo_orders: list[tuple[MedicationFact | DraftOrder, datetime]] = [
            (d, d.planned_start or s.as_of)
            for d in s.drafts
            if d is not draft and d.medication and d.medication.in_group("cytotoxic_chemotherapy")
        ]
        chemo_orders += [(m, t) for m in s.others("cytotoxic_chemotherapy", draft) if (t := _timed(m))]
        pairs = [(other, own_time, when, key) for other, when in chemo_orders]
    elif medication.in_group("cytotoxic_chemotherapy"):
        for m in s.others("g_csf", draft):
            if when := _timed(m):
                pairs.append((m, when, own_time, "long_acting_g_csf" if m.in_group("long_acting_g_csf") else "g_csf"))
    for other, dose, chemo, key in pairs:
        if _timing_conflict(dose, chemo, key):
            agent = "Pegfilgrastim" if key == "long_acting_g_csf" else "Filgrastim"
            hours = (dose - chemo).total_seconds() / 3600
            relative = f"{abs(hours) / 24:.1f} days {'after' if hours >= 0 else 'before'}"
            window = (
                f"{parameter(key, 'chemotherapy_days_after_dose').number:g} days before to "
                f"{parameter(key, 'chemotherapy_hours_before_dose').number:g} h after"
            )
            other_text = other.reference if isinstance(other, DraftOrder) else other.source
            return OrderAlert(
                "g_csf_timing",
                draft,
                "warning",
                f"{agent} planned {relative} cytotoxic chemotherapy: label says not from {window} chemotherapy",
                (
                    f"G-CSF dose {dose:%Y-%m-%d %H:%M}, chemotherapy {chemo:%Y-%m-%d %H:%M} ({other_text}); "
                    "times are the "
                    "orders' planned start or authored dates.",
                    f"The label says: not from {window} cytotoxic chemotherapy.",
                ),
                (s.status("ANC", s.anc, None), s.status("platelets", s.platelets, None)),
                parameter(key, "chemotherapy_days_after_dose").source,
                hold=True,
            )
    return None


def filgrastim_dose(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    """The label's 5-10 mcg/kg/day, within the tolerance; no current weight is said, never flagged as a dose error."""
    if "filgrastim" not in _drug(draft).ingredients:
        return None
    low = parameter("filgrastim_dose", "mcg_per_kg_per_day")
    high = parameter("filgrastim_dose", "max_mcg_per_kg_per_day")
    tolerance = parameter("filgrastim_dose", "tolerance_percent").number
    weight = s.status("body weight", s.weight, parameter("filgrastim_dose", "weight_window_days").number, "kg")
    evidence = (s.status("ANC", s.anc, None), weight)
    label_range = f"{low.number:g}-{high.number:g} mcg/kg/day"
    current = weight.current
    if draft.dose is None or current is None:
        missing = "no dose in micrograms or milligrams on the order" if draft.dose is None else weight.gap()
        return OrderAlert(
            "filgrastim_dose",
            draft,
            "info",
            f"Filgrastim dose not checked: {missing}",
            (f"The label dose is {label_range}; it could not be compared: {missing}.",),
            evidence,
            low.source,
        )
    per_day = draft.dose.per_day or 1.0
    ordered = draft.dose.micrograms * per_day
    kg = current.value
    lowest, highest = low.number * kg, high.number * kg
    if ordered < lowest:
        off, bound = (ordered - lowest) / lowest * 100, f"{low.number:g} mcg/kg/day ({lowest:.0f} mcg"
    else:
        off, bound = (ordered - highest) / highest * 100, f"{high.number:g} mcg/kg/day ({highest:.0f} mcg"
    if lowest <= ordered <= highest or abs(off) <= tolerance:
        return None
    frequency = "" if draft.dose.per_day else " (no frequency on the order: read as once daily)"
    return OrderAlert(
        "filgrastim_dose",
        draft,
        "info",
        f"Filgrastim {ordered:.0f} mcg/day is {off:+.0f} % from {bound} at {kg:g} kg)",
        (
            f"Ordered {draft.dose.reported}{frequency} = {ordered:.0f} mcg/day = {ordered / kg:.1f} mcg/kg/day at "
            f"{kg:g} kg ({current.time:%Y-%m-%d}); the label range is {label_range} "
            f"({lowest:.0f}-{highest:.0f} mcg/day).",
            f"Difference {off:+.0f} %, more than {tolerance:g} %. Rounding to a vial size may be intended.",
        ),
        evidence,
        (high if ordered > highest else low).source,
    )


def _neutropenic(s: PatientState) -> bool:
    limit = parameter("neutropenic", "anc_below").number
    anc = s.status("ANC", s.anc, parameter("neutropenic", "count_window_days").number)
    documented = any(s.record.has_condition(c) for c in ("documented_neutropenia", "febrile_neutropenia"))
    return documented or (anc.current is not None and anc.current.value < limit)


def fluoroquinolone_prophylaxis(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    context = parameter("fluoroquinolone_prophylaxis", "fn_context_categories")
    for_fn = bool(draft.reason_categories & context.items) or any(s.record.has_condition(c) for c in context.items)
    if not (for_fn or _neutropenic(s)):
        return None
    evidence = (s.status("ANC", s.anc, None), s.status("platelets", s.platelets, None))
    advice = (
        f"{context.cited_as}: the oral fluoroquinolone regimen for febrile neutropenia is not for patients who had "
        "fluoroquinolone prophylaxis before the fever; consider an empirical regimen without a fluoroquinolone."
    )
    if MEDICATIONS in s.unavailable:
        return OrderAlert(
            "fluoroquinolone_prophylaxis",
            draft,
            "info",
            f"{_name(draft)}: quinolone prophylaxis not checked (active medications not available)",
            (f"Active medications not available ({s.unavailable[MEDICATIONS]}).", advice),
            evidence,
            context.source,
        )
    prophylaxis = s.others("fluoroquinolone", draft)
    if not prophylaxis:
        return None
    current = ", ".join(f"{m.text} ({m.source})" for m in prophylaxis[:3])
    return OrderAlert(
        "fluoroquinolone_prophylaxis",
        draft,
        "warning",
        f"{_name(draft)} for febrile neutropenia while already on quinolone prophylaxis",
        (f"Active fluoroquinolone: {current}.", advice),
        evidence,
        context.source,
        hold=True,
    )


def vancomycin(draft: DraftOrder, s: PatientState) -> OrderAlert | None:
    if not _neutropenic(s):
        return None
    indications = parameter("vancomycin", "indication_categories")
    if draft.reason_categories & indications.items or any(s.record.has_condition(c) for c in indications.items):
        return None
    statements = [
        f"Vancomycin is not a routine part of the initial febrile-neutropenia regimen ({indications.cited_as}). "
        "Add it for haemodynamic instability or severe sepsis, pneumonia, gram-positive bacteraemia, suspected "
        "catheter-related or skin/soft-tissue infection, MRSA/VRE/penicillin-resistant pneumococcus "
        "colonisation, or severe mucositis on quinolone prophylaxis.",
        "No such indication is documented on the order or in the active conditions.",
    ]
    if CONDITIONS in s.unavailable:
        statements.append(f"Conditions not available ({s.unavailable[CONDITIONS]}): indications could not be checked.")
    return OrderAlert(
        "vancomycin",
        draft,
        "info",
        "Vancomycin in neutropenia without a documented indication: not routine",
        tuple(statements),
        (s.status("ANC", s.anc, None), s.status("platelets", s.platelets, None)),
        indications.source,
        hold=True,
    )


Rule = Callable[[DraftOrder, PatientState], OrderAlert | None]
# One count rule per draft, the most specific first (deferiprone is also an agranulocytosis drug).
COUNT_RULES: tuple[tuple[str, Rule], ...] = (
    ("clozapine", clozapine),
    ("deferiprone", deferiprone),
    ("bcr_abl_tki", bcr_abl_tki),
    ("cytotoxic_chemotherapy", cytotoxic_chemotherapy),
    ("agranulocytosis_risk", agranulocytosis_risk),
)
OTHER_RULES: tuple[tuple[tuple[str, ...], Rule], ...] = (
    (("g_csf", "cytotoxic_chemotherapy"), g_csf_timing),
    (("g_csf",), filgrastim_dose),
    (("fluoroquinolone",), fluoroquinolone_prophylaxis),
    (("vancomycin",), vancomycin),
)


def check_orders(drafts: tuple[DraftOrder, ...], s: PatientState) -> tuple[OrderAlert, ...]:
    """Alerts for the drafts to evaluate; at most one per (draft, rule)."""
    alerts: dict[tuple[str, str], OrderAlert] = {}
    for draft in drafts:
        medication = draft.medication
        if medication is None:
            continue
        rules = [r for group, r in COUNT_RULES if medication.in_group(group)][:1]
        rules += [r for groups, r in OTHER_RULES if any(medication.in_group(g) for g in groups)]
        for rule in rules:
            if (alert := rule(draft, s)) is not None:
                alerts.setdefault((draft.reference, alert.rule), alert)
    return tuple(alerts.values())
