"""OpenAPI 3.1 description of this server, generated from the service declarations and the JSON Schemas.

Nothing here restates a CDS Hooks structure: request, response and discovery bodies are the
project's own schemas (moved under components, their `$defs` renamed), and each enabled service gets
its own path with the hook it answers. The document follows the app's settings: in development mode
calls need no token, in production they need the EHR's signed JWT.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import orjson
from flask import Blueprint, Response, current_app

from cds_service.hooks.service import CdsService
from cds_service.http.schemas import schema

Json = dict[str, Any]
SCHEMAS = {
    "request": "CdsHooksRequest",
    "response": "CdsHooksResponse",
    "discovery": "CdsHooksDiscovery",
    "feedback": "CdsHooksFeedback",
}
OUTCOME_STATUSES = {
    "400": "The body is not a valid CDS Hooks request for this service",
    "401": "No valid credentials from a trusted EHR client",
    "403": "The caller is not allowed this call",
    "412": "Required FHIR data was neither prefetched nor obtainable",
    "404": "No enabled CDS service with this id",
    "413": "The body is larger than the configured limit, or carries more items than a request may (named)",
    "415": "The body is not JSON",
    "429": "Too many calls from this client (Retry-After says when to call again)",
    "503": "A dependency is lost and this request cannot be served now (Retry-After says when to retry)",
}
OPERATION_OUTCOME: Json = {
    "type": "object",
    "description": "FHIR R4 OperationOutcome: every error this server returns",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "details": {"type": "object", "properties": {"text": {"type": "string"}}},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

blueprint = Blueprint("openapi", __name__)


def _relocated(value: Any, prefix: str) -> Any:
    """Rewrite `#/$defs/x` references to the component they become."""
    if isinstance(value, dict):
        return {
            k: (
                f"#/components/schemas/{prefix}.{v[len('#/$defs/') :]}"
                if k == "$ref" and v.startswith("#/$defs/")
                else _relocated(v, prefix)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_relocated(v, prefix) for v in value]
    return value


def components() -> Json:
    schemas: Json = {"OperationOutcome": OPERATION_OUTCOME}
    for name, title in SCHEMAS.items():
        document = {k: v for k, v in schema(name).items() if k not in ("$schema", "$id", "$defs")}
        schemas[title] = _relocated(document, title)
        for key, definition in schema(name).get("$defs", {}).items():
            schemas[f"{title}.{key}"] = _relocated(definition, title)
    return {"schemas": schemas}


def _ref(title: str) -> Json:
    return {"$ref": f"#/components/schemas/{title}"}


def _outcomes(statuses: tuple[str, ...]) -> Json:
    return {
        status: {
            "description": OUTCOME_STATUSES[status],
            "content": {"application/fhir+json": {"schema": _ref("OperationOutcome")}},
        }
        for status in statuses
    }


def _service_path(services: list[CdsService], dev: bool) -> Json:
    first = services[0]
    hooks = sorted({s.hook for s in services})
    body = {"allOf": [_ref("CdsHooksRequest"), {"properties": {"hook": {"enum": hooks}}}]}
    statuses = ("400", "412", "413", "415") if dev else ("400", "401", "403", "412", "413", "415", "429", "503")
    return {
        "post": {
            "operationId": f"call-{first.id}",
            "summary": first.title,
            "description": first.description,
            "tags": ["CDS Hooks"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {
                    "description": "Cards (possibly none) for the clinician",
                    "content": {"application/json": {"schema": _ref("CdsHooksResponse")}},
                },
                **_outcomes(statuses),
            },
        }
    }


def _feedback_path(service: CdsService, dev: bool) -> Json:
    statuses = ("400", "404", "413", "415", "503") if dev else ("400", "401", "403", "404", "413", "415", "429", "503")
    return {
        "post": {
            "operationId": f"feedback-{service.id}",
            "summary": f"Feedback on the cards of {service.title}",
            "description": "What the clinician did with cards: accepted (with the suggestions taken) or overridden "
            "(with a reason). Stored durably before the 200; a resent item is stored once.",
            "tags": ["CDS Hooks"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CdsHooksFeedback")}}},
            "responses": {"200": {"description": "Stored"}, **_outcomes(statuses)},
        }
    }


def _plain(summary: str, responses: Json, tag: str = "Operations") -> Json:
    return {"get": {"summary": summary, "tags": [tag], "security": [], "responses": responses}}


def _probe_response(description: str) -> Json:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string"},
                        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                }
            }
        },
    }


def openapi_document(services: list[CdsService], *, dev: bool, base_url: str | None) -> Json:
    by_id: dict[str, list[CdsService]] = {}
    for service in services:
        by_id.setdefault(service.id, []).append(service)
    discovery_statuses = () if dev else ("401", "403")
    paths: Json = {
        "/cds-services": {
            "get": {
                "operationId": "discovery",
                "summary": "The CDS services this server hosts (CDS Hooks discovery)",
                "tags": ["CDS Hooks"],
                "responses": {
                    "200": {
                        "description": "Service declarations",
                        "content": {"application/json": {"schema": _ref("CdsHooksDiscovery")}},
                    },
                    **_outcomes(discovery_statuses),
                },
            }
        },
        **{f"/cds-services/{service_id}": _service_path(declared, dev) for service_id, declared in by_id.items()},
        **{
            f"/cds-services/{service_id}/feedback": _feedback_path(declared[0], dev)
            for service_id, declared in by_id.items()
        },
        "/healthz": _plain("Liveness: the process answers", {"200": _probe_response("Alive")}),
        "/readyz": _plain(
            "Readiness: knowledge tables loaded and backing services reachable",
            {"200": _probe_response("Ready"), "503": _probe_response("Not ready, with the failing checks")},
        ),
        "/metrics": _plain(
            "Prometheus metrics",
            {
                "200": {
                    "description": "Prometheus text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
        "/openapi.json": _plain(
            "This description",
            {
                "200": {
                    "description": "OpenAPI 3.1 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        ),
    }
    document: Json = {
        "openapi": "3.1.0",
        "info": {
            "title": "cytopenia-cds",
            "version": version("cytopenia-cds"),
            "description": "CDS Hooks 2.0.1 service: cytopenias and febrile neutropenia from FHIR R4 blood counts",
        },
        "paths": paths,
        "components": components(),
    }
    if base_url:
        document["servers"] = [{"url": base_url}]
    if not dev:
        document["components"]["securitySchemes"] = {
            "cdsHooksJwt": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "JWT signed by a registered EHR client (CDS Hooks 2.0.1 trusting CDS clients)",
            }
        }
        document["security"] = [{"cdsHooksJwt": []}]
    return document


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    settings = current_app.config["SETTINGS"]
    services = current_app.extensions["cytopenia.services"]
    document = openapi_document(services, dev=settings.dev, base_url=settings.public_base_url)
    return Response(orjson.dumps(document), mimetype="application/json")
