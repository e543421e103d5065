"""The real FHIR engine for tests and benchmarks: Medplum's router (tests/fhir_server) on a loopback port."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import requests

SERVER_DIR = Path(__file__).resolve().parent / "fhir_server"
STORED_TYPES = {"Patient", "Observation", "Condition", "DiagnosticReport"}
URN = re.compile(r'"(urn:uuid:[0-9A-Fa-f\-]+)"')


class FhirEngine:
    """Start with `FhirEngine.start()`, load patients, read what it saw, `stop()`."""

    def __init__(self, process: subprocess.Popen, port: int):
        self.process = process
        self.base = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, timeout_s: float = 60) -> FhirEngine:
        if not (SERVER_DIR / "node_modules").is_dir():
            raise RuntimeError(f"run `npm ci --prefix {SERVER_DIR}` first (make test does)")
        process = subprocess.Popen(
            ["node", "--experimental-websocket", "server.mjs"],
            cwd=SERVER_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not first_line or not first_line[0].strip():
            process.kill()
            raise RuntimeError("the test FHIR server did not start")
        return cls(process, json.loads(first_line[0])["port"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def load(self, bundle: dict[str, Any], types: frozenset[str] | set[str] = STORED_TYPES) -> int:
        """Store the resources of these types (by default Patient, Observation, Condition, DiagnosticReport)
        of a fixture bundle, ids kept."""
        response = requests.post(f"{self.base}/$load", json=stored_form(bundle, types), timeout=60)
        response.raise_for_status()
        return response.json()["loaded"]

    def requests_seen(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.base}/$requests", timeout=5).json()


def stored_form(bundle: dict[str, Any], types: frozenset[str] | set[str] = STORED_TYPES) -> dict[str, Any]:
    """A fixture bundle as a server would hold it: `urn:uuid:` references rewritten to `Type/id`."""
    if bundle.get("resourceType") != "Bundle":
        return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bundle}]}
    resources = [e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") in types]
    local = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if str(e.get("fullUrl", "")).startswith("urn:uuid:") and "id" in e.get("resource", {})
    }
    text = URN.sub(lambda m: f'"{local.get(m.group(1), m.group(1))}"', json.dumps(resources))
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in json.loads(text)]}
