"""Every error leaves as a FHIR OperationOutcome with the right status, never with internals."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from cds_service.data_access.gather import RequiredDataUnavailable
from cds_service.request import InvalidRequest

log = logging.getLogger(__name__)

ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
    429: "throttled",
    503: "transient",
}


class ApiError(Exception):
    """An expected failure with a message safe to show the caller."""

    def __init__(self, status: int, message: str, expression: list[str] | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.expression = expression
        self.headers = headers or {}


def operation_outcome(status: int, message: str, expression: list[str] | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": "error" if status < 500 else "fatal",
        "code": ISSUE_CODES.get(status, "exception"),
        "details": {"text": message},
    }
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(
    status: int, message: str, expression: list[str] | None = None, headers: dict | None = None
) -> Response:
    return Response(
        orjson.dumps(operation_outcome(status, message, expression)),
        status=status,
        mimetype="application/fhir+json",
        headers=headers,
    )


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return outcome_response(error.status, error.message, error.expression, error.headers)

    @app.errorhandler(InvalidRequest)
    def _invalid_request(error: InvalidRequest) -> Response:
        return outcome_response(400, error.message, error.expression)

    @app.errorhandler(RequiredDataUnavailable)
    def _required_data_unavailable(error: RequiredDataUnavailable) -> Response:
        return outcome_response(412, error.message, error.expression)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        allowed = getattr(error, "valid_methods", None)  # only MethodNotAllowed carries it
        headers = {"Allow": ", ".join(allowed)} if allowed else None
        return outcome_response(error.code or 500, error.description or error.name, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error while serving a request", exc_info=error)
        return outcome_response(500, "internal error: the service could not process this request")
