"""Febrile-neutropenia assessment -> one card with the first-hour orders.

One critical card per episode: the evidence, the definitions met, the time goal, one line per risk
score, and the first-hour order sets as alternatives (at-most-one): each set is one empirical
regimen with the blood-culture sets (as many as `first_hour.csv` asks) and the daily CBC, so one
click drafts the whole first hour; a set without an antibiotic serves a clinician who has already
chosen one. The full MASCC/CISNE item tables are not in the card: the review app holds them. Every
number and every guideline named comes from the assessment or a knowledge row.
"""

from __future__ import annotations

from dataclasses import replace

from cards.catalogue import card_links, card_source, override_reasons
from cards.cytopenia import gap_lines
from cards.markdown import clip, escape, fit, listed, when
from cards.medication_orders import draft_medication, medication_citation, medication_label
from cards.model import DETAIL_BUDGET, SUMMARY_MAX, Action, Card, Suggestion
from cards.numbers import duration, limit_text, named, value_text
from cards.orders import draft_order
from cds_service.clinical.febrile_neutropenia import FnAssessment, FnState, RegimenChoice, empirical_list_citation
from cds_service.clinical.fever import FeverEpisode
from cds_service.clinical.first_hour import blood_culture_sets, daily_cbc
from cds_service.clinical.knowledge import fn_rule, gcsf_criteria, prophylaxis, risk_cutoff, seed_guidance
from cds_service.clinical.risk_scores import ScoreRange
from cds_service.clinical.series import Point
from fhir_mappings import Analyte, Measurement

ANC = Analyte.ABSOLUTE_NEUTROPHIL_COUNT
FIRST_HOUR = ("blood_culture", "cbc_with_differential")


def anc_limits() -> tuple[float, ...]:
    """The ANC limits febrile-neutropenia rules judge by: a displayed ANC never rounds across one."""
    return tuple(fn_rule(name).value for name in ("idsa_neutropenia_anc", "ctcae_fn_anc", "profound_neutropenia_anc"))


def anc_text(point: Point, unit: bool = True) -> str:
    text = named(ANC, point.value, anc_limits(), unit)
    return f"{text} ({point.status_label})" if point.status_label else text


def temperature_text(m: Measurement) -> str:
    """The temperature as the fever rules compared it (to 0.01 °C), never rounded across their limits."""
    limits = [fn_rule(n).value for n in ("idsa_fever_single", "idsa_fever_sustained", "ctcae_fever_single")]
    label = f" ({m.status_label})" if m.status_label else ""
    return f"{value_text(Analyte.BODY_TEMPERATURE, round(m.value, 2), limits)} °C{label}"


def _within() -> str:
    rule = fn_rule("antibiotics_within_minutes")
    return duration(rule.value, rule.unit)


def _episode(a: FnAssessment) -> FeverEpisode:
    episode = a.fever.episode
    assert episode is not None, "the fever cards are built only when a fever episode was found"
    return episode


def _latest(a: FnAssessment) -> Point:
    latest = a.neutrophils.latest
    assert latest is not None, "the ANC cards are built only when an ANC is on record"
    return latest


def _anc_source(point: Point) -> str:
    if point.derivation:
        return f"computed: {escape(point.derivation)}"
    return escape(point.evidence[0].source)


def _evidence_line(a: FnAssessment) -> str:
    episode = _episode(a)
    n = a.neutrophils
    latest = _latest(a)
    peak = episode.peak
    reported = f", reported {escape(peak.reported)}" if peak.reported_unit not in ("Cel", "°C") else ""
    text = (
        f"**Fever {temperature_text(peak)}**{reported} at {when(peak.time)} ({escape(episode.rule)}: "
        f"{escape(episode.description)}); **{anc_text(latest)}** at {when(latest.time)} ({_anc_source(latest)})."
    )
    if n.prediction and not n.below_idsa:
        p = n.prediction
        text += (
            f" ANC projected {value_text(ANC, p.predicted, anc_limits())} ×10⁹/L {p.horizon_hours:g} h after the "
            f"latest ({len(p.points)} results, least squares)."
        )
    return text


def _definitions(a: FnAssessment) -> str:
    idsa, ctcae = fn_rule("idsa_neutropenia_anc"), fn_rule("ctcae_fn_anc")
    return (
        f"{idsa.cited_as} (ANC <{limit_text(idsa.value)}): {'**met**' if a.idsa_fn else 'not met'}; "
        f"{ctcae.cited_as} (ANC <{limit_text(ctcae.value)}): {'**met**' if a.ctcae_fn else 'not met'}."
    )


def _score_line(score: ScoreRange | None, cut: str) -> str | None:
    if score is None:
        return None
    if score.not_applicable:
        return f"{score.name}: not applied ({escape(score.not_applicable)})."
    verdict = score.conclusion or f"not decided until {len(score.unknown)} judgement items are assessed ({cut})"
    return f"{score.name} {score.low}–{score.high}: {verdict}."


def _mascc_cut() -> str:
    return f"low risk ≥{risk_cutoff('mascc_low_risk_from').value:g}"


def _cisne_cut() -> str:
    low, high = risk_cutoff("cisne_low_max").value, risk_cutoff("cisne_high_from").value
    return f"{low:g} low, ≥{high:g} high"


def _seed(name: str) -> str:
    return escape(seed_guidance()[name][0])


def _weight_line(a: FnAssessment) -> str:
    """The weight a dose would use, with its date, or that none is current."""
    if a.weight is None:
        return "No body weight on record: weigh the patient."
    when_weighed = f"{a.weight.value:g} kg on {a.weight.time:%Y-%m-%d}"
    return f"Weight used: {when_weighed}." if a.weight_current else f"No current weight (latest {when_weighed})."


def _child_lines(a: FnAssessment) -> list[str]:
    if a.adult:
        return []
    if not a.child:
        return [
            "**Age unknown:** no adult fixed dose is drafted; dose by weight per protocol. " + _weight_line(a),
            "The adult oral regimen is not offered.",
        ]
    return [
        f"**Child ({a.age_years} years):** no adult fixed dose is drafted; dose by weight per the paediatric "
        "protocol. " + _weight_line(a),
        "MASCC and CISNE are adult scores: not computed for a child. The adult oral regimen is not offered.",
    ]


def _gcsf_line(a: FnAssessment) -> str:
    """G-CSF is considered only for a cited ASCO high-risk feature, never from the count alone."""
    if a.g_csf:
        return f"G-CSF already active ({escape(clip(', '.join(m.text for m in a.g_csf), 80))})."
    cited = gcsf_criteria()["age_over"].cited_as  # the row that carries the guideline's high-risk list
    if not a.g_csf_reasons:
        return f"G-CSF: not routine in uncomplicated febrile neutropenia ({cited}); no high-risk feature on record."
    reasons = "; ".join(f"{escape(r.name)} ({escape(r.evidence)})" for r in a.g_csf_reasons)
    return f"Consider G-CSF ({cited} high-risk features): {reasons}."


def _oral_regimen(a: FnAssessment) -> str | None:
    if not a.adult:
        return None
    if a.quinolone_prophylaxis:
        return "Oral outpatient regimen: **not suggested** (fluoroquinolone prophylaxis before the fever)."
    if a.mascc is None or a.mascc.not_applicable or (a.mascc.conclusion or "").startswith("high"):
        return None
    hours = fn_rule("observation_before_discharge_hours").value
    return (
        f"Oral outpatient regimen only if your assessment establishes low risk (MASCC {_mascc_cut()}), with "
        f"≥{hours:g} h observation before discharge; not offered as an order."
    )


def _reaction_type(immediate: bool | None) -> str:
    return "immediate-type" if immediate else "type unknown" if immediate is None else "type not immediate"


def _allergy_lines(a: FnAssessment) -> list[str]:
    lines = [
        f"Withheld: {escape(medication_label(r.orders[0]))}: {escape(clip(r.reason or '', 120))}."
        for r in a.regimens
        if r.status == "withheld"
    ]
    allergies = [f"{escape(x.substance)} ({_reaction_type(x.immediate)})" for x in a.beta_lactam_allergies] + [
        f"{escape(c.display or c.code)} (type unknown)" for c in a.allergy_conditions
    ]
    if allergies:
        tolerated = (
            "" if a.immediate_beta_lactam_allergy else "; most penicillin-allergic patients tolerate cephalosporins"
        )
        lines.append("β-lactam allergy: " + listed(allergies, 2) + tolerated + "; options that clash are flagged.")
    for q in a.quinolone_prophylaxis[:1]:
        lines.append(
            f"**Fever on fluoroquinolone prophylaxis** ({escape(clip(q.text, 60))}): stop the quinolone and start IV "
            "anti-pseudomonal therapy; no oral quinolone."
        )
    return lines


def _vancomycin_line(a: FnAssessment) -> str:
    if a.vancomycin_indications:
        return (
            "Vancomycin indicated: "
            + listed([escape(f"{i.name}: {i.evidence}") for i in a.vancomycin_indications], 2)
            + "."
        )
    return (
        "Vancomycin: not routine, no documented indication (pneumonia, a central line, skin infection and MRSA "
        "cannot be checked from coded data: look for them)."
    )


def _fn_detail(a: FnAssessment, gaps: list[str]) -> str:
    onset = _episode(a).onset
    elapsed = (a.as_of - onset).total_seconds() / 60
    goal = fn_rule("antibiotics_within_minutes").cited_as
    blocks = [
        _seed("shock") if a.shock else None,
        _evidence_line(a),
        _definitions(a),
        f"**Goal: first empirical IV antibiotic dose within {_within()} of triage** ({goal}); fever began "
        f"{elapsed:.0f} min before this evaluation. Draw the blood cultures first if that does not delay the dose.",
        f"Choose **one** order set: an anti-pseudomonal β-lactam ({empirical_list_citation()}) with "
        f"{blood_culture_sets().count} blood-culture sets and a daily CBC {daily_cbc().duration}. "
        "Adjust doses for renal function.",
        *_child_lines(a),
        *_allergy_lines(a),
        _seed("ceftazidime") if any(r.regimen == "ceftazidime" and r.status != "offered" for r in a.regimens) else None,
        _vancomycin_line(a),
        *(escape(clip(note, 200)) for note in a.gram_positive_notes),
        *(
            _seed(name)
            for name, triggered in (
                ("macrolide", a.pneumonia),
                ("central_line", a.central_line),
                ("corticosteroids", bool(a.steroids)),
            )
            if triggered
        ),
        _gcsf_line(a),
        _score_line(a.mascc, _mascc_cut()),
        _score_line(a.cisne, _cisne_cut()),
        _oral_regimen(a),
        *gaps,
        _seed("local_resistance"),
    ]
    return fit(blocks, DETAIL_BUDGET["critical"])


def _culture_actions(patient_id: str, encounter_id: str | None, reason: str) -> tuple[Action, ...]:
    """One draft order per set of the `blood_culture_sets` row, each noting where it is drawn."""
    sets = blood_culture_sets()
    return tuple(
        Action(
            "create",
            f"Draft order: blood culture set {i} of {sets.count}",
            draft_order("blood_culture", patient_id, encounter_id, reason, f"Set {i} of {sets.count}: {site}."),
        )
        for i, site in enumerate(sets.sites, 1)
    )


def _daily_cbc(patient_id: str, encounter_id: str | None, reason: str) -> Action:
    cbc = daily_cbc()
    order = draft_order("cbc_with_differential", patient_id, encounter_id, reason, f"Daily {cbc.duration}.")
    order["occurrenceTiming"] = {"repeat": {"frequency": 1, "period": cbc.period_days, "periodUnit": "d"}}
    return Action("create", "Draft order: daily CBC with differential", order)


def _per_kg_text(a: FnAssessment) -> str | None:
    if a.weight is None:
        return "No body weight recorded: weigh the patient to compute the dose."
    low, high = fn_rule("vancomycin_mg_per_kg_low").value, fn_rule("vancomycin_mg_per_kg_high").value
    return (
        f"{low * a.weight.value:.0f}-{high * a.weight.value:.0f} mg for {a.weight.value:g} kg "
        f"(weighed {a.weight.time:%Y-%m-%d})."
    )


def _order_sets(a: FnAssessment, reason: str, patient_id: str, encounter_id: str | None) -> tuple[Suggestion, ...]:
    first_hour = (
        *_culture_actions(patient_id, encounter_id, reason),
        _daily_cbc(patient_id, encounter_id, reason),
        # fever on fluoroquinolone prophylaxis: the prophylaxis stops with the first empirical dose
        *(Action("delete", f"Stop {q.text}", resource_id=q.source) for q in a.quinolone_prophylaxis),
    )
    cultures = blood_culture_sets().count
    vancomycin: tuple[Action, ...] = ()
    names = ""
    if a.vancomycin_indications:
        names = " + vancomycin"
        resource = (
            draft_medication("vancomycin_iv_paediatric", patient_id, encounter_id, reason, dose_text=_weight_line(a))
            if not a.adult
            else draft_medication("vancomycin_iv", patient_id, encounter_id, reason, dose_text=_per_kg_text(a))
        )
        vancomycin = (Action("create", "Draft order: vancomycin", resource),)

    def order_set(choice: RegimenChoice) -> Suggestion:
        labels = " + ".join(medication_label(o) for o in choice.orders)
        flagged = choice.status == "flagged"
        extra = () if any(o.startswith("vancomycin") for o in choice.orders) else vancomycin
        return Suggestion(
            label=f"{labels}{'' if extra == () else names}, {cultures} blood cultures, daily CBC"
            + (f" ({choice.flag})" if flagged and choice.flag else " (check allergy)" if flagged else ""),
            is_recommended=False if flagged else None,
            actions=(
                *(
                    Action(
                        "create",
                        f"Draft order: {medication_label(o)}",
                        draft_medication(o, patient_id, encounter_id, reason),
                    )
                    for o in choice.orders
                ),
                *extra,
                *first_hour,
            ),
            orders=(*choice.orders, *FIRST_HOUR),
        )

    sets = [order_set(c) for c in a.regimens if c.status != "withheld"]
    sets.append(
        Suggestion(
            label=f"{cultures} blood cultures and daily CBC only (antibiotic ordered separately)",
            actions=first_hour,
            orders=FIRST_HOUR,
        )
    )
    return tuple(sets)


def fn_summary(a: FnAssessment) -> str:
    falling = " and falling" if not a.neutrophils.below_ctcae and a.neutrophils.predicted_below_idsa else ""
    text = (
        f"Febrile neutropenia: {anc_text(_latest(a), unit=False)}{falling}, "
        f"{temperature_text(_episode(a).peak)} — start empirical IV antibiotics within {_within()}"
    )
    return clip(text, SUMMARY_MAX)


def _filgrastim(a: FnAssessment, reason: str, patient_id: str, encounter_id: str | None) -> Suggestion | None:
    if a.g_csf or not a.g_csf_reasons:
        return None
    per_kg = fn_rule("filgrastim_mcg_per_kg_day").value
    why = a.g_csf_reasons[0].name
    weight = a.weight_current
    if not a.adult or weight is None:
        text = "Dose by weight per the paediatric protocol." if a.child else f"{_weight_line(a)} Dose by weight."
        resource = draft_medication("filgrastim_sc", patient_id, encounter_id, reason, dose_text=text)
        resource["dosageInstruction"][0].pop("doseAndRate", None)
        label = f"Consider filgrastim ({why})"
    else:
        dose = per_kg * weight.value
        text = f"{dose:.0f} mcg daily = {per_kg:g} mcg/kg × {weight.value:g} kg weighed {weight.time:%Y-%m-%d}."
        resource = draft_medication("filgrastim_sc", patient_id, encounter_id, reason, dose_ug=dose, dose_text=text)
        label = f"Consider filgrastim {dose:.0f} mcg SC daily ({why})"
    return Suggestion(
        clip(label, 200), (Action("create", "Draft order: filgrastim", resource),), orders=("filgrastim_sc",)
    )


def considerations_card(a: FnAssessment, patient_id: str, encounter_id: str | None) -> Card | None:
    """The febrile-neutropenia card's one companion: what to consider adding to the first hour (an
    aminoglycoside in shock, G-CSF for a cited ASCO high-risk feature). Not in the order sets, which are
    alternatives (at-most-one)."""
    asks = (["an aminoglycoside (shock)"] if a.shock else []) + (
        [f"G-CSF ({a.g_csf_reasons[0].name})"] if a.g_csf_reasons and not a.g_csf else []
    )
    if not asks:
        return None
    summary = clip(f"Febrile neutropenia: consider adding {' and '.join(asks)}", SUMMARY_MAX)
    offered = []
    if a.shock:
        offered.append(
            Suggestion(
                f"Consider adding an aminoglycoside ({medication_citation('aminoglycoside_unspecified')}: may be added "
                "for complications)",
                (
                    Action(
                        "create",
                        "Draft order: aminoglycoside",
                        draft_medication("aminoglycoside_unspecified", patient_id, encounter_id, summary),
                    ),
                ),
                orders=("aminoglycoside_unspecified",),
            )
        )
    if filgrastim := _filgrastim(a, summary, patient_id, encounter_id):
        offered.append(filgrastim)
    return Card(
        summary=summary,
        indicator="warning",
        source=card_source("febrile_neutropenia"),
        detail=fit([_seed("shock") if a.shock else None, _gcsf_line(a), _weight_line(a)], DETAIL_BUDGET["warning"]),
        suggestions=tuple(offered),
        selection_behavior="any",
        override_reasons=override_reasons(),
        links=card_links("febrile_neutropenia"),
        finding="febrile_neutropenia_additions",
    )


def fn_card(a: FnAssessment, gaps: list[str], patient_id: str, encounter_id: str | None) -> Card:
    summary = fn_summary(a)
    return Card(
        summary=summary,
        indicator="critical",
        source=card_source("febrile_neutropenia"),
        detail=_fn_detail(a, gaps),
        suggestions=_order_sets(a, summary, patient_id, encounter_id),
        selection_behavior="at-most-one",
        override_reasons=override_reasons(),
        links=card_links("febrile_neutropenia"),
        finding="febrile_neutropenia",
        trigger=";".join(
            [f"{m.source}={m.value:g}" for m in _episode(a).readings]
            + [f"{m.source}={m.value:g}" for m in _latest(a).evidence]
        ),
        grade=4,
    )


def _cbc_now(patient_id: str, encounter_id: str | None, reason: str, label: str) -> Suggestion:
    return Suggestion(
        label,
        (
            Action(
                "create",
                "Draft order: CBC with differential",
                draft_order("cbc_with_differential", patient_id, encounter_id, reason),
            ),
        ),
        orders=("cbc_with_differential",),
    )


def fever_watch(a: FnAssessment) -> str:
    """For a neutropenia card: whether the look-back held a temperature, and what fever would mean."""
    hours = (a.as_of - a.fever.window_start).total_seconds() / 3600
    single, sustained = fn_rule("idsa_fever_single").value, fn_rule("idsa_fever_sustained").value
    minutes = fn_rule("idsa_fever_sustained_minutes")
    if not a.fever.readings:
        lead = f"**No temperature in the last {hours:g} h: febrile neutropenia cannot be excluded.**"
    else:
        latest = a.fever.readings[-1]
        lead = f"Afebrile over the last {hours:g} h (latest {temperature_text(latest)} at {when(latest.time)})."
    over = duration(minutes.value, minutes.unit)
    return (
        f"{lead} Fever (≥{single:g} °C once, or ≥{sustained:g} °C over {over}) means IV antibiotics within {_within()}."
    )


def _prophylaxis_lines(a: FnAssessment) -> list[str]:
    """ASCO/IDSA 2018 prophylaxis by kind with its stop rule; said when the ANC is profound now."""
    profound, days = fn_rule("profound_neutropenia_anc").value, fn_rule("profound_neutropenia_days").value
    if not a.profound:
        return [
            f"ANC not below {limit_text(profound)} ×10⁹/L now: prophylaxis trigger (<{limit_text(profound)} for "
            f">{days:g} days) not met."
        ]
    lines = [
        f"**Profound neutropenia now** (ANC <{limit_text(profound)} ×10⁹/L). If expected to last more than "
        f"{days:g} days:"
    ]
    lines += [
        f"{escape(p.kind.capitalize())}: {escape(p.agents)}"
        + (f" {escape(p.condition)}" if p.condition.startswith("if") else "")
        + f"; {escape(p.stop_rule)}."
        for p in prophylaxis()
    ]
    lines.append(_seed("gut_decontamination"))
    return lines


def severe_neutropenia_card(a: FnAssessment, gaps: list[str], patient_id: str, encounter_id: str | None) -> Card:
    """The narrower service's card for ANC below the IDSA limit without fever."""
    latest = _latest(a)
    no_temp = not a.fever.readings
    summary = f"Severe neutropenia without fever: {anc_text(latest, unit=False)}" + (
        " — no temperature recorded: check for fever" if no_temp else " — watch for fever"
    )
    prophylaxis_first = _prophylaxis_lines(a) if a.profound else []  # what changes management comes first
    blocks = [
        *prophylaxis_first,
        f"**{anc_text(latest)}** at {when(latest.time)} ({_anc_source(latest)}).",
        fever_watch(a),
        *gaps,
        *([] if a.profound else _prophylaxis_lines(a)),
        f"G-CSF: not routine for afebrile neutropenia ({gcsf_criteria()['afebrile_not_routine'].cited_as})."
        if not a.g_csf
        else f"G-CSF already active ({escape(clip(', '.join(m.text for m in a.g_csf), 80))}).",
    ]
    return Card(
        summary=clip(summary, SUMMARY_MAX),
        indicator="warning",
        source=card_source("severe_neutropenia"),
        detail=fit(blocks, DETAIL_BUDGET["warning"]),
        suggestions=(_cbc_now(patient_id, encounter_id, summary, "Repeat CBC with differential"),),
        selection_behavior="any",
        override_reasons=override_reasons(),
        links=card_links("severe_neutropenia"),
        finding="severe_neutropenia",
    )


def fever_without_anc_card(a: FnAssessment, gaps: list[str], patient_id: str, encounter_id: str | None) -> Card:
    episode = _episode(a)
    summary = (
        f"Fever {temperature_text(episode.peak)}, no current ANC: febrile neutropenia not excluded "
        "— CBC with differential now"
    )
    n = a.neutrophils
    hours = fn_rule("anc_max_age_hours").value
    blocks = [
        f"Latest {anc_text(n.latest)} at {when(n.latest.time)} is older than {hours:g} h: not current."
        if n.latest
        else "No ANC or differential on record.",
        f"**Fever {temperature_text(episode.peak)}** at {when(episode.peak.time)} ({escape(episode.rule)}).",
        f"If neutropenic, treat as febrile neutropenia: IV antibiotics within {_within()}.",
        *gaps,
    ]
    return Card(
        summary=clip(summary, SUMMARY_MAX),
        indicator="warning",
        source=card_source("febrile_neutropenia"),
        detail=fit(blocks, DETAIL_BUDGET["warning"]),
        suggestions=(_cbc_now(patient_id, encounter_id, summary, "CBC with differential now"),),
        selection_behavior="any",
        override_reasons=override_reasons(),
        links=card_links("febrile_neutropenia"),
        finding="fever_without_anc",
    )


def boundary_card(a: FnAssessment, gaps: list[str], patient_id: str, encounter_id: str | None) -> Card:
    """Fever with ANC <1.0 where neither definition is met at the boundary: never silent; the regimens are
    offered as a consideration (at-most-one)."""
    peak = max(a.fever.readings, key=lambda m: m.value)
    n = a.neutrophils
    latest = _latest(a)
    summary = (
        f"Fever {temperature_text(peak)} with {anc_text(latest, unit=False)}: febrile neutropenia definitions "
        "missed at the boundary — consider treating as febrile neutropenia"
    )
    projection = (
        "A single ANC result cannot be projected: repeat the count."
        if n.prediction is None
        else f"ANC projected {value_text(ANC, n.prediction.predicted, anc_limits())} ×10⁹/L in "
        f"{n.prediction.horizon_hours:g} h."
    )
    blocks = [
        *(f"Not met: {escape(m)}." for m in a.boundary_misses),
        projection,
        f"**{anc_text(latest)}** at {when(latest.time)} ({_anc_source(latest)}).",
        *_child_lines(a),
        "Consider the first-hour set: blood cultures, then one empirical regimen.",
        *gaps,
    ]
    sets = [
        replace(s, label=clip(f"Consider: {s.label}", 200)) for s in _order_sets(a, summary, patient_id, encounter_id)
    ]
    return Card(
        summary=clip(summary, SUMMARY_MAX),
        indicator="warning",
        source=card_source("febrile_neutropenia"),
        detail=fit(blocks, DETAIL_BUDGET["warning"]),
        suggestions=tuple(sets),
        selection_behavior="at-most-one",
        override_reasons=override_reasons(),
        links=card_links("febrile_neutropenia"),
        finding="febrile_neutropenia_boundary",
    )


def not_excluded_card(a: FnAssessment, gaps: list[str]) -> Card:
    n = a.neutrophils
    hours = (a.as_of - a.fever.window_start).total_seconds() / 3600
    if n.current:
        summary = (
            f"No temperature in the last {hours:g} h: febrile neutropenia not excluded "
            f"({anc_text(_latest(a), unit=False)}) — take a temperature"
        )
    else:
        summary = (
            f"Febrile neutropenia not assessed: no current ANC and no temperature in the last {hours:g} h "
            "— CBC and temperature"
        )
    blocks = ["This is **not** a statement that the patient is well.", *gaps]
    return Card(
        summary=clip(summary, SUMMARY_MAX),
        indicator="info",
        source=card_source("febrile_neutropenia"),
        detail=fit(blocks, DETAIL_BUDGET["info"]),
        links=card_links("febrile_neutropenia"),
        finding="febrile_neutropenia_not_assessed",
    )


def febrile_neutropenia_cards(
    a: FnAssessment, patient_id: str, encounter_id: str | None = None, expected: bool = False
) -> list[Card]:
    """The narrower opt-in service's answer: febrile neutropenia and its near misses only; "not assessed"
    only when a current ANC is low or the chart calls for counts (`expected`)."""
    gaps = gap_lines((), a.issues)
    if a.state is FnState.FEBRILE_NEUTROPENIA:
        companion = considerations_card(a, patient_id, encounter_id)
        return [fn_card(a, gaps, patient_id, encounter_id), *([companion] if companion else [])]
    if a.state is FnState.FEVER_ANC_UNKNOWN:
        return [fever_without_anc_card(a, gaps, patient_id, encounter_id)]
    if a.state is FnState.FEVER_AT_BOUNDARY:
        return [boundary_card(a, gaps, patient_id, encounter_id)]
    if a.state is FnState.SEVERE_NEUTROPENIA:
        return [severe_neutropenia_card(a, gaps, patient_id, encounter_id)]
    if a.state is FnState.NOT_EXCLUDED and (a.neutrophils.current or expected):
        return [not_excluded_card(a, gaps)]
    return []
