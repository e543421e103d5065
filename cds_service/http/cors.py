"""CORS for browser-based CDS clients (the CDS Hooks Sandbox): preflights answered without auth."""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Accept"


def install_cors(app: Flask, allowed_origins: list[str]) -> None:
    allowed = frozenset(allowed_origins)

    def origin_allowed(origin: str | None) -> bool:
        return bool(origin) and ("*" in allowed or origin in allowed)

    @app.before_request
    def _preflight():
        if request.method == "OPTIONS":
            return Response(status=204)
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        response.vary.add("Origin")
        if origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
                response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
        return response
