"""Development mode: unsigned calls accepted, Sandbox tokens checked against its shipped key set; never outside it."""

from __future__ import annotations

import json
from importlib import resources

from flask import request as flask_request

from cds_service import hooks
from cds_service.auth.registry import SANDBOX_ISSUER, trusted_clients
from cds_service.config import ClientConfig, Settings
from cds_service.hooks.service import CdsService
from tests.conftest import FIXTURES, assert_valid, load_fixture
from tests.jwt_support import BASE_URL, SERVICE_PATH, SigningKey, bearer, claims, write_jwks

SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"


def test_the_shipped_sandbox_key_set_is_the_published_one():
    shipped = json.loads(resources.files("cds_service.auth").joinpath("data/sandbox-jwks.json").read_text("utf-8"))
    assert shipped == json.loads((FIXTURES / "sandbox" / "jwks.json").read_text("utf-8"))
    assert all("d" not in key for key in shipped["keys"]), "only public keys may ship"


def test_dev_mode_trusts_the_sandbox_key_and_production_does_not():
    dev = trusted_clients(Settings(dev=True))
    assert dev[SANDBOX_ISSUER].keys.key(SANDBOX_KID).algorithm_name == "ES384"
    assert SANDBOX_JKU in dev[SANDBOX_ISSUER].config.accepted_jku
    production = Settings(
        dev=False,
        public_base_url=BASE_URL,
        clients=[ClientConfig(issuer="https://ehr.test", jwks_url="https://ehr.test/jwks.json")],
    )
    assert SANDBOX_ISSUER not in trusted_clients(production)


def test_dev_mode_accepts_unsigned_calls_with_a_loud_warning(make_app, example_request, caplog):
    http = make_app(dev=True).test_client()
    assert "DEVELOPMENT MODE" in caplog.text and SANDBOX_ISSUER in caplog.text
    assert http.post(SERVICE_PATH, json=example_request).status_code == 200


def test_a_token_claiming_to_be_the_sandbox_must_still_verify_in_dev_mode(make_app, example_request):
    """Signed with our key under the Sandbox's kid and jku: the shipped public key does not verify it."""
    impostor = SigningKey.generate("ES384", kid=SANDBOX_KID)
    token = impostor.mint(claims(aud="http://localhost" + SERVICE_PATH, iss=SANDBOX_ISSUER), jku=SANDBOX_JKU)
    assert (
        make_app(dev=True).test_client().post(SERVICE_PATH, json=example_request, headers=bearer(token)).status_code
        == 401
    )


def test_sandbox_tokens_are_refused_outside_dev_mode(make_app, example_request, tmp_path):
    key = SigningKey.generate("ES384", kid=SANDBOX_KID)
    app = make_app(
        dev=False,
        workers=1,
        public_base_url=BASE_URL,
        clients=[ClientConfig(issuer="https://ehr.test", jwks_file=write_jwks(tmp_path / "k.json", key))],
    )
    token = key.mint(claims(iss=SANDBOX_ISSUER), jku=SANDBOX_JKU)
    assert app.test_client().post(SERVICE_PATH, json=example_request, headers=bearer(token)).status_code == 401


def test_the_real_sandbox_request_is_accepted_in_dev_mode_signed_by_a_dev_client(make_app, tmp_path):
    """The Sandbox's own token cannot be minted here (its private key is not ours to commit), so a dev-mode
    client with a test key signs the way the Sandbox does: ES384, kid, jku, aud = the exact URL called."""
    request = load_fixture("sandbox/order-sign-clozapine.json")
    key = SigningKey.generate("ES384")
    jku = "https://dev-ehr.test/.well-known/jwks.json"
    client = ClientConfig(
        issuer="https://dev-ehr.test",
        jwks_file=write_jwks(tmp_path / "dev.json", key),
        algorithms=["ES384"],
        jku_allowlist=[jku],
        fhir_servers=[request["fhirServer"]],
    )
    seen = []
    echo = CdsService(  # a stand-in order-sign service that records who called; the body goes through real validation
        id="order-sign-echo",
        hook="order-sign",
        title="echo",
        description="records the caller",
        handler=lambda call: seen.append((flask_request.environ["cytopenia.caller"], call)) or [],
    )
    http = make_app(dev=True, clients=[client], services=(*hooks.SERVICES, echo)).test_client()
    url = "http://localhost/cds-services/order-sign-echo"
    response = http.post(
        "/cds-services/order-sign-echo",
        json=request,
        headers=bearer(key.mint(claims(aud=url, iss="https://dev-ehr.test"), jku=jku)),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_valid("response", response.get_json())
    ((caller, call),) = seen
    assert (caller.issuer, caller.dev, caller.fhir_servers) == ("https://dev-ehr.test", True, (request["fhirServer"],))
    assert call.context["patientId"] == request["context"]["patientId"]
