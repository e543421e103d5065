"""Storing CDS Hooks feedback: once per distinct item, flagged when the card is not one we issued.

One request's items go in together: one read of the cards they name, one INSERT for all of them. An
override with a reason snoozes the card's finding for that patient (see `alert_state.snooze`).
`TEXT_LIMITS` is what the columns hold; the request layer refuses anything longer (one source for both).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Engine, Table, select

from cds_service.storage.alert_state import snooze
from cds_service.storage.audit import storable_text
from cds_service.storage.engine import in_transaction
from cds_service.storage.models import CardRecord, FeedbackRecord
from cds_service.storage.sql import insert_new

# A declarative model's `__table__` is typed as a FromClause; for a mapped class with `__tablename__` it is
# always the Table itself, which is what `insert_new` needs.
FEEDBACK = cast(Table, FeedbackRecord.__table__)
TEXT_LIMITS: dict[str, int] = {
    column.name: length for column in FEEDBACK.columns if (length := getattr(column.type, "length", None))
}


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """One feedback item as the request layer checked and normalised it; `received` is the item as sent."""

    received: dict[str, Any]
    card: str
    outcome: str
    outcome_at: datetime
    accepted_suggestions: tuple[str, ...]
    override_system: str | None
    override_code: str | None
    override_display: str | None
    user_comment: str | None

    @property
    def has_reason(self) -> bool:
        return bool(self.override_code or self.override_system or self.user_comment)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a batch went: stored now, already stored before, and how many name a card we never issued."""

    stored: int
    duplicates: int
    unknown_cards: int


def fingerprint(service_id: str, item: dict[str, Any]) -> str:
    """Same service and same item (key order aside) -> same fingerprint -> stored once."""
    return hashlib.sha256(service_id.encode() + b"\0" + orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()


def record_feedback(
    engine: Engine,
    service_id: str,
    items: Sequence[FeedbackItem],
    *,
    now: datetime,
    snooze_for: timedelta,
    issuer: str | None,
    tenant: Any,
) -> Outcome:
    """Store the items in one transaction; returns only after the commit. Run once more on a fresh connection
    if the pooled one was dropped by the database (items are stored once however often they are run)."""
    by_fingerprint = {fingerprint(service_id, item.received): item for item in items}

    def store(connection: Connection) -> Outcome:
        cards = {
            row.uuid: row
            for row in connection.execute(
                select(CardRecord.uuid, CardRecord.finding, CardRecord.patient_key).where(
                    CardRecord.uuid.in_({item.card for item in items}), CardRecord.service_id == service_id
                )
            )
        }
        rows = [
            {
                "fingerprint": key,
                "received_at": now,
                "service_id": service_id,
                "card_uuid": item.card,
                "known_card": item.card in cards,
                "outcome": item.outcome,
                "outcome_at": item.outcome_at,
                "accepted_suggestions": list(item.accepted_suggestions),
                "override_system": item.override_system,
                "override_code": item.override_code,
                "override_display": item.override_display,
                "user_comment": item.user_comment,
                "client_issuer": storable_text(issuer, TEXT_LIMITS["client_issuer"]),
                "client_tenant": storable_text(tenant, TEXT_LIMITS["client_tenant"]),  # the token's, as sent
            }
            for key, item in by_fingerprint.items()
        ]
        inserted = insert_new(connection, FEEDBACK, rows, FEEDBACK.c.fingerprint)
        snoozes = {
            (card.finding, card.patient_key)
            for key in inserted
            if (item := by_fingerprint[key]).outcome == "overridden" and item.has_reason
            if (card := cards.get(item.card)) is not None and card.finding and card.patient_key
        }
        for finding, patient_key in sorted(snoozes):
            snooze(connection, service_id, finding, patient_key, now + snooze_for)
        return Outcome(len(inserted), len(items) - len(inserted), sum(item.card not in cards for item in items))

    return in_transaction(engine, store)
