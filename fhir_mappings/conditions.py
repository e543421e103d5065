"""Condition -> CodedFact: SNOMED CT and ICD-10-CM (exact, category prefix, block range) by
`data/condition_codes.csv`, and documented phrases for what has no verified code.

Entered-in-error and refuted Conditions are ignored; resolved ones are kept as history.
"""

from __future__ import annotations

import re
import re._constants as sre  # type: ignore[import-not-found]  # no stubs; the parser is stable within 3.11+
import re._parser as sre_parser  # type: ignore[import-not-found]
from functools import lru_cache
from typing import Any

from cds_service.knowledge_tables import knowledge_loader, read_table
from cds_service.request import Json, reference_of
from fhir_mappings.facts import CodedFact
from fhir_mappings.resources import codings, concept_text
from fhir_mappings.times import parse_date

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
EXCLUDED_VERIFICATION = frozenset({"entered-in-error", "refuted"})
ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
BACKREFERENCE = re.compile(r"\\\d|\(\?P=")
UNICODE_ONLY_SPACE = re.compile("[\x1c-\x1f]")  # ASCII characters only a Unicode-mode \s matches


def _icd(code: str) -> str:
    return code.replace(".", "").strip().upper()


@knowledge_loader
def _code_table() -> tuple[dict[tuple[str, str], list[str]], list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(exact {(system, code): categories}, ICD prefixes [(prefix, category)], ICD ranges [(low, high, category)])."""
    exact: dict[tuple[str, str], list[str]] = {}
    prefixes, ranges = [], []
    for row in read_table("fhir_mappings", "condition_codes.csv"):
        system, code, category = row["system"], row["code"], row["category"]
        normalised = _icd(code) if system == ICD10CM else code
        if row["match"] == "range":
            low, high = code.split("-")
            ranges.append((_icd(low), _icd(high), category))
        elif row["match"] == "prefix":
            prefixes.append((normalised, category))
        else:
            exact.setdefault((system, normalised), []).append(category)
    return exact, prefixes, ranges


Phrases = tuple[re.Pattern[str] | None, re.Pattern[str], tuple[tuple[str, re.Pattern[str]], ...]]


def _leading_literals(items: list[Any]) -> list[str] | None:
    """Strings one of which every match of this parsed pattern starts with (its first literal characters,
    after any zero-width \\b or ^), or None when some alternative does not start with a literal."""
    position = 0
    while position < len(items) and items[position][0] is sre.AT:
        position += 1
    if position == len(items):
        return None
    op, argument = items[position]
    if op is sre.LITERAL:
        run = []
        while position < len(items) and items[position][0] is sre.LITERAL:
            run.append(chr(items[position][1]))
            position += 1
        return ["".join(run)]
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, sub = argument
        return None if add_flags or del_flags else _leading_literals(sub.data)
    if op is sre.BRANCH:
        found: list[str] = []
        for alternative in argument[1]:
            if (literals := _leading_literals(alternative.data)) is None:
                return None
            found.extend(literals)
        return found
    return None


def _gate(pattern: str) -> re.Pattern[str] | None:
    """For ASCII text, a case-sensitive search of the lowered text for the leading literals of every
    alternative: what the case-insensitive search must find at the start of any match (ASCII letters
    fold to the same lower case in both), at a fraction of its cost, since it skips the positions where
    no literal starts. None when some alternative starts otherwise: the full search then decides alone."""
    literals = _leading_literals(sre_parser.parse(pattern, re.IGNORECASE | re.ASCII).data)
    if literals is None:
        return None
    return re.compile("|".join(re.escape(literal.lower()) for literal in sorted(set(literals))))


@knowledge_loader
def _phrases() -> dict[bool, Phrases]:
    """(any phrase at all, [(category, its phrases as one alternation)] in the table's order), compiled
    for any text (key False) and for a text of ASCII characters only (key True).

    Most Conditions name none of these: one search of the whole alternation settles them. A text that
    matches one is searched once per category. Joining patterns into an alternation keeps each one's
    meaning only without backreferences (their group numbers would shift), so a table with one is refused.

    Case-insensitive matching costs most of a search. On ASCII text an ASCII-mode search finds exactly
    what the Unicode one finds, at about two thirds of the cost: ASCII letters have the same cases in
    both, and \\w, \\d and \\b mean the same there. Only \\s differs, Unicode also counting the ASCII
    separators U+001C-U+001F as space, so a text holding one is searched in Unicode mode. An ASCII text
    first meets the `_gate`, which turns away most texts at a fifth of the cost of the full search.
    """
    by_category: dict[str, list[str]] = {}
    for row in read_table("fhir_mappings", "condition_phrases.csv"):
        if BACKREFERENCE.search(row["pattern"]):
            raise ValueError(f"condition phrase {row['pattern']!r} has a backreference")
        by_category.setdefault(row["category"], []).append(f"(?:{row['pattern']})")
    anything = "|".join(p for patterns in by_category.values() for p in patterns)
    return {
        ascii_only: (
            _gate(anything) if ascii_only else None,
            re.compile(anything, flags),
            tuple((category, re.compile("|".join(patterns), flags)) for category, patterns in by_category.items()),
        )
        for ascii_only, flags in ((False, re.IGNORECASE), (True, re.IGNORECASE | re.ASCII))
    }


# A bounded cache of the code lookup: the codes come from a vocabulary a site's charts draw a few
# thousand of. Free text and other per-patient content are never cached (no patient data kept between calls).
LOOKUPS_CACHED = 4096


@lru_cache(maxsize=LOOKUPS_CACHED)
def _code_categories(system: str, code: str) -> tuple[str, ...]:
    """Categories of one coding: exact code, then ICD-10-CM category prefix, then ICD-10-CM block range."""
    exact, prefixes, ranges = _code_table()
    key = _icd(code) if system == ICD10CM else code
    found = list(exact.get((system, key), ()))
    if system == ICD10CM:
        found.extend(category for prefix, category in prefixes if key.startswith(prefix))
        found.extend(category for low, high, category in ranges if low <= key[:3] <= high)
    return tuple(found)


def _phrase_categories(text: str) -> tuple[str, ...]:
    gate, anything, categories = _phrases()[text.isascii() and not UNICODE_ONLY_SPACE.search(text)]
    if gate is not None and not gate.search(text.lower()):
        return ()
    if not anything.search(text):
        return ()
    return tuple(category for category, pattern in categories if pattern.search(text))


def categories_of(concept: Json | None) -> list[tuple[str, str]]:
    """[(category, 'system|code' or 'text')] for a CodeableConcept."""
    return _categories(concept, concept_text(concept) or "")


def _categories(concept: Json | None, text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for coding in codings(concept):
        system, code = coding.get("system"), coding.get("code")
        if isinstance(code, str) and (categories := _code_categories(str(system), code)):
            label = f"{system}|{code}"
            found.extend((category, label) for category in categories)
    found.extend((category, "text") for category in _phrase_categories(text))
    return list(dict.fromkeys(found))


def _status(concept: Any) -> str | None:
    return next((c.get("code") for c in codings(concept) if c.get("code")), None)


def read_condition(resource: Json) -> list[CodedFact]:
    """Most of a chart's Conditions are of no category the service reads: they end at the lookup."""
    if _status(resource.get("verificationStatus")) in EXCLUDED_VERIFICATION:
        return []
    text = concept_text(resource.get("code")) or ""
    categories = _categories(resource.get("code"), text)
    if not categories:
        return []
    clinical = _status(resource.get("clinicalStatus"))
    status = "active" if clinical in ACTIVE_CLINICAL or clinical is None else "resolved"
    since = parse_date(resource.get("onsetDateTime")) or parse_date(resource.get("recordedDate"))
    abated = parse_date(resource.get("abatementDateTime"))
    return [
        CodedFact(category, text, code, reference_of(resource), since, status, abated) for category, code in categories
    ]
