"""Bad input, summarised: counts per problem and a few examples named by file and line.

The engines read lines in parallel and do not number them; the examples' line numbers are found
afterwards by one pass over only the files that hold them (a local source; a remote one is named by
file alone).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from cds_service.screening.ingest import ndjson_files

EXAMPLES = 3


def _line_numbers(path: Path, excerpts: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    wanted = {e.encode(): e for e in excerpts}
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            for raw, excerpt in wanted.items():
                if excerpt not in found and line.startswith(raw):
                    found[excerpt] = number
            if len(found) == len(wanted):
                break
    return found


def summarise(
    rows: list[tuple[str, int, list[dict]]], source: Path | None
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """(problem, count, examples as dicts of file, detail, excerpt) -> counts and 'file:line detail' examples."""
    files = {p.name: p for p in ndjson_files(source)} if source is not None and source.is_dir() else {}
    wanted: dict[str, set[str]] = {}
    for _, _, examples in rows:
        for e in examples[:EXAMPLES]:
            if e.get("file") in files and e.get("excerpt"):
                wanted.setdefault(e["file"], set()).add(e["excerpt"])
    lines = {name: _line_numbers(files[name], excerpts) for name, excerpts in wanted.items()}
    named: dict[str, list[str]] = {}
    for problem, _, examples in rows:
        for e in examples[:EXAMPLES]:
            where = e.get("file") or ""
            if number := lines.get(where, {}).get(e.get("excerpt") or ""):
                where = f"{where}:{number}"
            named.setdefault(problem, []).append(f"{where} {e.get('detail') or ''}".strip())
    return {problem: count for problem, count, _ in rows}, named
