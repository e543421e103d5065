"""`cytopenia-cds screen`: ingest, prefilter, evaluate candidates in parallel processes, write the worklist."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from cds_service.clinical.knowledge import SITE_THRESHOLDS, site_thresholds
from cds_service.screening.evaluate import Row, screen_patient
from cds_service.screening.ingest import connect, ingest
from cds_service.screening.outputs import Summary, finding_counts, grade_chart, write_fhir, write_worklist
from cds_service.screening.prefilter import prefilter_sql
from cds_service.screening.problems import summarise


@dataclass(frozen=True, slots=True)
class Options:
    as_of: datetime
    engine: str = "duckdb"
    processes: int | None = None
    fhir: str | None = None  # "Flag" or "Task"
    progress: bool = True
    chart: bool = True
    # The site's configuration, as the hooks apply it: retuned cited thresholds and the fever look-back.
    thresholds: tuple[tuple[str, float], ...] = ()
    fever_lookback_hours: float | None = None

    def install(self) -> None:
        """Makes the site's thresholds the ones the rules read, in this process (its main thread runs the rules)."""
        SITE_THRESHOLDS.set(site_thresholds(dict(self.thresholds)))


class Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def _bar(total: int, description: str, enabled: bool) -> Any:  # a tqdm bar (tqdm has no type information)
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="patient", disable=not enabled, leave=False)


@contextmanager
def _status(description: str, enabled: bool) -> Iterator:
    """A one-line progress display for a step without a known total: says what it is doing and for how long."""
    from tqdm import tqdm

    with tqdm(desc=description, bar_format="{desc}: {postfix} [{elapsed}]", disable=not enabled, leave=False) as bar:
        yield bar.set_postfix_str


def group_resources(texts: list[tuple[str, str]]) -> dict[str, list[dict]]:
    return {patient: [orjson.loads(t) for t in found] for patient, found in group_texts(texts).items()}


def group_texts(texts: list[tuple[str, str]]) -> dict[str, list[str]]:
    by_patient: dict[str, list[str]] = defaultdict(list)
    for patient, text in texts:
        by_patient[patient].append(text)
    return by_patient


def evaluate_patients(
    by_patient: Iterable[tuple[str, list[dict]]], options: Options
) -> tuple[list[Row], dict[str, str]]:
    """Stage 2 for some patients; a patient whose evaluation fails is rejected with the reason, never dropped."""
    options.install()
    rows: list[Row] = []
    rejected: dict[str, str] = {}
    for patient, resources in by_patient:
        try:
            rows.extend(screen_patient(patient, resources, options.as_of, options.fever_lookback_hours))
        except Exception as error:  # noqa: BLE001 - one patient's bad data must not stop the screen
            rejected[patient] = f"evaluation failed: {type(error).__name__}: {str(error)[:200]}"
    return rows, rejected


def screen_bucket(folder: str, candidates: list[str], options: Options) -> tuple[list[Row], dict[str, str], int]:
    """One Parquet partition's candidates, in a worker process."""
    con = duckdb.connect()
    texts = con.execute(
        f"SELECT patient, text FROM read_parquet('{folder}/*.parquet') "
        "WHERE read_by_hooks AND patient IN (SELECT unnest(?))",
        [candidates],
    ).fetchall()
    con.close()
    # Each patient's JSON is parsed just before its evaluation: the whole partition parsed at once would
    # keep hundreds of thousands of objects alive for the collector to walk again and again.
    parsed = ((p, [orjson.loads(t) for t in found]) for p, found in group_texts(texts).items())
    rows, rejected = evaluate_patients(parsed, options)
    return rows, rejected, len(candidates)


@contextmanager
def workers(options: Options) -> Iterator[ProcessPoolExecutor]:
    """Stage 2's processes, started at once so that their start-up (a fresh interpreter importing the rules)
    overlaps the ingest instead of following it."""
    processes = options.processes or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        pool.submit(int)  # a spawn pool starts all its processes on the first task
        yield pool


def stage_two(
    pool: ProcessPoolExecutor, parquet: Path, candidates: dict[str, list[str]], options: Options
) -> tuple[list[Row], dict[str, str]]:
    rows: list[Row] = []
    rejected: dict[str, str] = {}
    total = sum(len(c) for c in candidates.values())
    with _bar(total, "stage 2", options.progress) as bar:
        futures = [  # the largest partitions first, so that no process is left with a long one at the end
            pool.submit(screen_bucket, str(parquet / "resources" / f"bucket={bucket}"), patients, options)
            for bucket, patients in sorted(candidates.items(), key=lambda bp: -len(bp[1]))
        ]
        for future in as_completed(futures):
            bucket_rows, bucket_rejected, done = future.result()
            rows.extend(bucket_rows)
            rejected.update(bucket_rejected)
            bar.update(done)
    return sorted(rows, key=lambda r: (r.patient, r.service, r.finding, r.why)), rejected


def bad_input(
    con: duckdb.DuckDBPyConnection, parquet: Path, source: Path
) -> tuple[dict[str, int], dict[str, list[str]]]:
    rows = con.execute(
        f"""
        SELECT problem, count(*),
               list({{'file': file, 'detail': detail, 'excerpt': excerpt}} ORDER BY file, detail)[1:3]
        FROM read_parquet('{parquet / "problems"}/*.parquet') GROUP BY problem
        """
    ).fetchall()
    return summarise(rows, source)


def table(parquet: Path, name: str) -> str:
    return f"read_parquet('{parquet / name}/*/*.parquet', hive_partitioning = true)"


def candidates_by_bucket(
    con: duckdb.DuckDBPyConnection, parquet: Path, as_of: datetime, fever_lookback_hours: float | None = None
) -> dict[str, list[str]]:
    for name in ("labs", "medications"):
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {table(parquet, name)}")
    con.execute(f"CREATE OR REPLACE TABLE candidates AS {prefilter_sql(as_of, fever_lookback_hours)}")
    rows = con.execute(
        f"""
        SELECT DISTINCT r.bucket, c.patient FROM candidates c
        JOIN (SELECT DISTINCT bucket, patient FROM {table(parquet, "resources")} WHERE type = 'Patient') r
             ON r.patient = c.patient
        """
    ).fetchall()
    by_bucket: dict[str, list[str]] = defaultdict(list)
    for bucket, patient in rows:
        by_bucket[str(bucket)].append(patient)
    return by_bucket


def screen(source: Path, out: Path, options: Options) -> Summary:
    """Screens a folder of NDJSON; writes the worklist and its companions into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    options.install()
    timer = Timer()
    con = connect(out)
    with workers(options) as pool:
        with timer.stage("ingest"), _status("ingest", options.progress) as status:
            ingested = ingest(source, out, con, status)
        with timer.stage("prefilter"):
            candidates = candidates_by_bucket(con, ingested.parquet, options.as_of, options.fever_lookback_hours)
        con.close()  # the workers get the memory
        with timer.stage("stage 2"):
            rows, rejected = stage_two(pool, ingested.parquet, candidates, options)
    bad = bad_input(duckdb.connect(), ingested.parquet, source)
    return finish(bad, ingested.patients, candidates, rows, rejected, out, options, timer)


def finish(
    bad: tuple[dict, dict],
    patients_in: int,
    candidates: dict[str, list[str]],
    rows: list[Row],
    rejected: dict[str, str],
    out: Path,
    options: Options,
    timer: Timer,
) -> Summary:
    """Writes the worklist and its companions; `bad` is the bad-input counts and examples by problem."""
    with timer.stage("write"):
        write_worklist(rows, out)
        if options.fhir:
            write_fhir(rows, out, options.fhir, options.as_of)
        if options.chart:
            grade_chart(rows, out / "findings-by-grade.png")
    problems, examples = bad
    summary = Summary(
        as_of=options.as_of,
        patients_in=patients_in,
        candidates=sum(len(c) for c in candidates.values()),
        screened=patients_in - len(rejected),
        rejected=rejected,
        findings=finding_counts(rows),
        patients_flagged=len({r.patient for r in rows}),
        bad_input=problems,
        bad_input_examples=examples,
        timings=timer.timings,
    )
    (out / "summary.json").write_bytes(summary.to_json())
    return summary
