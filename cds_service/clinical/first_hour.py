"""The febrile-neutropenia first hour as a read-only checklist: what the record shows was done.

Cultures and the first antibiotic dose are looked for from the fever onset (or, without a fever,
from the start of the fever look-back window). What the record does not show is "not recorded",
never "not done"; what the app could not read is "not read".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cds_service.clinical.febrile_neutropenia import FnAssessment
from cds_service.clinical.knowledge import PACKAGE, fn_rule
from cds_service.knowledge_tables import KnowledgeError, Row, knowledge_loader, read_table
from fhir_mappings import ClinicalRecord


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    label: str
    status: str  # "recorded", "ordered", "not recorded" or "not read"
    evidence: str
    source: str


@dataclass(frozen=True, slots=True)
class FirstHour:
    fever_onset: datetime | None
    fever_evidence: str
    hours_since_onset: float | None
    items: tuple[ChecklistItem, ...]


@dataclass(frozen=True, slots=True)
class BloodCultureSets:
    """How many blood-culture sets the first hour asks for, and where each is drawn (one site per set)."""

    count: int
    sites: tuple[str, ...]
    source: str


@knowledge_loader
def _rows() -> dict[str, Row]:
    return {row["name"]: row for row in read_table(PACKAGE, "first_hour.csv")}


@knowledge_loader
def blood_culture_sets() -> BloodCultureSets:
    """The `blood_culture_sets` row: a whole number of sets, at least one, with exactly one site for each,
    so the card drafts as many orders as it says (checked at start-up, naming the row)."""
    row = _rows()["blood_culture_sets"]
    count = float(row["value"]) if row["value"] else 0.0  # empty: said below as not a number of sets
    sites = tuple(site.strip() for site in row["sites"].split(";") if site.strip())
    where = f"{row.table}, line {row.line}"
    if count < 1 or not count.is_integer():
        raise KnowledgeError(f"{where}: value {row['value']!r} is not a whole number of sets (at least 1)")
    if len(sites) != count:
        raise KnowledgeError(f"{where}: {count:g} sets but {len(sites)} sites: give one site per set, ';'-separated")
    return BloodCultureSets(int(count), sites, row["source"])


@dataclass(frozen=True, slots=True)
class DailyCbc:
    """The CBC the first hour drafts: every `period_days` (the card says "daily"), for `duration`."""

    period_days: float
    duration: str
    source: str


@knowledge_loader
def daily_cbc() -> DailyCbc:
    """The `daily_cbc` row: its duration is printed as written, a `{name}` in it replaced by that
    febrile-neutropenia threshold's value (so the recovery it waits for follows the rule's own row), and its
    period must be the 1 d the card calls "daily" (checked at start-up, naming the row)."""
    row = _rows()["daily_cbc"]
    where = f"{row.table}, line {row.line}"
    if not row["duration"].strip():
        raise KnowledgeError(f"{where}: duration is empty: a card prints it from this row")
    if row["unit"] != "d" or not row["value"] or float(row["value"]) != 1:
        raise KnowledgeError(f"{where}: every {row['value']!r} {row['unit']} is not daily, as the card says")
    try:
        duration = re.sub(r"\{(\w+)\}", lambda name: f"{fn_rule(name[1]).value:g}", row["duration"])
    except KeyError as unknown:
        raise KnowledgeError(f"{where}: duration names {unknown}, not a febrile_neutropenia.csv row") from None
    return DailyCbc(1.0, duration, row["source"])


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "time not recorded"


def _cultures(record: ClinicalRecord, since: datetime, as_of: datetime, not_read: tuple[str, ...]) -> ChecklistItem:
    sets = blood_culture_sets()
    wanted = sets.count
    label = f"Blood cultures: {wanted} sets before the first antibiotic dose"
    recent = [c for c in record.blood_cultures if c.time is not None and since <= c.time <= as_of]
    taken = [c for c in recent if c.stage == "taken"]
    ordered = [c for c in recent if c.stage == "ordered"]
    if taken:
        listed = "; ".join(f"{_when(c.time)} ({c.source})" for c in taken)
        return ChecklistItem(label, "recorded", f"{len(taken)} of {wanted} taken: {listed}", sets.source)
    if ordered:
        listed = "; ".join(f"{_when(c.time)} ({c.source}, {c.status})" for c in ordered)
        return ChecklistItem(label, "ordered", f"ordered, no result recorded yet: {listed}", sets.source)
    if {"Observation", "ServiceRequest"} <= set(not_read):
        return ChecklistItem(label, "not read", "observations and orders could not be read", sets.source)
    return ChecklistItem(label, "not recorded", "no blood culture recorded since " + _when(since), sets.source)


def _first_dose(
    record: ClinicalRecord, since: datetime, onset: datetime | None, as_of: datetime, not_read: tuple[str, ...]
) -> ChecklistItem:
    row = _rows()["first_dose_groups"]
    goal = fn_rule("antibiotics_within_minutes")
    label = f"First empirical antibiotic dose (goal: within {goal.value:g} min of triage)"
    source = f"{goal.source}; {row['source']}"
    groups = frozenset(row["groups"].split(";"))
    given = next((a for a in record.administrations if since <= a.time <= as_of and a.groups & groups), None)
    if given is not None:
        after = f", {(given.time - onset).total_seconds() / 60:.0f} min after fever onset" if onset else ""
        return ChecklistItem(label, "recorded", f"{given.text} at {_when(given.time)}{after} ({given.source})", source)
    ordered = next(
        (
            m
            for m in record.medications
            if m.authored_on is not None and since <= m.authored_on <= as_of and m.groups & groups
        ),
        None,
    )
    if ordered is not None:
        evidence = (
            f"{ordered.text} ordered at {_when(ordered.authored_on)} ({ordered.source}); no administration recorded"
        )
        return ChecklistItem(label, "ordered", evidence, source)
    if "MedicationAdministration" in not_read:
        return ChecklistItem(label, "not read", "medication administrations could not be read", source)
    return ChecklistItem(label, "not recorded", "no antibiotic administration recorded since " + _when(since), source)


def first_hour(fn: FnAssessment, record: ClinicalRecord, as_of: datetime, not_read: tuple[str, ...] = ()) -> FirstHour:
    episode = fn.fever.episode
    onset = episode.onset if episode else None
    since = onset or fn.fever.window_start
    if episode:
        fever = f"{episode.description}; first qualifying reading {_when(onset)} ({episode.readings[0].source})"
    else:
        fever = f"no fever recorded since {_when(fn.fever.window_start)}"
    return FirstHour(
        fever_onset=onset,
        fever_evidence=fever,
        hours_since_onset=round((as_of - onset).total_seconds() / 3600, 2) if onset else None,
        items=(_cultures(record, since, as_of, not_read), _first_dose(record, since, onset, as_of, not_read)),
    )
