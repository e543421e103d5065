"""Hostile or careless input: deep JSON, wrong media types, preflights, headers, and logs free of tokens and PHI."""

from __future__ import annotations

import copy
import json
import logging
import time

import orjson
import pytest

from cds_service.config import ClientConfig
from cds_service.http.body import (
    NOT_PROVEN,
    ORJSON_DEPTH,
    ORJSON_READ_DEPTH,
    PROVEN_WHILE_PARSING_FROM_BYTES,
    _walk_exceeds,
    nesting_exceeds,
    parse_within,
)
from tests.conftest import assert_valid
from tests.jwt_support import BASE_URL, EHR_ISSUER, SERVICE_PATH, SigningKey, bearer, claims, write_jwks

ORIGIN = "https://ehr-web.test"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture
def http(make_app, key, tmp_path):
    client = ClientConfig(issuer=EHR_ISSUER, jwks_file=write_jwks(tmp_path / "jwks.json", key), algorithms=["ES384"])
    app = make_app(
        dev=False, workers=1, public_base_url=BASE_URL, clients=[client], cors_origins=[ORIGIN], max_json_depth=40
    )
    return app.test_client()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def large(body: str) -> str:
    """The body made large enough for the depth to be proven while parsing, by a note in its extension."""
    return body.replace('"note": ""', '"note": "' + "x" * PROVEN_WHILE_PARSING_FROM_BYTES + '"')


SIZES = {"small": lambda body: body, "large": large}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("depth", "said"), [(39, "nested deeper than 40 levels"), (5000, "not valid JSON")])
def test_deeply_nested_json_is_a_400_operation_outcome(http, key, example_request, size, depth, said):
    body = json.dumps({**example_request, "extension": {"deep": "X", "note": ""}}).replace('"X"', nested(depth))
    body = SIZES[size](body)
    response = http.post(SERVICE_PATH, data=body, content_type="application/json", headers=bearer(key.mint(claims())))
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert said in response.get_json()["issue"][0]["details"]["text"]


@pytest.mark.parametrize("size", SIZES)
def test_nesting_within_the_cap_is_accepted(http, key, example_request, size):
    body = json.dumps({**example_request, "extension": {"deep": "X", "note": ""}}).replace('"X"', nested(37))
    body = SIZES[size](body)
    assert (len(body) >= PROVEN_WHILE_PARSING_FROM_BYTES) == (size == "large")
    response = http.post(SERVICE_PATH, data=body, content_type="application/json", headers=bearer(key.mint(claims())))
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("size", SIZES)
def test_a_broken_body_is_named_at_its_own_position(http, key, example_request, size):
    """`1],[2` inside the lists that prove a large body's depth would be valid JSON: it must not be."""
    body = SIZES[size](json.dumps({**example_request, "extension": {"note": ""}})) + "],[2"
    response = http.post(SERVICE_PATH, data=body, content_type="application/json", headers=bearer(key.mint(claims())))
    assert response.status_code == 400
    text = response.get_json()["issue"][0]["details"]["text"]
    assert text == f"the request body is not valid JSON (unexpected content after document at position {len(body) - 4})"


def test_orjson_refuses_exactly_what_the_quick_depth_check_relies_on():
    """The quick check proves a document shallow only because orjson refuses to serialise deeper ones."""
    for container in ("list", "dict"):
        orjson.dumps(orjson.loads(nested_bytes(ORJSON_DEPTH, container)))
        with pytest.raises(orjson.JSONEncodeError):
            orjson.dumps(orjson.loads(nested_bytes(ORJSON_DEPTH + 1, container)))


def test_orjson_reads_exactly_what_the_proof_while_parsing_relies_on():
    """A large body is proven shallow while parsing only because orjson refuses to read deeper ones."""
    for container in ("list", "dict"):
        raw = nested_bytes(ORJSON_READ_DEPTH, container)
        orjson.loads(raw)
        with pytest.raises(orjson.JSONDecodeError, match="depth limit exceeded"):
            orjson.loads(nested_bytes(ORJSON_READ_DEPTH + 1, container))


def nested_bytes(depth: int, container: str) -> bytes:
    """`depth` containers, each holding the next beside a scalar, written out (orjson writes at most 254)."""
    opening, closing = (b"[null,", b"]") if container == "list" else (b'{"leaf":null,"k":', b"}")
    return opening * depth + b"1" + closing * depth


@pytest.mark.parametrize("container", ["list", "dict"])
@pytest.mark.parametrize("limit", [8, 40, 100, 1000])
def test_the_proof_while_parsing_agrees_with_the_exact_walk(container, limit):
    for depth in (1, limit - 1, limit, limit + 1, ORJSON_READ_DEPTH, ORJSON_READ_DEPTH + 1):
        raw = nested_bytes(depth, container)
        document = parse_within(raw, limit)
        if depth > limit:
            assert document is NOT_PROVEN, depth
            continue
        assert not _walk_exceeds(document, limit) and _walk_exceeds(document, depth - 1), depth
        if depth < 200:  # deeper, comparing them would exhaust Python's stack
            assert document == orjson.loads(raw)


@pytest.mark.parametrize("raw", [b"", b" ", b"1],[2", b"]", b"[1]]", b'{"a": 1}, {"b": 2}', b"[1,", b'{"a": [1}'])
def test_a_body_the_proof_lists_could_close_is_not_proven(raw):
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    assert parse_within(raw, 40) is NOT_PROVEN


@pytest.mark.parametrize("container", ["list", "dict"])
@pytest.mark.parametrize("limit", [8, 40, 100, ORJSON_DEPTH - 1, ORJSON_DEPTH, 1000])
def test_the_quick_depth_check_agrees_with_the_exact_walk(container, limit):
    for depth in {1, limit - 1, limit, limit + 1, limit + 2, ORJSON_DEPTH, ORJSON_DEPTH + 1}:
        document = orjson.loads(nested_bytes(depth, container))
        assert nesting_exceeds(document, limit) == _walk_exceeds(document, limit), depth


def test_a_body_that_is_not_json_is_415_after_authentication(http, key):
    assert http.post(SERVICE_PATH, data="x", content_type="text/plain").status_code == 401
    response = http.post(SERVICE_PATH, data="x", content_type="text/plain", headers=bearer(key.mint(claims())))
    assert response.status_code == 415


def test_preflights_need_no_token_and_only_configured_origins_are_allowed(http):
    allowed = http.options(SERVICE_PATH, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    other = http.options(SERVICE_PATH, headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_security_headers_are_on_refusals_and_answers(http, key, example_request):
    for response in (
        http.get("/cds-services"),
        http.post(SERVICE_PATH, json=example_request, headers=bearer(key.mint(claims()))),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_logs_of_a_full_run_hold_no_token_and_no_phi(http, key, example_request, caplog):
    """Successes and every kind of failure, with every logger at DEBUG: no token part, patient id or name."""
    patient_id = example_request["context"]["patientId"]
    request = copy.deepcopy(example_request)
    request["prefetch"]["patient"]["name"] = [{"family": "Quillfeather", "given": ["Ottoline"]}]
    tokens = [key.mint(claims()) for _ in range(3)]
    with caplog.at_level(logging.DEBUG):
        ok = http.post(SERVICE_PATH, json=request, headers=bearer(tokens[0]))
        assert ok.status_code == 200
        assert_valid("response", ok.get_json())
        assert http.post(SERVICE_PATH, json=request, headers=bearer(tokens[0])).status_code == 401  # replay
        assert http.post(SERVICE_PATH, json=request, headers=bearer(tokens[1] + "x")).status_code == 401
        assert http.get("/cds-services", headers=bearer(key.mint(claims()))).status_code == 401  # wrong aud
        broken = {**request, "hookInstance": 7}
        assert http.post(SERVICE_PATH, json=broken, headers=bearer(tokens[2])).status_code == 400
        assert http.post(SERVICE_PATH, json=request).status_code == 401
    logged = caplog.text
    assert "CDS Hooks call refused" in logged
    for secret in [patient_id, "Quillfeather", "Ottoline", "1968-04-02"]:
        assert secret not in logged
    for token in tokens:
        for part in token.split("."):
            assert part not in logged


# Any malformed claim of a correctly signed token is a 401, never a 500: the signature proves who signed,
# not that what they signed is well formed.
NOW = int(time.time())


@pytest.mark.parametrize(
    "malformed",
    [
        {"exp": str(NOW + 300)},
        {"iat": str(NOW)},
        {"exp": str(NOW + 300), "iat": str(NOW)},
        {"nbf": str(NOW)},
        {"exp": True},
        {"exp": [NOW + 300]},
        {"iat": None},
        {"jti": 42},
    ],
)
def test_a_signed_token_with_a_malformed_claim_is_401(http, key, example_request, malformed):
    token = key.mint({**claims(), **malformed})
    response = http.post(SERVICE_PATH, json=example_request, headers=bearer(token))
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_the_same_token_well_formed_is_accepted(http, key, example_request):
    response = http.post(SERVICE_PATH, json=example_request, headers=bearer(key.mint(claims(tenant="hospital-a"))))
    assert response.status_code == 200
