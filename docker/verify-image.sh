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
"${PODMAN[@]}" build --isolation chroot --build-arg PYTHON_IMAGE="$BASE_IMAGE" -f docker/Dockerfile -t "$IMAGE" .

PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
NAME=cytopenia-cds-verify-$$
"${PODMAN[@]}" run -d --rm --runtime runc --name "$NAME" --read-only --tmpfs /tmp \
  -e CYTOPENIA_DEV=1 -p "127.0.0.1:$PORT:8080" "$IMAGE" >/dev/null
trap '"${PODMAN[@]}" stop -t 5 "$NAME" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/cds-services" | python3 -c 'import json,sys; print("discovery:", [s["id"] for s in json.load(sys.stdin)["services"]])'
uid=$("${PODMAN[@]}" exec "$NAME" id -u)
echo "container user id: $uid"
[ "$uid" != 0 ]
"${PODMAN[@]}" healthcheck run "$NAME" && echo "healthcheck: healthy"
