"""What the service keeps: hook calls (audit), the cards it issued, feedback, and alert-fatigue state.

No tokens, no names, no resource bodies: patients appear only as a keyed hash (`patient_key`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only auto-increments INTEGER PRIMARY KEY


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, also on SQLite (which keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store times in UTC with a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class HookCallRecord(Base):
    """One CDS Hooks call as audited: who asked, about which (hashed) patient, what data, how fast, what came of it."""

    __tablename__ = "hook_call"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    service_id: Mapped[str] = mapped_column(String(200))
    hook: Mapped[str | None] = mapped_column(String(200))
    hook_instance: Mapped[str | None] = mapped_column(String(200))
    client_issuer: Mapped[str | None] = mapped_column(String(500))
    client_tenant: Mapped[str | None] = mapped_column(String(200))
    patient_key: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[int] = mapped_column(Integer)
    data_sources: Mapped[dict] = mapped_column(JSON)
    latency_ms: Mapped[dict] = mapped_column(JSON)
    total_ms: Mapped[float] = mapped_column(Float)


class CardRecord(Base):
    """A card the service produced for a call: shown, or held back as a repeat or snoozed."""

    __tablename__ = "card"

    uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("hook_call.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    service_id: Mapped[str] = mapped_column(String(200))
    finding: Mapped[str | None] = mapped_column(String(100))
    indicator: Mapped[str] = mapped_column(String(20))
    grade: Mapped[int] = mapped_column(Integer)
    patient_key: Mapped[str | None] = mapped_column(String(64))
    suggestion_uuids: Mapped[list] = mapped_column(JSON)
    shown: Mapped[bool] = mapped_column(Boolean)
    suppressed: Mapped[str | None] = mapped_column(String(20))
    shown_before: Mapped[datetime | None] = mapped_column(UtcDateTime)


class FeedbackRecord(Base):
    """One feedback item as received; `fingerprint` makes a resent item a no-op."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    service_id: Mapped[str] = mapped_column(String(200))
    card_uuid: Mapped[str] = mapped_column(String(200), index=True)
    known_card: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(20))
    outcome_at: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_suggestions: Mapped[list] = mapped_column(JSON)
    override_system: Mapped[str | None] = mapped_column(String(500))
    override_code: Mapped[str | None] = mapped_column(String(200))
    override_display: Mapped[str | None] = mapped_column(String(500))
    user_comment: Mapped[str | None] = mapped_column(Text)
    client_issuer: Mapped[str | None] = mapped_column(String(500))
    client_tenant: Mapped[str | None] = mapped_column(String(200))


class AlertState(Base):
    """When a card was last shown for a patient, on which result, and any snooze. `version` guards races."""

    __tablename__ = "alert_state"

    service_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    finding: Mapped[str] = mapped_column(String(100), primary_key=True)
    patient_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    trigger_hash: Mapped[str] = mapped_column(String(64))
    grade: Mapped[int] = mapped_column(Integer)
    last_shown_at: Mapped[datetime] = mapped_column(UtcDateTime)
    snoozed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer)
