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


def test_a_prefetch_longer_than_the_service_reads_uses_the_newest_and_says_so(client, example_request):
    """A long stay: 1,100 old counts sent first, this week's last. The newest are read (the grade 4 ANC
    of this week is found) and the card says how many were left out."""
    recent = example_request["prefetch"]["bloodCounts"]["entry"]
    old = [
        {"resource": {**recent[0]["resource"], "id": f"old-{n}", "effectiveDateTime": "2020-01-01T08:00:00Z"}}
        for n in range(1_100)
    ]
    example_request["prefetch"]["bloodCounts"]["entry"] = old + recent
    response = client.post("/cds-services/cytopenia-review", json=example_request)
    assert response.status_code == 200
    card = next(c for c in response.get_json()["cards"] if c["summary"].startswith("Pancytopenia"))
    assert "| ANC | 0.4 ×10⁹/L | 4 |" in card["detail"]
    assert f"{len(old) + len(recent)} entries were sent; only the newest 1000 were read" in card["detail"]
