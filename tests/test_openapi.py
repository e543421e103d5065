"""/openapi.json describes the server truthfully: schemathesis drives every operation and finds nothing."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from cds_service.app import create_app
from cds_service.config import Settings
from tests.conftest import AS_OF, FIXTURES

# In memory, and no rate limit: schemathesis sends hundreds of calls to one app.
app = create_app(Settings(dev=True, database_url="sqlite://", rate_limit="1000000 per minute"), clock=lambda: AS_OF)
schema = schemathesis.openapi.from_wsgi("/openapi.json", app)


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


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_operation_breaks_the_description_or_fails_with_5xx(case):
    """Every other built-in check runs. A schema-valid call may still get 412: data that was not
    prefetched and cannot be fetched is unavailable, which the description declares."""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
