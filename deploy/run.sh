#!/usr/bin/env bash
# Runs every Atelier role in one process against the local services (started if needed).
# Settings already in the environment win over the local defaults below.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

./deploy/local/deps.sh
# shellcheck source=/dev/null
. "$REPO/.local/env"

# Local use: webhooks and input URLs may reach loopback and private addresses.
export ATELIER_ALLOW_PRIVATE_NETWORKS="${ATELIER_ALLOW_PRIVATE_NETWORKS:-true}"
# A development key for client `local` (format client:key,...), and a fixed development webhook
# secret: whsec_ + base64 of the 32 bytes "atelier-local-dev-webhook-key-01".
export ATELIER_API_KEYS="${ATELIER_API_KEYS:-local:sk-local-dev-key}"
export ATELIER_WEBHOOK_SECRET="${ATELIER_WEBHOOK_SECRET:-whsec_YXRlbGllci1sb2NhbC1kZXYtd2ViaG9vay1rZXktMDE=}"
# Credits for the development client, granted once (the tasks and creations faces charge them).
export ATELIER_BOOTSTRAP_CREDITS="${ATELIER_BOOTSTRAP_CREDITS:-local:10000}"

exec cargo run -p atelier-cli -j 2 -- all "$@"
