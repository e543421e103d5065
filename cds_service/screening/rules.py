"""The one rule only a population view can apply: a BCR-ABL TKI held and never restarted.

Hooks see an order when it is drafted; nobody is asked when a held TKI quietly stays held. ELN 2016
(Table 8, `tki_cytopenia.csv`) stops a TKI for cytopenia *until counts recover*, then resumes it: an
order on hold or stopped with no later active order of a TKI is worth a pharmacist's look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_service.clinical.order_knowledge import tki_thresholds
from cds_service.screening.lenient import HELD_STATUSES
from fhir_mappings import ClinicalRecord


@dataclass(frozen=True, slots=True)
class HeldOrder:
    source: str
    since: datetime | None
    why: str
    action: str


def held_tki_orders(record: ClinicalRecord, as_of: datetime) -> tuple[HeldOrder, ...]:
    """Held or stopped TKI orders written by `as_of` with no active TKI order written after them."""
    tkis = [m for m in record.medications if m.in_group("bcr_abl_tki") and (m.authored_on or as_of) <= as_of]
    held = []
    for order in (m for m in tkis if m.status in HELD_STATUSES):
        since = order.authored_on
        restarted = any(
            m.status == "active" and m.authored_on and (since is None or m.authored_on > since) for m in tkis
        )
        if restarted:
            continue
        name = order.ingredients[0]
        row = tki_thresholds().get(name)
        when = f" since {since:%Y-%m-%d}" if since else ""
        held.append(
            HeldOrder(
                order.source,
                since,
                f"{name.capitalize()} {order.status}{when}, no later active order",
                f"Review whether to restart {name}" + (f" ({row.cited_as}: {row.resume_text})" if row else ""),
            )
        )
    return tuple(held)
