"""Reading the knowledge tables: the CSV files under each package's `data/` folder.

Every layer's tables are read here, and checked as they are read, so a broken row is reported with
its file and line at start-up rather than raised by the first call that needs it. `load_all` reads
every table of the packages and runs every loader registered with `knowledge_loader`; `create_app`
calls it before it answers anything.

Checks on every table: each row has exactly the header's fields; a `source` column is never empty; a
`tag` is one of `TAGS` (see docs/informatics/knowledge.md); a number column (named in `NUMBER_COLUMNS`,
or by `NUMBER_SUFFIXES` / `NUMBER_PREFIXES`; unless the row's unit is `category`) holds a number or
nothing; a unit column holds a unit of the unit table (`fhir_mappings/data/units.csv`) or one of
`OTHER_UNITS`; a `cited_as` (the short citation a card prints for the row, e.g. "ELN 2016") names only
words of the row's own `source`, so the card never cites what the row does not. What a loader converts
(enum values, required numbers, a `cited_as` the card needs) is checked by running it: its error is
reported with the row it was reading.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import TypeVar

PACKAGES = ("fhir_mappings", "cds_service.clinical", "cards")
TAGS = frozenset({"V1", "V2", "V3", "design", "name-only", ""})
NUMBER_COLUMNS = frozenset(
    {"value", "below", "grade", "points", "factor", "offset", "repair_divisor", "frequency", "period", "period_max"}
)
NUMBER_SUFFIXES = ("_below", "_at_least", "_from", "_min", "_max", "_months", "_days", "_trimester", "_low", "_high")
NUMBER_PREFIXES = ("dose_value", "dose_low", "dose_high", "resume_anc", "resume_platelets", "stop_")
# Units of rules rather than of lab results (time, dose per weight, scores and counts of things).
OTHER_UNITS = frozenset({"min", "h", "d", "a", "mg/kg", "ug/kg/d", "points", "count", "grade", "category"})

Loader = TypeVar("Loader", bound=Callable[[], object])
_LOADERS: list[Callable[[], object]] = []
_reading: ContextVar[tuple[str, int] | None] = ContextVar("knowledge_row", default=None)


class KnowledgeError(Exception):
    """A knowledge table that cannot be used; the message names the file and the row."""


class Row(dict[str, str]):
    """One row of a table, knowing where it came from."""

    __slots__ = ("line", "table")

    def __init__(self, values: dict[str, str], table: str, line: int):
        super().__init__(values)
        self.table, self.line = table, line


class Rows(list[Row]):
    """A table's rows; iterating notes the row being read, so a loader's error can name it."""

    def __iter__(self) -> Iterator[Row]:
        for row in super().__iter__():
            _reading.set((row.table, row.line))
            yield row


def _is_number_column(column: str) -> bool:
    return column in NUMBER_COLUMNS or column.endswith(NUMBER_SUFFIXES) or column.startswith(NUMBER_PREFIXES)


def _is_unit_column(column: str) -> bool:
    return column == "unit" or column.endswith("_unit")


def _check(row: dict[str, str | None], units: frozenset[str] | None) -> str | None:
    for column, value in row.items():
        if column is None or value is None:
            return "the number of fields differs from the header"
        if column == "source" and not value.strip():
            return "no source"
        if column == "tag" and value not in TAGS:
            return f"unknown tag {value!r}"
        if value and _is_number_column(column) and row.get("unit") != "category":
            try:
                float(value)
            except ValueError:
                return f"{column} {value!r} is not a number"
        if value and units is not None and _is_unit_column(column) and value not in units | OTHER_UNITS:
            return f"{column} {value!r} is not in the unit table"
        if column == "cited_as" and (missing := _not_in_source(value, row.get("source") or "")):
            return f"cited_as {value!r} is not in the row's source (no {missing!r})"
    return None


def _not_in_source(cited_as: str, source: str) -> str | None:
    """The first word of a short citation its row's source does not contain, or None."""
    return next((word for word in cited_as.split() if word.casefold() not in source.casefold()), None)


def required(row: dict[str, str], column: str) -> str:
    """A field the code prints from this row; empty, it stops the start naming the row (see `load_all`)."""
    if not row[column].strip():
        raise ValueError(f"{column} is empty: a card prints it from this row")
    return row[column]


@cache
def _units() -> frozenset[str]:
    return frozenset(row["unit"] for row in read_table("fhir_mappings", "units.csv"))


@cache
def read_table(package: str, name: str) -> Rows:
    """Rows of `data/<name>` inside `package`, each checked (see the module docstring)."""
    where = f"{package.replace('.', '/')}/data/{name}"
    units = None if (package, name) == ("fhir_mappings", "units.csv") else _units()
    try:
        text = resources.files(package).joinpath("data", name).read_text(encoding="utf-8")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = Rows()
        for record in reader:
            if problem := _check(record, units):
                raise KnowledgeError(f"{where}, line {reader.line_num}: {problem}")
            rows.append(Row(record, where, reader.line_num))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise KnowledgeError(f"{where}: cannot be read ({error})") from None
    if not rows:
        raise KnowledgeError(f"{where}: no rows")
    return rows


def knowledge_loader(loader: Loader) -> Loader:
    """Mark a table loader (no arguments, result cached) to be run, and so checked, at start-up."""
    cached = cache(loader)
    _LOADERS.append(cached)
    return cached  # type: ignore[return-value]  # functools.cache keeps the call signature


def table_names(package: str) -> list[str]:
    return sorted(
        entry.name for entry in resources.files(package).joinpath("data").iterdir() if entry.name.endswith(".csv")
    )


def load_all() -> int:
    """Read and check every table and run every registered loader; the number of tables read.

    Raises KnowledgeError naming the file and row of the first problem.
    """
    names = [(package, name) for package in PACKAGES for name in table_names(package)]
    for package, name in names:
        read_table(package, name)
    for loader in _LOADERS:
        token = _reading.set(None)
        try:
            loader()
        except KnowledgeError:
            raise
        except Exception as error:  # a loader's conversion failed: say which row it was reading
            place = _reading.get()
            at = f"{place[0]}, line {place[1]}" if place else getattr(loader, "__qualname__", "a knowledge loader")
            raise KnowledgeError(f"{at}: {type(error).__name__}: {error}") from error
        finally:
            _reading.reset(token)
    return len(names)
