"""Stage 1 on DuckDB: NDJSON (gzip accepted) -> Parquet partitioned by patient, with bad input counted.

Every line is read as text first, so a line that is not JSON is named (file and line) instead of
being skipped silently. The layout under `DIR/parquet` is shared with the Spark engine:

- `resources/bucket=K/*.parquet`: patient, type, id, the resource's JSON (what stage 2 reads);
- `labs/`: one row per coded result the hooks read (analyte, value in its canonical unit, time, lab's
  lower limit); `medications/`: order status and the medication groups; `conditions/`: codes;
- `problems.parquet`: every rejected line or resource, with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson

from cds_service.screening.generate import TYPES
from fhir_mappings.knowledge import analyte_specs, lab_codes, read_table, unit_key
from fhir_mappings.medications import ingredient_groups, recognise

BUCKETS = 32
LOINC = "http://loinc.org"
SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
QUANTITY = '{"value":"DOUBLE","unit":"VARCHAR","code":"VARCHAR"}'
CONCEPT = '{"coding":[{"system":"VARCHAR","code":"VARCHAR"}],"text":"VARCHAR"}'
ELEMENT = f'{{"code":{CONCEPT},"valueQuantity":{QUANTITY},"referenceRange":[{{"low":{QUANTITY}}}]}}'
STRUCTURE = (
    '{"resourceType":"VARCHAR","id":"VARCHAR","status":"VARCHAR",'
    '"subject":{"reference":"VARCHAR"},"patient":{"reference":"VARCHAR"},'
    f'"code":{CONCEPT},"valueQuantity":{QUANTITY},"referenceRange":[{{"low":{QUANTITY}}}],'
    f'"component":[{ELEMENT}],'
    '"effectiveDateTime":"VARCHAR","effectiveInstant":"VARCHAR","effectivePeriod":{"start":"VARCHAR"},'
    '"issued":"VARCHAR","authoredOn":"VARCHAR","medicationCodeableConcept":"JSON",'
    '"medicationReference":{"reference":"VARCHAR"},"clinicalStatus":' + CONCEPT + "}"
)


def ndjson_files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))


def unit_key_sql(column: str) -> str:
    """fhir_mappings.knowledge.unit_key in SQL."""
    return f"lower(replace(replace(replace(trim({column}), 'µ', 'u'), 'μ', 'u'), ' ', ''))"


def medication_groups(concept: str | None) -> str | None:
    """';'-joined medication groups of a medicationCodeableConcept, by the hooks' own recognition."""
    if concept is None:
        return None
    recognised = recognise(orjson.loads(concept))
    return ";".join(sorted(ingredient_groups(recognised[0]))) if recognised else ""


def _knowledge_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The mapping tables as SQL tables, from the same CSV files the hooks load."""
    con.execute("CREATE OR REPLACE TEMP TABLE lab_codes (code VARCHAR, analyte VARCHAR)")
    con.executemany("INSERT INTO lab_codes VALUES (?, ?)", [(c, lab.analyte.value) for c, lab in lab_codes().items()])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE analytes "
        "(analyte VARCHAR, dimension VARCHAR, lo DOUBLE, hi DOUBLE, repair DOUBLE)"
    )
    con.executemany(
        "INSERT INTO analytes VALUES (?, ?, ?, ?, ?)",
        [
            (a.value, s.dimension, s.plausible_min, s.plausible_max, s.repair_divisor)
            for a, s in analyte_specs().items()
        ],
    )
    con.execute("CREATE OR REPLACE TEMP TABLE units (dimension VARCHAR, unit_key VARCHAR, factor DOUBLE, off DOUBLE)")
    rows = read_table("fhir_mappings", "units.csv")
    con.executemany(
        "INSERT INTO units VALUES (?, ?, ?, ?)",
        [(r["dimension"], unit_key(r["unit"]), float(r["factor"]), float(r["offset"])) for r in rows],
    )


@dataclass(frozen=True, slots=True)
class Ingested:
    parquet: Path
    patients: int
    lines: int


def connect(work: Path, memory_limit: str = "1500MB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(work / "duckdb.tmp")})
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _time(column: str) -> str:
    return f"CAST(TRY_CAST({column} AS TIMESTAMPTZ) AS TIMESTAMP)"


def ingest(
    source: Path, out: Path, con: duckdb.DuckDBPyConnection, progress: Callable[[str], None] = lambda _: None
) -> Ingested:
    files = ndjson_files(source)
    if not files:
        raise FileNotFoundError(f"no NDJSON files (*.ndjson, *.ndjson.gz) under {source}")
    parquet = out / "parquet"
    staging = out / "staging"
    for folder in (parquet, staging):
        folder.mkdir(parents=True, exist_ok=True)
    _knowledge_tables(con)
    con.create_function("medication_groups", medication_groups, ["VARCHAR"], "VARCHAR", side_effects=False)
    for index, path in enumerate(files):
        progress(f"reading {path.name}")
        con.execute(
            f"""
            COPY (
                SELECT ? AS file, line_no, text, json_valid(text) AS ok,
                       CASE WHEN json_valid(text) THEN json_transform(text, '{STRUCTURE}') END AS s
                FROM (
                    SELECT row_number() OVER () AS line_no, column0 AS text
                    FROM read_csv(?, columns = {{'column0': 'VARCHAR'}}, delim = '\x1f', quote = '', escape = '',
                                  header = false, auto_detect = false, max_line_size = 100000000)
                )
                WHERE trim(text) <> ''
            ) TO '{staging / f"part-{index:05d}.parquet"}' (FORMAT parquet)
            """,
            [path.name, str(path)],
        )
    con.execute(f"CREATE OR REPLACE TEMP VIEW staged AS SELECT * FROM read_parquet('{staging}/*.parquet')")
    lines = con.execute("SELECT count(*) FROM staged").fetchall()[0][0]
    progress("writing Parquet")
    types = ", ".join(f"'{t}'" for t in TYPES)
    con.execute(
        """
        CREATE OR REPLACE TEMP VIEW typed AS
        SELECT file, line_no, text, s, s.resourceType AS type, s.id AS id,
               CASE WHEN s.resourceType = 'Patient' THEN s.id
                    ELSE regexp_extract(coalesce(s.subject.reference, s.patient.reference), '([^/:]+)$', 1) END
                   AS patient
        FROM staged WHERE ok
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE patients AS SELECT DISTINCT patient FROM typed "
        "WHERE type = 'Patient' AND patient IS NOT NULL AND patient <> ''"
    )
    problems = f"""
        SELECT file, line_no, NULL AS patient, 'not JSON' AS problem, left(text, 80) AS detail FROM staged WHERE NOT ok
        UNION ALL
        SELECT file, line_no, patient, 'resource of a type the screen does not read',
               coalesce(type, 'no resourceType') FROM typed WHERE type IS NULL OR type NOT IN ({types})
        UNION ALL
        SELECT file, line_no, NULL, 'Patient without an id', '' FROM typed WHERE type = 'Patient' AND patient IS NULL
        UNION ALL
        SELECT file, line_no, patient, 'refers to no Patient in the export',
               coalesce(s.subject.reference, s.patient.reference, 'no subject')
        FROM typed WHERE type IN ({types}) AND type <> 'Patient' AND patient NOT IN (SELECT patient FROM patients)
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW kept AS
        SELECT *, hash(patient) % {BUCKETS} AS bucket FROM typed
        WHERE type IN ({types}) AND patient IN (SELECT patient FROM patients)
        """
    )
    con.execute(
        f"COPY (SELECT bucket, patient, type, id, text FROM kept) TO '{parquet / 'resources'}' "
        "(FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)"
    )
    _labs(con, parquet)
    con.execute(
        f"""
        COPY (
            SELECT bucket, patient, id, s.status AS status, {_time("s.authoredOn")} AS authored,
                   medication_groups(CAST(s.medicationCodeableConcept AS VARCHAR)) AS groups,
                   s.medicationReference.reference AS medication_reference
            FROM kept WHERE type = 'MedicationRequest'
        ) TO '{parquet / "medications"}' (FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)
        """
    )
    con.execute(
        f"""
        COPY (
            SELECT bucket, patient, id, list_first(s.clinicalStatus.coding).code AS clinical_status,
                   coding.system AS system, coding.code AS code
            FROM (SELECT *, unnest(s.code.coding) AS coding FROM kept WHERE type = 'Condition')
        ) TO '{parquet / "conditions"}' (FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)
        """
    )
    con.execute(
        f"""
        COPY (
            {problems}
            UNION ALL
            SELECT NULL, NULL, patient, problem, detail FROM read_parquet('{parquet / "labs"}/*/*.parquet')
            WHERE problem IS NOT NULL
        ) TO '{parquet / "problems.parquet"}' (FORMAT parquet)
        """
    )
    patients = con.execute("SELECT count(*) FROM patients").fetchall()[0][0]
    con.execute("DROP VIEW kept; DROP VIEW typed; DROP VIEW staged")
    shutil.rmtree(staging)
    return Ingested(parquet, patients, lines)


def _labs(con: duckdb.DuckDBPyConnection, parquet: Path) -> None:
    """One row per recognised coded value (resource or component), converted as fhir_mappings.units does."""
    con.execute(
        f"""
        COPY (
            WITH obs AS (
                SELECT bucket, patient, id, s,
                       coalesce({_time("s.effectiveDateTime")}, {_time("s.effectiveInstant")},
                                {_time("s.effectivePeriod.start")}, {_time("s.issued")}) AS time
                FROM kept WHERE type = 'Observation' AND s.status IN ('final', 'amended', 'corrected')
            ),
            elements AS (
                SELECT bucket, patient, id, time, s.code AS code, s.valueQuantity AS q, s.referenceRange AS rr FROM obs
                UNION ALL
                SELECT bucket, patient, id, time, c.code, c.valueQuantity, c.referenceRange
                FROM (SELECT *, unnest(s.component) AS c FROM obs)
            ),
            coded AS (
                SELECT DISTINCT e.bucket, e.patient, e.id, e.time, l.analyte, coding.code AS code, e.q, e.rr
                FROM (SELECT *, unnest(code.coding) AS coding FROM elements) e
                JOIN lab_codes l ON coding.system = '{LOINC}' AND coding.code = l.code
            ),
            converted AS (
                SELECT c.*, a.lo, a.hi, a.repair, u.factor, u.off,
                       coalesce(q.code, q.unit) AS unit,
                       (q.value + u.off) * u.factor AS conv,
                       list_filter(rr, lambda x: x.low.value > 0)[1].low AS low,
                       a.dimension
                FROM coded c JOIN analytes a USING (analyte)
                LEFT JOIN units u ON u.dimension = a.dimension
                     AND u.unit_key = {unit_key_sql("coalesce(q.code, q.unit)")}
            )
            SELECT c.bucket, c.patient, c.id, c.analyte, c.code, c.time,
                   CASE WHEN conv BETWEEN lo AND hi THEN conv
                        WHEN repair IS NOT NULL AND c.factor = 1 AND c.off = 0 AND conv / repair BETWEEN lo AND hi
                        THEN conv / repair END AS value,
                   (low.value + lu.off) * lu.factor AS reference_low,
                   CASE WHEN q.value IS NULL THEN NULL
                        WHEN c.factor IS NULL THEN 'unknown unit'
                        WHEN NOT (conv BETWEEN lo AND hi OR (repair IS NOT NULL AND c.factor = 1 AND c.off = 0
                                  AND conv / repair BETWEEN lo AND hi)) THEN 'implausible value' END AS problem,
                   c.analyte || ' ' || coalesce(CAST(q.value AS VARCHAR), '') || ' '
                       || coalesce(c.unit, 'no unit') || ' (Observation/' || c.id || ')' AS detail
            FROM converted c
            LEFT JOIN units lu ON lu.dimension = c.dimension
                 AND lu.unit_key = {unit_key_sql("coalesce(low.code, low.unit, c.unit)")}
        ) TO '{parquet / "labs"}' (FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)
        """
    )
