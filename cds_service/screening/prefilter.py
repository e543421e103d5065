"""The prefilter: one SQL statement, for DuckDB and Spark alike, over the `labs` and `medications` tables.

It returns each candidate patient with the first reason it was kept. Its limits come from
`lenient.py` (the knowledge tables at their most lenient), so it can only keep too many patients,
never drop one a rule would flag; the property test over the corpus holds it to that.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from cds_service.screening.lenient import (
    HELD_STATUSES,
    NEUTROPHIL_INPUTS,
    NEUTROPHIL_PERCENTS,
    count_limits,
    fever_from,
    order_groups,
    window,
)
from fhir_mappings import Analyte

A = Analyte


def _utc(moment: datetime) -> str:
    """A SQL timestamp literal's text: the stored times are UTC without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _in(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _group_test(groups: Iterable[str]) -> str:
    return " OR ".join(f"concat(';', groups, ';') LIKE '%;{g};%'" for g in groups)


def prefilter_sql(as_of: datetime, fever_lookback_hours: float | None = None) -> str:
    w = window(as_of, fever_lookback_hours)
    limits = count_limits()
    limit_rows = " UNION ALL ".join(f"SELECT '{a.value}' AS analyte, {v!r} AS below" for a, v in limits.items())
    visible = f"(time IS NULL OR time <= TIMESTAMP '{_utc(w.latest)}')"
    return f"""
WITH lab AS (SELECT patient, analyte, value, reference_low, time FROM labs WHERE value IS NOT NULL AND {visible}),
limits AS ({limit_rows}),
reasons AS (
    SELECT l.patient, concat('low ', l.analyte) AS reason FROM lab l JOIN limits t ON l.analyte = t.analyte
    WHERE l.value < t.below
    UNION ALL
    SELECT patient, concat(analyte, ' below the lab''s lower limit') FROM lab WHERE value < reference_low
    UNION ALL
    SELECT w.patient, 'derived ANC may be low' FROM
        (SELECT patient, min(value) AS wbc FROM lab WHERE analyte = '{A.WHITE_BLOOD_CELLS.value}' GROUP BY patient) w
        JOIN (SELECT patient, min(value) AS pct FROM lab WHERE analyte IN ({_in(a.value for a in NEUTROPHIL_PERCENTS)})
              GROUP BY patient) p ON w.patient = p.patient
    WHERE w.wbc * p.pct / 100 < {limits[A.ABSOLUTE_NEUTROPHIL_COUNT]!r}
    UNION ALL
    SELECT patient, 'temperature at a fever threshold' FROM lab
    WHERE analyte = '{A.BODY_TEMPERATURE.value}' AND value >= {fever_from()!r}
      AND (time IS NULL OR time >= TIMESTAMP '{_utc(w.fever_from)}')
    UNION ALL
    SELECT patient, 'recent neutrophil counts (ANC trend)' FROM lab
    WHERE analyte IN ({_in(a.value for a in NEUTROPHIL_INPUTS)})
      AND (time IS NULL OR time >= TIMESTAMP '{_utc(w.trend_from)}')
    GROUP BY patient HAVING count(DISTINCT time) >= 2 OR count(*) > count(time)
    UNION ALL
    SELECT patient, 'active order an order rule checks' FROM medications
    WHERE status = 'active' AND (groups IS NULL OR medication_reference IS NOT NULL OR {_group_test(order_groups())})
    UNION ALL
    SELECT patient, 'BCR-ABL TKI order held or stopped' FROM medications
    WHERE status IN ({_in(HELD_STATUSES)}) AND {_group_test(("bcr_abl_tki",))}
)
SELECT patient, min(reason) AS reason FROM reasons GROUP BY patient
"""
