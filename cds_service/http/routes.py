"""CDS Hooks 2.0.1 routes: discovery and service calls, generated from the declarations."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app
from flask.globals import request_ctx

from cds_service import hooks
from cds_service.clinical.knowledge import SITE_THRESHOLDS
from cds_service.data_access.gather import gather
from cds_service.errors import ApiError
from cds_service.hooks.service import CdsService
from cds_service.http import audit, feedback
from cds_service.http.body import json_body
from cds_service.http.caps import check_draft_orders
from cds_service.observability.requests import mark_hook_call, record_cards, stage
from cds_service.request import HookCall

blueprint = Blueprint("cds_hooks", __name__)
APP_LAUNCH_PATH = "/app/launch.html"
audit.install(blueprint)
blueprint.register_blueprint(feedback.blueprint)


def json_response(document: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status=status, mimetype="application/json")


@blueprint.get("/cds-services")
def discovery() -> Response:
    return json_response(
        {"services": [service.discovery() for service in current_app.extensions["cytopenia.services"]]}
    )


def _enabled(app: Flask, service_id: str) -> list[CdsService]:
    """Declarations the called id reaches, a retired id included: it answers but is not listed."""
    ids = hooks.current_ids(service_id)
    return [s for s in app.extensions["cytopenia.answering_services"] if s.id in ids]


def _service_for(app: Flask, service_id: str, hook: str) -> CdsService:
    declared = _enabled(app, service_id)
    if not declared:
        raise ApiError(404, f"no CDS service with id '{service_id}'")
    for service in declared:
        if service.hook == hook:
            return service
    handled = ", ".join(sorted(s.hook for s in declared))
    raise ApiError(400, f"service '{service_id}' does not handle hook '{hook}' (it handles: {handled})", ["hook"])


@blueprint.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    app, called = request_ctx.app, request_ctx.request  # the objects behind Flask's proxies, looked up once
    if not _enabled(app, service_id):
        raise ApiError(404, f"no CDS service with id '{service_id}'")
    mark_hook_call(service_id)
    body = json_body(called, "request", cap=check_draft_orders)
    mark_hook_call(service_id, hook_instance=body["hookInstance"])
    service = _service_for(app, service_id, body["hook"])
    mark_hook_call(service_id, service.hook)
    trail = audit.begin(service, body)
    settings = app.config["SETTINGS"]
    with stage("gather"):
        data = gather(
            service.prefetch,
            body,
            settings,
            called.environ["cytopenia.caller"],
            app.extensions["cytopenia.fhir_access"],
        )
    trail.note_sources(data)
    call = HookCall(
        hook=body["hook"],
        hook_instance=body["hookInstance"],
        context=body["context"],
        data=data,
        as_of=app.config["CLOCK"](),
        settings=settings,
        app_launch_url=(settings.public_base_url or called.host_url.rstrip("/")) + APP_LAUNCH_PATH,
    )
    site = SITE_THRESHOLDS.set(app.extensions["cytopenia.thresholds"])
    try:
        with stage("evaluate"):
            cards = service.handler(call)
    finally:
        SITE_THRESHOLDS.reset(site)
    cards = trail.screen(cards)
    record_cards(service.id, trail.shown())
    return json_response({"cards": [card.to_json() for card in cards]})
