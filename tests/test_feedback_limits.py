"""Feedback the database cannot hold is a 400 naming the item (never "503, please retry", which an EHR
resends forever), the old Sandbox's shapes are accepted, and one request carries at most the cap."""

from __future__ import annotations

import pytest

from cds_service.http.caps import MAX_FEEDBACK_ITEMS
from cds_service.storage.models import FeedbackRecord
from tests.storage_helpers import rows

FEEDBACK = "/cds-services/cytopenia-review/feedback"
REASON_SYSTEM = "urn:cytopenia-cds:override-reason"


def item(card: str = "card-1", **fields) -> dict:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:05:00Z", **fields}


def reason(**coding) -> dict:
    return {"overrideReason": {"reason": {"system": REASON_SYSTEM, "code": "not-relevant", **coding}}}


@pytest.mark.parametrize(
    ("bad", "named", "said"),
    [
        (item("x" * 201), "feedback[1].card", "201 characters long; at most 200"),
        (item("nul\x00card"), "feedback[1].card", "NUL"),
        (item(**reason(code="c" * 201)), "feedback[1].overrideReason.reason.code", "at most 200"),
        (item(**reason(system="s" * 501)), "feedback[1].overrideReason.reason.system", "at most 500"),
        (item(**reason(display="nul\x00")), "feedback[1].overrideReason.reason.display", "NUL"),
        (item(overrideReason={"userComment": "a\x00b"}), "feedback[1].overrideReason.userComment", "NUL"),
        (
            item(overrideReason={"code": ["a", "b"], "system": REASON_SYSTEM}),
            "feedback[1].overrideReason.code",
            "string",
        ),
        (item(overrideReason={"code": {"x": 1}}), "feedback[1].overrideReason.code", "string"),
        (
            item(outcomeTimestamp="0001-01-01T00:00:00+05:00"),
            "feedback[1].outcomeTimestamp",
            "UTC equivalent",
        ),
    ],
)
def test_feedback_the_database_cannot_hold_is_a_400_naming_the_item_and_nothing_is_stored(app, bad, named, said):
    response = app.test_client().post(FEEDBACK, json={"feedback": [item("fine"), bad]})
    assert response.status_code == 400, response.get_data(as_text=True)
    issue = response.get_json()["issue"][0]
    assert issue["expression"] == [named] and said in issue["details"]["text"]
    assert rows(app, FeedbackRecord) == []


def test_the_old_sandbox_reason_with_a_code_given_as_a_list_is_read(app):
    old = item(overrideReason={"code": ["already-aware"], "system": REASON_SYSTEM})
    assert app.test_client().post(FEEDBACK, json={"feedback": [old]}).status_code == 200
    (stored,) = rows(app, FeedbackRecord)
    assert (stored.override_system, stored.override_code) == (REASON_SYSTEM, "already-aware")


def test_a_request_over_the_item_cap_is_413_naming_the_cap_and_its_basis(app):
    body = {"feedback": [item(f"card-{n}") for n in range(10_000)]}
    response = app.test_client().post(FEEDBACK, json=body)
    assert response.status_code == 413
    text = response.get_json()["issue"][0]["details"]["text"]
    assert f"at most {MAX_FEEDBACK_ITEMS} per request" in text and "10000 items" in text and "batches" in text
    assert rows(app, FeedbackRecord) == []


def test_a_request_at_the_cap_is_stored_whole(app):
    body = {"feedback": [item(f"card-{n}", **reason()) for n in range(MAX_FEEDBACK_ITEMS)]}
    client = app.test_client()
    assert client.post(FEEDBACK, json=body).status_code == 200
    assert client.post(FEEDBACK, json=body).status_code == 200  # resent: stored once
    assert len(rows(app, FeedbackRecord)) == MAX_FEEDBACK_ITEMS


def test_a_lost_database_is_503_with_retry_after(app):
    from cds_service.storage import Store

    app.extensions["cytopenia.store"] = Store("postgresql+psycopg://cds@127.0.0.1:1/gone")
    response = app.test_client().post(FEEDBACK, json={"feedback": [item()]})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("tenant, stored", [("t" * 300, "t" * 200), ("nul\x00tenant", "nul\ufffdtenant")])
def test_feedback_under_a_token_with_an_odd_tenant_is_stored(database_url, tmp_path, tenant, stored):
    """The tenant claim comes from the EHR's signed token: kept as the audit trail keeps it, never a 503."""
    from cds_service.app import create_app
    from cds_service.config import ClientConfig, Settings
    from tests.jwt_support import BASE_URL, EHR_ISSUER, SigningKey, bearer, claims, write_jwks

    key = SigningKey.generate("ES256")
    client = ClientConfig(issuer=EHR_ISSUER, jwks_file=write_jwks(tmp_path / "jwks.json", key), algorithms=["ES256"])
    app = create_app(
        Settings(
            dev=False, workers=1, public_base_url=BASE_URL, clients=[client], database_url=database_url, audit_key="k"
        )
    )
    token = key.mint(claims(aud=BASE_URL + FEEDBACK, tenant=tenant))
    response = app.test_client().post(FEEDBACK, json={"feedback": [item()]}, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    (row,) = rows(app, FeedbackRecord)
    assert row.client_tenant == stored
    app.extensions["cytopenia.store"].engine.dispose()
