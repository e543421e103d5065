"""CDS Hooks 2.0.1 routes: discovery and service calls, generated from the declarations."""
from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request

from cds_service import hooks
from cds_service.auth import authenticate
from cds_service.data_access.gather import gather
from cds_service.errors import ApiError
from cds_service.hooks.service import CdsService, HookCall
from cds_service.http.body import json_body

blueprint = Blueprint("cds_hooks", __name__)


def json_response(document: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status=status, mimetype="application/json")


@blueprint.before_request
def _trust_check():
    request.environ["cytopenia.caller"] = authenticate(request, current_app.config["SETTINGS"])


@blueprint.get("/cds-services")
def discovery() -> Response:
    return json_response({"services": [service.discovery() for service in hooks.SERVICES]})


def _service_for(service_id: str, hook: str) -> CdsService:
    declared = hooks.find(service_id)
    if not declared:
        raise ApiError(404, f"no CDS service with id '{service_id}'")
    for service in declared:
        if service.hook == hook:
            return service
    handled = ", ".join(sorted(s.hook for s in declared))
    raise ApiError(400, f"service '{service_id}' does not handle hook '{hook}' (it handles: {handled})", ["hook"])


@blueprint.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    if not hooks.find(service_id):
        raise ApiError(404, f"no CDS service with id '{service_id}'")
    body = json_body(request, "request")
    service = _service_for(service_id, body["hook"])
    call = HookCall(
        hook=body["hook"],
        hook_instance=body["hookInstance"],
        context=body["context"],
        data=gather(service, body, current_app.config["SETTINGS"], request.environ["cytopenia.caller"]),
        as_of=current_app.config["CLOCK"](),
    )
    return json_response({"cards": [card.to_json() for card in service.handler(call)]})
