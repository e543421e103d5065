"""The SMART app under /app/: its static pages and the one endpoint that runs the rules for it."""

from __future__ import annotations

from importlib import resources

import orjson
from flask import Blueprint, Response, abort, current_app, request, send_from_directory

from cds_service.clinical.risk_scores import BURDEN_LEVELS, ClinicianAnswers
from cds_service.errors import ApiError
from cds_service.http.body import json_body
from cds_service.smart_app.reads import app_reads, scopes
from cds_service.smart_app.view import patient_view
from fhir_mappings import read_record

blueprint = Blueprint("smart_app", __name__)
STATIC = str(resources.files("cds_service.smart_app").joinpath("static"))
LAUNCH_PAGE = "launch.html"
APP_PAGE = "index.html"


def content_security_policy() -> str:
    """Scripts and styles only from the service; the app talks to the EHR's FHIR and authorization
    servers (https, or any origin in development mode); it may be framed by the configured EHR origins."""
    settings = current_app.config["SETTINGS"]
    connect = "'self' https: http:" if settings.dev else "'self' https:"
    frames = " ".join(["'self'", *settings.cors_origins])
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; "
        f"base-uri 'none'; form-action 'none'; frame-ancestors {frames}"
    )


@blueprint.get("/app/")
def app_root() -> Response:
    return _static(LAUNCH_PAGE)


@blueprint.get("/app/<path:name>")
def app_file(name: str) -> Response:
    if name.startswith("api/"):
        abort(404)
    return _static(name)


def _static(name: str) -> Response:
    response = send_from_directory(STATIC, name, max_age=0)
    response.headers["Content-Security-Policy"] = content_security_policy()
    return response


@blueprint.get("/app/config.json")
def app_config() -> Response:
    """What the launch page asks the EHR for: this app's client id and the scopes derived from the reads."""
    settings = current_app.config["SETTINGS"]
    document = {
        "clientId": settings.smart_app.client_id,
        "scope": " ".join(scopes()),
        "redirectUri": APP_PAGE,
        "reads": [{"resourceType": kind, "query": query} for kind, query in app_reads()],
    }
    return Response(orjson.dumps(document), mimetype="application/json")


def _answers(body: dict) -> ClinicianAnswers:
    answers = body.get("answers") or {}
    burden = answers.get("burdenOfIllness")
    if burden is not None and burden not in BURDEN_LEVELS:
        known = ", ".join(BURDEN_LEVELS)
        raise ApiError(400, f"answers.burdenOfIllness must be one of: {known}", ["answers.burdenOfIllness"])
    return ClinicianAnswers(burden, answers.get("dehydrationNeedingIvFluids"))


@blueprint.post("/app/api/patient-view")
def evaluate() -> Response:
    """The app's resources in, the series, bands, scores and checklist out. Only for the token's patient."""
    body = json_body(request, "app-request", "app request")
    patient = body["patient"]
    caller = request.environ["cytopenia.app_caller"]
    if caller.patient is not None and patient.get("id") != caller.patient:
        raise ApiError(403, "the resources are not for the patient this app was launched for", ["patient.id"])
    record = read_record(patient, body["resources"], patient.get("id"))
    view = patient_view(
        record, current_app.config["CLOCK"](), _answers(body), tuple(sorted(set(body.get("notRead", ()))))
    )
    return Response(orjson.dumps(view), mimetype="application/json")
