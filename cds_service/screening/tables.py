"""The Parquet tables' SQL, shared by the DuckDB and the Spark engine.

Each engine flattens JSON its own way into two views: `typed` (one row per line: file,
text, read_by_hooks, ok, type, id, patient, reference, status, authored, medication_concept, medication_reference)
and `elements` (one row per coding of an Observation or component: time, system, code,
reported_value, unit, low_value, low_unit). Everything after that is this SQL, identical on both,
with the mapping tables (`lab_codes`, `analytes`, `units`) loaded from the CSV files the hooks use.
"""

from __future__ import annotations

from collections.abc import Callable

from cds_service.screening.generate import TYPES

LOINC = "http://loinc.org"
USABLE_STATUSES = ("final", "amended", "corrected")  # fhir_mappings.observations.USABLE_STATUSES
_TYPES = ", ".join(f"'{t}'" for t in TYPES)


def unit_key_sql(column: str) -> str:
    """fhir_mappings.knowledge.unit_key in SQL."""
    return f"lower(replace(replace(replace(trim({column}), 'µ', 'u'), 'μ', 'u'), ' ', ''))"


def patient_sql(reference: str) -> str:
    """The patient id at the end of a reference (`Patient/x`, `urn:uuid:x`, a full URL)."""
    return f"regexp_extract({reference}, '([^/:]+)$', 1)"


PATIENTS = """
SELECT DISTINCT patient FROM typed WHERE ok AND type = 'Patient' AND patient IS NOT NULL AND patient <> ''
"""


def kept_sql(bucket: str) -> str:
    return (
        f"SELECT *, {bucket} AS bucket FROM typed "
        f"WHERE ok AND type IN ({_TYPES}) AND patient IN (SELECT patient FROM patients)"
    )


EXCERPT = 200  # characters of a line the problem list shows
# A resource's JSON is kept where a hook can read it (stage 2 reads nothing else); the other rows say
# what was ingested (most of an export's Observations are vital signs and surveys no hook asks for).
RESOURCES = "SELECT bucket, patient, type, id, CASE WHEN read_by_hooks THEN text END AS text, read_by_hooks FROM kept"


def prefetch_codes() -> tuple[str, ...]:
    """Every `system|code` an Observation prefetch template of the hooks asks for."""
    from urllib.parse import parse_qsl

    from cds_service.hooks import SERVICES

    codes = []
    for service in SERVICES:
        for template in service.prefetch:
            kind, _, query = template.query.partition("?")
            if kind == "Observation":
                codes += [c for name, value in parse_qsl(query) if name == "code" for c in value.split(",")]
    return tuple(dict.fromkeys(codes))


def read_by_hooks_sql(overlaps: str) -> str:
    """Whether a resource can reach a hook: every non-Observation, and Observations a template asks for.

    `overlaps` is the engine's expression, with `{codes}` for the quoted codes, that is true when a
    `system|code` of `s.code.coding` is among them.
    """
    codes = ", ".join(f"'{c}'" for c in prefetch_codes())
    return f"(s.resourceType <> 'Observation' OR coalesce({overlaps.format(codes=codes)}, false))"


# The groups of each distinct medication concept once (an export repeats a few concepts many times).
MEDICATIONS = """
WITH orders AS (SELECT * FROM kept WHERE type = 'MedicationRequest'),
concepts AS (
    SELECT medication_concept, medication_groups(medication_concept) AS groups
    FROM (SELECT DISTINCT medication_concept FROM orders WHERE medication_concept IS NOT NULL)
)
SELECT o.bucket, o.patient, o.id, o.status, o.authored, c.groups, o.medication_reference
FROM orders o LEFT JOIN concepts c ON c.medication_concept = o.medication_concept
"""

_PLAUSIBLE = "c.conv BETWEEN c.lo AND c.hi"
_REPAIRABLE = "(c.repair IS NOT NULL AND c.factor = 1 AND c.off = 0 AND c.conv / c.repair BETWEEN c.lo AND c.hi)"

LABS = f"""
WITH coded AS (
    SELECT DISTINCT e.bucket, e.patient, e.id, e.time, e.code, e.reported_value, e.unit, e.low_value, e.low_unit,
           l.analyte
    FROM elements e JOIN lab_codes l ON e.system = '{LOINC}' AND e.code = l.code
),
converted AS (
    SELECT c.*, a.dimension, a.lo, a.hi, a.repair, u.factor, u.off, (c.reported_value + u.off) * u.factor AS conv
    FROM coded c JOIN analytes a ON a.analyte = c.analyte
    LEFT JOIN units u ON u.dimension = a.dimension AND u.unit_key = {unit_key_sql("c.unit")}
)
SELECT c.bucket, c.patient, c.id, c.analyte, c.code, c.time,
       CASE WHEN {_PLAUSIBLE} THEN c.conv WHEN {_REPAIRABLE} THEN c.conv / c.repair END AS value,
       (c.low_value + lu.off) * lu.factor AS reference_low,
       CASE WHEN c.reported_value IS NULL THEN NULL
            WHEN c.factor IS NULL THEN 'unknown unit'
            WHEN NOT ({_PLAUSIBLE} OR {_REPAIRABLE}) THEN 'implausible value' END AS problem,
       concat(c.analyte, ' ', coalesce(CAST(c.reported_value AS STRING), ''), ' ', coalesce(c.unit, 'no unit'),
              ' (Observation/', coalesce(c.id, '?'), ')') AS detail
FROM converted c
LEFT JOIN units lu ON lu.dimension = c.dimension AND lu.unit_key = {unit_key_sql("coalesce(c.low_unit, c.unit)")}
"""


def elements_sql(time_of: Callable[[str], str], component_rows: str, coding_rows: str) -> str:
    """Observation and component codings as rows; the engine says how to parse a time and explode a list.

    An Observation whose fields the engine did not keep (`s` is null: DuckDB keeps them only where a lab
    code may be, ingest's `_MAY_BE_LAB`) has no coding to give. Leaving it out of `obs`, which is read
    twice and so materialised, cut writing DuckDB's labs table on the 1M set from 2.1 s to 0.6 s."""
    times = ", ".join(
        time_of(f"s.{e}") for e in ("effectiveDateTime", "effectiveInstant", "effectivePeriod.start", "issued")
    )
    return f"""
WITH obs AS (
    SELECT bucket, patient, id, s, coalesce({times}) AS time FROM kept
    WHERE type = 'Observation' AND s IS NOT NULL AND status IN ({", ".join(f"'{s}'" for s in USABLE_STATUSES)})
),
el AS (
    SELECT bucket, patient, id, time, s.code AS code, s.valueQuantity AS q, s.referenceRange AS rr FROM obs
    UNION ALL
    SELECT bucket, patient, id, time, c.code, c.valueQuantity, c.referenceRange FROM {component_rows}
)
SELECT bucket, patient, id, time, coding.system AS system, coding.code AS code, q.value AS reported_value,
       coalesce(q.code, q.unit) AS unit, low.value AS low_value, coalesce(low.code, low.unit) AS low_unit
FROM {coding_rows}
"""


PROBLEMS = f"""
SELECT file, CAST(NULL AS STRING) AS patient, 'not JSON' AS problem, left(text, 80) AS detail,
       left(text, {EXCERPT}) AS excerpt
FROM typed WHERE NOT ok
UNION ALL
SELECT file, patient, 'resource of a type the screen does not read', coalesce(type, 'no resourceType'),
       left(text, {EXCERPT})
FROM typed WHERE ok AND (type IS NULL OR type NOT IN ({_TYPES}))
UNION ALL
SELECT file, CAST(NULL AS STRING), 'Patient without an id', '', left(text, {EXCERPT}) FROM typed
WHERE ok AND type = 'Patient' AND (patient IS NULL OR patient = '')
UNION ALL
SELECT t.file, t.patient, 'refers to no Patient in the export', coalesce(t.reference, 'no subject'),
       left(t.text, {EXCERPT})
FROM typed t LEFT JOIN patients p ON p.patient = t.patient  -- a hash join; `patients` is distinct
WHERE t.ok AND t.type IN ({_TYPES}) AND t.type <> 'Patient' AND p.patient IS NULL
UNION ALL
SELECT CAST(NULL AS STRING), patient, problem, detail, CAST(NULL AS STRING) FROM labs WHERE problem IS NOT NULL
"""
