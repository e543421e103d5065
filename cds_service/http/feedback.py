"""`POST /cds-services/{id}/feedback`: accepted or overridden cards, durably stored before the 200.

Idempotent (a resent item is stored once) and tolerant: feedback naming a card uuid the service never
issued is stored and flagged, not rejected. Nested under the hooks blueprint, so the same trust check runs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from cds_service import hooks
from cds_service.errors import ApiError
from cds_service.http.audit import store
from cds_service.http.body import json_body
from cds_service.storage.feedback import record_feedback

log = logging.getLogger(__name__)
blueprint = Blueprint("feedback", __name__)


def _outcome_time(item: dict, index: int) -> datetime:
    try:
        moment = datetime.fromisoformat(item["outcomeTimestamp"])
    except ValueError:
        raise ApiError(
            400,
            f"feedback[{index}].outcomeTimestamp is not an ISO 8601 date-time",
            [f"feedback[{index}].outcomeTimestamp"],
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@blueprint.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str) -> Response:
    if not hooks.find(service_id, current_app.extensions["cytopenia.declared_services"]):
        raise ApiError(404, f"no CDS service with id '{service_id}'")
    body = json_body(request, "feedback")
    items = [(item, _outcome_time(item, i)) for i, item in enumerate(body["feedback"])]
    settings = current_app.config["SETTINGS"]
    caller = request.environ.get("cytopenia.caller")
    try:
        outcome = record_feedback(
            store().engine,
            service_id,
            items,
            now=current_app.config["CLOCK"](),
            snooze_for=timedelta(hours=settings.override_snooze_hours),
            issuer=getattr(caller, "issuer", None),
            tenant=getattr(caller, "tenant", None),
        )
    except SQLAlchemyError:
        log.exception("feedback could not be stored")
        raise ApiError(503, "feedback could not be stored; please retry", headers={"Retry-After": "5"}) from None
    if outcome.unknown_cards:
        log.info("feedback for %d card(s) this service did not issue (stored, flagged)", outcome.unknown_cards)
    return Response(status=200)
