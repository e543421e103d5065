"""The report as a plain-text table, CSV or JSON."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from cds_service.reporting.figures import Report

COLUMNS = (
    "service",
    "finding",
    "shown",
    "accepted",
    "overridden",
    "override_rate",
    "suggestions_accepted",
    "suppressed_repeats",
    "top_override_reasons",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)


def records(report: Report) -> list[dict[str, Any]]:
    return [
        {
            "service": row.service_id,
            "finding": row.finding,
            "shown": row.shown,
            "accepted": row.accepted,
            "overridden": row.overridden,
            "override_rate": round(row.override_rate, 4) if row.override_rate is not None else None,
            "suggestions_accepted": row.suggestions_accepted,
            "suppressed_repeats": row.suppressed,
            "top_override_reasons": [{"reason": reason, "count": count} for reason, count in row.top_override_reasons],
            **{f"latency_{name}_ms": value for name, value in row.latency_ms.items()},
        }
        for row in report.rows
    ]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list):
        return "; ".join(f"{r['reason']} ({r['count']})" for r in value)
    return str(value)


def as_json(report: Report) -> str:
    document = {
        "since": report.since.isoformat() if report.since else None,
        "rows": records(report),
        "unknownCardFeedback": report.unknown_card_feedback,
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def as_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records(report):
        writer.writerow(
            [
                "" if record[c] is None else _cell(record[c]) if c == "top_override_reasons" else record[c]
                for c in COLUMNS
            ]
        )
    return buffer.getvalue()


def as_table(report: Report) -> str:
    rows = [
        [
            _cell(record[c]) if c != "override_rate" else ("-" if record[c] is None else f"{record[c]:.0%}")
            for c in COLUMNS
        ]
        for record in records(report)
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    if not rows:
        lines.append("(no cards in this period)")
    lines.append(f"feedback for cards this service never issued: {report.unknown_card_feedback}")
    return "\n".join(lines) + "\n"


FORMATS = {"table": as_table, "csv": as_csv, "json": as_json}
