"""Bounded work per hook call: an order-sign with more draft orders than the cap is refused whole, with the
cap and its basis named; at the cap it is answered."""

from __future__ import annotations

from cds_service.http.caps import MAX_DRAFT_ORDERS
from tests.test_order_safety_http import clozapine_draft, request

ORDER_CHECK = "/cds-services/myelotoxic-order-check"


def test_draft_orders_over_the_cap_are_413_naming_the_cap_and_its_basis(client):
    response = client.post(ORDER_CHECK, json=request([clozapine_draft()] * (MAX_DRAFT_ORDERS + 1)))
    assert response.status_code == 413
    issue = response.get_json()["issue"][0]
    assert issue["expression"] == ["context.draftOrders"]
    assert f"at most {MAX_DRAFT_ORDERS} per call" in issue["details"]["text"]
    assert "order sets" in issue["details"]["text"]


def test_draft_orders_at_the_cap_are_answered(client):
    drafts = [{**clozapine_draft(), "id": f"draft-{n}"} for n in range(MAX_DRAFT_ORDERS)]
    response = client.post(ORDER_CHECK, json=request(drafts))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
