"""/openapi.json describes the server truthfully: schemathesis drives every operation and finds nothing."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import FIXTURES


def test_description_is_valid_openapi_3_1_built_from_the_declarations(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    call = document["paths"]["/cds-services/cytopenia-review"]["post"]
    assert call["requestBody"]["content"]["application/json"]["schema"]["allOf"][1] == {
        "properties": {"hook": {"enum": ["patient-view"]}}
    }
    assert "CdsHooksResponse.card" in document["components"]["schemas"]
    assert "security" not in document  # development mode: no token needed


def test_production_description_requires_the_ehr_jwt(make_app):
    document = (
        make_app(
            dev=False,
            public_base_url="https://cds.example.org",
            workers=1,
            clients=[{"issuer": "https://ehr.example.org", "jwks_file": FIXTURES / "sandbox" / "jwks.json"}],
        )
        .test_client()
        .get("/openapi.json")
        .get_json()
    )
    assert document["security"] == [{"cdsHooksJwt": []}]
    assert "401" in document["paths"]["/cds-services/cytopenia-review"]["post"]["responses"]


@pytest.mark.slow
def test_no_operation_breaks_the_description_or_fails_with_5xx(make_app):
    """Every other built-in check runs, 25 examples per operation. A schema-valid call may still get 412:
    data that was not prefetched and cannot be fetched is unavailable, which the description declares.
    The app is built here, not at import, so collecting the tests writes nothing."""
    # No rate limit: schemathesis sends hundreds of calls to one app.
    schema = schemathesis.openapi.from_wsgi("/openapi.json", make_app(rate_limit="1000000 per minute"))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_5xx_and_as_described(case):
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        no_5xx_and_as_described()
