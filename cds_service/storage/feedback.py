"""Storing CDS Hooks feedback: once per distinct item, flagged when the card is not one we issued.

An override with a reason snoozes the card's finding for that patient (see `alert_state.snooze`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, select

from cds_service.storage.alert_state import snooze
from cds_service.storage.models import CardRecord, FeedbackRecord
from cds_service.storage.sql import insert_unless_present


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a batch went: stored now, already stored before, and how many name a card we never issued."""

    stored: int
    duplicates: int
    unknown_cards: int


def fingerprint(service_id: str, item: dict[str, Any]) -> str:
    """Same service and same item (key order aside) -> same fingerprint -> stored once."""
    return hashlib.sha256(service_id.encode() + b"\0" + orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()


def override_reason(item: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(reason Coding, userComment); also reads the old Sandbox shape without the `reason` wrapper."""
    given = item.get("overrideReason") or {}
    reason = given.get("reason") or (given if "code" in given else {})
    comment = given.get("userComment")
    return reason, comment if isinstance(comment, str) and comment.strip() else None


def record_feedback(
    engine: Engine,
    service_id: str,
    items: Sequence[tuple[dict[str, Any], datetime]],
    *,
    now: datetime,
    snooze_for: timedelta,
    issuer: str | None,
    tenant: str | None,
) -> Outcome:
    """Store (item, parsed outcomeTimestamp) pairs in one transaction; returns only after the commit."""
    stored = duplicates = unknown = 0
    with engine.begin() as connection:
        for item, outcome_at in items:
            card = connection.execute(
                select(CardRecord).where(CardRecord.uuid == item["card"], CardRecord.service_id == service_id)
            ).first()
            reason, comment = override_reason(item)
            unknown += card is None
            inserted = insert_unless_present(
                connection,
                FeedbackRecord.__table__,
                {
                    "fingerprint": fingerprint(service_id, item),
                    "received_at": now,
                    "service_id": service_id,
                    "card_uuid": item["card"],
                    "known_card": card is not None,
                    "outcome": item["outcome"],
                    "outcome_at": outcome_at,
                    "accepted_suggestions": [s["id"] for s in item.get("acceptedSuggestions") or ()],
                    "override_system": reason.get("system"),
                    "override_code": reason.get("code"),
                    "override_display": reason.get("display"),
                    "user_comment": comment,
                    "client_issuer": issuer,
                    "client_tenant": tenant,
                },
            )
            if not inserted:
                duplicates += 1
                continue
            stored += 1
            if card and item["outcome"] == "overridden" and (reason or comment) and card.finding and card.patient_key:
                snooze(connection, service_id, card.finding, card.patient_key, now + snooze_for)
    return Outcome(stored, duplicates, unknown)
