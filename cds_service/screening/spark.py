"""`--engine spark`: the same Parquet layout, the same SQL, the same stage-2 functions, on Apache Spark.

Spark flattens the NDJSON with `from_json`: a line is JSON when it parses against an all-string schema
(so a field of an unexpected type does not make a valid line 'not JSON'), and the typed parse keeps the
fields it can read, as DuckDB's non-strict transform does. The tables, the prefilter and the problem
list are the SQL in `tables.py` and `prefilter.py`; stage 2 is `applyInPandas` over the candidates
grouped by patient, calling `evaluate_patients`. PySpark is an optional extra
(`pip install 'cytopenia-cds[spark]'`, a large download with its JARs).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

import pandas  # type: ignore[import-untyped]  # pandas-stubs is not among the project's dependencies

from cds_service.screening.evaluate import COLUMNS, Row
from cds_service.screening.ingest import BUCKETS, ndjson_files
from cds_service.screening.outputs import Summary
from cds_service.screening.prefilter import prefilter_sql
from cds_service.screening.problems import summarise
from cds_service.screening.run import Options, Timer, evaluate_patients, finish
from cds_service.screening.tables import (
    LABS,
    MEDICATIONS,
    PATIENTS,
    PROBLEMS,
    RESOURCES,
    elements_sql,
    kept_sql,
    patient_sql,
    read_by_hooks_sql,
)
from fhir_mappings.knowledge import analyte_specs, lab_codes, read_table, unit_key

if TYPE_CHECKING:  # pyspark is an optional extra without type information
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import Row as SparkRow

OVERLAPS = "arrays_overlap(transform(s.code.coding, c -> concat(c.system, '|', c.code)), array({codes}))"
QUANTITY = "STRUCT<value: DOUBLE, unit: STRING, code: STRING>"
CONCEPT = "STRUCT<coding: ARRAY<STRUCT<system: STRING, code: STRING>>, text: STRING>"
RANGES = f"ARRAY<STRUCT<low: {QUANTITY}>>"
SCHEMA = (
    "resourceType STRING, id STRING, status STRING, subject STRUCT<reference: STRING>, "
    f"patient STRUCT<reference: STRING>, code {CONCEPT}, valueQuantity {QUANTITY}, referenceRange {RANGES}, "
    f"component ARRAY<STRUCT<code: {CONCEPT}, valueQuantity: {QUANTITY}, referenceRange: {RANGES}>>, "
    "effectiveDateTime STRING, effectiveInstant STRING, effectivePeriod STRUCT<start: STRING>, issued STRING, "
    "authoredOn STRING, medicationCodeableConcept STRING, medicationReference STRUCT<reference: STRING>, "
    f"clinicalStatus {CONCEPT}"
)
ELEMENTS = elements_sql(
    lambda column: f"CAST({column} AS TIMESTAMP)",
    "obs LATERAL VIEW explode(s.component) t AS c",
    "(SELECT *, try_element_at(filter(rr, x -> x.low.value > 0), 1).low AS low FROM el) "
    "LATERAL VIEW explode(code.coding) t AS coding",
)
CONDITIONS = """
SELECT bucket, patient, id, try_element_at(s.clinicalStatus.coding, 1).code AS clinical_status,
       coding.system AS system, coding.code AS code
FROM kept LATERAL VIEW explode(s.code.coding) t AS coding WHERE type = 'Condition'
"""
RESULT_SCHEMA = (
    "patient STRING, service STRING, finding STRING, grade INT, indicator STRING, value DOUBLE, unit STRING, "
    "time TIMESTAMP, why STRING, suggested_action STRING, rejected STRING"
)


def session(master: str | None, driver_memory: str = "1g") -> SparkSession:
    """A Spark session; the driver memory is set explicitly (local mode runs everything in the driver).

    Under spark-submit (`master` None) the cluster's settings and --driver-memory apply.
    """
    from pyspark.sql import SparkSession

    # Times are UTC like the hooks'; an unparseable time or number is NULL (and so kept by the prefilter).
    builder = (
        SparkSession.builder.appName("cytopenia-cds screen")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
    )
    if master:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            builder.master(master)
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.shuffle.partitions", str(BUCKETS))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _knowledge_tables(spark: SparkSession) -> None:
    spark.createDataFrame(
        [(c, lab.analyte.value) for c, lab in lab_codes().items()], "code STRING, analyte STRING"
    ).createOrReplaceTempView("lab_codes")
    spark.createDataFrame(
        [
            (a.value, s.dimension, s.plausible_min, s.plausible_max, s.repair_divisor)
            for a, s in analyte_specs().items()
        ],
        "analyte STRING, dimension STRING, lo DOUBLE, hi DOUBLE, repair DOUBLE",
    ).createOrReplaceTempView("analytes")
    spark.createDataFrame(
        [
            (r["dimension"], unit_key(r["unit"]), float(r["factor"]), float(r["offset"]))
            for r in read_table("fhir_mappings", "units.csv")
        ],
        "dimension STRING, unit_key STRING, factor DOUBLE, off DOUBLE",
    ).createOrReplaceTempView("units")


def _delete(spark: SparkSession, uri: str) -> None:
    """Removes a folder on whatever file system the URI names (local, HDFS, object storage)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "a live SparkSession always has its JVM gateway"
    path = jvm.org.apache.hadoop.fs.Path(uri)
    path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(path, True)


def _lines(spark: SparkSession, source: str) -> DataFrame:
    from pyspark.sql import functions

    if "://" not in source:
        files = ndjson_files(Path(source))
        if not files:
            raise FileNotFoundError(f"no NDJSON files (*.ndjson, *.ndjson.gz) under {source}")
        reader = spark.read.text([str(f) for f in files])
    else:
        reader = (
            spark.read.option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.{ndjson,ndjson.gz,jsonl,jsonl.gz}")
            .text(source)
        )
    name = functions.element_at(functions.split(functions.input_file_name(), "/"), -1)
    return reader.withColumn("file", name).where(functions.trim("value") != "")


def ingest(spark: SparkSession, source: str, work: str) -> int:
    """NDJSON at `source` (a folder or any Hadoop file system URI) -> the Parquet tables under `work`."""
    from cds_service.screening.ingest import medication_groups

    _knowledge_tables(spark)
    spark.udf.register("medication_groups", medication_groups, "string")
    _lines(spark, source).createOrReplaceTempView("lines")
    staging = f"{work}/_staging"
    spark.sql(
        f"""
        SELECT file, value AS text, from_json(value, '{SCHEMA}', map('mode', 'PERMISSIVE')) AS s,
               from_json(value, 'resourceType STRING, _corrupt_record STRING',
                         map('mode', 'PERMISSIVE', 'columnNameOfCorruptRecord', '_corrupt_record'))._corrupt_record
                   IS NULL AS ok
        FROM lines
        """
    ).write.mode("overwrite").parquet(staging)
    spark.read.parquet(staging).createOrReplaceTempView("staged")
    reference = "coalesce(s.subject.reference, s.patient.reference)"
    spark.sql(
        f"""
        SELECT file, text, ok, s, {read_by_hooks_sql(OVERLAPS)} AS read_by_hooks,
               s.resourceType AS type, s.id AS id,
               CASE WHEN s.resourceType = 'Patient' THEN s.id ELSE {patient_sql(reference)} END AS patient,
               {reference} AS reference, s.status AS status, CAST(s.authoredOn AS TIMESTAMP) AS authored,
               s.medicationCodeableConcept AS medication_concept,
               s.medicationReference.reference AS medication_reference
        FROM staged
        """
    ).createOrReplaceTempView("typed")
    spark.sql(PATIENTS).cache().createOrReplaceTempView("patients")
    spark.sql(kept_sql(f"pmod(hash(patient), {BUCKETS})")).createOrReplaceTempView("kept")
    spark.sql(ELEMENTS).createOrReplaceTempView("elements")
    for name, query in (
        ("resources", RESOURCES),
        ("labs", LABS),
        ("medications", MEDICATIONS),
        ("conditions", CONDITIONS),
    ):
        table = spark.sql(query)
        table.write.mode("overwrite").partitionBy("bucket").parquet(f"{work}/{name}")
        if table.isEmpty():  # an empty table still gets a file, so its schema can be read
            table.drop("bucket").write.mode("overwrite").parquet(f"{work}/{name}/bucket=0")
    spark.read.parquet(f"{work}/labs").createOrReplaceTempView("labs")
    spark.sql(PROBLEMS).coalesce(1).write.mode("overwrite").parquet(f"{work}/problems")
    patients = spark.sql("SELECT count(*) AS n FROM patients").collect()[0]["n"]
    _delete(spark, staging)
    return patients


def bad_input(spark: SparkSession, work: str, source: str) -> tuple[dict[str, int], dict[str, list[str]]]:
    spark.read.parquet(f"{work}/problems").createOrReplaceTempView("problems")
    rows = spark.sql(
        """
        SELECT problem, count(*) AS n,
               slice(array_sort(collect_list(named_struct('file', file, 'detail', detail, 'excerpt', excerpt))),
                     1, 3) AS examples
        FROM problems GROUP BY problem
        """
    ).collect()
    local = None if "://" in source else Path(source)
    return summarise([(r["problem"], r["n"], [e.asDict() for e in r["examples"]]) for r in rows], local)


def _evaluator(options: Options) -> Callable[[pandas.DataFrame], pandas.DataFrame]:
    import orjson

    def evaluate(group: pandas.DataFrame) -> pandas.DataFrame:
        patient = group["patient"].iloc[0]
        rows, rejected = evaluate_patients([(patient, [orjson.loads(t) for t in group["text"]])], options)
        records = [{**dict(zip(COLUMNS, r.values(), strict=True)), "rejected": None} for r in rows]
        records += [{"patient": p, "rejected": reason} for p, reason in rejected.items()]
        frame = pandas.DataFrame.from_records(records, columns=[*COLUMNS, "rejected"])
        frame["time"] = pandas.to_datetime(frame["time"], utc=True).dt.tz_localize(None)
        frame["grade"] = frame["grade"].astype("Int32")
        return frame

    return evaluate


def _row(record: SparkRow) -> Row:
    values = {c: record[c] for c in COLUMNS}
    if values["time"] is not None:
        values["time"] = values["time"].replace(tzinfo=UTC)
    return Row(**values)


def screen_on_spark(
    source: Path | str, out: Path, options: Options, master: str = "local[2]", work: str | None = None
) -> Summary:
    """The screen on Spark; `work` (default DIR/parquet) may be object storage, the worklist is written to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    options.install()
    work = work or str((out / "parquet").resolve())
    timer = Timer()
    with timer.stage("spark start"):
        spark = session(master)
    try:
        with timer.stage("ingest"):
            patients_in = ingest(spark, str(source), work)
        with timer.stage("prefilter"):
            for name in ("labs", "medications"):
                spark.read.parquet(f"{work}/{name}").createOrReplaceTempView(name)
            candidates = spark.sql(prefilter_sql(options.as_of, options.fever_lookback_hours)).cache()
            kept = [r["patient"] for r in candidates.select("patient").collect()]
        with timer.stage("stage 2"):
            resources = (
                spark.read.parquet(f"{work}/resources")
                .where("read_by_hooks")
                .join(candidates.select("patient"), "patient")
            )
            results = (
                resources.select("patient", "text")
                .groupBy("patient")
                .applyInPandas(_evaluator(options), RESULT_SCHEMA)
                .collect()
            )
        bad = bad_input(spark, work, str(source))
    finally:
        spark.stop()
    rows = sorted(
        (_row(r) for r in results if r["rejected"] is None), key=lambda r: (r.patient, r.service, r.finding, r.why)
    )
    rejected = {r["patient"]: r["rejected"] for r in results if r["rejected"] is not None}
    return finish(bad, patients_in, {"all": kept}, rows, rejected, out, options, timer)


def main(argv: list[str] | None = None) -> int:
    """Entry point for `spark-submit .../cds_service/screening/spark.py SOURCE --work URI --out DIR`."""
    import argparse

    from cds_service.screening.cli import as_of, site_options

    parser = argparse.ArgumentParser(description="cytopenia-cds population screen on a Spark cluster")
    parser.add_argument("source", help="folder or URI (s3a://, abfss://, gs://, hdfs://) of the NDJSON export")
    parser.add_argument("--work", help="URI for the Parquet tables (default OUT/parquet)")
    parser.add_argument("--out", required=True, type=Path, help="local folder for the worklist and summary")
    parser.add_argument("--as-of")
    parser.add_argument("--fhir", choices=("Flag", "Task"))
    parser.add_argument("--master", help="only when not set by spark-submit")
    parser.add_argument("--config", help="the service's TOML configuration (site thresholds, fever look-back)")
    args = parser.parse_args(argv)
    options = Options(
        **site_options(args.config), as_of=as_of(args.as_of), engine="spark", fhir=args.fhir, progress=False
    )
    summary = screen_on_spark(args.source, args.out, options, args.master, args.work)
    print(summary.text())
    return 0 if summary.balanced() else 1


if __name__ == "__main__":
    sys.exit(main())
