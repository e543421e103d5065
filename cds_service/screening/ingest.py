"""Stage 1 on DuckDB: NDJSON (gzip accepted) -> Parquet partitioned by patient, with bad input counted.

DuckDB reads each file's lines as text and parses each line once, in SQL, into the fields the tables
need (`TYPED`, a temporary table); a line that is not JSON is counted and named instead of being
skipped silently (`problems.py` finds the line numbers of the examples the summary shows). The
layout under `DIR/parquet` is shared with the Spark engine:

- `resources/bucket=K/*.parquet`: patient, type, id, and the resource's JSON where a hook can read it
  (what stage 2 reads);
- `labs/`: one row per coded result the hooks read (analyte, value in its canonical unit, time, lab's
  lower limit); `medications/`: order status and the medication groups; `conditions/`: codes;
- `problems/`: every rejected line or resource, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson

from cds_service.screening.tables import (
    EXCERPT,
    LABS,
    LOINC,
    MEDICATIONS,
    PATIENTS,
    PROBLEMS,
    RESOURCES,
    elements_sql,
    kept_sql,
    patient_sql,
    prefetch_codes,
    read_by_hooks_sql,
)
from fhir_mappings.knowledge import analyte_specs, lab_codes, read_table, unit_key
from fhir_mappings.medications import ingredient_groups, recognise

OVERLAPS = "list_has_any(list_transform(s.code.coding, lambda c: concat(c.system, '|', c.code)), [{codes}])"
BUCKETS = 32
MAX_LINE = 32 * 1024 * 1024  # bytes; a longer line makes its file unreadable (named in the summary)
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


def connect(work: Path, memory_limit: str = "1GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(work / "duckdb.tmp")})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")  # no table here has a meaningful row order
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
    parquet.mkdir(parents=True, exist_ok=True)
    _knowledge_tables(con)
    con.create_function("medication_groups", medication_groups, ["VARCHAR"], "VARCHAR", side_effects=False)
    unreadable = []
    for path in files:
        progress(f"reading {path.name}")
        into = (
            "INSERT INTO typed"
            if con.execute("FROM duckdb_tables() WHERE table_name = 'typed'").fetchall()
            else ("CREATE OR REPLACE TEMP TABLE typed AS")
        )
        try:
            con.execute(f"{into} {TYPED}", [path.name, str(path)])
        except duckdb.Error as error:  # e.g. a line longer than MAX_LINE: the file is named, the run goes on
            unreadable.append((path.name, str(error).splitlines()[0][:200]))
    if len(unreadable) == len(files):
        raise FileNotFoundError("no file could be read: " + "; ".join(f"{f}: {e}" for f, e in unreadable))
    progress("writing Parquet")
    con.execute(f"CREATE OR REPLACE TEMP TABLE patients AS {PATIENTS}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW kept AS {kept_sql(f'hash(patient) % {BUCKETS}')}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW elements AS {ELEMENTS}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW conditions AS {CONDITIONS}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW medications AS {MEDICATIONS}")
    for name, query in (("resources", RESOURCES), ("labs", LABS)):
        _write(con, query, parquet / name)
    con.execute(f"CREATE OR REPLACE TEMP VIEW labs AS SELECT * FROM read_parquet('{parquet / 'labs'}/*/*.parquet')")
    for name in ("medications", "conditions"):
        _write(con, f"SELECT * FROM {name}", parquet / name)
    (parquet / "problems").mkdir(exist_ok=True)
    con.execute(f"COPY ({PROBLEMS}) TO '{parquet / 'problems' / 'part-0.parquet'}' (FORMAT parquet)")
    if unreadable:
        values = ", ".join("(?, ?)" for _ in unreadable)
        con.execute(
            f"COPY (SELECT file, CAST(NULL AS VARCHAR) AS patient, 'file could not be read' AS problem, detail, "
            f"CAST(NULL AS VARCHAR) AS excerpt FROM (VALUES {values}) v(file, detail)) "
            f"TO '{parquet / 'problems' / 'part-1.parquet'}' (FORMAT parquet)",
            [value for row in unreadable for value in row],
        )
    patients = con.execute("SELECT count(*) FROM patients").fetchall()[0][0]
    for view in ("labs", "medications", "conditions", "elements", "kept"):
        con.execute(f"DROP VIEW {view}")
    for table in ("typed", "patients"):
        con.execute(f"DROP TABLE {table}")
    return Ingested(parquet, patients)


def _write(con: duckdb.DuckDBPyConnection, query: str, folder: Path) -> None:
    """A table partitioned by patient bucket; an empty table still gets a file, so its schema can be read."""
    con.execute(f"COPY ({query}) TO '{folder}' (FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)")
    if not list(folder.glob("*/*.parquet")):
        (folder / "bucket=0").mkdir(parents=True, exist_ok=True)
        empty = f"SELECT * EXCLUDE (bucket) FROM ({query}) LIMIT 0"
        con.execute(f"COPY ({empty}) TO '{folder / 'bucket=0' / 'empty.parquet'}' (FORMAT parquet)")


ELEMENTS = elements_sql(
    _time,
    "(SELECT *, unnest(s.component) AS c FROM obs)",
    "(SELECT *, unnest(code.coding) AS coding, list_filter(rr, lambda x: x.low.value > 0)[1].low AS low FROM el)",
)
_REFERENCE = "coalesce(s.subject.reference, s.patient.reference)"
# What the labs and conditions tables read from `s` (the rest is in its own columns): kept small, so
# that the temporary table stays in memory.
_KEPT_FIELDS = "struct_pack({})".format(
    ", ".join(
        f"{field} := s.{field}"
        for field in (
            "code",
            "valueQuantity",
            "referenceRange",
            "component",
            "effectiveDateTime",
            "effectiveInstant",
            "effectivePeriod",
            "issued",
            "clinicalStatus",
        )
    )
)


def _lab_codes_unread() -> str:
    """The quoted `system|code`s of the lab table no prefetch template asks for (the systolic pressure a
    blood-pressure panel carries as a component may also be an Observation of its own)."""
    read = set(prefetch_codes())
    return ", ".join(f"'{c}'" for c in sorted(f"{LOINC}|{code}" for code in lab_codes()) if c not in read)


# An Observation gives a lab row only through a code of the lab table, on itself or on a component; most
# of an export's Observations (surveys, social history, vital signs no hook reads) have neither, and
# leaving out their fields keeps the temporary table small and the labs query short.
_UNREAD = _lab_codes_unread()
_MAY_BE_LAB = "(read_by_hooks OR s.component IS NOT NULL{})".format(
    f" OR coalesce({OVERLAPS.format(codes=_UNREAD)}, false)" if _UNREAD else ""
)
TYPED = f"""
SELECT file, ok, CASE WHEN type = 'Condition' OR (type = 'Observation' AND {_MAY_BE_LAB}) THEN {_KEPT_FIELDS} END AS s,
       type, id, read_by_hooks,
       CASE WHEN type = 'Patient' THEN id ELSE {patient_sql(_REFERENCE)} END AS patient,
       {_REFERENCE} AS reference, s.status AS status, {_time("s.authoredOn")} AS authored,
       CAST(s.medicationCodeableConcept AS VARCHAR) AS medication_concept,
       s.medicationReference.reference AS medication_reference,
       CASE WHEN read_by_hooks THEN text ELSE left(text, {EXCERPT}) END AS text
FROM (
    SELECT *, s.resourceType AS type, s.id AS id, coalesce({read_by_hooks_sql(OVERLAPS)}, false) AS read_by_hooks
    FROM (
        SELECT ? AS file, text, s, CASE WHEN s IS NOT NULL THEN true ELSE json_valid(text) END AS ok
        FROM (
            SELECT text, try(json_transform(text, '{STRUCTURE}')) AS s
            FROM read_csv(?, columns = {{'text': 'VARCHAR'}}, delim = '\x1f', quote = '', escape = '',
                          header = false, auto_detect = false,
                          max_line_size = {MAX_LINE}, buffer_size = {2 * MAX_LINE})
            WHERE ascii(text) BETWEEN 33 AND 126 OR trim(text) <> ''  -- trim only a line that may start blank
        )
    )
)
"""
"""One file's lines: whether each is JSON, the fields the tables need, and its text where stage 2 reads it
(one JSON parse per line; a line that is not JSON is parsed again only to say so). Other lines keep
their first characters, enough for the problem list's excerpt."""
CONDITIONS = """
SELECT bucket, patient, id, list_first(s.clinicalStatus.coding).code AS clinical_status,
       coding.system AS system, coding.code AS code
FROM (SELECT *, unnest(s.code.coding) AS coding FROM kept WHERE type = 'Condition')
"""
