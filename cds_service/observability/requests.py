"""Per-request bookkeeping: request id, stage timings, the latency histogram and the access log line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import structlog
from flask import Flask, Response, g
from flask.globals import app_ctx, request_ctx
from prometheus_client import Counter, Histogram

from cds_service.issued_card import IssuedCard
from cds_service.observability.logs import REQUEST_ID, get_logger, request_id_from
from cds_service.observability.metrics import HOOK_REQUEST_SECONDS, HTTP_REQUESTS, count_cards

log = get_logger("cds_service.request")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: logged only when failing


@lru_cache(maxsize=256)
def _requests_counted(route: str, method: str, status: str) -> Counter:
    """The labelled child, kept: `labels()` validates and looks it up under a lock on every call."""
    return HTTP_REQUESTS.labels(route, method, status)


@lru_cache(maxsize=256)
def _hook_latency(service_id: str, hook: str, status: str) -> Histogram:
    return HOOK_REQUEST_SECONDS.labels(service_id, hook, status)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time one stage of a hook call (gather, evaluate, fatigue); the log line and the audit row report it."""
    started = time.perf_counter()
    try:
        yield
    finally:
        g.setdefault("stages", {})[name] = round((time.perf_counter() - started) * 1000, 2)


def mark_hook_call(service_id: str, hook: str | None = None, hook_instance: str | None = None) -> None:
    """Label this request as a call to a declared service; its hookInstance joins every later log line."""
    g.service_id = service_id
    if hook:
        g.hook = hook
    if hook_instance and REQUEST_ID.fullmatch(hook_instance):
        structlog.contextvars.bind_contextvars(hook_instance=hook_instance)


def record_cards(service_id: str, cards: list[IssuedCard]) -> None:
    count_cards(service_id, cards)
    g.cards = len(cards)


def install_request_observability(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        structlog.contextvars.clear_contextvars()
        request_id = request_id_from(request_ctx.request.headers.get("X-Request-ID"))
        this = app_ctx.g
        this.request_id, this.started = request_id, time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=request_id)

    @app.teardown_request
    def _forget(_error: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()

    @app.after_request
    def _finish(response: Response) -> Response:
        this = app_ctx.g  # the objects behind Flask's proxies, each looked up once
        started = this.get("started")
        if started is None:
            return response
        seconds = time.perf_counter() - started
        served = request_ctx.request
        route = served.url_rule.rule if served.url_rule else "unmatched"
        status = str(response.status_code)
        _requests_counted(route, served.method, status).inc()
        service_id = this.get("service_id")
        if service_id:
            _hook_latency(service_id, this.get("hook", "unknown"), status).observe(seconds)
        response.headers["X-Request-ID"] = this.request_id
        if route not in QUIET_ROUTES or response.status_code >= 400:
            stages = {f"{name}_ms": ms for name, ms in this.get("stages", {}).items()}
            fields = {"service": service_id, "hook": this.get("hook"), "cards": this.get("cards"), **stages}
            log.info(
                "request",
                method=served.method,
                route=route,
                status=response.status_code,
                duration_ms=round(seconds * 1000, 2),
                **{k: v for k, v in fields.items() if v is not None},
            )
        return response
