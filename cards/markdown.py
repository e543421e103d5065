"""Plain GitHub-flavoured Markdown for card details: EHR text is escaped, never rendered as HTML."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

# The backslash first and the ampersand second: no later replacement brings in a character an earlier one
# replaced or one a later one replaces, so each character is replaced once, as by a translation table.
# Replacing only the characters present is several times faster than str.translate, which falls back to
# a lookup per character once one maps to more than one.
_SPECIAL = (("\\", "\\\\"), ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), *((c, "\\" + c) for c in "`*_{}[]()#+!|~"))


def escape(text: str) -> str:
    """Backslash-escape Markdown punctuation in text that came from the EHR; angle brackets become
    entities, so no tag (not even an escaped one) reaches an EHR that renders HTML."""
    text = " ".join(text.split())
    for character, replacement in _SPECIAL:
        if character in text:
            text = text.replace(character, replacement)
    return text


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def sentence_start(text: str) -> str:
    """The first letter in upper case and the rest as written: `str.capitalize` would lower an acronym
    that follows ("ELN 2016" read "Eln 2016")."""
    return text[:1].upper() + text[1:]


def number(value: float) -> str:
    """A plain number for the review app's axis labels: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:.0f}"


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip(" ,;:") + "…"


def listed(items: list[str], most: int, joiner: str = "; ") -> str:
    """The first `most` items, then how many more."""
    shown = joiner.join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def fit(blocks: Iterable[str | None], limit: int) -> str:
    """Blocks in order of importance, joined, never longer than `limit`: a block that would break the
    limit is left out (the next, shorter ones may still fit); the first block is clipped, never dropped."""
    kept: list[str] = []
    for block in blocks:
        if not block:
            continue
        if len("\n\n".join([*kept, block])) <= limit:
            kept.append(block)
        elif not kept:
            kept.append(clip(block, limit))
    return "\n\n".join(kept)
