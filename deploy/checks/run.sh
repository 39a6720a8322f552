#!/usr/bin/env bash
# Chart and deployment checks: lints and renders helm/atelier with several values sets,
# validates every object against Kubernetes 1.30, and checks the Dockerfile, compose file and
# chart against the settings the code reads. Offline once the virtualenv exists.
#
# The virtualenv lives in <repo>/.local/venv and is (re)installed only when
# deploy/checks/requirements.txt changes.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
VENV="$REPO/.local/venv"
REQUIREMENTS="$REPO/deploy/checks/requirements.txt"
STAMP="$VENV/.atelier-requirements.sha256"

wanted="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted" ]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y --no-upgrade python3-venv
    fi
    mkdir -p "$REPO/.local"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$wanted" >"$STAMP"
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" "$REPO/deploy/checks/check_chart.py" "$@"
