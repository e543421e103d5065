"""The `screen` command's arguments and entry; cds_service/cli.py only hands over to it."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

# What each engine imports beyond the service's own dependencies, and the extras that install them.
NEEDS = {
    "duckdb": (("duckdb", "tqdm", "matplotlib"), "screen"),
    "spark": (("duckdb", "tqdm", "matplotlib", "pyspark", "pandas", "pyarrow"), "spark"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="folder of NDJSON files (gzip accepted) or a FHIR base URL to $export from")
    parser.add_argument("--out", required=True, type=Path, help="folder for the worklist, Parquet and summary")
    parser.add_argument("--as-of", help="screen as of this ISO 8601 time (default: now; UTC if no zone)")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    parser.add_argument("--processes", type=int, help="stage 2 worker processes (default: one per core)")
    parser.add_argument("--fhir", choices=("Flag", "Task"), help="also write the findings as FHIR Flag or Task NDJSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--config",
        default=os.environ.get("CYTOPENIA_CONFIG"),
        help="the service's TOML configuration: its retuned thresholds and fever look-back apply, as in the hooks",
    )
    bulk = parser.add_argument_group("Bulk Data $export (SOURCE is a URL)")
    bulk.add_argument("--client-id", help="SMART Backend Services client id")
    bulk.add_argument("--private-key", type=Path, help="PEM private key registered for the client (RS384 or ES384)")
    bulk.add_argument("--key-id", help="kid of the registered public key")
    bulk.add_argument(
        "--scope",
        default="system/Patient.rs system/Observation.rs system/Condition.rs "
        "system/MedicationRequest.rs system/Encounter.rs system/AllergyIntolerance.rs",
    )
    bulk.add_argument("--spark-master", default="local[2]", help="Spark master for --engine spark")


def as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def site_options(config: str | None) -> dict:
    """The parts of the service's configuration the rules read."""
    from cds_service.config import load_settings

    settings = load_settings(config)
    return {
        "thresholds": tuple(sorted(settings.thresholds.items())),
        "fever_lookback_hours": settings.fever_lookback_hours,
    }


def missing_modules(engine: str) -> tuple[list[str], str]:
    """The modules this engine needs that are not installed, and the extras to install; checked before
    any work, so that a long $export does not end in an ImportError (the service's image has none)."""
    modules, extras = NEEDS[engine]
    return [m for m in modules if importlib.util.find_spec(m) is None], extras


def screen_command(args: argparse.Namespace) -> int:
    missing, extras = missing_modules(args.engine)
    if missing:
        print(
            f"cytopenia-cds screen: --engine {args.engine} needs {', '.join(missing)}: "
            f"pip install 'cytopenia-cds[{extras}]'",
            file=sys.stderr,
        )
        return 2
    from cds_service.screening.bulk import BulkError, ExportClient, client_from_arguments
    from cds_service.screening.run import Options, screen

    options = Options(
        **site_options(args.config),
        as_of=as_of(args.as_of),
        engine=args.engine,
        processes=args.processes,
        fhir=args.fhir,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    source = args.source
    try:
        if source.startswith(("http://", "https://")):
            client: ExportClient = client_from_arguments(args)
            folder = client.export(args.out / "export", progress=options.progress)
        else:
            folder = Path(source)
            if not folder.is_dir():
                print(f"cytopenia-cds screen: {folder} is not a folder", file=sys.stderr)
                return 2
        if args.engine == "spark":
            from cds_service.screening.spark import screen_on_spark

            summary = screen_on_spark(folder, args.out, options, args.spark_master)
        else:
            summary = screen(folder, args.out, options)
    except BulkError as error:
        print(f"cytopenia-cds screen: {error}", file=sys.stderr)
        return 3
    except FileNotFoundError as error:
        print(f"cytopenia-cds screen: {error}", file=sys.stderr)
        return 2
    print(summary.text())
    return 0 if summary.balanced() else 1
