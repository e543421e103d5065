"""The audit trail of every hook call: who, which (hashed) patient, what data, how fast, what came of it;
and nothing it must not keep (tokens, names, birth dates, the patient id, resource bodies)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import Connection, create_engine, event, func, select, text

from cds_service.app import create_app
from cds_service.config import ClientConfig, ConfigError, Settings
from cds_service.storage import Store
from cds_service.storage.engine import upgrade
from cds_service.storage.models import CardRecord, FeedbackRecord, HookCallRecord
from tests.conftest import AS_OF
from tests.jwt_support import BASE_URL, EHR_ISSUER, SERVICE_PATH, SigningKey, bearer, claims, write_jwks
from tests.storage_helpers import cards_for, rows, summaries


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


@pytest.fixture
def signed_app(database_url, tmp_path):
    """Production mode on the test database: calls carry a token an EHR signed, with whatever claims it puts in."""
    key = SigningKey.generate("ES256")
    client = ClientConfig(issuer=EHR_ISSUER, jwks_file=write_jwks(tmp_path / "jwks.json", key), algorithms=["ES256"])
    settings = Settings(
        dev=False, workers=1, public_base_url=BASE_URL, clients=[client], database_url=database_url, audit_key="k"
    )
    application = create_app(settings, clock=lambda: AS_OF)
    yield application, key
    application.extensions["cytopenia.store"].engine.dispose()


@pytest.mark.parametrize(
    "claim, hook_instance, stored_tenant, stored_instance",
    [
        ("t" * 300, "plain", "t" * 200, "plain"),
        ("t" * 200, "plain", "t" * 200, "plain"),
        ("hospital-a", "i" * 300, "hospital-a", "i" * 200),
        ("hospital-a", "before\x00after", "hospital-a", "before\ufffdafter"),
    ],
    ids=["300-character tenant", "tenant at the column's length", "300-character hookInstance", "NUL in hookInstance"],
)
def test_every_answered_call_has_its_audit_row_whatever_its_text_holds(
    signed_app, example_request, claim, hook_instance, stored_tenant, stored_instance
):
    application, key = signed_app
    example_request["hookInstance"] = hook_instance
    token = key.mint(claims(tenant=claim))
    response = application.test_client().post(SERVICE_PATH, json=example_request, headers=bearer(token))
    assert response.status_code == 200 and response.get_json()["cards"]
    (call,) = rows(application, HookCallRecord)
    assert (call.status, call.client_tenant, call.hook_instance) == (200, stored_tenant, stored_instance)
    assert len(rows(application, CardRecord)) == len(response.get_json()["cards"])


def test_a_tenant_that_is_not_a_string_is_a_malformed_claim_refused_not_answered_unaudited(signed_app, example_request):
    """CDS Hooks 2.0 defines `tenant` as a string: a signed token with an object there is a 401, no cards."""
    application, key = signed_app
    token = key.mint(claims(tenant={"id": "hospital-a"}))
    response = application.test_client().post(SERVICE_PATH, json=example_request, headers=bearer(token))
    assert response.status_code == 401
    assert not rows(application, CardRecord)


def test_an_audit_row_the_database_refuses_is_logged_and_counted_and_the_cards_still_shown(
    app, example_request, caplog
):
    from prometheus_client import REGISTRY

    def failures() -> float:
        return REGISTRY.get_sample_value("cytopenia_audit_write_failures_total", {"service": "cytopenia-review"}) or 0

    with app.extensions["cytopenia.store"].engine.begin() as connection:
        connection.execute(text("DROP TABLE card"))
    before = failures()
    cards = cards_for(app.test_client(), example_request)
    assert "Pancytopenia" in summaries(cards), "no alert-fatigue state: every card is shown"
    assert failures() == before + 1
    assert "audit trail could not be written (status 200)" in caplog.text
    # The error is logged with its statement but not the row's values (patient key, findings, user).
    assert "[parameters:" not in caplog.text and "parameters hidden" in caplog.text


def test_a_hook_call_takes_one_connection_and_commits_once(app, example_request):
    """Alert state and audit row in one short transaction: one pool checkout, one commit per call. On
    SQLite the calls' shared commits keep their connection, so the second call checks out none. On
    PostgreSQL the call sends its own BEGIN and COMMIT (`sql.sent_with_the_next`): every row it wrote
    carries its one transaction's id."""
    engine = app.extensions["cytopenia.store"].engine
    seen = {"checkout": 0, "commit": 0}
    event.listen(engine, "checkout", lambda *_: seen.__setitem__("checkout", seen["checkout"] + 1))
    event.listen(engine, "commit", lambda *_: seen.__setitem__("commit", seen["commit"] + 1))
    assert cards_for(app.test_client(), example_request)
    assert cards_for(app.test_client(), example_request) == [], "the repeat is held back, in one transaction too"
    if engine.dialect.name == "sqlite":
        assert seen == {"checkout": 1, "commit": 2}
        return
    assert seen["checkout"] == 2
    with engine.connect() as connection:
        calls = connection.exec_driver_sql("SELECT xmin::text FROM hook_call ORDER BY id").scalars().all()
        assert len(set(calls)) == 2, "one transaction per call"
        apart = "SELECT count(*) FROM card c JOIN hook_call h ON c.call_id = h.id WHERE c.xmin <> h.xmin"

        assert connection.exec_driver_sql(apart).scalar_one() == 0, "cards written in their call's transaction"
        shown = connection.exec_driver_sql("SELECT DISTINCT xmin::text FROM alert_state").scalars().all()
        assert shown == [calls[0]], "alert state written in the transaction of the call that showed the card"


def test_a_hook_call_that_fails_leaves_nothing_of_what_it_wrote(database_url):
    """All or nothing, whichever way a statement reaches the database: on PostgreSQL a statement run
    through SQLAlchemy first in a hook call's transaction still comes after its BEGIN, so it is undone."""
    store = Store(database_url)
    upgrade(store.engine)

    def write_then_fail(connection: Connection) -> None:
        connection.execute(
            HookCallRecord.__table__.insert().values(
                received_at=AS_OF, service_id="s", status=200, data_sources={}, latency_ms={}, total_ms=1.0
            )
        )
        raise ValueError("the call failed after writing")

    try:
        with pytest.raises(ValueError):
            store.hook_call_transaction(write_then_fail)
        with store.engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(HookCallRecord)).scalar_one() == 0
    finally:
        store.engine.dispose()


def drop_pooled_connection(engine, database_url: str) -> None:
    """What a PostgreSQL restart does to the connection the pool will hand out next."""
    with engine.connect() as connection:
        pooled = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled})
    admin.dispose()


def test_a_connection_the_database_dropped_is_replaced_and_the_call_still_screened(
    app, database_url, example_request, caplog
):
    """No ping per checkout: a PostgreSQL restart is met by running the call's transaction once more."""
    if not database_url.startswith("postgresql"):
        pytest.skip("about PostgreSQL server connections")
    client = app.test_client()
    engine = app.extensions["cytopenia.store"].engine
    assert cards_for(client, example_request)
    drop_pooled_connection(engine, database_url)
    assert cards_for(client, example_request) == [], "screened against the stored state: a repeat"
    assert "not stored" not in caplog.text and "could not be written" not in caplog.text
    assert len(rows(app, HookCallRecord)) == 2


def test_feedback_on_a_connection_the_database_dropped_is_stored_not_refused(app, database_url):
    """The same retry as a hook call's: the EHR is not told 503 for a restart it cannot see."""
    if not database_url.startswith("postgresql"):
        pytest.skip("about PostgreSQL server connections")
    engine = app.extensions["cytopenia.store"].engine
    drop_pooled_connection(engine, database_url)
    feedback = {
        "feedback": [
            {
                "card": "c-1",
                "outcome": "accepted",
                "acceptedSuggestions": [],
                "outcomeTimestamp": "2026-11-20T10:05:00Z",
            }
        ]
    }
    answer = app.test_client().post(SERVICE_PATH + "/feedback", json=feedback)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert len(rows(app, FeedbackRecord)) == 1
