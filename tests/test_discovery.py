"""Discovery as an integrator reads it: one id per entry, and the SMART scopes the fallback needs."""

from __future__ import annotations

from tests.conftest import assert_valid


def test_every_listed_entry_has_its_own_id(client):
    """Clients such as the CDS Hooks Sandbox key services by URL (= id): a repeated id loses a hook."""
    document = client.get("/cds-services").get_json()
    ids = [s["id"] for s in document["services"]]
    assert len(ids) == len(set(ids)), ids
    assert "myelotoxic-order-check" not in ids


def test_usage_requirements_name_the_smart_scopes_of_every_prefetched_type(client):
    document = client.get("/cds-services").get_json()
    assert_valid("discovery", document)
    for service in document["services"]:
        types = {query.partition("?")[0].partition("/")[0] for query in service.get("prefetch", {}).values()}
        for resource_type in types:
            assert f"patient/{resource_type}.read" in service["usageRequirements"], service["id"]


def test_feedback_on_a_card_from_the_retired_id_is_still_received(client):
    """Cards issued under the old id during the deprecation period get their feedback back at that id."""
    item = {"card": "card-from-the-old-id", "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:05:00Z"}
    response = client.post("/cds-services/myelotoxic-order-check/feedback", json={"feedback": [item]})
    assert response.status_code == 200, response.get_data(as_text=True)
