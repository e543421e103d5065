"""Prefetch templates: CDS Hooks 2.0 tokens filled in safely, and the recommended query subset checked.

A filled-in value goes into a URL sent with the EHR's access token, so it must be a FHIR id (or a
`Type/id` reference for `context.userId`): anything else could smuggle extra search parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
# Root-level context fields each hook marks as prefetch tokens (CDS Hooks 2.0 hook pages).
HOOK_CONTEXT_TOKENS = {
    "patient-view": {"userId", "patientId", "encounterId"},
    "order-select": {"userId", "patientId", "encounterId"},
    "order-sign": {"userId", "patientId", "encounterId"},
    "encounter-start": {"userId", "patientId", "encounterId"},
    "encounter-discharge": {"userId", "patientId", "encounterId"},
}
# The recommended subset (CDS Hooks 2.0 "Prefetch query restrictions"): references, token equality
# (optionally `:in`), dates with eq|lt|gt|ge|le, `_count` and `_sort`.
REFERENCE_PARAMS = {"patient", "subject", "encounter", "requester", "performer", "_id"}
TOKEN_PARAMS = {"code", "category", "status", "clinical-status", "verification-status", "intent", "type"}
DATE_PARAMS = {"date", "authoredon", "onset-date", "recorded-date", "issued", "period"}
DATE_VALUE = re.compile(r"(eq|lt|gt|ge|le)?(\d{4}(-\d{2}(-\d{2}(T[\d:.+\-Z]+)?)?)?|\{\{[^{}]+\}\})")


class UnfilledToken(ValueError):
    """The request lacks (or carries an unsafe value for) a token this template needs."""


def fill(query: str, context: Mapping[str, Any]) -> str:
    """The query with every token replaced, or UnfilledToken naming what is missing."""
    return TOKEN.sub(lambda match: _value(match.group(1), context), query)


def _value(token: str, context: Mapping[str, Any]) -> str:
    if token.startswith("context."):
        value = context.get(token.removeprefix("context."))
        if isinstance(value, str) and (FHIR_ID.fullmatch(value) or REFERENCE.fullmatch(value)):
            return value
        raise UnfilledToken(
            f"{{{{{token}}}}}: context has no usable value"
            if value is None
            else f"{{{{{token}}}}}: the context value is not a FHIR id"
        )
    if token in USER_TOKENS:
        user = REFERENCE.fullmatch(str(context.get("userId") or ""))
        if user and user.group(1) == USER_TOKENS[token]:
            return user.group(2)
        raise UnfilledToken(f"{{{{{token}}}}}: the user is not a {USER_TOKENS[token]}")
    raise UnfilledToken(f"{{{{{token}}}}} is not a CDS Hooks 2.0 prefetch token")


def _is_token(hook: str, token: str) -> bool:
    if token in USER_TOKENS:
        return True
    return token.startswith("context.") and token.removeprefix("context.") in HOOK_CONTEXT_TOKENS.get(hook, set())


def template_problems(hook: str, query: str) -> list[str]:
    """Why a template is outside CDS Hooks 2.0 tokens or the recommended query subset (empty if fine)."""
    problems = [
        f"token {{{{{t}}}}} is not a CDS Hooks 2.0 token for {hook}"
        for t in TOKEN.findall(query)
        if not _is_token(hook, t)
    ]
    path, _, search = query.partition("?")
    parts = path.split("/")
    if not RESOURCE_TYPE.fullmatch(parts[0]) or len(parts) > 2 or (len(parts) == 2 and search):
        return [*problems, f"'{path}' is neither an instance read nor a type-level search"]
    for name, value in parse_qsl(search, keep_blank_values=True):
        base, _, modifier = name.partition(":")
        if base == "_count":
            ok = value.isdigit() and not modifier
        elif base == "_sort":
            ok = re.fullmatch(r"-?[a-z\-]+", value) is not None and not modifier
        elif base in REFERENCE_PARAMS:
            ok = not modifier and bool(value)
        elif base in TOKEN_PARAMS:
            ok = modifier in ("", "in") and bool(value)
        elif base in DATE_PARAMS:
            ok = not modifier and DATE_VALUE.fullmatch(value) is not None
        else:
            ok = False
        if not ok:
            problems.append(f"search parameter '{name}={value[:40]}' is outside the recommended subset")
    return problems
