#!/usr/bin/env bash
# The project's one gate: local services, then format, lints and the whole test suite.
# Stops at the first failing step (non-zero exit).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

STEP=""
step() {
    STEP="$*"
    printf '\n==> %s\n' "$STEP"
}
on_exit() {
    local rc=$?
    if [ "$rc" != 0 ]; then printf '\n==> FAILED (exit %s): %s\n' "$rc" "$STEP" >&2; fi
}
trap on_exit EXIT

step "local services (deploy/local/deps.sh)"
./deploy/local/deps.sh
# shellcheck source=/dev/null
. "$REPO/.local/env"

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -j 2 -- -D warnings"
cargo clippy --workspace --all-targets -j 2 -- -D warnings

step "chart and deployment checks (deploy/checks/run.sh)"
./deploy/checks/run.sh

step "cargo build -p atelier-cli -j 2 (the restart scenario runs the real binary)"
cargo build -p atelier-cli -j 2

# The webhook tests verify signatures with the reference Standard Webhooks library,
# installed into the same virtualenv by deploy/checks/run.sh.
export ATELIER_TEST_PYTHON="$REPO/.local/venv/bin/python"

step "cargo test --workspace -j 2"
cargo test --workspace -j 2

# The chaos suite's short form (README, "Chaos"): every role replicated on a three-node NATS
# cluster, a seeded fault schedule, the invariant checker. Bounded to a few hundred jobs and a
# handful of faults; the seed is fixed so a failure here replays with the same schedule.
step "chaos suite, short form (tests/src/chaos)"
cargo build -p atelier-tests --bin chaos -j 2
./target/debug/chaos --jobs "${ATELIER_CHAOS_JOBS:-300}" --faults "${ATELIER_CHAOS_FAULTS:-8}" \
    --seed "${ATELIER_CHAOS_SEED:-18}"

STEP=""
printf '\n==> all checks passed\n'
