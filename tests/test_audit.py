"""The audit trail of every hook call: who, which (hashed) patient, what data, how fast, what came of it;
and nothing it must not keep (tokens, names, birth dates, the patient id, resource bodies)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import text

from cds_service.app import create_app
from cds_service.config import ConfigError, Settings
from cds_service.storage.models import CardRecord, HookCallRecord
from tests.storage_helpers import cards_for, rows


def test_a_hook_call_is_audited_with_its_cards_and_data_sources(app, example_request):
    cards = cards_for(app.test_client(), example_request)
    (call,) = rows(app, HookCallRecord)
    assert (call.service_id, call.hook, call.hook_instance, call.status) == (
        "cytopenia-review",
        "patient-view",
        example_request["hookInstance"],
        200,
    )
    assert call.patient_key == hmac.new(b"test-key", b"example-neutropenia", hashlib.sha256).hexdigest()
    assert call.data_sources["bloodCounts"]["origin"] == "prefetch"
    assert "Observation/anc-20261119" in call.data_sources["bloodCounts"]["resources"]
    assert call.data_sources["patient"]["resources"] == ["Patient"]
    assert set(call.latency_ms) == {"gather", "evaluate", "fatigue"} and call.total_ms > 0
    issued = {r.uuid: r for r in rows(app, CardRecord)}
    for card in cards:
        record = issued[card["uuid"]]
        assert record.indicator == card["indicator"] and record.shown
        assert record.suggestion_uuids == [s["uuid"] for s in card["suggestions"]]
    assert {r.finding for r in issued.values()} == {"pancytopenia"}, "one card per problem"


def test_the_database_holds_no_patient_id_name_birth_date_or_token(app, example_request):
    example_request["prefetch"]["patient"]["name"] = [{"family": "Zebedee-Quincey", "given": ["Ottoline"]}]
    example_request["fhirServer"] = "https://ehr.example.org/fhir"
    example_request["fhirAuthorization"] = {
        "access_token": "secret-token-xyz",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
    }
    cards_for(app.test_client(), example_request)
    with app.extensions["cytopenia.store"].engine.connect() as connection:
        dump = " ".join(
            str(row)
            for table in ("hook_call", "card", "alert_state")
            for row in connection.execute(text(f"SELECT * FROM {table}"))
        )
    for secret in ("example-neutropenia", "Zebedee", "Ottoline", "1968-04-02", "secret-token-xyz", "valueQuantity"):
        assert secret not in dump


@pytest.mark.parametrize(
    "change, status",
    [
        (lambda r: r["prefetch"].pop("bloodCounts"), 412),
        (lambda r: r.pop("hookInstance"), 400),
    ],
)
def test_failed_calls_are_audited_with_their_status(app, example_request, change, status):
    change(example_request)
    assert app.test_client().post("/cds-services/cytopenia-review", json=example_request).status_code == status
    (call,) = rows(app, HookCallRecord)
    assert call.status == status and call.service_id == "cytopenia-review"


def test_production_refuses_to_start_without_an_audit_key():
    settings = Settings(
        dev=False,
        database_url="sqlite://",
        public_base_url="https://cds.example.org",
        workers=1,
        clients=[{"issuer": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}],
    )
    with pytest.raises(ConfigError, match="audit_key"):
        create_app(settings)
