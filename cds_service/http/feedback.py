"""`POST /cds-services/{id}/feedback`: accepted or overridden cards, durably stored before the 200.

Idempotent (a resent item is stored once) and tolerant: feedback naming a card uuid the service never
issued is stored and flagged, not rejected, and the old Sandbox's shapes are read. What the database
cannot hold (text longer than its column, a NUL character, a code that is not text) is a 400 naming the
item, checked here against the storage limits, so the EHR does not resend it forever; only a database
that cannot be reached answers 503 with Retry-After. Nested under the hooks blueprint: the same trust check runs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from cds_service import hooks
from cds_service.compute_turn import waiting
from cds_service.errors import ApiError
from cds_service.http.audit import store
from cds_service.http.body import json_body
from cds_service.http.caps import check_feedback_items
from cds_service.storage.feedback import TEXT_LIMITS, FeedbackItem, record_feedback

log = logging.getLogger(__name__)
blueprint = Blueprint("feedback", __name__)
RETRY_AFTER_SECONDS = 5
CODING = ("system", "code", "display")
# Where each stored text comes from in a feedback item, and the column that keeps it.
COLUMNS = {
    "card": "card_uuid",
    "system": "override_system",
    "code": "override_code",
    "display": "override_display",
}


def _refuse(where: str, problem: str) -> NoReturn:
    raise ApiError(400, f"{where} {problem}", [where])


def _text(value: Any, where: str, column: str | None = None) -> str:
    if not isinstance(value, str):
        _refuse(where, "must be a string")
    if "\x00" in value:
        _refuse(where, "must not contain a NUL character")
    limit = TEXT_LIMITS.get(column) if column else None
    if limit is not None and len(value) > limit:
        _refuse(where, f"is {len(value)} characters long; at most {limit} are stored")
    return value


def _outcome_time(value: str, where: str) -> datetime:
    """The outcome time in UTC; a time that has no UTC equivalent (year 1 east of Greenwich) is refused here,
    not by the database."""
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        _refuse(where, "is not an ISO 8601 date-time with a UTC equivalent")


def _reason(given: dict[str, Any], where: str) -> dict[str, str | None]:
    """The Coding, from `overrideReason.reason`, or from `overrideReason` itself in the old Sandbox's shape
    (cds-hooks/sandbox PR #135), where a code could also come as a list of one."""
    coding = given.get("reason") if "reason" in given else {k: given[k] for k in CODING if k in given}
    where = f"{where}.reason" if "reason" in given else where
    if not isinstance(coding, dict):
        _refuse(where, "must be a Coding (an object with system and code)")
    code = coding.get("code")
    if isinstance(code, list) and len(code) == 1:
        code = code[0]
    return {
        name: None if coding.get(name) is None else _text(value, f"{where}.{name}", COLUMNS[name])
        for name, value in zip(CODING, (coding.get("system"), code, coding.get("display")), strict=True)
    }


def checked_item(item: dict[str, Any], index: int) -> FeedbackItem:
    where = f"feedback[{index}]"
    given = item.get("overrideReason") or {}
    reason = _reason(given, f"{where}.overrideReason")
    comment = given.get("userComment")
    if comment is not None:
        comment = _text(comment, f"{where}.overrideReason.userComment").strip() or None
    return FeedbackItem(
        received=item,
        card=_text(item["card"], f"{where}.card", COLUMNS["card"]),
        outcome=item["outcome"],
        outcome_at=_outcome_time(item["outcomeTimestamp"], f"{where}.outcomeTimestamp"),
        accepted_suggestions=tuple(
            _text(s["id"], f"{where}.acceptedSuggestions[{n}].id")
            for n, s in enumerate(item.get("acceptedSuggestions") or ())
        ),
        override_system=reason["system"],
        override_code=reason["code"],
        override_display=reason["display"],
        user_comment=comment,
    )


@blueprint.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str) -> Response:
    settings = current_app.config["SETTINGS"]
    if not hooks.find(
        service_id, current_app.extensions["cytopenia.services"]
    ):  # enabled (a retired id: its successors)
        raise ApiError(404, f"no CDS service with id '{service_id}'")
    body = json_body(request, "feedback", cap=check_feedback_items)
    items = [checked_item(item, i) for i, item in enumerate(body["feedback"])]
    caller = request.environ.get("cytopenia.caller")
    try:
        with waiting():
            outcome = record_feedback(
                store().engine,
                service_id,
                items,
                now=current_app.config["CLOCK"](),
                snooze_for=timedelta(hours=settings.override_snooze_hours),
                issuer=getattr(caller, "issuer", None),
                tenant=getattr(caller, "tenant", None),
            )
    except SQLAlchemyError as error:
        log.error("feedback could not be stored (%s)", type(error).__name__)
        raise ApiError(
            503, "feedback could not be stored; please retry", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        ) from None
    if outcome.unknown_cards:
        log.info("feedback for %d card(s) this service did not issue (stored, flagged)", outcome.unknown_cards)
    return Response(status=200)
