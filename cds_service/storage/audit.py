"""Writing the audit trail: one hook call and the cards it produced, inside the call's transaction.

What goes in is clipped and type-checked against the columns here (text that is not a string is
dropped, NUL characters replaced, lengths cut to the column), so no request content can make the
row unwritable: a call that was answered has its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, String, insert

from cds_service.storage.alert_state import Screened
from cds_service.storage.models import CardRecord, HookCallRecord

HOOK_CALLS = HookCallRecord.metadata.tables[HookCallRecord.__tablename__]
CALL_COLUMNS = HOOK_CALLS.c
TEXT_LIMITS = {c.name: c.type.length for c in CALL_COLUMNS if isinstance(c.type, String) and c.type.length}
REFERENCE_LIMIT = 200
INSERT_CALL = insert(HOOK_CALLS).returning(CALL_COLUMNS.id)
INSERT_CARDS = insert(CardRecord.metadata.tables[CardRecord.__tablename__])


def storable_text(value: Any, limit: int) -> str | None:
    """A string the database can hold in a column of `limit` characters; None for anything else."""
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "\ufffd")[:limit]


def _storable_row(call: dict[str, Any]) -> dict[str, Any]:
    row = dict(call) | {name: storable_text(call.get(name), limit) for name, limit in TEXT_LIMITS.items()}
    row["data_sources"] = {
        storable_text(key, REFERENCE_LIMIT): {
            "origin": source["origin"],
            "resources": [storable_text(r, REFERENCE_LIMIT) for r in source["resources"]],
        }
        for key, source in call["data_sources"].items()
    }
    return row


def record_call(connection: Connection, call: dict[str, Any], cards: Sequence[Screened]) -> None:
    row = _storable_row(call)
    call_id = connection.execute(INSERT_CALL, row).scalar_one()
    if cards:
        connection.execute(
            INSERT_CARDS,
            [
                {
                    "uuid": s.card.uuid,
                    "call_id": call_id,
                    "issued_at": row["received_at"],
                    "service_id": row["service_id"],
                    "finding": s.card.finding,
                    "indicator": s.card.indicator,
                    "grade": s.card.grade,
                    "patient_key": row["patient_key"],
                    "suggestion_uuids": list(s.card.suggestion_uuids),
                    "shown": s.shown,
                    "suppressed": s.suppressed,
                    "shown_before": s.shown_before,
                }
                for s in cards
            ],
        )
