#!/usr/bin/env bash
# Build the image with Debian's podman (no Docker engine needed), run it, and check that it serves
# discovery as a non-root user and reports healthy. Used by `make image`; see README "Operations".
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/cytopenia-cds:dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-python:bookworm}
PODMAN=(podman --storage-driver vfs)

if [ -z "$("${PODMAN[@]}" images -q "$BASE_IMAGE")" ]; then
  # Only Debian and PyPI are reachable here: make the slim Python base from Debian packages.
  mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm - \
    | "${PODMAN[@]}" import - "$BASE_IMAGE"
fi
SECRETS=()
if [ -n "${CA_BUNDLE:-}" ]; then SECRETS=(--secret "id=ca_bundle,src=$CA_BUNDLE"); fi  # TLS-inspecting proxy
"${PODMAN[@]}" build --format docker --isolation chroot "${SECRETS[@]}" --build-arg PYTHON_IMAGE="$BASE_IMAGE" -f docker/Dockerfile -t "$IMAGE" .

# Smoke test inside a throw-away build step (chroot isolation works where `podman run` cannot set
# rlimits, e.g. in nested sandboxes): the image's user, no compilers, serve + discovery + /healthz.
SMOKE=$(mktemp -d)
trap 'rm -rf "$SMOKE"' EXIT
cat > "$SMOKE/Containerfile" <<CHECK
FROM $IMAGE
RUN test "\$(id -u)" != 0 && ! command -v gcc cc make \\
 && (CYTOPENIA_DEV=1 CYTOPENIA_PORT=18080 cytopenia-cds serve --gunicorn-config /etc/cytopenia-cds/gunicorn.conf.py >/tmp/log 2>&1 &) \\
 && python3 -c "import json,time,urllib.request as u; time.sleep(4); \\
assert u.urlopen('http://127.0.0.1:18080/healthz').status == 200; \\
print('discovery as uid', __import__('os').getuid(), [s['id'] for s in json.load(u.urlopen('http://127.0.0.1:18080/cds-services'))['services']])"
CHECK
"${PODMAN[@]}" build --format docker --isolation chroot --no-cache -t localhost/cytopenia-cds-smoke -f "$SMOKE/Containerfile" "$SMOKE"
"${PODMAN[@]}" rmi localhost/cytopenia-cds-smoke >/dev/null
"${PODMAN[@]}" image inspect --format 'user {{.Config.User}}, healthcheck {{.Config.Healthcheck.Test}}' "$IMAGE"
