"""Plain GitHub-flavoured Markdown for card details: EHR text is escaped, never rendered as HTML."""

from __future__ import annotations

from datetime import datetime

_SPECIAL = str.maketrans({**{c: "\\" + c for c in "\\`*_{}[]()#+!|~"}, "&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape(text: str) -> str:
    """Backslash-escape Markdown punctuation in text that came from the EHR; angle brackets become
    entities, so no tag (not even an escaped one) reaches an EHR that renders HTML."""
    return " ".join(text.split()).translate(_SPECIAL)


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:.0f}"


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items)
