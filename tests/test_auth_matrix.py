"""Outside development mode every CDS Hooks call must carry a JWT that a registered client signed."""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import replace

import pytest
from flask import request as flask_request

from cds_service import hooks
from cds_service.config import ClientConfig
from tests.conftest import assert_valid
from tests.jwt_support import (
    BASE_URL,
    EHR_ISSUER,
    SERVICE_PATH,
    SigningKey,
    bearer,
    claims,
    hs256_with_secret,
    unsigned,
    write_jwks,
)

TENANT = "hospital-a"
FHIR_SERVER = "https://ehr.test/fhir/r4"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: SigningKey.generate(alg) for alg in ("ES384", "RS384", "ES256")}


@pytest.fixture
def production_app(make_app, keys, tmp_path):
    def factory(services=hooks.SERVICES, **client_overrides):
        client = {
            "issuer": EHR_ISSUER,
            "jwks_file": write_jwks(tmp_path / "ehr-jwks.json", *keys.values()),
            "algorithms": ["ES384", "RS384"],
            "fhir_servers": [FHIR_SERVER],
            **client_overrides,
        }
        return make_app(
            dev=False, workers=1, public_base_url=BASE_URL, clients=[ClientConfig(**client)], services=services
        )

    return factory


@pytest.fixture
def http(production_app):
    return production_app().test_client()


def assert_refused(response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["details"]["text"] == "authentication required"


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_correctly_signed_call_gets_its_cards(http, keys, example_request, alg):
    response = http.post(SERVICE_PATH, json=example_request, headers=bearer(keys[alg].mint(claims())))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_valid("response", response.get_json())


def test_discovery_needs_a_token_whose_aud_is_the_discovery_url(http, keys):
    assert_refused(http.get("/cds-services"))
    ok = http.get("/cds-services", headers=bearer(keys["ES384"].mint(claims(aud=BASE_URL + "/cds-services"))))
    assert ok.status_code == 200
    assert_valid("discovery", ok.get_json())


def test_an_rsa_key_published_without_alg_verifies_rs384(make_app, keys, example_request, tmp_path):
    jwk = {k: v for k, v in keys["RS384"].public_jwk().items() if k != "alg"}
    (tmp_path / "no-alg.json").write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    client = ClientConfig(issuer=EHR_ISSUER, jwks_file=tmp_path / "no-alg.json", algorithms=["RS384"])
    http = make_app(dev=False, workers=1, public_base_url=BASE_URL, clients=[client]).test_client()
    assert (
        http.post(SERVICE_PATH, json=example_request, headers=bearer(keys["RS384"].mint(claims()))).status_code == 200
    )


def test_aud_may_be_a_list_that_contains_the_url_called(http, keys, example_request):
    token = keys["RS384"].mint(claims(aud=["https://other.test", BASE_URL + SERVICE_PATH]))
    assert http.post(SERVICE_PATH, json=example_request, headers=bearer(token)).status_code == 200


def _expired():
    now = int(time.time())
    return claims(iat=now - 600, exp=now - 120)


def _future_iat():
    now = int(time.time())
    return claims(iat=now + 600, exp=now + 900)


REFUSED_CLAIMS = {
    "wrong aud: another service": lambda: claims(aud=BASE_URL + "/cds-services/another-service"),
    "wrong aud: another host": lambda: claims(aud="https://elsewhere.test" + SERVICE_PATH),
    "wrong aud: discovery URL": lambda: claims(aud=BASE_URL + "/cds-services"),
    "expired": _expired,
    "iat in the future": _future_iat,
    "nbf ahead": lambda: claims(nbf=int(time.time()) + 600),
    "unknown iss": lambda: claims(iss="https://stranger.test"),
    "tenant not allowed": lambda: claims(tenant="hospital-b"),
    "no jti": lambda: claims(jti=None),
    "no exp": lambda: claims(exp=None),
    "lifetime of a day": lambda: claims(exp=int(time.time()) + 86400),
}


@pytest.mark.parametrize("case", REFUSED_CLAIMS)
@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_signed_tokens_with_bad_claims_are_refused(production_app, keys, example_request, case, alg, caplog):
    http = production_app(tenants=[TENANT]).test_client()
    token = keys[alg].mint({"tenant": TENANT, **REFUSED_CLAIMS[case]()})
    with caplog.at_level(logging.WARNING):
        assert_refused(http.post(SERVICE_PATH, json=example_request, headers=bearer(token)))
    assert "CDS Hooks call refused" in caplog.text
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


def test_the_allowed_tenant_is_admitted_and_carried_by_the_caller(production_app, keys, example_request):
    http = production_app(tenants=[TENANT]).test_client()
    token = keys["ES384"].mint(claims(tenant=TENANT))
    assert http.post(SERVICE_PATH, json=example_request, headers=bearer(token)).status_code == 200


def _header(key: SigningKey, **extra) -> dict:
    return {"alg": key.alg, "typ": "JWT", "kid": key.kid, **extra}


def test_missing_and_malformed_authorization_are_refused(http, keys, example_request):
    valid = keys["ES384"].mint(claims())
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": f"Basic {valid}"},
        {"Authorization": valid},
        {"Authorization": "Bearer ...."},
    ):
        assert_refused(http.post(SERVICE_PATH, json=example_request, headers=headers))


def test_forged_and_malformed_headers_are_refused(http, keys, example_request, caplog):
    es, rs, p256 = keys["ES384"], keys["RS384"], keys["ES256"]
    attacker = SigningKey.generate("ES384", kid=es.kid)
    good = claims()
    forged = {
        "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": es.kid}, claims()),
        "HS256 keyed with the public key": hs256_with_secret(rs.public_pem(), _header(rs, alg="HS256"), claims()),
        "unknown kid": SigningKey.generate("ES384").mint(claims()),
        "attacker key under the client's kid": attacker.mint(claims()),
        "foreign jku": es.mint(claims(), jku="https://attacker.test/jwks.json"),
        "no kid": es.mint(claims(), kid=None),
        "typ missing": es.mint(claims(), typ=None),
        "typ not JWT": es.mint(claims(), typ="at+jwt"),
        "kid of an RS384 key, signed ES384": SigningKey("ES384", rs.kid, es.private).mint(claims()),
        "ES384 header over a P-256 key": _replace(p256.mint(claims()), 0, _header(p256, alg="ES384")),
        "tampered payload": _replace(es.mint(good), 1, {**good, "tenant": "hospital-b"}),
    }
    with caplog.at_level(logging.WARNING):
        for name, token in forged.items():
            response = http.post(SERVICE_PATH, json=example_request, headers=bearer(token))
            assert response.status_code == 401, name
            assert_refused(response)
    assert caplog.text.count("CDS Hooks call refused") == len(forged)
    assert not any(token.split(".")[0] in caplog.text for token in forged.values())


def _replace(token: str, segment: int, content: dict) -> str:
    """The token with its header (0) or payload (1) rewritten and the original signature kept."""
    parts = token.split(".")
    parts[segment] = base64.urlsafe_b64encode(json.dumps(content).encode()).rstrip(b"=").decode()
    return ".".join(parts)


def test_an_algorithm_outside_the_clients_list_is_refused(production_app, keys, example_request):
    http = production_app(algorithms=["ES384"]).test_client()
    assert_refused(http.post(SERVICE_PATH, json=example_request, headers=bearer(keys["RS384"].mint(claims()))))
    assert (
        http.post(SERVICE_PATH, json=example_request, headers=bearer(keys["ES384"].mint(claims()))).status_code == 200
    )


def test_a_replayed_token_is_refused(http, keys, example_request):
    token = keys["ES384"].mint(claims())
    assert http.post(SERVICE_PATH, json=example_request, headers=bearer(token)).status_code == 200
    assert_refused(http.post(SERVICE_PATH, json=example_request, headers=bearer(token)))


def test_a_refused_token_does_not_use_up_its_jti(http, keys, example_request):
    """A token aimed at the wrong URL must not let an attacker burn the jti of the real one."""
    jti = "shared-jti"
    assert_refused(http.get("/cds-services", headers=bearer(keys["ES384"].mint(claims(jti=jti)))))
    token = keys["ES384"].mint(claims(jti=jti))
    assert http.post(SERVICE_PATH, json=example_request, headers=bearer(token)).status_code == 200


def test_feedback_is_verified_by_path_with_its_own_aud(http, keys):
    feedback = SERVICE_PATH + "/feedback"
    document = {"feedback": []}
    assert_refused(http.post(feedback, json=document))
    assert_refused(http.post(feedback, json=document, headers=bearer(keys["ES384"].mint(claims()))))
    admitted = http.post(feedback, json=document, headers=bearer(keys["ES384"].mint(claims(aud=BASE_URL + feedback))))
    assert admitted.status_code != 401


def test_the_caller_carries_its_clients_fhir_servers(production_app, keys, example_request):
    seen = []
    recording = replace(
        hooks.SERVICES[0], handler=lambda call: seen.append(flask_request.environ["cytopenia.caller"]) or []
    )
    http = production_app(services=(recording,), tenants=[TENANT]).test_client()
    assert (
        http.post(
            SERVICE_PATH, json=example_request, headers=bearer(keys["ES384"].mint(claims(tenant=TENANT)))
        ).status_code
        == 200
    )
    (caller,) = seen
    assert (caller.issuer, caller.tenant, caller.dev, caller.fhir_servers) == (
        EHR_ISSUER,
        TENANT,
        False,
        (FHIR_SERVER,),
    )
