"""Writing the audit trail: one hook call and the cards it produced, inside the call's transaction.

What goes in is clipped and type-checked against the columns here (text that is not a string is
dropped, NUL characters replaced, lengths cut to the column), so no request content can make the
row unwritable: a call that was answered has its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, String, Table

from cds_service.storage.alert_state import Screened, remember, showing_parameters, upsert_sql
from cds_service.storage.models import CardRecord, HookCallRecord
from cds_service.storage.sql import bound, execute, row_parameters, values_rows, write_last

HOOK_CALLS = cast(Table, HookCallRecord.__table__)
CARDS = cast(Table, CardRecord.__table__)
CALL_COLUMNS = HOOK_CALLS.c
TEXT_LIMITS = {c.name: c.type.length for c in CALL_COLUMNS if isinstance(c.type, String) and c.type.length}
REFERENCE_LIMIT = 200
CALL_FIELDS = tuple(c.name for c in HOOK_CALLS.columns if c.name != "id")
CARD_FIELDS = tuple(c.name for c in CARDS.columns)


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


def _call_sql(dialect: str) -> str:
    return f"INSERT INTO hook_call ({', '.join(CALL_FIELDS)}) VALUES {values_rows(dialect, 'call', CALL_FIELDS, 1)}"


def _cards_sql(dialect: str, cards: int, call_id: str) -> str:
    rows = values_rows(dialect, "card", CARD_FIELDS, cards, {"call_id": call_id})
    return f"INSERT INTO card ({', '.join(CARD_FIELDS)}) VALUES {rows}"


@cache
def _sqlite_statements(cards: int) -> tuple[str, str]:
    return f"{_call_sql('sqlite')} RETURNING id", _cards_sql("sqlite", cards, ":call_id")


@cache
def _postgresql_statement(cards: int, showings: int) -> str:
    """Audit row, card rows and alert state in one statement, one round trip: the card rows take the
    call's id from the CTE that inserted it."""
    parts = [f"WITH call AS ({_call_sql('postgresql')} RETURNING id)"]
    if showings:
        parts.append(f", showing AS ({upsert_sql('postgresql', showings)})")
    parts.append(_cards_sql("postgresql", cards, "(SELECT id FROM call)") if cards else "SELECT id FROM call")
    return " ".join(parts)


def _card_row(screened: Screened, call: dict[str, Any]) -> dict[str, Any]:
    card = screened.card
    return {
        "uuid": card.uuid,
        "issued_at": call["received_at"],
        "service_id": call["service_id"],
        "finding": card.finding,
        "indicator": card.indicator,
        "grade": card.grade,
        "patient_key": call["patient_key"],
        "suggestion_uuids": list(card.suggestion_uuids),
        "shown": screened.shown,
        "suppressed": str(screened.suppressed) if screened.suppressed else None,
        "shown_before": screened.shown_before,
    }


def record_call(
    connection: Connection,
    call: dict[str, Any],
    cards: Sequence[Screened],
    showings: Sequence[dict[str, Any]] = (),
) -> None:
    """Write the call's audit row, its cards and the showings `alert_state.screen` decided, inside the
    call's transaction: one statement on PostgreSQL, three at most on SQLite (no data-modifying CTEs)."""
    row = _storable_row(call)
    parameters = row_parameters("call", [bound(connection, HOOK_CALLS, row)], CALL_FIELDS)
    parameters |= row_parameters("card", (bound(connection, CARDS, _card_row(s, row)) for s in cards), CARD_FIELDS)
    if connection.dialect.name == "postgresql":
        parameters |= showing_parameters(connection, showings)
        write_last(connection, _postgresql_statement(len(cards), len(showings)), parameters)
        return
    remember(connection, showings)
    insert_call, insert_cards = _sqlite_statements(len(cards))
    [(parameters["call_id"],)] = execute(connection, insert_call, parameters)
    if cards:
        execute(connection, insert_cards, parameters)
