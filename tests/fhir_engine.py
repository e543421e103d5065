"""The real FHIR engine for tests and benchmarks: Medplum's router (tests/fhir_server) on a loopback port.

By hand (e.g. behind a locally served CDS Hooks Sandbox, docs/integration/sandbox.md):
`python -m tests.fhir_engine --port 8091 synthea-r4/<file>.json hl7-r4-examples/Bundle-101.json`
serves the named fixtures until interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import requests

from tests.conftest import SERVER_START_S

SERVER_DIR = Path(__file__).resolve().parent / "fhir_server"
# What a chart holds that the services read or a Sandbox user expects to see.
STORED_TYPES = frozenset(
    {"Patient", "Observation", "Condition", "MedicationRequest", "Encounter", "AllergyIntolerance", "DiagnosticReport"}
)
URN = re.compile(r'"(urn:uuid:[0-9A-Fa-f\-]+)"')


class FhirEngine:
    """Start with `FhirEngine.start()`, load patients, read what it saw, `stop()`."""

    def __init__(self, process: subprocess.Popen, port: int):
        self.process = process
        self.base = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, timeout_s: float = SERVER_START_S, port: int = 0) -> FhirEngine:
        """Generous start-up wait (a loaded machine starts Node slowly); a failed start says what Node said."""
        if not (SERVER_DIR / "node_modules").is_dir():
            raise RuntimeError(f"run `npm ci --prefix {SERVER_DIR}` first (make test does)")
        errors = tempfile.TemporaryFile(mode="w+")
        process = subprocess.Popen(
            ["node", "--experimental-websocket", "server.mjs"],
            cwd=SERVER_DIR,
            env=os.environ | {"PORT": str(port)},
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not first_line or not first_line[0].strip():
            process.kill()
            process.wait()
            errors.seek(0)
            raise RuntimeError(f"the test FHIR server did not start within {timeout_s:g} s:\n{errors.read()}")
        errors.close()
        return cls(process, json.loads(first_line[0])["port"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def load(self, bundle: dict[str, Any], types: frozenset[str] | set[str] = STORED_TYPES) -> int:
        """Store the resources of these types (by default the chart, STORED_TYPES) of a fixture bundle, ids kept."""
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


def main() -> None:
    from tests.conftest import load_fixture

    parser = argparse.ArgumentParser(description="serve fixture patients from the test FHIR engine until interrupted")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("fixtures", nargs="+", help="paths under ../shared/fixtures")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops the engine too, through `finally`
    engine = FhirEngine.start(port=args.port)
    try:
        loaded = sum(engine.load(load_fixture(path)) for path in args.fixtures)
        print(f"{loaded} resources at {engine.base} (Ctrl-C stops)", flush=True)
        engine.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
