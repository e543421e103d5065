#!/bin/sh
# Runs inside a build step on the built image (docker/verify-image.sh): the image's user, no
# compilers, `serve` on the default data directory, /healthz and discovery. The server is stopped by
# its own process id on every exit path, so the build step leaves nothing running.
set -eu
PORT=$1
test "$(id -u)" != 0
for compiler in gcc cc make; do
  if command -v "$compiler" >/dev/null; then echo "$compiler is in the image" >&2; exit 1; fi
done
CYTOPENIA_DEV=1 CYTOPENIA_PORT=$PORT CYTOPENIA_WORKERS=1 \
  cytopenia-cds serve --gunicorn-config /etc/cytopenia-cds/gunicorn.conf.py >/tmp/serve.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
python3 - "$PORT" <<'PY' || { cat /tmp/serve.log; exit 1; }
import json, os, sys, time, urllib.request as u

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
PY
test -s /var/lib/cytopenia-cds/cytopenia-cds.sqlite3
