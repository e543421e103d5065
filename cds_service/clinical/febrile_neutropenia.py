"""Febrile neutropenia: which definition fired, on what evidence, and what the first hour needs.

Pure rules over a ClinicalRecord. IDSA 2010 FN = IDSA fever + ANC <0.5 (or expected <0.5 within
48 h); CTCAE v5.0 FN = CTCAE fever + ANC <1.0. Both are kept and reported separately. Every number
comes from `data/febrile_neutropenia.csv` and `data/empirical_regimens.csv` with its citation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cds_service.clinical.fever import FeverAssessment, assess_fever
from cds_service.clinical.knowledge import PACKAGE, Criterion, fn_rule, gcsf_criteria
from cds_service.clinical.order_knowledge import parameter
from cds_service.clinical.risk_scores import CisneInputs, MasccInputs, ScoreRange, cisne, mascc
from cds_service.clinical.series import Point, neutrophil_series
from cds_service.knowledge_tables import KnowledgeError, knowledge_loader, read_table, required
from fhir_mappings import Analyte, ClinicalRecord, DataIssue, Measurement
from fhir_mappings.allergies import AllergyFact
from fhir_mappings.facts import CodedFact
from fhir_mappings.medications import MedicationFact

HOUR = 3600.0


class FnState(StrEnum):
    FEBRILE_NEUTROPENIA = "febrile_neutropenia"
    FEVER_ANC_UNKNOWN = "fever_anc_unknown"
    FEVER_AT_BOUNDARY = "fever_at_boundary"
    SEVERE_NEUTROPENIA = "severe_neutropenia"
    NOT_EXCLUDED = "not_excluded"
    EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class AncPrediction:
    """A least-squares line through recent ANC results, projected `horizon_hours` past the latest."""

    points: tuple[Point, ...]
    slope_per_day: float
    horizon_hours: float
    predicted: float

    @property
    def method(self) -> str:
        return (
            f"least-squares line through the {len(self.points)} ANC results of the last "
            f"{fn_rule('anc_prediction_window_hours').value:g} h, projected {self.horizon_hours:g} h past the latest"
        )


@dataclass(frozen=True, slots=True)
class Neutrophils:
    latest: Point | None
    current: bool
    prediction: AncPrediction | None

    @property
    def below_idsa(self) -> bool:
        return self.current and self.latest is not None and self.latest.value < fn_rule("idsa_neutropenia_anc").value

    @property
    def predicted_below_idsa(self) -> bool:
        return (
            self.current
            and self.prediction is not None
            and self.prediction.predicted < fn_rule("idsa_neutropenia_anc").value
        )

    @property
    def below_ctcae(self) -> bool:
        return self.current and self.latest is not None and self.latest.value < fn_rule("ctcae_fn_anc").value


@dataclass(frozen=True, slots=True)
class Indication:
    name: str
    evidence: str


@dataclass(frozen=True, slots=True)
class RegimenChoice:
    """An empirical regimen and whether it is offered, offered with a flag, or withheld (and why)."""

    regimen: str
    kind: str
    orders: tuple[str, ...]
    status: str
    reason: str | None = None
    flag: str | None = None


@dataclass(frozen=True, slots=True)
class FnAssessment:
    as_of: datetime
    state: FnState
    fever: FeverAssessment
    neutrophils: Neutrophils
    idsa_fn: bool
    ctcae_fn: bool
    regimens: tuple[RegimenChoice, ...]
    vancomycin_indications: tuple[Indication, ...]
    gram_positive_notes: tuple[str, ...]
    beta_lactam_allergies: tuple[AllergyFact, ...]
    allergy_conditions: tuple[CodedFact, ...]
    quinolone_prophylaxis: tuple[MedicationFact, ...]
    g_csf: tuple[MedicationFact, ...]
    weight: Measurement | None
    weight_old: bool
    systolic_bp: Measurement | None
    mascc: ScoreRange | None
    cisne: ScoreRange | None
    issues: tuple[DataIssue, ...]
    age_years: int | None = None
    shock: tuple[Indication, ...] = ()
    boundary_misses: tuple[str, ...] = ()
    g_csf_reasons: tuple[Indication, ...] = ()
    steroids: tuple[CodedFact, ...] = ()
    pneumonia: bool = False
    central_line: bool = False

    @property
    def child(self) -> bool:
        """Under 18 (issue #12): no adult fixed dose, no MASCC/CISNE, no adult oral regimen."""
        return self.age_years is not None and self.age_years < fn_rule("adult_from_years").value

    @property
    def adult(self) -> bool:
        """Known to be 18 or over: only then are adult fixed doses drafted (an unknown age could be a child)."""
        return self.age_years is not None and not self.child

    @property
    def weight_current(self) -> Measurement | None:
        return self.weight if self.weight is not None and not self.weight_old else None

    @property
    def immediate_beta_lactam_allergy(self) -> bool:
        return any(a.immediate for a in self.beta_lactam_allergies)

    @property
    def profound(self) -> bool:
        latest = self.neutrophils.latest
        return (
            self.neutrophils.current and latest is not None and latest.value < fn_rule("profound_neutropenia_anc").value
        )


@knowledge_loader
def regimens() -> tuple[dict[str, str], ...]:
    return tuple(read_table(PACKAGE, "empirical_regimens.csv"))


@knowledge_loader
def empirical_list_citation() -> str:
    """The guideline whose empirical list the `idsa_2010` column marks ("IDSA 2010"), as its rows cite it:
    each listed empirical regimen carries one, the same for all, or the start stops naming the table."""
    table = read_table(PACKAGE, "empirical_regimens.csv")
    cited = {required(row, "cited_as") for row in table if row["kind"] == "empirical" and row["idsa_2010"] == "yes"}
    if len(cited) != 1:
        raise KnowledgeError(f"{table[0].table}: the listed empirical regimens cite {sorted(cited)}, not one guideline")
    return cited.pop()


def _predict(points: tuple[Point, ...]) -> AncPrediction | None:
    """Never from one value: needs two or more results from different times in the window."""
    if len(points) < 2 or points[-1].time == points[0].time:
        return None
    origin = points[0].time
    xs = [(p.time - origin).total_seconds() / HOUR for p in points]
    ys = [p.value for p in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    horizon = fn_rule("idsa_prediction_horizon_hours").value
    predicted = mean_y + slope * (xs[-1] + horizon - mean_x)
    return AncPrediction(points, slope * 24, horizon, max(predicted, 0.0))


def assess_neutrophils(record: ClinicalRecord, as_of: datetime) -> Neutrophils:
    series = tuple(p for p in neutrophil_series(record) if p.time <= as_of)
    if not series:
        return Neutrophils(None, False, None)
    latest = series[-1]
    age = (as_of - latest.time).total_seconds() / HOUR
    window = fn_rule("anc_prediction_window_hours").value
    recent = tuple(p for p in series if latest.time - p.time <= timedelta(hours=window))
    prediction = _predict(recent)
    if prediction is not None and prediction.slope_per_day >= 0:
        prediction = None
    return Neutrophils(latest, age <= fn_rule("anc_max_age_hours").value, prediction)


def _latest(record: ClinicalRecord, analyte: Analyte, since: datetime, as_of: datetime) -> Measurement | None:
    return next((m for m in reversed(record.series(analyte)) if since <= m.time <= as_of), None)


def _shock(record: ClinicalRecord, systolic: Measurement | None, child: bool) -> tuple[Indication, ...]:
    """Haemodynamic instability: coded shock or sepsis, or (adults only) systolic BP at or below the cut-off."""
    found = [
        Indication("haemodynamic instability or severe sepsis", f"{c.display or c.category} ({c.code}, {c.source})")
        for c in record.conditions
        if c.status == "active" and c.category in ("shock", "septic_shock", "severe_sepsis")
    ]
    cut = fn_rule("shock_systolic_at_most").value
    if not child and systolic is not None and systolic.value <= cut:
        found.append(
            Indication(
                "haemodynamic instability",
                f"systolic BP {systolic.value:g} mmHg (≤{cut:g}) at {systolic.time:%Y-%m-%d %H:%M} UTC "
                f"({systolic.source})",
            )
        )
    return tuple(found)


def _documented_indications(record: ClinicalRecord) -> tuple[Indication, ...]:
    """IDSA 2010 indications named in the wording of a Condition (pneumonia, catheter or skin infection, MRSA),
    read as the vancomycin order check reads them: none has a verified code."""
    return tuple(
        Indication(c.display, c.source)
        for c in record.conditions
        if c.status == "active" and c.category == "vancomycin_indication"
    )


def _gram_positive_notes(record: ClinicalRecord) -> tuple[str, ...]:
    """VRE colonisation is on the guideline's list of indications for a gram-positive agent, the list the
    `vancomycin` `indication_categories` row cites."""
    cited = parameter("vancomycin", "indication_categories").cited_as
    return tuple(
        f"Resistance to vancomycin coded ({c.code}, {c.source}): {cited} adds a gram-positive agent for VRE "
        "colonisation, but vancomycin is not active against VRE; the agent is the clinician's choice."
        for c in record.conditions
        if c.status == "active" and c.category == "vre_colonisation"
    )


def _clashes(allergy: AllergyFact, groups: frozenset[str]) -> bool:
    """A penicillin allergy clashes with penicillins only (most such patients tolerate cephalosporins,
    clinical-knowledge §4.4); any other beta-lactam allergy clashes with every beta-lactam."""
    if allergy.in_group("penicillin"):
        return "penicillin" in groups
    return bool(allergy.groups & groups)


def _regimen_choices(
    allergies: tuple[AllergyFact, ...],
    allergy_conditions: tuple[CodedFact, ...],
    quinolones: tuple[MedicationFact, ...],
    no_fixed_dose: bool = False,
    shock: bool = False,
) -> tuple[RegimenChoice, ...]:
    """A child (or an unknown age) gets the dose-free orders; an agent outside IDSA 2010's list is flagged,
    and withheld in shock."""
    immediate = [a for a in allergies if a.immediate]
    choices = []
    for row in regimens():
        groups = frozenset(row["groups"].split(";"))
        orders = tuple(row["paediatric_orders" if no_fixed_dose else "orders"].split(";"))
        status, reason, flag = "offered", None, None
        if row["kind"] == "empirical":
            clashing = [a for a in allergies if _clashes(a, groups)]
            if row["idsa_2010"] == "no":
                status, flag = ("withheld", None) if shock else ("flagged", f"not in {empirical_list_citation()} list")
                reason = "not offered in shock" if shock else f"not in the {empirical_list_citation()} list"
            if immediate:
                status = "withheld"
                reason = "immediate-type beta-lactam allergy: " + "; ".join(
                    f"{a.substance} ({a.reaction_text})" for a in immediate
                )
            elif clashing or ("penicillin" in groups and allergy_conditions):
                named = [f"{a.substance} ({a.reaction_text})" for a in clashing] + [
                    f"{c.display or c.code}" for c in allergy_conditions
                ]
                if status != "withheld":
                    status, flag = "flagged", "check allergy"
                    reason = "check allergy: " + "; ".join(named)
        else:
            if not (allergies or allergy_conditions):
                continue
            if "fluoroquinolone" in groups and quinolones:
                status, reason = "withheld", "fluoroquinolone prophylaxis was given before the fever"
        choices.append(RegimenChoice(row["regimen"], row["kind"], orders, status, reason, flag))
    return tuple(choices)


def _outpatient_at(record: ClinicalRecord, onset: datetime | None) -> tuple[bool | None, str]:
    if onset is None:
        return None, "no fever onset"
    if not record.encounters:
        return None, "no Encounter available"
    for encounter in record.encounters:
        if encounter.setting == "inpatient" and encounter.covers(onset):
            return False, f"in an inpatient encounter ({encounter.class_display}, {encounter.source}) at fever onset"
    for encounter in record.encounters:
        if encounter.setting == "outpatient" and encounter.covers(onset):
            return True, f"{encounter.class_display} encounter ({encounter.source}) at fever onset"
        if encounter.setting == "inpatient" and encounter.start and encounter.start > onset:
            return (
                True,
                f"fever began before the admission of {encounter.start:%Y-%m-%d %H:%M} UTC ({encounter.source})",
            )
    return None, "no Encounter covers the fever onset"


def _scores(
    record: ClinicalRecord,
    as_of: datetime,
    fever: FeverAssessment,
    systolic: Measurement | None,
    conditions_available: bool,
    unstable: bool,
) -> tuple[ScoreRange | None, ScoreRange | None]:
    """MASCC, and CISNE for stable adults with solid tumours; neither for a child (adult scores)."""
    age_months = record.demographics.age_in_months(as_of.date())
    if age_months is not None and age_months // 12 < fn_rule("adult_from_years").value:
        return None, None
    copd = record.has_condition("copd") if conditions_available else None
    solid = record.has_condition("solid_tumour")
    haem = record.has_condition("haematological_malignancy")
    fungal = any(c.category == "fungal_infection_history" for c in record.conditions)
    outpatient, outpatient_evidence = _outpatient_at(record, fever.episode.onset if fever.episode else None)
    not_applicable = None
    if record.has_condition("acute_leukaemia"):
        not_applicable = "acute leukaemia coded: MASCC is not for acute leukaemia induction"
    elif record.has_condition("stem_cell_transplant"):
        not_applicable = "stem-cell transplant coded: MASCC is not for allogeneic HCT conditioning"
    sbp_text = (
        f"systolic BP {systolic.value:g} mmHg at {systolic.time:%Y-%m-%d %H:%M} UTC ({systolic.source})"
        if systolic
        else "no systolic BP in the look-back window"
    )
    score = mascc(
        MasccInputs(
            None if age_months is None else age_months // 12,
            systolic.value if systolic else None,
            sbp_text,
            copd,
            solid,
            haem,
            fungal,
            outpatient,
            outpatient_evidence,
        ),
        not_applicable,
    )
    if not solid or haem or unstable:
        return score, None
    monocytes = _latest(record, Analyte.MONOCYTES, as_of - timedelta(hours=fn_rule("anc_max_age_hours").value), as_of)
    mono_text = (
        f"monocytes {monocytes.value:g} ×10⁹/L at {monocytes.time:%Y-%m-%d %H:%M} UTC ({monocytes.source})"
        if monocytes
        else "no current monocyte count"
    )
    return score, cisne(CisneInputs(copd, monocytes.value if monocytes else None, mono_text))


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def boundary_misses(fever: FeverAssessment, anc: Neutrophils) -> tuple[str, ...]:
    """Fever (either definition, or one reading >= the watch threshold) with ANC <1.0 now or projected
    below it, where neither FN definition is met: which criterion was missed, and by how much."""
    watch, ctcae_anc = fn_rule("fever_watch_single").value, fn_rule("ctcae_fn_anc").value
    hot = [m for m in fever.readings if round(m.value, 2) >= watch]
    low = anc.current and anc.latest is not None and anc.latest.value < ctcae_anc
    falling = anc.current and anc.prediction is not None and anc.prediction.predicted < ctcae_anc
    if not (fever.febrile or hot) or not (low or falling):
        return ()
    # Both `low` and `falling` need `anc.current`, which assess_neutrophils sets only with a latest result.
    latest = anc.latest
    assert latest is not None
    peak = max(fever.readings, key=lambda m: m.value)
    idsa_fever, idsa_anc, ctcae_fever = (
        fn_rule("idsa_fever_single"),
        fn_rule("idsa_neutropenia_anc"),
        fn_rule("ctcae_fever_single"),
    )
    # Each missed criterion is named by its row's citation, as the fever and FN definition lines are.
    misses = []
    if fever.idsa is None:
        misses.append(
            f"{idsa_fever.cited_as} fever: highest reading {peak.value:.1f} °C, "
            f"{idsa_fever.value - peak.value:.1f} °C under {idsa_fever.value:g} °C "
            f"and not ≥{fn_rule('idsa_fever_sustained').value:g} °C over "
            f"{fn_rule('idsa_fever_sustained_minutes').value:g} min"
        )
    else:
        gap = latest.value - idsa_anc.value
        where = "exactly at" if gap == 0 else f"{_fmt(gap)} above"
        misses.append(
            f"{idsa_anc.cited_as} neutropenia: ANC {_fmt(latest.value)} ×10⁹/L is {where} "
            f"the <{idsa_anc.value:g} cut-off"
        )
    if fever.ctcae is None:
        misses.append(
            f"{ctcae_fever.cited_as} fever: highest reading {peak.value:.1f} °C is not >{ctcae_fever.value:g} °C "
            f"and not ≥{fn_rule('ctcae_fever_sustained').value:g} °C for more than "
            f"{fn_rule('ctcae_fever_sustained_minutes').value:g} min"
        )
    else:
        misses.append(
            f"{fn_rule('ctcae_fn_anc').cited_as} neutropenia: ANC {_fmt(latest.value)} ×10⁹/L is not <{ctcae_anc:g}"
        )
    return tuple(misses)


def _cut_off(criterion: Criterion) -> float:
    """The numeric cut-off of a criterion that is compared against; gcsf_criteria.csv gives these one."""
    if criterion.value is None:
        raise TypeError(f"criterion {criterion.name!r} has no cut-off value")
    return criterion.value


def _gcsf_reasons(
    record: ClinicalRecord,
    age_years: int | None,
    anc: Neutrophils,
    shock: tuple[Indication, ...],
    outpatient: bool | None,
) -> tuple[Indication, ...]:
    """ASCO's high-risk features for a CSF in febrile neutropenia that the record shows."""
    rows = gcsf_criteria()
    found = []
    if age_years is not None and age_years > _cut_off(rows["age_over"]):
        found.append(Indication(rows["age_over"].text, f"age {age_years}"))
    if anc.current and anc.latest is not None and anc.latest.value < _cut_off(rows["profound_anc_below"]):
        found.append(Indication(rows["profound_anc_below"].text, f"ANC {_fmt(anc.latest.value)} ×10⁹/L"))
    if shock:
        found.append(Indication(rows["hypotension_or_sepsis"].text, shock[0].evidence))
    for category, name in (("pneumonia", "pneumonia"), ("invasive_fungal_infection", "invasive_fungal_infection")):
        coded = next((c for c in record.conditions if c.status == "active" and c.category == category), None)
        if coded:
            found.append(Indication(rows[name].text, f"{coded.display or coded.code} ({coded.source})"))
    if outpatient is False:
        found.append(Indication(rows["inpatient_at_onset"].text, "inpatient encounter at fever onset"))
    return tuple(found)


def _state(fever: FeverAssessment, anc: Neutrophils, fn: bool) -> FnState:
    if fn:
        return FnState.FEBRILE_NEUTROPENIA
    if fever.febrile and not anc.current:
        return FnState.FEVER_ANC_UNKNOWN
    if boundary_misses(fever, anc):
        return FnState.FEVER_AT_BOUNDARY
    if anc.below_idsa:
        return FnState.SEVERE_NEUTROPENIA
    if fever.readings:
        return FnState.EXCLUDED
    if anc.current and not anc.below_ctcae and not anc.predicted_below_idsa:
        return FnState.EXCLUDED
    return FnState.NOT_EXCLUDED


def assess(
    record: ClinicalRecord, as_of: datetime, lookback_hours: float | None = None, conditions_available: bool = True
) -> FnAssessment:
    lookback = lookback_hours if lookback_hours is not None else fn_rule("fever_lookback_hours").value
    fever = assess_fever(record.series(Analyte.BODY_TEMPERATURE), as_of, lookback)
    anc = assess_neutrophils(record, as_of)
    idsa_fn = fever.idsa is not None and (anc.below_idsa or anc.predicted_below_idsa)
    ctcae_fn = fever.ctcae is not None and anc.below_ctcae
    systolic = _latest(record, Analyte.SYSTOLIC_BLOOD_PRESSURE, as_of - timedelta(hours=lookback), as_of)
    allergies = tuple(a for a in record.allergies if a.in_group("beta_lactam"))
    allergy_conditions = tuple(
        c for c in record.conditions if c.status == "active" and c.category == "penicillin_allergy"
    )
    quinolones = record.active_medications("fluoroquinolone")
    weights = record.series(Analyte.BODY_WEIGHT)
    weight = next((m for m in reversed(weights) if m.time <= as_of), None)
    age_months = record.demographics.age_in_months(as_of.date())
    age_years = None if age_months is None else age_months // 12
    child = age_years is not None and age_years < fn_rule("adult_from_years").value
    shock = _shock(record, systolic, child)
    mascc_score, cisne_score = _scores(record, as_of, fever, systolic, conditions_available, bool(shock))
    outpatient, _ = _outpatient_at(record, fever.episode.onset if fever.episode else None)
    return FnAssessment(
        as_of=as_of,
        state=_state(fever, anc, idsa_fn or ctcae_fn),
        fever=fever,
        neutrophils=anc,
        idsa_fn=idsa_fn,
        ctcae_fn=ctcae_fn,
        regimens=_regimen_choices(allergies, allergy_conditions, quinolones, age_years is None or child, bool(shock)),
        vancomycin_indications=shock + _documented_indications(record),
        gram_positive_notes=_gram_positive_notes(record),
        beta_lactam_allergies=allergies,
        allergy_conditions=allergy_conditions,
        quinolone_prophylaxis=quinolones,
        g_csf=record.active_medications("g_csf"),
        weight=weight,
        weight_old=weight is not None and (as_of - weight.time) > timedelta(days=fn_rule("weight_max_age_days").value),
        systolic_bp=systolic,
        mascc=mascc_score,
        cisne=cisne_score,
        issues=record.issues,
        age_years=age_years,
        shock=shock,
        boundary_misses=boundary_misses(fever, anc),
        g_csf_reasons=_gcsf_reasons(record, age_years, anc, shock, outpatient),
        steroids=tuple(c for c in record.conditions if c.status == "active" and c.category == "systemic_steroids"),
        pneumonia=record.has_condition("pneumonia"),
        central_line=record.has_condition("central_line"),
    )
