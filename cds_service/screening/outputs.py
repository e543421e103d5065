"""What the screen leaves in DIR: the worklist (CSV, Parquet), optional FHIR Flag/Task NDJSON, a PNG by grade,
and the summary (printed and as JSON)."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import orjson

from cds_service.screening.evaluate import COLUMNS, Row

SQL_TYPES = {"grade": "INTEGER", "value": "DOUBLE", "time": "TIMESTAMPTZ"}


@dataclass
class Summary:
    as_of: datetime
    patients_in: int
    candidates: int
    screened: int
    rejected: dict[str, str] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    patients_flagged: int = 0
    bad_input: dict[str, int] = field(default_factory=dict)
    bad_input_examples: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def balanced(self) -> bool:
        return self.patients_in == self.screened + len(self.rejected)

    def text(self) -> str:
        lines = [
            f"as of {self.as_of.isoformat()}",
            f"patients in {self.patients_in} = screened {self.screened} + rejected {len(self.rejected)}"
            f" (prefilter kept {self.candidates}; {self.patients_flagged} with a finding)",
        ]
        lines += [f"  finding {name}: {count}" for name, count in sorted(self.findings.items())]
        for patient, reason in sorted(self.rejected.items())[:20]:
            lines.append(f"  rejected Patient/{patient}: {reason}")
        for problem, count in sorted(self.bad_input.items()):
            examples = "; ".join(self.bad_input_examples.get(problem, ())[:3])
            lines.append(f"  bad input, {problem}: {count} (e.g. {examples})")
        if self.timings:
            lines.append("  time: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        return "\n".join(lines)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def finding_counts(rows: list[Row]) -> dict[str, int]:
    return dict(Counter(f"{r.service}/{r.finding}/{r.indicator}" for r in rows))


def write_worklist(rows: list[Row], out: Path) -> None:
    with (out / "worklist.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(
                ["" if v is None else (v.isoformat() if isinstance(v, datetime) else v) for v in row.values()]
            )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    types = ", ".join(f"'{c}': '{SQL_TYPES.get(c, 'VARCHAR')}'" for c in COLUMNS)
    con.execute(
        f"COPY (SELECT * FROM read_csv('{out / 'worklist.csv'}', header = true, columns = {{{types}}})) "
        f"TO '{out / 'worklist.parquet'}' (FORMAT parquet)"
    )
    con.close()


@dataclass(frozen=True)
class WorklistComparison:
    """Two worklists as multisets of their CSV rows: which rows, not in which order, is what engines must agree on."""

    rows: int
    only_first: list[tuple[str, ...]]
    only_second: list[tuple[str, ...]]

    def equal(self) -> bool:
        return not self.only_first and not self.only_second


def _worklist_rows(out: Path) -> Counter[tuple[str, ...]]:
    with (out / "worklist.csv").open(newline="", encoding="utf-8") as handle:
        return Counter(tuple(row) for row in csv.reader(handle))


def compare_worklists(first: Path, second: Path) -> WorklistComparison:
    """The rows of `first`'s worklist.csv missing from `second`'s and the reverse, each sorted, duplicates counted."""
    ones, others = _worklist_rows(first), _worklist_rows(second)
    return WorklistComparison(
        sum(ones.values()) - 1, sorted((ones - others).elements()), sorted((others - ones).elements())
    )


def _fhir_resource(kind: str, row: Row, as_of: datetime, index: int) -> dict:
    """A Flag or Task with `code.text` only: the worklist's words, no code the project has not verified."""
    subject = {"reference": f"Patient/{row.patient}"}
    if kind == "Flag":
        return {
            "resourceType": "Flag",
            "id": f"screen-{index}",
            "status": "active",
            "code": {"text": row.why},
            "subject": subject,
            "period": {"start": as_of.isoformat()},
        }
    return {
        "resourceType": "Task",
        "id": f"screen-{index}",
        "status": "requested",
        "intent": "proposal",
        "code": {"text": row.suggested_action or "Review the screening finding"},
        "description": row.why,
        "for": subject,
        "authoredOn": as_of.isoformat(),
    }


def write_fhir(rows: list[Row], out: Path, kind: str, as_of: datetime) -> Path:
    path = out / f"{kind}.ndjson"
    with path.open("wb") as handle:
        for index, row in enumerate(rows):
            handle.write(orjson.dumps(_fhir_resource(kind, row, as_of, index)) + b"\n")
    return path


def grade_chart(rows: list[Row], path: Path) -> None:
    """Findings by CTCAE grade (cytopenias) and by indicator (rules without a grade), one bar each."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    counts = Counter(f"grade {r.grade}" if r.grade else f"{r.indicator} (no grade)" for r in rows)
    labels = sorted(counts)
    figure, axes = pyplot.subplots(figsize=(8, 4), dpi=100)
    axes.bar(labels, [counts[label] for label in labels], color="#4a6fa5")
    axes.set_title("Screening findings by CTCAE grade")
    axes.set_ylabel("findings")
    axes.tick_params(axis="x", labelrotation=30)
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)
