"""MASCC and CISNE from what FHIR holds; items the record cannot tell stay unknown.

A score with unknown items is a range. The conclusion is given only when the whole range falls on
one side of the cut-off (MASCC >=21 low risk; CISNE 0 low, 1-2 intermediate, >=3 high).
Weights and cut-offs with their sources: `data/mascc.csv`, `data/risk_cutoffs.csv`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cds_service.clinical.knowledge import PACKAGE, fn_rule, mascc_points, risk_cutoff
from cds_service.knowledge_tables import knowledge_loader, read_table


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """One item: the points it gives, or None when unknown (it may then give 0..`max_points`)."""

    label: str
    max_points: int
    points: int | None
    evidence: str
    key: str = ""

    @property
    def known(self) -> bool:
        return self.points is not None


@dataclass(frozen=True, slots=True)
class ScoreRange:
    name: str
    items: tuple[ScoreItem, ...]
    conclusion: str | None
    not_applicable: str | None = None

    @property
    def low(self) -> int:
        return sum(i.points or 0 for i in self.items)

    @property
    def high(self) -> int:
        return sum(i.max_points if i.points is None else i.points for i in self.items)

    @property
    def unknown(self) -> tuple[ScoreItem, ...]:
        return tuple(i for i in self.items if not i.known)


@dataclass(frozen=True, slots=True)
class MasccInputs:
    """What the record says, each None when it cannot tell."""

    age_years: int | None
    systolic_bp: float | None
    systolic_bp_evidence: str
    copd: bool | None
    solid_tumour: bool
    haematological_malignancy: bool
    fungal_history: bool
    outpatient_at_onset: bool | None
    outpatient_evidence: str


BURDEN_OF_ILLNESS = "burden_of_illness"
DEHYDRATION = "dehydration"
# The clinician's answer -> its row in mascc.csv.
BURDEN_LEVELS = {"none or mild": "burden_none_or_mild", "moderate": "burden_moderate", "severe": "burden_severe"}


def _yes_no(points: int, condition: bool | None, evidence: str, label: str) -> ScoreItem:
    return ScoreItem(label, points, None if condition is None else (points if condition else 0), evidence)


def _weights() -> dict[str, int]:
    return {item: points for item, (points, _, _) in mascc_points().items()}


def mascc(inputs: MasccInputs, not_applicable: str | None = None) -> ScoreRange:
    weights = _weights()
    sbp_cut = risk_cutoff("mascc_hypotension_sbp").value
    age_cut = risk_cutoff("mascc_age_under").value
    tumour_known = inputs.solid_tumour or inputs.haematological_malignancy
    tumour_ok = inputs.solid_tumour or (inputs.haematological_malignancy and not inputs.fungal_history)
    if inputs.solid_tumour:
        tumour_evidence = "solid tumour coded"
    elif inputs.haematological_malignancy:
        tumour_evidence = "haematological malignancy coded, " + (
            "with a previous fungal infection coded" if inputs.fungal_history else "no previous fungal infection coded"
        )
    else:
        tumour_evidence = "no malignancy coded: unknown"
    items = (
        ScoreItem(
            f"Burden of illness (none/mild {weights['burden_none_or_mild']}, moderate {weights['burden_moderate']}, "
            f"severe {weights['burden_severe']})",
            weights["burden_none_or_mild"],
            None,
            "clinician judgement: not in the record",
            key=BURDEN_OF_ILLNESS,
        ),
        _yes_no(
            weights["no_hypotension"],
            None if inputs.systolic_bp is None else inputs.systolic_bp > sbp_cut,
            inputs.systolic_bp_evidence,
            f"No hypotension (systolic BP >{sbp_cut:g} mmHg)",
        ),
        _yes_no(
            weights["no_copd"],
            None if inputs.copd is None else not inputs.copd,
            "COPD coded" if inputs.copd else ("no COPD coded" if inputs.copd is False else "conditions not available"),
            "No chronic obstructive pulmonary disease",
        ),
        _yes_no(
            weights["solid_tumour_or_no_fungal"],
            tumour_ok if tumour_known else None,
            tumour_evidence,
            "Solid tumour, or haematological malignancy with no previous fungal infection",
        ),
        ScoreItem(
            "No dehydration requiring parenteral fluids",
            weights["no_dehydration"],
            None,
            "clinician judgement: not in the record",
            key=DEHYDRATION,
        ),
        _yes_no(
            weights["outpatient"],
            inputs.outpatient_at_onset,
            inputs.outpatient_evidence,
            "Outpatient status at onset of fever",
        ),
        _yes_no(
            weights["age_under_60"],
            None if inputs.age_years is None else inputs.age_years < age_cut,
            f"age {inputs.age_years} years" if inputs.age_years is not None else "birth date not recorded",
            f"Age <{age_cut:g} years",
        ),
    )
    return _concluded(ScoreRange("MASCC", items, None, not_applicable))


def _concluded(score: ScoreRange) -> ScoreRange:
    """MASCC concludes only when the whole range falls on one side of the cut-off."""
    low_from = int(risk_cutoff("mascc_low_risk_from").value)
    if score.not_applicable:
        conclusion = None
    elif score.low >= low_from:
        conclusion = "low risk"
    elif score.high < low_from:
        conclusion = "high risk (not low risk)"
    else:
        conclusion = None
    return replace(score, conclusion=conclusion)


@dataclass(frozen=True, slots=True)
class ClinicianAnswers:
    """The two MASCC items only the clinician can answer; None while unanswered."""

    burden_of_illness: str | None = None  # one of BURDEN_LEVELS
    dehydration_needing_iv_fluids: bool | None = None


def answered(score: ScoreRange, answers: ClinicianAnswers) -> ScoreRange:
    """The MASCC range with the clinician's answers in place of the two judgement items."""
    weights = _weights()
    items = []
    for item in score.items:
        if item.key == BURDEN_OF_ILLNESS and answers.burden_of_illness is not None:
            level = answers.burden_of_illness
            item = replace(item, points=weights[BURDEN_LEVELS[level]], evidence=f"clinician's answer: {level}")
        elif item.key == DEHYDRATION and answers.dehydration_needing_iv_fluids is not None:
            needs = answers.dehydration_needing_iv_fluids
            item = replace(
                item,
                points=0 if needs else weights["no_dehydration"],
                evidence="clinician's answer: " + ("dehydration needing IV fluids" if needs else "no such dehydration"),
            )
        items.append(item)
    return _concluded(replace(score, items=tuple(items)))


@dataclass(frozen=True, slots=True)
class CisneInputs:
    copd: bool | None
    monocytes: float | None
    monocytes_evidence: str


def cisne(inputs: CisneInputs) -> ScoreRange:
    mono_cut = risk_cutoff("cisne_monocytes_below").value

    def points(name: str) -> int:
        return int(risk_cutoff(name).value)

    items = (
        ScoreItem(
            "ECOG performance status ≥2",
            points("cisne_ecog_points"),
            None,
            "no verified code for ECOG in the reference pack: unknown",
        ),
        ScoreItem(
            "Stress-induced hyperglycaemia",
            points("cisne_hyperglycaemia_points"),
            None,
            "glucose not read (no verified cut-off and code): unknown",
        ),
        _yes_no(
            points("cisne_copd_points"),
            inputs.copd,
            "COPD coded" if inputs.copd else ("no COPD coded" if inputs.copd is False else "conditions not available"),
            "COPD",
        ),
        ScoreItem(
            "Chronic cardiovascular disease",
            points("cisne_cardiovascular_points"),
            None,
            "no verified codes in the reference pack: unknown",
        ),
        ScoreItem("Mucositis NCI grade ≥2", points("cisne_mucositis_points"), None, "clinician assessment: unknown"),
        _yes_no(
            points("cisne_monocytes_points"),
            None if inputs.monocytes is None else inputs.monocytes < mono_cut,
            inputs.monocytes_evidence,
            f"Monocytes <{mono_cut * 1000:g}/µL",
        ),
    )
    score = ScoreRange("CISNE", items, None)
    low_max, high_from = risk_cutoff("cisne_low_max").value, risk_cutoff("cisne_high_from").value
    if score.high <= low_max:
        conclusion = "low risk"
    elif score.low >= high_from:
        conclusion = "high risk"
    elif score.low > low_max and score.high < high_from:
        conclusion = "intermediate risk"
    else:
        conclusion = None
    return ScoreRange("CISNE", items, conclusion)


@dataclass(frozen=True, slots=True)
class Caveat:
    text: str
    applies: bool  # True when this patient's record shows the caveat bites (a child; a haematological malignancy)
    source: str


@knowledge_loader
def _caveat_rows() -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in read_table(PACKAGE, "risk_score_caveats.csv")}


def mascc_caveats(age_years: int | None, haematological_malignancy: bool) -> tuple[Caveat, ...]:
    """The limits of MASCC (`data/risk_score_caveats.csv`), each marked when this patient falls under it."""
    rows = _caveat_rows()
    adults_from = fn_rule("adult_from_years").value
    child = age_years is not None and age_years < adults_from
    return (
        Caveat(
            rows["adults_only"]["text"].format(adults_from=f"{adults_from:g}"), child, rows["adults_only"]["source"]
        ),
        Caveat(
            rows["haematological_malignancy"]["text"],
            haematological_malignancy,
            rows["haematological_malignancy"]["source"],
        ),
    )
