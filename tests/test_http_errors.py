"""Every way a call can go wrong answers with an OperationOutcome and the right status, never internals."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from cds_service import hooks
from cds_service.config import ClientConfig
from tests.conftest import FIXTURES, assert_valid, load_fixture

URL = "/cds-services/cytopenia-review"


def outcome(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["details"]["text"]


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context"])
def test_missing_top_level_field_is_400_naming_it(client, example_request, field):
    del example_request[field]
    assert field in outcome(client.post(URL, json=example_request), 400)


def test_missing_patient_id_in_context_is_400_naming_it(client, example_request):
    del example_request["context"]["patientId"]
    assert "patientId" in outcome(client.post(URL, json=example_request), 400)


def test_body_that_is_not_an_object_is_400(client):
    outcome(client.post(URL, data=b"[1, 2]", content_type="application/json"), 400)


def test_hook_the_service_does_not_declare_is_400(client, example_request):
    example_request["hook"] = "encounter-start"
    example_request["context"]["encounterId"] = "enc-1"
    text = outcome(client.post(URL, json=example_request), 400)
    assert "does not handle hook 'encounter-start'" in text and "patient-view" in text


def test_unknown_path_is_404(client):
    outcome(client.get("/nothing-here"), 404)


def test_wrong_method_is_405_with_allow(client):
    response = client.get(URL)
    outcome(response, 405)
    assert "POST" in response.headers["Allow"]
    outcome(client.delete("/cds-services"), 405)


def test_body_over_the_configured_limit_is_413(make_app, example_request):
    client = make_app(max_request_bytes=2048).test_client()
    example_request["padding"] = "x" * 4096
    assert "2048 bytes" in outcome(client.post(URL, json=example_request), 413)


def test_body_over_the_limit_without_content_length_is_413(make_app):
    client = make_app(max_request_bytes=2048).test_client()
    body = io.BytesIO(b"{" + b" " * 4096 + b"}")
    response = client.post(
        URL, content_type="application/json", environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True}
    )
    outcome(response, 413)


def test_non_json_media_type_is_415(client, example_request):
    outcome(client.post(URL, data=json.dumps(example_request), content_type="text/plain"), 415)


def test_fhir_json_media_type_is_accepted(client, example_request):
    response = client.post(URL, data=json.dumps(example_request), content_type="application/fhir+json")
    assert response.status_code == 200
    assert_valid("response", response.get_json())


def test_required_prefetch_missing_is_412_naming_the_key(client, example_request):
    del example_request["prefetch"]["bloodCounts"]
    assert "'bloodCounts'" in outcome(client.post(URL, json=example_request), 412)


def test_a_failing_handler_is_a_generic_500_without_internals(make_app, example_request, caplog):
    def broken(call):
        raise RuntimeError("secret internal detail /srv/app.py")

    client = make_app(services=tuple(dataclasses.replace(s, handler=broken) for s in hooks.SERVICES)).test_client()
    response = client.post(URL, json=example_request)
    text = outcome(response, 500)
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
    assert text.startswith("internal error")
    assert client.get("/cds-services").status_code == 200  # the worker lives on


@pytest.fixture
def production_app(make_app):
    jwks = FIXTURES / "sandbox" / "jwks.json"
    return make_app(
        dev=False,
        cors_origins=["https://ehr.example"],
        public_base_url="https://cds.example.org",
        workers=1,
        clients=[ClientConfig(issuer="https://ehr.example", jwks_file=jwks)],
    )


def test_cors_preflight_is_answered_without_authentication_for_an_allowed_origin(production_app):
    response = production_app.test_client().options(
        URL,
        headers={
            "Origin": "https://ehr.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://ehr.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_cors_preflight_from_another_origin_gets_no_allow_origin(production_app):
    response = production_app.test_client().options(
        URL, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_production_denies_an_unauthenticated_call(production_app, example_request):
    response = production_app.test_client().post(URL, json=example_request)
    outcome(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_public_sandbox_origin_is_allowed_only_in_dev_mode(client, production_app):
    sandbox = {"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"}
    assert (
        client.options(URL, headers=sandbox).headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    )
    assert "Access-Control-Allow-Origin" not in production_app.test_client().options(URL, headers=sandbox).headers


@pytest.mark.parametrize(
    "origin", ["http://localhost:8000", "http://127.0.0.1:3000", "https://localhost", "http://[::1]:8080"]
)
def test_a_locally_served_sandbox_is_allowed_on_any_loopback_port_only_in_dev_mode(client, production_app, origin):
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    assert client.options(URL, headers=preflight).headers["Access-Control-Allow-Origin"] == origin
    assert "Access-Control-Allow-Origin" not in production_app.test_client().options(URL, headers=preflight).headers


@pytest.mark.parametrize(
    "origin", ["http://localhost.evil.example", "http://127.0.0.1.evil.example:80", "http://10.0.0.5:8000", "null"]
)
def test_origins_that_only_look_local_are_not_allowed_in_dev_mode(client, origin):
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    assert "Access-Control-Allow-Origin" not in client.options(URL, headers=preflight).headers


def test_the_real_sandbox_order_sign_request_is_a_valid_cds_hooks_request():
    assert_valid("request", load_fixture("sandbox/order-sign-clozapine.json"))
    assert (FIXTURES / "sandbox").is_dir()
