"""CORS for browser-based CDS clients (the CDS Hooks Sandbox): preflights answered without auth."""

from __future__ import annotations

import re

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Accept"
LOOPBACK_ORIGIN = re.compile(r"https?://(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?")


def is_loopback_origin(origin: str) -> bool:
    """http(s)://localhost, 127.x.x.x or [::1] on any port: a Sandbox the developer serves locally."""
    return LOOPBACK_ORIGIN.fullmatch(origin) is not None


def install_cors(app: Flask, allowed_origins: list[str], *, loopback: bool = False) -> None:
    """`loopback` (development mode only) also admits every loopback origin, whatever its port."""
    allowed = frozenset(allowed_origins)

    def origin_allowed(origin: str | None) -> bool:
        if not origin:
            return False
        return "*" in allowed or origin in allowed or (loopback and is_loopback_origin(origin))

    @app.before_request
    def _preflight() -> Response | None:
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
