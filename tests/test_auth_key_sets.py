"""Client key sets: the spec's own example, and a JWK Set published at a URL (cached, refreshed within limits)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from cds_service.auth.keys import FileKeySet
from cds_service.config import ClientConfig
from tests.jwt_support import BASE_URL, EHR_ISSUER, SERVICE_PATH, SigningKey, bearer, claims

# CDS Hooks 2.0 specification, "Trusting CDS Clients": the example JWT and its public JWK Set.
SPEC_TOKEN = (
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6ImV4YW1wbGUta2lkIiwiamt1IjoiaHR0cHM6Ly9maGlyLWVoci5leGFtcGxlLmNvbS9qd2tfdXJpIn0"
    ".eyJpc3MiOiJodHRwczovL2ZoaXItZWhyLmV4YW1wbGUuY29tLyIsImF1ZCI6Imh0dHBzOi8vY2RzLmV4YW1wbGUub3JnL2Nkcy1zZXJ2aWNlcy9zb21lLXNlcnZpY2UiLCJleHAiOjE0MjI1Njg4NjAsImlhdCI6MTMxMTI4MDk3MCwianRpIjoiZWUyMmIwMjEtZTFiNy00NjExLWJhNWItOGVlYzZhMzNhYzFlIiwidGVuYW50IjoiMmRkZDZjM2EtOGU5YS00NGM2LWEzMDUtNTIxMTFhZDMwMmEyIn0"
    ".d1WfLjGRKlcWB94l9do4cM8REXeYJLL6SGUBO8VHZhfM8mwKYP70EMxJ67War4TQblEpaQrp11wx5p7oPFm2ETYgCicS84vXWEIYTdjooZdooCSDf2L8-i4awdoUwiEb"
)
SPEC_JWKS = {
    "keys": [
        {
            "kty": "EC",
            "use": "sig",
            "crv": "P-384",
            "kid": "example-kid",
            "alg": "ES384",
            "x": "46SDH7Znh821wblCBglA61sNE9ZrHYKKt3qRtRTmSXyOI_FIGBLWrWa0GPUkDCEk",
            "y": "XMcRuuoGW7CXjQdy-F5i3FeBE0x9hPLdeFdSoDd3ELmx404tLX0VRRcqzAsPhXcI",
        }
    ]
}


@pytest.fixture
def spec_jwks_file(tmp_path):
    path = tmp_path / "spec-jwks.json"
    path.write_text(json.dumps(SPEC_JWKS), encoding="utf-8")
    return path


def test_the_spec_example_token_verifies_with_expiry_checking_off(spec_jwks_file):
    key = FileKeySet(spec_jwks_file).key("example-kid")
    verified = jwt.decode(
        SPEC_TOKEN,
        key.key,
        algorithms=["ES384"],
        options={"verify_exp": False},
        audience="https://cds.example.org/cds-services/some-service",
    )
    assert verified["tenant"] == "2ddd6c3a-8e9a-44c6-a305-52111ad302a2"


def test_the_spec_example_token_is_refused_by_the_service_because_it_expired(make_app, spec_jwks_file, caplog):
    client = ClientConfig(
        issuer="https://fhir-ehr.example.com/",
        jwks_file=spec_jwks_file,
        algorithms=["ES384"],
        jku_allowlist=["https://fhir-ehr.example.com/jwk_uri"],
    )
    http = make_app(dev=False, workers=1, public_base_url="https://cds.example.org", clients=[client]).test_client()
    with caplog.at_level(logging.WARNING):
        response = http.post("/cds-services/some-service", json={}, headers=bearer(SPEC_TOKEN))
    assert response.status_code == 401
    assert "ExpiredSignatureError" in caplog.text


class KeyServer:
    """An EHR publishing its JWK Set over real HTTP, counting how often we fetch it."""

    def __init__(self):
        self.keys: list[SigningKey] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                body = json.dumps({"keys": [k.public_jwk() for k in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def key_server():
    server = KeyServer()
    yield server
    server.close()


@pytest.fixture
def url_app(make_app, key_server):
    client = ClientConfig(issuer=EHR_ISSUER, jwks_url=key_server.url, algorithms=["RS384", "ES384"])
    return make_app(dev=False, workers=1, public_base_url=BASE_URL, clients=[client]).test_client()


def test_keys_published_at_a_url_verify_and_are_cached(url_app, key_server, example_request):
    key = SigningKey.generate("RS384")
    key_server.keys.append(key)
    for _ in range(3):
        token = key.mint(claims(), jku=key_server.url)
        assert url_app.post(SERVICE_PATH, json=example_request, headers=bearer(token)).status_code == 200
    assert key_server.fetches == 1


def test_a_rotated_key_is_fetched_but_random_kids_cannot_flood_the_ehr(url_app, key_server, example_request):
    old, new = SigningKey.generate("ES384"), SigningKey.generate("ES384")
    key_server.keys.append(old)
    assert url_app.post(SERVICE_PATH, json=example_request, headers=bearer(old.mint(claims()))).status_code == 200
    key_server.keys.append(new)
    assert url_app.post(SERVICE_PATH, json=example_request, headers=bearer(new.mint(claims()))).status_code == 200
    assert key_server.fetches == 2
    for _ in range(5):
        stranger = SigningKey.generate("ES384")
        assert (
            url_app.post(SERVICE_PATH, json=example_request, headers=bearer(stranger.mint(claims()))).status_code == 401
        )
    assert key_server.fetches == 2


def test_an_unreachable_key_set_refuses_the_call_without_a_500(url_app, key_server, example_request):
    key = SigningKey.generate("ES384")
    key_server.close()
    assert url_app.post(SERVICE_PATH, json=example_request, headers=bearer(key.mint(claims()))).status_code == 401
