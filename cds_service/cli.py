"""`cytopenia-cds`: serve the CDS Hooks API, or evaluate a saved request offline."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from cds_service.config import ConfigError, load_settings
from cds_service.knowledge_tables import KnowledgeError


def _serve(args: argparse.Namespace) -> int:
    from cds_service.serving import gunicorn_options, metrics_directory, run

    overrides = {
        k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers)) if v is not None
    }
    if args.dev:
        overrides["dev"] = True
    if args.as_of:
        overrides["as_of"] = args.as_of
    settings = load_settings(args.config, **overrides)
    with metrics_directory():  # before the app (and prometheus_client) is imported
        from cds_service.app import create_app

        app = create_app(settings)
        options = gunicorn_options(settings, args.gunicorn_config)
        app.extensions["cytopenia.store"].size_pool(options.get("threads", 1))
        print(f"cytopenia-cds serving on http://{settings.host}:{settings.port}/cds-services", file=sys.stderr)
        run(app, options)
    return 0


def _config_check(args: argparse.Namespace) -> int:
    """The pre-flight `serve` runs, without starting anything: every error at once, then the warnings."""
    from cds_service.config_report import effective_configuration
    from cds_service.preflight import review

    settings = load_settings(args.config)
    verdict = review(settings, online=args.online)
    for problem in verdict.errors:
        print(f"error: {problem}", file=sys.stderr)
    for problem in verdict.warnings:
        print(f"warning: {problem}", file=sys.stderr)
    if verdict.errors:
        print(f"configuration refused: {len(verdict.errors)} error(s); `serve` would not start", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(effective_configuration(settings), option=orjson.OPT_INDENT_2).decode() + "\n")
    reach = "" if args.online else " (Redis and database reachability not checked: add --online)"
    print(f"configuration OK{reach}", file=sys.stderr)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """Bring the database schema to this release; run once per release, before the service (Kubernetes Job)."""
    from cds_service.storage.engine import make_engine, upgrade

    settings = load_settings(args.config)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print("database schema is current", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from cds_service.app import create_app

    overrides = {"dev": True, "database_url": "sqlite://"}
    if args.as_of:
        overrides["as_of"] = args.as_of  # the setting `serve --as-of` sets: one way to fix the moment
    body = Path(args.request).read_bytes()
    service_id = args.service or _default_service(body)
    app = create_app(load_settings(args.config, **overrides))
    response = app.test_client().post(f"/cds-services/{service_id}", data=body, content_type="application/json")
    sys.stdout.write(orjson.dumps(response.get_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if response.status_code == 200 else 1


def _report(args: argparse.Namespace) -> int:
    from cds_service.reporting.chart import override_rate_chart
    from cds_service.reporting.figures import daily_override_rates, load, summarise
    from cds_service.reporting.output import FORMATS
    from cds_service.storage import open_store

    since = None
    if args.since:
        since = datetime.fromisoformat(args.since)
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    store = open_store(load_settings(args.config).database_url)
    cards, feedback, call_ms = load(store.engine, since)
    sys.stdout.write(FORMATS[args.format](summarise(cards, feedback, call_ms, since)))
    if args.chart:
        override_rate_chart(daily_override_rates(cards, feedback), Path(args.chart))
    return 0


def _screen(args: argparse.Namespace) -> int:
    from cds_service.screening.cli import screen_command

    return screen_command(args)


def _default_service(body: bytes) -> str:
    from cds_service import hooks

    hook = orjson.loads(body).get("hook")
    match = next((s for s in hooks.SERVICES if s.hook == hook), None)
    if match is None:
        raise SystemExit(f"no service handles hook {hook!r}; pass --service")
    return match.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cytopenia-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the CDS Hooks API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--config", default=os.environ.get("CYTOPENIA_CONFIG"), help="TOML configuration file")
    serve.add_argument("--dev", action="store_true", help="development mode: accept unauthenticated calls")
    serve.add_argument("--gunicorn-config", help="gunicorn settings file applied over the built-in defaults")
    serve.add_argument(
        "--as-of", help="development mode only: evaluate every call as of this ISO 8601 time (historical demo data)"
    )
    evaluate = commands.add_parser("evaluate", help="print the cards a saved CDS Hooks request would get")
    evaluate.add_argument("request", help="path to a CDS Hooks request JSON file")
    evaluate.add_argument("--service", help="service id (default: the first service for the request's hook)")
    evaluate.add_argument("--as-of", help="evaluate as of this ISO 8601 time (default: now)")
    evaluate.add_argument("--config", default=os.environ.get("CYTOPENIA_CONFIG"))
    report = commands.add_parser("report", help="feedback, override and latency figures per service and finding")
    report.add_argument("--since", help="only cards and feedback from this date (ISO 8601, UTC if no zone)")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.add_argument("--chart", help="also write a PNG of override rates over time to this file")
    report.add_argument("--config", default=os.environ.get("CYTOPENIA_CONFIG"))
    screen = commands.add_parser("screen", help="screen a population (Bulk Data NDJSON or $export) into a worklist")
    from cds_service.screening.cli import add_arguments

    add_arguments(screen)
    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate and print the effective configuration, secrets masked")
    check.add_argument("--config", default=os.environ.get("CYTOPENIA_CONFIG"), help="TOML configuration file")
    check.add_argument("--online", action="store_true", help="also check that Redis and the database answer")
    migrate = commands.add_parser("migrate", help="bring the database schema to this release, then exit")
    migrate.add_argument("--config", default=os.environ.get("CYTOPENIA_CONFIG"), help="TOML configuration file")
    args = parser.parse_args(argv)
    if args.command != "serve":
        # The image sets this folder for the server's workers. A one-shot command exposes no metrics: in
        # multiprocess mode it would fail where the folder does not exist, and inside a running container
        # it would add its own files to the server's /metrics.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    runners = {
        "serve": _serve,
        "evaluate": _evaluate,
        "report": _report,
        "config": _config_check,
        "migrate": _migrate,
        "screen": _screen,
    }
    run = runners[args.command]
    try:
        return run(args)
    except ConfigError as error:
        print(f"cytopenia-cds: {error}", file=sys.stderr)
        return 2
    except KnowledgeError as error:
        print(f"cytopenia-cds: a knowledge table is broken, refusing to start: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
