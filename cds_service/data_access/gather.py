"""Assemble the data of one hook call from its prefetch; required data unobtainable means 412."""
from __future__ import annotations

from typing import Any

from cds_service.data_access.prefetch import KeyState, read_key
from cds_service.errors import ApiError
from cds_service.hooks.service import CdsService, HookData, prefetch_source
from fhir_mappings import DataIssue


def gather(service: CdsService, request: dict[str, Any]) -> HookData:
    prefetch = request.get("prefetch") or {}
    by_key: dict[str, tuple] = {}
    issues: list[DataIssue] = []
    unavailable: list[str] = []
    for template in service.prefetch:
        result = read_key(template.key, prefetch)
        issues.extend(result.issues)
        if result.state in (KeyState.DATA, KeyState.NO_DATA):
            by_key[template.key] = result.resources
            if result.next_page:
                issues.append(DataIssue(prefetch_source(template.key), "only the first page was sent; later results were not read"))
            continue
        why = "was not prefetched" if result.state is KeyState.ABSENT else "failed in the EHR"
        if template.required:
            unavailable.append(f"'{template.key}' ({template.query}) {why}")
        else:
            issues.append(DataIssue(prefetch_source(template.key), f"{why}; findings that depend on it may be incomplete"))
    if unavailable:
        raise ApiError(
            412,
            "required FHIR data could not be obtained: " + "; ".join(unavailable),
            [f"prefetch.{t.key}" for t in service.prefetch if t.required and t.key not in by_key],
        )
    return HookData(by_key=by_key, issues=tuple(issues))
