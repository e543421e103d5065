"""FHIR date and dateTime parsing; every time becomes timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

# The longest text remembered: an instant with microseconds and an offset has 32 characters. A longer
# text (a request may hold any string where a time belongs) is parsed and forgotten, so the memory the
# cache can hold stays small whatever the requests send.
REMEMBERED_LENGTH = 40


def parse_datetime(text: object) -> datetime | None:
    """Read a FHIR dateTime/instant; a date alone means its first moment, UTC."""
    if not isinstance(text, str) or len(text) < 4:
        return None
    return _remembered(text) if len(text) <= REMEMBERED_LENGTH else _parse(text)


def _parse(text: str) -> datetime | None:
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# A chart's times are read again by each service and each sort; datetimes are immutable, so sharing is safe.
_remembered = lru_cache(maxsize=4096)(_parse)


def parse_date(text: object) -> date | None:
    moment = parse_datetime(text)
    return moment.date() if moment else None
