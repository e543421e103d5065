"""Febrile-neutropenia assessment -> the first-hour cards.

Two cards make one first-hour picture, because CDS Hooks sets selectionBehavior per card: the
critical FN card carries the evidence, the rule that fired, the time goal and the risk scores, and
its suggestions are the empirical antibiotic choice (at-most-one); the companion critical card
carries the work-up the clinician may take all of (any): two blood-culture sets, daily CBC, and
vancomycin only when an indication is documented.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cards.catalogue import card_source, override_reasons
from cards.cytopenia import DISCLAIMER, gap_blocks
from cards.markdown import bullets, escape, number, table, when
from cards.medication_orders import draft_medication, medication_label
from cards.model import Action, Card, Suggestion
from cards.orders import draft_order
from cds_service.clinical.febrile_neutropenia import FnAssessment, FnState
from cds_service.clinical.knowledge import fn_rule, prophylaxis, seed_guidance
from cds_service.clinical.risk_scores import ScoreRange
from cds_service.clinical.series import Point
from fhir_mappings import Measurement

NOT_CHECKABLE = (
    "pneumonia, central venous catheter or catheter-related infection, skin or soft-tissue infection, "
    "MRSA colonisation and gram-positive blood culture have no verified code in the reference pack: they "
    "were looked for **only in the wording of the Conditions**, so an uncoded one may be missed"
)


def _anc_text(point: Point) -> str:
    label = f" ({point.status_label})" if point.status_label else ""
    return f"ANC {number(point.value)} ×10⁹/L{label}"


def _temp_text(m: Measurement) -> str:
    label = f" ({m.status_label})" if m.status_label else ""
    return f"{m.value:.1f} °C{label}"


def _temperature_rows(readings: tuple[Measurement, ...]) -> list[tuple[str, ...]]:
    return [
        (
            _temp_text(m),
            escape(m.reported),
            escape(m.site or ("oral (LOINC 8331-1)" if m.method == "oral" else "site not coded")),
            when(m.time),
            escape(m.source),
        )
        for m in readings
    ]


def _anc_rows(points: tuple[Point, ...]) -> list[tuple[str, ...]]:
    rows = []
    for p in points:
        how = escape(p.derivation) if p.derivation else escape(p.evidence[0].reported)
        rows.append((_anc_text(p), how, when(p.time), escape(", ".join(e.source for e in p.evidence))))
    return rows


def _evidence(a: FnAssessment) -> list[str]:
    blocks = []
    episode = a.fever.episode
    if episode:
        blocks.append(
            f"**Fever** ({escape(episode.rule)}: {escape(episode.description)}), onset {when(episode.onset)}:"
        )
        blocks.append(
            table(("Temperature", "As reported", "Site", "Time", "Source"), _temperature_rows(episode.readings))
        )
    n = a.neutrophils
    if n.latest:
        age = f"{n.age_hours:.0f} h before this evaluation" + ("" if n.current else ": **not current**")
        blocks.append(f"**Latest ANC** ({age}):")
        shown = n.prediction.points if n.prediction else (n.latest,)
        blocks.append(table(("ANC", "How", "Time", "Source"), _anc_rows(shown)))
    if n.prediction:
        p = n.prediction
        blocks.append(
            f"ANC projection: {escape(p.method)}: slope {number(p.slope_per_day)} ×10⁹/L per day, "
            f"projected {number(p.predicted)} ×10⁹/L at {when(n.latest.time + timedelta(hours=p.horizon_hours))}."
        )
    return blocks


def _rules(a: FnAssessment) -> str:
    idsa_anc = fn_rule("idsa_neutropenia_anc").value
    ctcae_anc = fn_rule("ctcae_fn_anc").value
    n = a.neutrophils
    if a.idsa_fn:
        why = (
            f"ANC <{idsa_anc:g}"
            if n.below_idsa
            else f"ANC expected <{idsa_anc:g} within {fn_rule('idsa_prediction_horizon_hours').value:g} h"
        )
        idsa = f"**IDSA 2010 FN: met** (IDSA fever and {why} ×10⁹/L)."
    else:
        missing = (
            "no IDSA fever" if a.fever.idsa is None else f"ANC not <{idsa_anc:g} ×10⁹/L and not projected below it"
        )
        idsa = f"IDSA 2010 FN: not met ({missing})."
    if a.ctcae_fn:
        ctcae = f"**CTCAE v5.0 FN: met** (CTCAE fever and ANC <{ctcae_anc:g} ×10⁹/L)."
    else:
        missing = (
            "no CTCAE fever (>38.3 °C single, or ≥38 °C for more than 1 h)"
            if a.fever.ctcae is None
            else f"ANC not <{ctcae_anc:g} ×10⁹/L"
        )
        ctcae = f"CTCAE v5.0 FN: not met ({missing})."
    return bullets([idsa, ctcae])


def _score_block(score: ScoreRange, cut_text: str) -> str:
    rows = [
        (escape(i.label), "unknown" if i.points is None else str(i.points), str(i.max_points), escape(i.evidence))
        for i in score.items
    ]
    head = f"**{score.name}**"
    if score.not_applicable:
        return f"{head}: not applied ({escape(score.not_applicable)})."
    verdict = (
        f"possible range **{score.low}–{score.high}**: {score.conclusion}"
        if score.conclusion
        else f"possible range **{score.low}–{score.high}**: "
        f"not decided until the unknown items are assessed ({cut_text})"
    )
    return "\n\n".join([f"{head}: {verdict}.", table(("Item", "Points", "Max", "Evidence"), rows)])


def _seed(name: str) -> str:
    return escape(seed_guidance()[name][0])


def _weight_line(a: FnAssessment) -> str:
    """The weight a dose would use, with its date, or that none is current."""
    if a.weight is None:
        return "No body weight on record: weigh the patient."
    when_weighed = f"{number(a.weight.value)} kg on {a.weight.time:%Y-%m-%d}"
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
        f"**Child ({a.age_years} years):** no adult fixed dose is drafted; dose by weight per the paediatric protocol. "
        + _weight_line(a),
        "MASCC and CISNE are adult scores: not computed for a child. The adult oral regimen is not offered.",
    ]


def _oral_regimen(a: FnAssessment) -> str | None:
    if not a.adult:
        return None
    if a.quinolone_prophylaxis:
        return (
            "Oral outpatient regimen: **not suggested**: fluoroquinolone prophylaxis was given before the "
            "fever (ASCO/IDSA 2018); no oral quinolone."
        )
    if a.mascc is None or a.mascc.not_applicable or (a.mascc.conclusion or "").startswith("high"):
        return None
    hours = fn_rule("observation_before_discharge_hours").value
    return (
        "Oral outpatient regimen (ASCO/IDSA 2018) only if your assessment establishes low risk (MASCC ≥21): "
        "oral fluoroquinolone plus amoxicillin-clavulanate (clindamycin instead if penicillin-allergic), e.g. "
        "ciprofloxacin 750 mg PO q12h + amoxicillin-clavulanate 875/125 mg PO q12h; first dose within 1 hour, "
        f"observe ≥{hours:g} h before discharge, and re-evaluate patients not defervesced after 2–3 days. "
        "The record alone cannot establish low risk, so it is not offered as an order."
    )


def _allergy_text(a: FnAssessment) -> list[str]:
    lines = [
        f"β-lactam allergy: {escape(x.substance)}: {escape(x.reaction_text)}"
        + (
            " (**immediate-type**)"
            if x.immediate
            else " (type not immediate)"
            if x.immediate is False
            else " (type unknown)"
        )
        + f" ({escape(x.source)})"
        for x in a.beta_lactam_allergies
    ]
    lines += [
        f"{escape(c.display or c.code)} ({escape(c.code)}, {escape(c.source)}): reaction type unknown"
        for c in a.allergy_conditions
    ]
    if lines and not a.immediate_beta_lactam_allergy:
        lines.append(
            "Most penicillin-allergic patients tolerate cephalosporins (IDSA 2010); options that clash are flagged."
        )
    return lines


def _fn_detail(a: FnAssessment, gaps: list[str]) -> str:
    minutes = fn_rule("antibiotics_within_minutes").value
    onset = a.fever.episode.onset
    elapsed = (a.as_of - onset).total_seconds() / 60
    blocks = [_seed("shock")] if a.shock else []
    blocks += [
        "**Febrile neutropenia is an emergency.** "
        f"Goal: first dose of empirical IV antibiotics within **{minutes:g} minutes** of triage (ASCO/IDSA 2018). "
        f"Fever onset {when(onset)} ({elapsed:.0f} min before this evaluation). Draw blood cultures first if "
        "that does not delay the dose.",
        _rules(a),
        *_evidence(a),
        *_child_lines(a),
    ]
    choice = [
        "Choose **one** empirical regimen below (anti-pseudomonal β-lactam monotherapy, IDSA 2010). Adjust every "
        "dose for renal function."
    ]
    choice += [
        f"Withheld: {escape(medication_label(r.orders[0]))}: {escape(r.reason)}"
        for r in a.regimens
        if r.status == "withheld"
    ]
    if any(r.regimen == "ceftazidime" and r.status != "offered" for r in a.regimens):
        choice.append(_seed("ceftazidime"))
    choice.append(_seed("local_resistance"))
    choice += _allergy_text(a)
    for q in a.quinolone_prophylaxis:
        choice.append(
            f"**Fever on fluoroquinolone prophylaxis** ({escape(q.text)}, {escape(q.source)}): stop the "
            "quinolone and start IV "
            "anti-pseudomonal therapy; no oral quinolone."
        )
    blocks.append(bullets(choice))
    if a.vancomycin_indications:
        blocks.append(
            "Vancomycin indicated: "
            + "; ".join(f"{escape(i.name)}: {escape(i.evidence)}" for i in a.vancomycin_indications)
            + "."
        )
    else:
        blocks.append(
            "Vancomycin is **not routine** in the initial regimen (IDSA 2010): no documented indication. Note: "
            f"{NOT_CHECKABLE}."
        )
    blocks.extend(escape(note) for note in a.gram_positive_notes)
    blocks.extend(
        _seed(name)
        for name, triggered in (
            ("macrolide", a.pneumonia),
            ("central_line", a.central_line),
            ("corticosteroids", bool(a.steroids)),
        )
        if triggered
    )
    blocks.append(_gcsf_line(a))
    low_from = "low risk needs ≥21"
    if a.mascc:
        blocks.append(_score_block(a.mascc, low_from))
    if a.cisne:
        blocks.append(
            _score_block(a.cisne, "0 low, 1–2 intermediate, ≥3 high")
            + "\n\nCISNE is for clinically stable adults with solid tumours."
        )
    if oral := _oral_regimen(a):
        blocks.append(oral)
    blocks.extend(gaps)
    blocks.append(
        "Sources: IDSA 2010 (Freifeld, CID 2011), ASCO/IDSA 2018 (Taplitz, JCO 2018), CTCAE v5.0, MASCC "
        f"(Klastersky 2000). {DISCLAIMER}"
    )
    return "\n\n".join(blocks)


def _regimen_suggestion(choice, reason: str, patient_id: str, encounter_id: str | None) -> Suggestion:
    labels = " + ".join(medication_label(o) for o in choice.orders)
    label = f"{labels} ({choice.flag})" if choice.status == "flagged" else labels
    return Suggestion(
        label=label,
        is_recommended=False if choice.status == "flagged" else None,
        actions=tuple(
            Action(
                "create", f"Draft order: {medication_label(o)}", draft_medication(o, patient_id, encounter_id, reason)
            )
            for o in choice.orders
        ),
    )


def _cbc_daily(patient_id: str, encounter_id: str | None, reason: str, note: str) -> dict:
    order = draft_order("cbc_with_differential", patient_id, encounter_id, reason, note)
    order["occurrenceTiming"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    return order


def _workup_card(a: FnAssessment, reason: str, patient_id: str, encounter_id: str | None) -> Card:
    until = f"until ANC ≥{fn_rule('idsa_neutropenia_anc').value:g} ×10⁹/L and afebrile"
    cultures = tuple(
        Action(
            "create",
            f"Draft order: blood culture set {i} of 2",
            draft_order("blood_culture", patient_id, encounter_id, reason, note),
        )
        for i, note in (
            (1, "Set 1 of 2: peripheral venepuncture, before the first antibiotic dose."),
            (
                2,
                "Set 2 of 2: from each lumen of a central venous catheter if one is present, otherwise a second "
                "peripheral site.",
            ),
        )
    )
    suggestions = [
        Suggestion("Blood cultures: 2 sets before antibiotics", cultures),
        Suggestion(
            f"CBC with differential daily {until}",
            (
                Action(
                    "create",
                    "Draft order: daily CBC with differential",
                    _cbc_daily(patient_id, encounter_id, reason, f"Daily {until}."),
                ),
            ),
        ),
    ]
    if a.vancomycin_indications:
        names = "; ".join(i.name for i in a.vancomycin_indications)
        vancomycin = (
            draft_medication("vancomycin_iv_paediatric", patient_id, encounter_id, reason, dose_text=_weight_line(a))
            if not a.adult
            else draft_medication("vancomycin_iv", patient_id, encounter_id, reason, dose_text=_per_kg_text(a))
        )
        suggestions.append(
            Suggestion(
                f"{'Consider adding' if a.shock else 'Add'} vancomycin ({names})"[:200],
                (Action("create", "Draft order: vancomycin", vancomycin),),
            )
        )
    if a.shock:
        suggestions.append(
            Suggestion(
                "Consider adding an aminoglycoside (IDSA 2010: may be added for complications)",
                (
                    Action(
                        "create",
                        "Draft order: aminoglycoside",
                        draft_medication("aminoglycoside_unspecified", patient_id, encounter_id, reason),
                    ),
                ),
            )
        )
    suggestions.extend(
        Suggestion(
            f"Stop the active fluoroquinolone prophylaxis ({q.text})"[:200],
            (Action("delete", f"Stop {q.text}", resource_id=q.source),),
        )
        for q in a.quinolone_prophylaxis
    )
    if gcsf := _gcsf_suggestion(a, reason, patient_id, encounter_id):
        suggestions.append(gcsf)
    detail = "\n\n".join(
        [
            bullets(
                [
                    "Blood cultures: two sets, peripheral and, when a central venous catheter is present, one "
                    "from each lumen. "
                    "A central line could not be checked (no verified code): look for one.",
                    "Other cultures (urine, sputum, stool, site-specific) as clinically indicated: no verified "
                    "codes, not drafted.",
                    f"CBC with differential daily {until}.",
                    "Vancomycin: "
                    + (
                        "indicated: " + escape("; ".join(f"{i.name}: {i.evidence}" for i in a.vancomycin_indications))
                        if a.vancomycin_indications
                        else "not routine; offered only with a documented indication."
                    ),
                ]
            ),
            DISCLAIMER,
        ]
    )
    return Card(
        summary="FN first hour: 2 blood culture sets before the first antibiotic dose; daily CBC",
        indicator="critical",
        source=card_source("febrile_neutropenia"),
        detail=detail,
        suggestions=tuple(suggestions),
        selection_behavior="any",
        override_reasons=override_reasons(),
    )


def _per_kg_text(a: FnAssessment) -> str | None:
    if a.weight is None:
        return "No body weight recorded: weigh the patient to compute the dose."
    low, high = fn_rule("vancomycin_mg_per_kg_low").value, fn_rule("vancomycin_mg_per_kg_high").value
    return (
        f"{low * a.weight.value:.0f}-{high * a.weight.value:.0f} mg for {number(a.weight.value)} kg "
        f"(weighed {a.weight.time:%Y-%m-%d})."
    )


def _fn_summary(a: FnAssessment) -> str:
    peak = a.fever.episode.peak
    rule = "IDSA" if a.idsa_fn else "CTCAE"
    if a.idsa_fn and a.ctcae_fn:
        rule = "IDSA+CTCAE"
    return (
        f"Febrile neutropenia ({rule}): {_anc_text(a.neutrophils.latest)}, {_temp_text(peak)}: antibiotics "
        "within 1 hour"
    )


def fn_cards(a: FnAssessment, gaps: list[str], patient_id: str, encounter_id: str | None) -> list[Card]:
    summary = _fn_summary(a)
    choices = [r for r in a.regimens if r.status != "withheld"]
    main = Card(
        summary=summary,
        indicator="critical",
        source=card_source("febrile_neutropenia"),
        detail=_fn_detail(a, gaps),
        suggestions=tuple(_regimen_suggestion(c, summary, patient_id, encounter_id) for c in choices),
        selection_behavior="at-most-one",
        override_reasons=override_reasons(),
    )
    return [main, _workup_card(a, summary, patient_id, encounter_id)]


def _gcsf_line(a: FnAssessment) -> str:
    """G-CSF is considered only for a cited ASCO high-risk feature, never from the count alone."""
    if a.g_csf:
        return f"G-CSF already active ({escape(', '.join(m.text for m in a.g_csf))})."
    if not a.g_csf_reasons:
        return "G-CSF: not routine in uncomplicated febrile neutropenia (ASCO); no high-risk feature on record."
    reasons = "; ".join(f"{escape(r.name)} ({escape(r.evidence)})" for r in a.g_csf_reasons)
    return f"Consider G-CSF (ASCO high-risk features): {reasons}."


def _gcsf_suggestion(a: FnAssessment, reason: str, patient_id: str, encounter_id: str | None) -> Suggestion | None:
    if a.g_csf or not a.g_csf_reasons:
        return None
    per_kg = fn_rule("filgrastim_mcg_per_kg_day").value
    why = a.g_csf_reasons[0].name
    weight = a.weight_current
    if not a.adult or weight is None:
        text = "Dose by weight per the paediatric protocol." if a.child else f"{_weight_line(a)} Dose by weight."
        resource = draft_medication("filgrastim_sc", patient_id, encounter_id, reason, dose_text=text)
        resource["dosageInstruction"][0].pop("doseAndRate", None)
        return Suggestion(
            f"Consider filgrastim ({why})"[:200],
            (Action("create", "Draft order: filgrastim", resource),),
        )
    dose = per_kg * weight.value
    text = f"{dose:.0f} mcg daily = {per_kg:g} mcg/kg × {number(weight.value)} kg weighed {weight.time:%Y-%m-%d}."
    return Suggestion(
        f"Consider filgrastim {dose:.0f} mcg SC daily ({why})"[:200],
        (
            Action(
                "create",
                "Draft order: filgrastim",
                draft_medication("filgrastim_sc", patient_id, encounter_id, reason, dose_ug=dose, dose_text=text),
            ),
        ),
    )


def _prophylaxis_lines(a: FnAssessment) -> list[str]:
    """ASCO/IDSA 2018 prophylaxis by kind with its stop rule; said when the ANC is profound now."""
    profound, days = fn_rule("profound_neutropenia_anc").value, fn_rule("profound_neutropenia_days").value
    if not a.profound:
        return [
            f"ANC not below {profound:g} ×10⁹/L now: prophylaxis trigger (<{profound:g} for >{days:g} days) not met."
        ]
    lines = [f"Profound neutropenia now (ANC <{profound:g} ×10⁹/L). If expected to last more than {days:g} days:"]
    lines += [
        f"{escape(p.kind.capitalize())}: {escape(p.agents)}"
        + (f" {escape(p.condition)}" if p.condition.startswith("if") else "")
        + f"; {escape(p.stop_rule)}."
        for p in prophylaxis()
    ]
    lines.append(_seed("gut_decontamination"))
    return lines


def _temperature_sentence(a: FnAssessment) -> str:
    hours = (a.as_of - a.fever.window_start).total_seconds() / 3600
    if not a.fever.readings:
        return f"**No temperature recorded in the last {hours:g} h: febrile neutropenia cannot be excluded.**"
    latest = a.fever.readings[-1]
    return (
        f"Afebrile by IDSA and CTCAE rules over the last {hours:g} h ({len(a.fever.readings)} readings; "
        f"latest {_temp_text(latest)} at {when(latest.time)})."
    )


def severe_neutropenia_card(a: FnAssessment, gaps: list[str], patient_id: str, encounter_id: str | None) -> Card:
    n = a.neutrophils
    no_temp = not a.fever.readings
    summary = f"Severe neutropenia without fever: {_anc_text(n.latest)}" + (
        "; no temperature: FN not excluded" if no_temp else "; watch for fever"
    )
    single, sustained = fn_rule("idsa_fever_single").value, fn_rule("idsa_fever_sustained").value
    detail = "\n\n".join(
        [
            _temperature_sentence(a),
            *_evidence(a),
            bullets(
                [
                    f"Monitoring: check temperature regularly; a single reading ≥{single:g} °C, or "
                    f"≥{sustained:g} °C over 1 hour, "
                    "is febrile neutropenia: empirical IV antibiotics within 1 hour.",
                    *_prophylaxis_lines(a),
                    "G-CSF: not routine for afebrile neutropenia (ASCO)."
                    if not a.g_csf
                    else f"G-CSF already active ({escape(', '.join(m.text for m in a.g_csf))}).",
                ]
            ),
            *gaps,
            "Sources: IDSA 2010; ASCO/IDSA 2018 prophylaxis (Taplitz, JCO 2018;36:3043); ASCO CSF guideline. "
            f"{DISCLAIMER}",
        ]
    )
    reason = summary
    cbc = Suggestion(
        "Repeat CBC with differential",
        (
            Action(
                "create",
                "Draft order: CBC with differential",
                draft_order("cbc_with_differential", patient_id, encounter_id, reason),
            ),
        ),
    )
    return Card(
        summary=summary,
        indicator="warning",
        source=card_source("severe_neutropenia"),
        detail=detail,
        suggestions=(cbc,),
        selection_behavior="any",
        override_reasons=override_reasons(),
    )


def fever_without_anc_card(a: FnAssessment, gaps: list[str], patient_id: str, encounter_id: str | None) -> Card:
    peak = a.fever.episode.peak
    summary = f"Fever {_temp_text(peak)} with no current ANC: febrile neutropenia cannot be excluded"
    n = a.neutrophils
    stale = (
        f"Latest ANC {number(n.latest.value)} ×10⁹/L from {when(n.latest.time)} is not current."
        if n.latest
        else "No ANC or differential on record."
    )
    detail = "\n\n".join(
        [
            stale,
            *_evidence(a),
            "Check a CBC with differential now; if neutropenic, treat as FN: antibiotics within 1 hour.",
            *gaps,
            DISCLAIMER,
        ]
    )
    cbc = Suggestion(
        "CBC with differential now",
        (
            Action(
                "create",
                "Draft order: CBC with differential",
                draft_order("cbc_with_differential", patient_id, encounter_id, summary),
            ),
        ),
    )
    return Card(
        summary=summary,
        indicator="warning",
        source=card_source("febrile_neutropenia"),
        detail=detail,
        suggestions=(cbc,),
        selection_behavior="any",
        override_reasons=override_reasons(),
    )


def boundary_card(a: FnAssessment, gaps: list[str], patient_id: str, encounter_id: str | None) -> Card:
    """Fever with ANC <1.0 where neither definition is met at the boundary: never silent (issue #12 rule 2)."""
    peak = max(a.fever.readings, key=lambda m: m.value)
    n = a.neutrophils
    summary = (
        f"Fever {_temp_text(peak)} with {_anc_text(n.latest)}: FN definitions missed at the boundary; consider "
        "treating as FN"
    )
    projection = (
        "A single ANC result cannot be projected: repeat the count."
        if n.prediction is None
        else f"ANC projected {number(n.prediction.predicted)} ×10⁹/L in {n.prediction.horizon_hours:g} h."
    )
    detail = "\n\n".join(
        [
            bullets([f"Not met: {escape(m)}." for m in a.boundary_misses] + [projection]),
            *_evidence(a),
            *_child_lines(a),
            "Consider the first-hour set: blood cultures, then one empirical regimen below.",
            *gaps,
            DISCLAIMER,
        ]
    )
    choices = [r for r in a.regimens if r.status != "withheld" and r.kind == "empirical"]
    return Card(
        summary=summary,
        indicator="warning",
        source=card_source("febrile_neutropenia"),
        detail=detail,
        suggestions=tuple(
            replace(s, label=f"Consider: {s.label}"[:200])
            for s in (_regimen_suggestion(c, summary, patient_id, encounter_id) for c in choices)
        ),
        selection_behavior="at-most-one",
        override_reasons=override_reasons(),
    )


def not_excluded_card(a: FnAssessment, gaps: list[str]) -> Card:
    n = a.neutrophils
    hours = (a.as_of - a.fever.window_start).total_seconds() / 3600
    if n.current:
        summary = (
            f"No temperature in the last {hours:g} h: febrile neutropenia cannot be excluded ({_anc_text(n.latest)})"
        )
    else:
        summary = f"Febrile neutropenia not assessed: no current ANC and no temperature in the last {hours:g} h"
    detail = "\n\n".join(["This is **not** a statement that the patient is well.", *_evidence(a), *gaps, DISCLAIMER])
    return Card(summary=summary, indicator="info", source=card_source("febrile_neutropenia"), detail=detail)


def febrile_neutropenia_cards(a: FnAssessment, patient_id: str, encounter_id: str | None = None) -> list[Card]:
    gaps = gap_blocks((), a.issues)
    if a.state is FnState.FEBRILE_NEUTROPENIA:
        return fn_cards(a, gaps, patient_id, encounter_id)
    if a.state is FnState.FEVER_ANC_UNKNOWN:
        return [fever_without_anc_card(a, gaps, patient_id, encounter_id)]
    if a.state is FnState.FEVER_AT_BOUNDARY:
        return [boundary_card(a, gaps, patient_id, encounter_id)]
    if a.state is FnState.SEVERE_NEUTROPENIA:
        return [severe_neutropenia_card(a, gaps, patient_id, encounter_id)]
    if a.state is FnState.NOT_EXCLUDED:
        return [not_excluded_card(a, gaps)]
    return []
