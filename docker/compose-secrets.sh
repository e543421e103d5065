#!/usr/bin/env bash
# Writes docker/.env for compose.yaml: fresh random secrets (PostgreSQL password, audit key) and the
# public https URL EHRs will call, given as the argument or asked for. Never committed (.gitignore).
set -euo pipefail
cd "$(dirname "$0")"
if [ -e .env ]; then
  echo "docker/.env exists; keep it (the database keeps its password) or delete it to start afresh" >&2
  exit 1
fi
PUBLIC_BASE_URL=${1:-}
if [ -z "$PUBLIC_BASE_URL" ]; then
  read -r -p "public https URL EHRs will call (e.g. https://cds.example.org): " PUBLIC_BASE_URL
fi
case "$PUBLIC_BASE_URL" in
  https://*) ;;
  *) echo "the public URL must start with https:// (TLS ends at your proxy)" >&2; exit 1 ;;
esac
secret() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }
umask 077
cat > .env <<ENV
POSTGRES_PASSWORD=$(secret 32)
CYTOPENIA_AUDIT_KEY=$(secret 48)
CYTOPENIA_PUBLIC_BASE_URL=$PUBLIC_BASE_URL
ENV
echo "wrote docker/.env; now: podman-compose -f docker/compose.yaml up --build"
