"""`/metrics` for Prometheus. Unauthenticated like the probes: route it to the scraper only (see README)."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service.observability.metrics import exposition

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)
