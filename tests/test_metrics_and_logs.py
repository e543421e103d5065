"""What an operator sees after traffic: Prometheus series and one JSON log line per request, without PHI."""

from __future__ import annotations

import json
import re

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FIXTURES


def samples(client) -> dict[tuple[str, tuple], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(snapshot, name, **labels) -> float:
    return snapshot.get((name, tuple(sorted(labels.items()))), 0.0)


HOOK_COUNT = "cytopenia_hook_request_duration_seconds_count"


def test_metrics_count_latency_cards_and_errors(client, example_request):
    before = samples(client)
    assert client.post("/cds-services/cytopenia-review", json=example_request).status_code == 200
    assert client.post("/cds-services/cytopenia-review", data=b"{", content_type="application/json").status_code == 400
    after = samples(client)
    ok = {"service": "cytopenia-review", "hook": "patient-view", "status": "200"}
    assert value(after, HOOK_COUNT, **ok) == value(before, HOOK_COUNT, **ok) + 1
    bucket = "cytopenia_hook_request_duration_seconds_bucket"
    assert value(after, bucket, le="10.0", **ok) == value(before, bucket, le="10.0", **ok) + 1
    bad = {"service": "cytopenia-review", "hook": "unknown", "status": "400"}
    assert value(after, HOOK_COUNT, **bad) == value(before, HOOK_COUNT, **bad) + 1
    cards = {"service": "cytopenia-review", "finding": "pancytopenia", "indicator": "warning"}
    assert value(after, "cytopenia_cards_total", **cards) == value(before, "cytopenia_cards_total", **cards) + 1


def test_unknown_service_ids_do_not_become_metric_labels(client, example_request):
    client.post("/cds-services/patient-12345", json=example_request)
    assert "patient-12345" not in client.get("/metrics").get_data(as_text=True)


def test_auth_failures_are_counted_by_reason(make_app):
    client = make_app(
        dev=False,
        public_base_url="https://cds.example.org",
        workers=1,
        clients=[{"issuer": "https://ehr.example.org", "jwks_file": FIXTURES / "sandbox" / "jwks.json"}],
    ).test_client()
    before = samples(client)
    assert client.get("/cds-services").status_code == 401
    after = samples(client)
    name = "cytopenia_auth_failures_total"
    assert value(after, name, reason="missing_token") == value(before, name, reason="missing_token") + 1


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_each_request_logs_one_json_line_with_ids_and_stage_timings_but_no_phi(make_app, example_request, capsys):
    client = make_app().test_client()
    capsys.readouterr()
    response = client.post(
        "/cds-services/cytopenia-review",
        json=example_request,
        headers={"X-Request-ID": "trace-42"},
    )
    assert response.headers["X-Request-ID"] == "trace-42"
    err = capsys.readouterr().err
    [line] = [entry for entry in log_lines(err) if entry["event"] == "request"]
    assert line["request_id"] == "trace-42"
    assert line["hook_instance"] == example_request["hookInstance"]
    assert line["status"] == 200 and line["service"] == "cytopenia-review" and line["cards"] >= 1
    assert line["gather_ms"] >= 0 and line["evaluate_ms"] > 0 and line["duration_ms"] >= line["evaluate_ms"]
    refused = client.post(
        "/cds-services/cytopenia-review", json=example_request, headers={"Authorization": "Bearer secret-token-value"}
    )
    assert refused.status_code == 401  # a token sent in dev mode must still verify
    err += capsys.readouterr().err
    patient = example_request["context"]["patientId"]
    assert patient not in err and "secret-token-value" not in err
    name = example_request["prefetch"]["patient"].get("name", [{}])[0].get("family")
    assert not name or name not in err


def test_a_request_id_that_is_not_an_id_is_replaced(client, capsys):
    response = client.get("/cds-services", headers={"X-Request-ID": '", "level": "forged'})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert "forged" not in capsys.readouterr().err
