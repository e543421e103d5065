#!/bin/sh
# Runs inside a build step on the built image (docker/verify-image.sh): the image's user, no
# compilers, `config check`, `serve` on the default data directory, /healthz, discovery and a
# patient-view call. The server is stopped by its own process id on every exit path, so the build
# step leaves nothing running.
set -eu
PORT=$1
test "$(id -u)" != 0
for compiler in gcc cc make; do
  if command -v "$compiler" >/dev/null; then echo "$compiler is in the image" >&2; exit 1; fi
done
# The pre-flight an integrator runs in the image before deploying it (with the image's own environment).
CYTOPENIA_DEV=1 cytopenia-cds config check >/dev/null
CYTOPENIA_DEV=1 CYTOPENIA_PORT=$PORT CYTOPENIA_WORKERS=1 \
  cytopenia-cds serve --gunicorn-config /etc/cytopenia-cds/gunicorn.conf.py >/tmp/serve.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
python3 - "$PORT" <<'PY' || { cat /tmp/serve.log; exit 1; }
import json, os, sys, time, urllib.request as u
from datetime import datetime, timedelta, timezone

base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(120):  # generous: a cold start on a loaded build host
    try:
        assert u.urlopen(f"{base}/healthz", timeout=2).status == 200
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("server did not answer /healthz")
ids = [s["id"] for s in json.load(u.urlopen(f"{base}/cds-services", timeout=5))["services"]]
print("discovery as uid", os.getuid(), ids)
# A hook call: the knowledge tables, the request validator and the store all work in the image.
taken = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat(timespec="seconds")
anc = {
    "resourceType": "Observation", "id": "anc", "status": "final", "subject": {"reference": "Patient/smoke"},
    "effectiveDateTime": taken, "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
    "valueQuantity": {"value": 0.3, "unit": "10*9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"},
}
call = {
    "hook": "patient-view", "hookInstance": "00000000-0000-4000-8000-000000000001",
    "context": {"userId": "Practitioner/smoke", "patientId": "smoke"},
    "prefetch": {
        "patient": {"resourceType": "Patient", "id": "smoke", "gender": "female", "birthDate": "1970-01-01"},
        "bloodCounts": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": anc}]},
    },
}
sent = u.Request(f"{base}/cds-services/cytopenia-review", json.dumps(call).encode(), {"Content-Type": "application/json"})
summaries = [c["summary"] for c in json.load(u.urlopen(sent, timeout=30))["cards"]]
print("patient-view cards:", summaries)
assert any(s.startswith("Neutropenia: ANC 0.3") for s in summaries), summaries
PY
test -s /var/lib/cytopenia-cds/cytopenia-cds.sqlite3
