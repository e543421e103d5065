"""Fever from a temperature series: IDSA 2010 and CTCAE v5.0, each as its own named rule.

IDSA 2010: a single reading >=38.3 C, or >=38.0 C sustained over one hour (two or more readings at
or above 38.0 spanning at least 60 minutes with none below in between). CTCAE v5.0: a single reading
>38.3 C, or >=38 C for more than one hour. Thresholds and their sources: `data/febrile_neutropenia.csv`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.clinical.knowledge import fn_rule
from fhir_mappings import Measurement


@dataclass(frozen=True, slots=True)
class FeverEpisode:
    """The readings that meet one fever rule; `onset` is the first of them."""

    rule: str
    description: str
    readings: tuple[Measurement, ...]

    @property
    def onset(self) -> datetime:
        return self.readings[0].time

    @property
    def peak(self) -> Measurement:
        return max(self.readings, key=lambda m: m.value)


@dataclass(frozen=True, slots=True)
class FeverAssessment:
    """Both rules over the readings of the look-back window, and what the window held."""

    window_start: datetime
    readings: tuple[Measurement, ...]
    idsa: FeverEpisode | None
    ctcae: FeverEpisode | None

    @property
    def febrile(self) -> bool:
        return self.idsa is not None or self.ctcae is not None

    @property
    def episode(self) -> FeverEpisode | None:
        return self.idsa or self.ctcae


def _celsius(m: Measurement) -> float:
    """Compare at 0.01 C so that a Fahrenheit conversion lands where the guideline's rounding put it."""
    return round(m.value, 2)


def _latest_single(readings: Sequence[Measurement], meets: Callable[[float], bool]) -> Measurement | None:
    return next((m for m in reversed(readings) if meets(_celsius(m))), None)


def _latest_sustained(
    readings: Sequence[Measurement], at_least: float, long_enough: Callable[[timedelta], bool]
) -> tuple[Measurement, ...] | None:
    """The most recent unbroken run of readings >= `at_least` whose span satisfies `long_enough`."""
    best: tuple[Measurement, ...] | None = None
    run: list[Measurement] = []
    for m in readings:
        if _celsius(m) >= at_least:
            run.append(m)
            if len(run) >= 2 and long_enough(run[-1].time - run[0].time):
                best = tuple(run)
        else:
            run = []
    return best


def _idsa(readings: Sequence[Measurement]) -> FeverEpisode | None:
    rule = f"{fn_rule('idsa_fever_single').cited_as} fever"
    single = fn_rule("idsa_fever_single").value
    sustained = fn_rule("idsa_fever_sustained").value
    minutes = fn_rule("idsa_fever_sustained_minutes").value
    run = _latest_sustained(readings, sustained, lambda span: span >= timedelta(minutes=minutes))
    hit = _latest_single(readings, lambda c: c >= single)
    if hit and (run is None or hit.time >= run[-1].time):
        return FeverEpisode(rule, f"single reading ≥{single:g} °C", (hit,))
    if run:
        return FeverEpisode(rule, f"≥{sustained:g} °C sustained over {minutes:g} min", run)
    return None


def _ctcae(readings: Sequence[Measurement]) -> FeverEpisode | None:
    rule = f"{fn_rule('ctcae_fever_single').cited_as} fever"
    single = fn_rule("ctcae_fever_single").value
    sustained = fn_rule("ctcae_fever_sustained").value
    minutes = fn_rule("ctcae_fever_sustained_minutes").value
    run = _latest_sustained(readings, sustained, lambda span: span > timedelta(minutes=minutes))
    hit = _latest_single(readings, lambda c: c > single)
    if hit and (run is None or hit.time >= run[-1].time):
        return FeverEpisode(rule, f"single reading >{single:g} °C", (hit,))
    if run:
        return FeverEpisode(rule, f"≥{sustained:g} °C for more than {minutes:g} min", run)
    return None


def assess_fever(temperatures: tuple[Measurement, ...], as_of: datetime, lookback_hours: float) -> FeverAssessment:
    start = as_of - timedelta(hours=lookback_hours)
    readings = tuple(sorted((m for m in temperatures if start <= m.time <= as_of), key=lambda m: m.time))
    return FeverAssessment(start, readings, _idsa(readings), _ctcae(readings))
