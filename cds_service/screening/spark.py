"""`--engine spark`: the same Parquet layout, the same SQL, the same stage-2 functions, on Apache Spark.

Spark flattens the NDJSON with `from_json` (a line Spark cannot parse lands in `_corrupt_record` and is
counted as 'not JSON'; Spark does not number lines, so the summary names the file and the line's
start); the tables, the prefilter and the problem list are the SQL in `tables.py` and `prefilter.py`;
stage 2 is `applyInPandas` over the candidates grouped by patient, calling `evaluate_patients`.
PySpark is an optional extra (`pip install 'cytopenia-cds[spark]'`, a large download with its JARs).
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas

from cds_service.screening.evaluate import COLUMNS, Row
from cds_service.screening.ingest import BUCKETS, ndjson_files
from cds_service.screening.outputs import Summary
from cds_service.screening.prefilter import prefilter_sql
from cds_service.screening.run import Options, Timer, evaluate_patients, finish
from cds_service.screening.tables import (
    LABS,
    MEDICATIONS,
    PATIENTS,
    PROBLEMS,
    RESOURCES,
    USABLE_STATUSES,
    kept_sql,
    patient_sql,
)
from fhir_mappings.knowledge import analyte_specs, lab_codes, read_table, unit_key

QUANTITY = "STRUCT<value: DOUBLE, unit: STRING, code: STRING>"
CONCEPT = "STRUCT<coding: ARRAY<STRUCT<system: STRING, code: STRING>>, text: STRING>"
RANGES = f"ARRAY<STRUCT<low: {QUANTITY}>>"
SCHEMA = (
    "resourceType STRING, id STRING, status STRING, subject STRUCT<reference: STRING>, "
    f"patient STRUCT<reference: STRING>, code {CONCEPT}, valueQuantity {QUANTITY}, referenceRange {RANGES}, "
    f"component ARRAY<STRUCT<code: {CONCEPT}, valueQuantity: {QUANTITY}, referenceRange: {RANGES}>>, "
    "effectiveDateTime STRING, effectiveInstant STRING, effectivePeriod STRUCT<start: STRING>, issued STRING, "
    "authoredOn STRING, medicationCodeableConcept STRING, medicationReference STRUCT<reference: STRING>, "
    f"clinicalStatus {CONCEPT}, _corrupt_record STRING"
)
_TIME = ", ".join(
    f"CAST(s.{e} AS TIMESTAMP)" for e in ("effectiveDateTime", "effectiveInstant", "effectivePeriod.start", "issued")
)
ELEMENTS = f"""
WITH obs AS (
    SELECT bucket, patient, id, s, coalesce({_TIME}) AS time FROM kept
    WHERE type = 'Observation' AND status IN ({", ".join(f"'{s}'" for s in USABLE_STATUSES)})
),
el AS (
    SELECT bucket, patient, id, time, s.code AS code, s.valueQuantity AS q, s.referenceRange AS rr FROM obs
    UNION ALL
    SELECT bucket, patient, id, time, c.code, c.valueQuantity, c.referenceRange
    FROM obs LATERAL VIEW explode(s.component) t AS c
)
SELECT bucket, patient, id, time, coding.system AS system, coding.code AS code, q.value AS reported_value,
       coalesce(q.code, q.unit) AS unit, low.value AS low_value, coalesce(low.code, low.unit) AS low_unit
FROM (SELECT *, try_element_at(filter(rr, x -> x.low.value > 0), 1).low AS low FROM el)
LATERAL VIEW explode(code.coding) t AS coding
"""
CONDITIONS = """
SELECT bucket, patient, id, try_element_at(s.clinicalStatus.coding, 1).code AS clinical_status,
       coding.system AS system, coding.code AS code
FROM kept LATERAL VIEW explode(s.code.coding) t AS coding WHERE type = 'Condition'
"""
RESULT_SCHEMA = (
    "patient STRING, service STRING, finding STRING, grade INT, indicator STRING, value DOUBLE, unit STRING, "
    "time TIMESTAMP, why STRING, suggested_action STRING, rejected STRING"
)


def session(master: str, driver_memory: str = "1g"):
    """A Spark session; the driver memory is set explicitly (local mode runs everything in the driver)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.appName("cytopenia-cds screen")
        .master(master)
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(BUCKETS))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _knowledge_tables(spark) -> None:
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


def ingest(spark, source: Path, parquet: Path) -> int:
    from pyspark.sql import functions

    from cds_service.screening.ingest import medication_groups

    files = ndjson_files(source)
    if not files:
        raise FileNotFoundError(f"no NDJSON files (*.ndjson, *.ndjson.gz) under {source}")
    _knowledge_tables(spark)
    spark.udf.register("medication_groups", medication_groups, "string")
    lines = spark.read.text([str(f) for f in files]).withColumn(
        "file", functions.element_at(functions.split(functions.input_file_name(), "/"), -1)
    )
    lines.where(functions.trim("value") != "").createOrReplaceTempView("lines")
    staging = parquet.parent / "staging"
    spark.sql(
        f"""
        SELECT file, value AS text, from_json(value, '{SCHEMA}',
               map('mode', 'PERMISSIVE', 'columnNameOfCorruptRecord', '_corrupt_record')) AS s FROM lines
        """
    ).write.mode("overwrite").parquet(str(staging))
    spark.read.parquet(str(staging)).createOrReplaceTempView("staged")
    reference = "coalesce(s.subject.reference, s.patient.reference)"
    spark.sql(
        f"""
        SELECT file, CAST(NULL AS BIGINT) AS line_no, text, s._corrupt_record IS NULL AS ok, s,
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
        spark.sql(query).write.mode("overwrite").partitionBy("bucket").parquet(str(parquet / name))
    spark.read.parquet(str(parquet / "labs")).createOrReplaceTempView("labs")
    spark.sql(PROBLEMS).coalesce(1).write.mode("overwrite").parquet(str(parquet / "problems"))
    patients = spark.sql("SELECT count(*) AS n FROM patients").collect()[0]["n"]
    shutil.rmtree(staging)
    return patients


def _evaluator(as_of: datetime):
    import orjson

    def evaluate(group: pandas.DataFrame) -> pandas.DataFrame:
        patient = group["patient"].iloc[0]
        rows, rejected = evaluate_patients({patient: [orjson.loads(t) for t in group["text"]]}, as_of)
        records = [{**dict(zip(COLUMNS, r.values(), strict=True)), "rejected": None} for r in rows]
        records += [{"patient": p, "rejected": reason} for p, reason in rejected.items()]
        frame = pandas.DataFrame.from_records(records, columns=[*COLUMNS, "rejected"])
        frame["time"] = pandas.to_datetime(frame["time"], utc=True).dt.tz_localize(None)
        frame["grade"] = frame["grade"].astype("Int32")
        return frame

    return evaluate


def _row(record) -> Row:
    values = {c: record[c] for c in COLUMNS}
    if values["time"] is not None:
        values["time"] = values["time"].replace(tzinfo=UTC)
    return Row(**values)


def screen_on_spark(source: Path, out: Path, options: Options, master: str = "local[2]") -> Summary:
    out.mkdir(parents=True, exist_ok=True)
    parquet = out / "parquet"
    timer = Timer()
    with timer.stage("spark start"):
        spark = session(master)
    try:
        with timer.stage("ingest"):
            patients_in = ingest(spark, source, parquet)
        with timer.stage("prefilter"):
            for name in ("labs", "medications"):
                spark.read.parquet(str(parquet / name)).createOrReplaceTempView(name)
            candidates = spark.sql(prefilter_sql(options.as_of)).cache()
            candidates.createOrReplaceTempView("candidates")
            kept = [r["patient"] for r in candidates.select("patient").collect()]
        with timer.stage("stage 2"):
            resources = spark.read.parquet(str(parquet / "resources")).join(candidates.select("patient"), "patient")
            results = (
                resources.select("patient", "text")
                .groupBy("patient")
                .applyInPandas(_evaluator(options.as_of), RESULT_SCHEMA)
                .collect()
            )
    finally:
        spark.stop()
    rows = sorted(
        (_row(r) for r in results if r["rejected"] is None), key=lambda r: (r.patient, r.service, r.finding, r.why)
    )
    rejected = {r["patient"]: r["rejected"] for r in results if r["rejected"] is not None}
    return finish(duckdb.connect(), parquet, patients_in, {"all": kept}, rows, rejected, out, options, timer)
