#!/usr/bin/env bash
# Build the image with Debian's podman (no Docker engine needed) and smoke-check it: non-root, no
# compilers, serve starts on its writable data directory and answers /healthz and discovery. Used by
# `make image`; see docs/operations/container.md.
#
# Containers cannot be run on every build host (nested sandboxes refuse `podman run`), so the check
# runs inside a throw-away build step. Such a step shares the host's network and leaves background
# processes alive, so the check starts the server, remembers its process id and kills it by that id
# whatever happens; afterwards this script checks that nothing listens on the port any more.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/cytopenia-cds:dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-python:bookworm}
PODMAN=(podman --storage-driver vfs)

if [ -z "$("${PODMAN[@]}" images -q "$BASE_IMAGE")" ]; then
  # Only Debian and PyPI are reachable here: make the slim Python base from Debian packages
  # (apt-get install mmdebstrap). Built to a file first, so a failure cannot leave an empty image.
  command -v mmdebstrap >/dev/null || { echo "needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 1; }
  ROOTFS=$(mktemp --suffix=.tar)
  mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS"
  "${PODMAN[@]}" import "$ROOTFS" "$BASE_IMAGE"
  rm -f "$ROOTFS"
fi
SECRETS=()
if [ -n "${CA_BUNDLE:-}" ]; then SECRETS=(--secret "id=ca_bundle,src=$CA_BUNDLE"); fi  # TLS-inspecting proxy
"${PODMAN[@]}" build --format docker --isolation chroot "${SECRETS[@]}" --build-arg PYTHON_IMAGE="$BASE_IMAGE" -f docker/Dockerfile -t "$IMAGE" .

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SMOKE=$(mktemp -d)
trap 'rm -rf "$SMOKE"' EXIT
cp docker/smoke-check.sh "$SMOKE/"
cat > "$SMOKE/Containerfile" <<CHECK
FROM $IMAGE
COPY smoke-check.sh /tmp/smoke-check.sh
RUN sh /tmp/smoke-check.sh $PORT
CHECK
"${PODMAN[@]}" build --format docker --isolation chroot --no-cache -t localhost/cytopenia-cds-smoke -f "$SMOKE/Containerfile" "$SMOKE"
"${PODMAN[@]}" rmi localhost/cytopenia-cds-smoke >/dev/null
if python3 -c "import socket, sys; sys.exit(socket.socket().connect_ex(('127.0.0.1', $PORT)) != 0)"; then
  echo "smoke check left a server listening on port $PORT" >&2
  exit 1
fi
"${PODMAN[@]}" image inspect --format 'user {{.Config.User}}, healthcheck {{.Config.Healthcheck.Test}}' "$IMAGE"
echo "image $IMAGE built; smoke check passed and left nothing listening on port $PORT"
