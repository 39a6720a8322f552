#!/usr/bin/env bash
# Stops what deploy/local/deps.sh itself started (recorded under .local/run/); services that were
# already running when deps.sh found them are left alone. Data under .local/ is kept.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
RUN="$REPO/.local/run"

[ -d "$RUN" ] || { echo "nothing to stop (no $RUN)"; exit 0; }

# Not while deps.sh is starting things.
exec 9>"$RUN/deps.lock"
flock -w 120 9 || { echo "stop.sh: deps.sh holds $RUN/deps.lock; try again" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

as_postgres() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pid_alive() {
    local pid="$1" exe="$2" argv0
    [ -r "/proc/$pid/cmdline" ] || return 1
    argv0="$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)"
    [ "$(basename -- "$argv0")" = "$exe" ]
}

status=0
shopt -s nullglob

# nats-server, s3s-fs: "<pid> <executable name>"
for file in "$RUN"/*.pid; do
    name="$(basename "$file" .pid)"
    pid="" exe=""
    read -r pid exe <"$file" || true
    if [ -z "$pid" ] || [ -z "$exe" ] || ! pid_alive "$pid" "$exe"; then
        echo "$name: not running"
        rm -f "$file"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" "$exe" || break
        sleep 0.1
    done
    if pid_alive "$pid" "$exe"; then
        kill -KILL "$pid" 2>/dev/null || true
        echo "$name: killed (pid $pid did not stop within 10s)"
    else
        echo "$name: stopped (pid $pid)"
    fi
    rm -f "$file"
done

# throwaway PostgreSQL clusters: the data directory
for file in "$RUN"/postgres-*.datadir; do
    name="$(basename "$file" .datadir)"
    dir="$(cat "$file")"
    pg_ctl="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl"
    if [ -f "$dir/postmaster.pid" ] && [ -x "$pg_ctl" ] && as_postgres "$pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        if as_postgres "$pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null; then
            echo "$name: stopped (throwaway cluster $dir)"
        else
            echo "$name: pg_ctl stop failed for $dir" >&2
            status=1
            continue
        fi
    else
        echo "$name: not running"
    fi
    rm -f "$file"
done

# Debian clusters that deps.sh started: "<version> <name>"
for file in "$RUN"/postgres-*.cluster; do
    name="$(basename "$file" .cluster)"
    read -r ver cluster <"$file" || true
    if pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" status >/dev/null 2>&1; then
        if pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" stop -m fast; then
            echo "$name: stopped (Debian cluster $ver/$cluster)"
        else
            echo "$name: pg_ctlcluster $ver $cluster stop failed" >&2
            status=1
            continue
        fi
    else
        echo "$name: not running"
    fi
    rm -f "$file"
done

exit "$status"
