"""Writing the audit trail: one hook call and the cards it produced, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, insert

from cds_service.storage.alert_state import Screened
from cds_service.storage.models import CardRecord, HookCallRecord


def record_call(engine: Engine, call: dict[str, Any], cards: Sequence[Screened]) -> None:
    with engine.begin() as connection:
        call_id = connection.execute(insert(HookCallRecord).values(**call).returning(HookCallRecord.id)).scalar_one()
        if cards:
            connection.execute(
                insert(CardRecord),
                [
                    {
                        "uuid": s.card.uuid,
                        "call_id": call_id,
                        "issued_at": call["received_at"],
                        "service_id": call["service_id"],
                        "finding": s.card.finding,
                        "indicator": s.card.indicator,
                        "grade": s.card.grade,
                        "patient_key": call["patient_key"],
                        "suggestion_uuids": list(s.card.suggestion_uuids),
                        "shown": s.shown,
                        "suppressed": s.suppressed,
                        "shown_before": s.shown_before,
                    }
                    for s in cards
                ],
            )
