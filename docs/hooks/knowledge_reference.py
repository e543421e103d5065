"""mkdocs hook: writes the knowledge-table reference from the CSV files themselves.

Generated at build time so the page can never disagree with the tables the service loads.
"""

import csv
from collections import Counter
from pathlib import Path

MARKER = "<!-- knowledge tables -->"
PACKAGES = ("fhir_mappings", "cds_service", "cards")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(path: Path, root: Path) -> str:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0]) if rows else []
    tags = Counter(row.get("tag", "") for row in rows if row.get("tag"))
    tag_text = ", ".join(f"{tag} {count}" for tag, count in sorted(tags.items())) or "no tag column"
    lines = [
        f"## `{path.relative_to(root)}`",
        "",
        f"{len(rows)} rows; tags: {tag_text}.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_cell(row[column] or "") for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def knowledge_reference(root: Path) -> str:
    tables = sorted(path for package in PACKAGES for path in (root / package).rglob("data/*.csv"))
    return "\n\n".join(_table(path, root) for path in tables)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    root = Path(config["config_file_path"]).parent
    return markdown.replace(MARKER, knowledge_reference(root))
