"""The five prefetch states of CDS Hooks 2.0.1, told apart per key.

absent -> not satisfied (the service must get it itself); null -> no data; a resource or Bundle
-> data; an OperationOutcome, or a Bundle carrying an error one -> unavailable (never "no data");
a Bundle with a `next` link -> a first page only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cds_service.request import DataIssue, operation_outcome_issues, prefetch_source, resources_in

Json = dict[str, Any]


class KeyState(StrEnum):
    ABSENT = "absent"
    NO_DATA = "no-data"
    DATA = "data"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class PrefetchResult:
    state: KeyState
    resources: tuple[Json, ...] = ()
    issues: tuple[DataIssue, ...] = ()
    next_page: str | None = None


def next_link(bundle: Any) -> str | None:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return None
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def read_key(key: str, prefetch: Mapping[str, Any]) -> PrefetchResult:
    if key not in prefetch:
        return PrefetchResult(KeyState.ABSENT)
    value = prefetch[key]
    if value is None:
        return PrefetchResult(KeyState.NO_DATA)
    resources: list[Json] = []
    issues: list[DataIssue] = []
    for resource in resources_in(value):
        if resource.get("resourceType") == "OperationOutcome":
            issues.extend(DataIssue(prefetch_source(key), i.problem) for i in operation_outcome_issues(resource))
        else:
            resources.append(resource)
    if issues:
        return PrefetchResult(KeyState.ERROR, tuple(resources), tuple(issues))
    return PrefetchResult(KeyState.DATA, tuple(resources), next_page=next_link(value))
