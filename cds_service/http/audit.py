"""The audit trail of every hook call, and alert-fatigue screening of its cards.

A `Trail` lives in `flask.g` for one request: it times each stage and notes where the data came from.
A call that reaches its cards screens them and writes its row (and the alert state) in one transaction,
committed before the response; any other call (4xx) is written once its response exists. A row that
cannot be written is logged and counted (`cytopenia_audit_write_failures_total`), never silent.
Stored: time, service, hook, hookInstance, client issuer/tenant, a keyed hash of the patient id,
resource ids (never the Patient's), latencies, status and per card uuid/finding/indicator/suggestion
uuids. Never stored: tokens, names, resource bodies, error messages (they may echo request content).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g
from flask.globals import request_ctx
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from cards import Card
from cds_service.alert_fatigue import Policy
from cds_service.config import Settings
from cds_service.hooks.service import CdsService
from cds_service.issued_card import IssuedCard
from cds_service.observability.metrics import AUDIT_WRITE_FAILURES, SUPPRESSED_REPEATS
from cds_service.observability.requests import stage
from cds_service.request import HookData
from cds_service.storage import Store
from cds_service.storage.alert_state import Screened, screen
from cds_service.storage.audit import record_call
from cds_service.storage.patient_key import patient_key

log = logging.getLogger(__name__)
AUDITED_ENDPOINT = "call_service"


def store() -> Store:
    return current_app.extensions["cytopenia.store"]


def fatigue_policy(settings: Settings) -> Policy:
    return Policy(timedelta(hours=settings.repeat_window_hours))


def _reference(resource: dict[str, Any]) -> str:
    kind = str(resource.get("resourceType"))
    return kind if kind == "Patient" else f"{kind}/{resource.get('id')}"


def issued_card(card: Card) -> IssuedCard:
    """What the trail, alert-fatigue state and metrics keep of a card."""
    return IssuedCard(
        uuid=card.uuid,
        indicator=card.indicator,
        finding=card.finding,
        trigger=card.trigger,
        grade=card.grade,
        suggestion_uuids=tuple(suggestion.uuid for suggestion in card.suggestions),
    )


def with_history(card: Card, shown_before: datetime | None) -> Card:
    """A repeat that is shown again says when it was shown before."""
    if shown_before is None:
        return card
    note = f"_Shown before on {shown_before:%Y-%m-%d %H:%M} UTC._"
    return replace(card, detail=f"{card.detail}\n\n{note}" if card.detail else note)


@dataclass
class Trail:
    started: float = field(default_factory=time.perf_counter)
    received_at: Any = None
    service: CdsService | None = None
    body: dict[str, Any] = field(default_factory=dict)
    patient_key: str | None = None
    sources: dict[str, Any] = field(default_factory=dict)
    cards: list[Screened] = field(default_factory=list)
    recorded: bool = False

    def note_sources(self, data: HookData) -> None:
        """Per prefetch key: whether the EHR sent it or the service fetched it, and which resources."""
        prefetched = self.body.get("prefetch") or {}
        self.sources = {
            key: {
                "origin": "prefetch" if key in prefetched else "fetched",
                "resources": [_reference(r) for r in resources],
            }
            for key, resources in data.by_key.items()
        }

    def screen(self, cards: list[Card]) -> list[Card]:
        """Hold back repeats and snoozed cards and write this call's audit row, in one transaction; return
        the cards to show (with "Shown before on ..."). Without the database every card is shown."""
        app = request_ctx.app
        now = app.config["CLOCK"]()
        assert self.service is not None, "screen() runs only on a trail begun for a service"
        policy, service_id = fatigue_policy(app.config["SETTINGS"]), self.service.id
        records = [issued_card(card) for card in cards]

        def screen_and_record(connection: Connection) -> list[Screened]:
            with stage("fatigue"):
                screened, showings = screen(connection, service_id, self.patient_key, records, now, policy)
            record_call(connection, self.row(200), screened, showings)
            return screened

        try:
            with stage("store"):
                self.cards = app.extensions["cytopenia.store"].hook_call_transaction(screen_and_record)
            self.recorded = True
        except SQLAlchemyError:
            log.exception("alert-fatigue state and audit row not stored: showing every card")
            self.cards = [Screened(record) for record in records]
        if held := sum(not s.shown for s in self.cards):
            SUPPRESSED_REPEATS.labels(service_id).inc(held)
        return [with_history(card, s.shown_before) for card, s in zip(cards, self.cards, strict=True) if s.shown]

    def shown(self) -> list[IssuedCard]:
        return [s.card for s in self.cards if s.shown]

    def row(self, status: int) -> dict[str, Any]:
        called = request_ctx.request
        caller = called.environ.get("cytopenia.caller")
        total = round((time.perf_counter() - self.started) * 1000, 3)
        return {
            "received_at": self.received_at,
            "service_id": self.service.id if self.service else (called.view_args or {}).get("service_id") or "",
            "hook": self.body.get("hook"),
            "hook_instance": self.body.get("hookInstance"),
            "client_issuer": getattr(caller, "issuer", None),
            "client_tenant": getattr(caller, "tenant", None),
            "patient_key": self.patient_key,
            "status": status,
            "data_sources": self.sources,
            "latency_ms": dict(g.get("stages", {})),
            "total_ms": total,
        }


def begin(service: CdsService, body: dict[str, Any]) -> Trail:
    trail: Trail = g.audit_trail
    trail.service, trail.body = service, body
    patient_id = (body.get("context") or {}).get("patientId")
    if isinstance(patient_id, str):
        trail.patient_key = patient_key(current_app.extensions["cytopenia.audit_secret"], patient_id)
    return trail


def install(blueprint: Blueprint) -> None:
    """Start a trail before anything else runs for a hook call; write it once the response exists."""

    @blueprint.before_request
    def _start_trail() -> None:
        if request_ctx.request.endpoint == f"{blueprint.name}.{AUDITED_ENDPOINT}":
            g.audit_trail = Trail(received_at=request_ctx.app.config["CLOCK"]())

    @blueprint.after_request
    def _write_trail(response: Response) -> Response:
        trail = g.pop("audit_trail", None)
        if trail is not None and not trail.recorded:
            try:
                store().transaction(lambda c: record_call(c, trail.row(response.status_code), trail.cards))
            except SQLAlchemyError:
                AUDIT_WRITE_FAILURES.labels(trail.service.id if trail.service else "unknown").inc()
                log.exception("audit trail could not be written (status %s)", response.status_code)
        return response
