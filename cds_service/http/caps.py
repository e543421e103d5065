"""Bounded work per request: how many feedback items and draft orders one request may carry, and why.

Each cap keeps the slowest request at the cap well inside the worker timeout (see `make bench`,
"requests at the caps") and is far above what an EHR sends; a request over it is refused whole with a
413 that names the cap and its basis, so the EHR's integrator can see what to change.
"""

from __future__ import annotations

from typing import Any

from cds_service.errors import ApiError

MAX_FEEDBACK_ITEMS = 100
FEEDBACK_BASIS = (
    "feedback reports what clinicians did with the cards of a few responses; this service returns a handful "
    "of cards per call, so 100 leaves ample room for an EHR that batches"
)
MAX_DRAFT_ORDERS = 200
DRAFT_ORDERS_BASIS = (
    "an order-sign carries the orders being signed together; the largest chemotherapy order sets run to "
    "tens of orders, so 200 leaves ample room"
)


def check_feedback_items(document: Any) -> None:
    items = document.get("feedback") if isinstance(document, dict) else None
    if isinstance(items, list) and len(items) > MAX_FEEDBACK_ITEMS:
        raise ApiError(
            413,
            f"feedback has {len(items)} items; at most {MAX_FEEDBACK_ITEMS} per request ({FEEDBACK_BASIS}): "
            "send them in several requests",
            ["feedback"],
        )


def check_draft_orders(document: Any) -> None:
    context = document.get("context") if isinstance(document, dict) else None
    bundle = context.get("draftOrders") if isinstance(context, dict) else None
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if isinstance(entries, list) and len(entries) > MAX_DRAFT_ORDERS:
        raise ApiError(
            413,
            f"context.draftOrders has {len(entries)} entries; "
            f"at most {MAX_DRAFT_ORDERS} per call ({DRAFT_ORDERS_BASIS})",
            ["context.draftOrders"],
        )
