"""POST /cds-services/{id}/feedback on SQLite and PostgreSQL: stored durably, once, unknown cards flagged."""

from __future__ import annotations

import pytest

from cds_service.storage.models import FeedbackRecord
from tests.storage_helpers import cards_for, rows

FEEDBACK = "/cds-services/cytopenia-review/feedback"


@pytest.fixture
def issued(app, example_request):
    client = app.test_client()
    return client, cards_for(client, example_request)


def accepted(card: dict) -> dict:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-20T10:05:00.52Z",
    }


def test_accepted_feedback_is_stored_against_the_issued_card(app, issued):
    client, cards = issued
    response = client.post(FEEDBACK, json={"feedback": [accepted(cards[0])]})
    assert response.status_code == 200
    (stored,) = rows(app, FeedbackRecord)
    assert stored.card_uuid == cards[0]["uuid"] and stored.known_card
    assert stored.outcome == "accepted" and stored.accepted_suggestions == [cards[0]["suggestions"][0]["uuid"]]
    assert stored.outcome_at.isoformat() == "2026-11-20T10:05:00.520000+00:00"


def test_the_same_feedback_twice_is_stored_once(app, issued):
    client, cards = issued
    item = accepted(cards[0])
    for _ in range(2):
        assert client.post(FEEDBACK, json={"feedback": [item, dict(reversed(item.items()))]}).status_code == 200
    assert len(rows(app, FeedbackRecord)) == 1


def test_feedback_for_a_card_never_issued_is_stored_and_flagged(app, issued):
    client, _ = issued
    item = {"card": "not-a-card-we-issued", "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:05:00Z"}
    assert client.post(FEEDBACK, json={"feedback": [item]}).status_code == 200
    (stored,) = rows(app, FeedbackRecord)
    assert stored.card_uuid == "not-a-card-we-issued" and not stored.known_card


@pytest.mark.parametrize(
    "override",
    [
        {
            "reason": {"code": "already-aware", "system": "urn:cytopenia-cds:override-reason"},
            "userComment": "known, on G-CSF",
        },
        {"code": "already-aware", "system": "urn:cytopenia-cds:override-reason"},  # the old Sandbox shape (PR #135)
    ],
)
def test_override_reason_is_read_in_both_sandbox_shapes(app, issued, override):
    client, cards = issued
    item = {
        "card": cards[0]["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-20T10:05:00Z",
        "overrideReason": override,
    }
    assert client.post(FEEDBACK, json={"feedback": [item]}).status_code == 200
    (stored,) = rows(app, FeedbackRecord)
    assert (stored.override_system, stored.override_code) == ("urn:cytopenia-cds:override-reason", "already-aware")
    assert stored.user_comment == override.get("userComment")


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"feedback": [{"card": "x", "outcome": "maybe", "outcomeTimestamp": "2026-11-20T10:05:00Z"}]}, "outcome"),
        (
            {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-11-20T10:05:00Z"}]},
            "acceptedSuggestions",
        ),
        ({"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]}, "outcomeTimestamp"),
        ({"feedback": []}, "feedback"),
    ],
)
def test_bad_feedback_is_400_operation_outcome_and_nothing_is_stored(app, body, expected):
    response = app.test_client().post(FEEDBACK, json=body)
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and expected in outcome["issue"][0]["details"]["text"]
    assert rows(app, FeedbackRecord) == []


def test_feedback_to_an_unknown_service_is_404(app):
    item = {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:05:00Z"}
    response = app.test_client().post("/cds-services/nope/feedback", json={"feedback": [item]})
    assert response.status_code == 404 and response.get_json()["resourceType"] == "OperationOutcome"


def test_feedback_to_a_service_switched_off_is_404_like_its_calls(make_app):
    client = make_app(services_enabled=["febrile-neutropenia"]).test_client()
    item = {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:05:00Z"}
    assert client.post("/cds-services/cytopenia-review", json={}).status_code == 404
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 404 and response.get_json()["resourceType"] == "OperationOutcome"
