"""Nadir, direction and persistence of a series."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cds_service.clinical.series import Point


@dataclass(frozen=True, slots=True)
class Trend:
    count: int
    nadir: Point
    falling: bool
    low_since: datetime | None

    def persistent(self, latest: Point, days: float) -> bool:
        return self.low_since is not None and (latest.time - self.low_since).total_seconds() > days * 86400


def trend(points: tuple[Point, ...], is_low: Callable[[Point], bool]) -> Trend | None:
    """Trend of a time-ordered series; `low_since` is the start of the unbroken low run ending now."""
    if not points:
        return None
    low_since = None
    for point in reversed(points):
        if not is_low(point):
            break
        low_since = point.time
    return Trend(
        count=len(points),
        nadir=min(points, key=lambda p: p.value),
        falling=len(points) >= 2 and points[-1].value < points[-2].value,
        low_since=low_since,
    )
