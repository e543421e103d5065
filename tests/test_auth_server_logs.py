"""A real server (gunicorn, two workers, shared Redis): signed calls served, the rest refused, logs clean."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
import uuid

import pytest
import redis
import requests

from tests.conftest import free_port, wait_until_serving
from tests.jwt_support import SERVICE_PATH, SigningKey, bearer, claims, write_jwks

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def server(tmp_path):
    key = SigningKey.generate("RS384")
    prefix = f"cytopenia-test-{uuid.uuid4().hex}:"
    port = free_port()
    config = tmp_path / "cytopenia.toml"
    config.write_text(
        f'''
public_base_url = "https://cds.test"
workers = 2
redis_url = "{REDIS_URL}"
redis_key_prefix = "{prefix}"
audit_key = "test-audit-key"
database_url = "sqlite:///{tmp_path / "audit.sqlite3"}"
[[clients]]
issuer = "https://ehr.test"
jwks_file = "{write_jwks(tmp_path / "jwks.json", key)}"
algorithms = ["RS384"]
''',
        encoding="utf-8",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cds_service.cli", "serve", "--config", str(config), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base + "/cds-services", process, log.read_text)
        yield base, key, log
    finally:
        process.terminate()
        process.wait(timeout=15)
        store = redis.Redis.from_url(REDIS_URL)
        for stored in store.scan_iter(match=f"{prefix}*"):
            store.delete(stored)


@pytest.mark.server
def test_a_full_run_logs_refusals_but_no_token_and_no_phi(server, example_request):
    base, key, log = server
    request = copy.deepcopy(example_request)
    request["prefetch"]["patient"]["name"] = [{"family": "Quillfeather", "given": ["Ottoline"]}]
    url = base + SERVICE_PATH
    token = key.mint(claims())
    assert requests.post(url, json=request, headers=bearer(token), timeout=10).status_code == 200
    replays = [requests.post(url, json=request, headers=bearer(token), timeout=10).status_code for _ in range(4)]
    assert replays == [401] * 4  # whichever worker answers
    assert requests.post(url, json=request, timeout=10).status_code == 401
    assert (
        requests.post(
            url, json={**request, "hookInstance": 7}, headers=bearer(key.mint(claims())), timeout=10
        ).status_code
        == 400
    )
    time.sleep(0.2)
    logged = log.read_text(encoding="utf-8", errors="replace")
    assert "CDS Hooks call refused: jti already used" in logged
    for secret in [*token.split("."), request["context"]["patientId"], "Quillfeather", "Ottoline", "1968-04-02"]:
        assert secret not in logged
