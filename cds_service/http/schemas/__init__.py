"""The project's CDS Hooks 2.0.1 JSON Schemas (there is no official one), compiled once.

Each request is checked by the compiled (Rust) validator, about a microsecond for a valid body; only a
body it rejects goes through the Python validator, whose best-matching error names what is wrong (and
whose verdict stands, so the two can never disagree on what is accepted).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match


@cache
def schema(name: str) -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8"))


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), format_checker=FormatChecker())


@cache
def compiled(name: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(schema(name), validate_formats=True)


def first_error(name: str, document: Any) -> tuple[str, list[str]] | None:
    """The most relevant violation as (message, [JSON path]), or None when valid."""
    if compiled(name).is_valid(document):
        return None
    error = best_match(validator(name).iter_errors(document))
    if error is None:
        return None
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    where = path or "request body"
    return f"{where}: {error.message[:300]}", [path] if path else []
