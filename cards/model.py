"""CDS Hooks 2.0 response objects that cannot be serialised wrong.

The spec forbids null and empty members; `to_json` omits them, every card and suggestion gets a
uuid (feedback needs it), and a card with suggestions always states its selectionBehavior.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

Indicator = Literal["info", "warning", "critical"]
SUMMARY_MAX = 139
DETAIL_MAX = {"info": 700, "warning": 700, "critical": 1500}
"""Hard maxima of a card's detail in characters; the card-quality report checks them over the corpus."""
REPEAT_NOTE_RESERVE = 50
DETAIL_BUDGET = {indicator: limit - REPEAT_NOTE_RESERVE for indicator, limit in DETAIL_MAX.items()}
"""What a card builder may fill: the alert-fatigue layer may append "Shown before on …" to a repeat."""


def _compact(members: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in members.items() if v is not None and v != "" and v != [] and v != {}}


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact({"system": self.system, "code": self.code, "display": self.display})


@dataclass(frozen=True, slots=True)
class Source:
    label: str
    url: str | None = None
    topic: Coding | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact({"label": self.label, "url": self.url, "topic": self.topic.to_json() if self.topic else None})


@dataclass(frozen=True, slots=True)
class Action:
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resource_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "type": self.type,
                "description": self.description,
                "resource": self.resource,
                "resourceId": self.resource_id,
            }
        )


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    actions: tuple[Action, ...] = ()
    is_recommended: bool | None = None
    uuid: str = field(default_factory=new_uuid)
    # Internal, never serialised: the catalogue orders it drafts, so one response offers each order once.
    orders: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "label": self.label,
                "uuid": self.uuid,
                "isRecommended": self.is_recommended,
                "actions": [a.to_json() for a in self.actions],
            }
        )


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    app_context: str | None = None  # for a `smart` link: handed to the app by the EHR, if it passes it on

    def to_json(self) -> dict[str, Any]:
        return _compact({"label": self.label, "url": self.url, "type": self.type, "appContext": self.app_context})


@dataclass(frozen=True, slots=True)
class Card:
    summary: str
    indicator: Indicator
    source: Source
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: Literal["at-most-one", "any"] | None = None
    override_reasons: tuple[Coding, ...] = ()
    links: tuple[Link, ...] = ()
    uuid: str = field(default_factory=new_uuid)
    # Internal, never serialised: what the card is about, for the audit trail and alert-fatigue control.
    finding: str | None = None
    trigger: str | None = None  # the results that raised it (ids and values); a new result is a new trigger
    grade: int = 0

    def __post_init__(self) -> None:
        if len(self.summary) > SUMMARY_MAX:
            raise ValueError(f"card summary exceeds {SUMMARY_MAX} characters: {self.summary!r}")
        if self.suggestions and self.selection_behavior is None:
            raise ValueError("a card with suggestions must state its selectionBehavior")
        if any(reason.display is None for reason in self.override_reasons):
            raise ValueError("every override reason needs a display")

    def to_json(self) -> dict[str, Any]:
        return _compact(
            {
                "uuid": self.uuid,
                "summary": self.summary,
                "detail": self.detail,
                "indicator": self.indicator,
                "source": self.source.to_json(),
                "suggestions": [s.to_json() for s in self.suggestions],
                "selectionBehavior": self.selection_behavior if self.suggestions else None,
                "overrideReasons": [r.to_json() for r in self.override_reasons],
                "links": [link.to_json() for link in self.links],
            }
        )
