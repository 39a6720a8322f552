#!/usr/bin/env bash
# Installs (if missing) and starts (if not already listening) the services Atelier needs for local
# use and tests, all on loopback:
#
#   NATS with JetStream   127.0.0.1:${ATELIER_LOCAL_NATS_PORT:-4222}   Debian `nats-server`
#   PostgreSQL            127.0.0.1:${ATELIER_LOCAL_PG_PORT:-5432}     Debian `postgresql`, trust auth
#   S3 (s3s-fs 0.14.1)    127.0.0.1:${ATELIER_LOCAL_S3_PORT:-9000}     crates.io `s3s-fs`
#
# and the media tools the local engines run: ffmpeg and ffprobe (Debian `ffmpeg`) and fonts for
# text in generated images (Debian `fonts-wqy-microhei`, `fonts-dejavu-core`), and the browser the
# console's test drives (Debian `chromium`, `chromium-driver`).
#
# A service whose port already answers is reused as it is. Whatever this script starts itself is
# recorded under .local/run/ and stopped by deploy/local/stop.sh. Runtime state (data, logs, pids)
# lives under <repo>/.local/ (gitignored). At the end it writes <repo>/.local/env with the matching
# ATELIER_* / AWS_* exports and makes sure the database exists.
#
# Idempotent; meant to be run as root on Debian bookworm (it installs packages with apt-get only
# when something is missing, and never upgrades anything already installed).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
LOCAL="$REPO/.local"
RUN="$LOCAL/run"
LOGS="$LOCAL/log"
DATA="$LOCAL/data"

NATS_PORT="${ATELIER_LOCAL_NATS_PORT:-4222}"
PG_PORT="${ATELIER_LOCAL_PG_PORT:-5432}"
S3_PORT="${ATELIER_LOCAL_S3_PORT:-9000}"
S3_DIR="$LOCAL/s3"
S3_BUCKET="atelier"
S3_ACCESS_KEY="atelier"
S3_SECRET_KEY="atelier-secret"
S3_REGION="us-east-1"
S3S_FS_VERSION="0.14.1"
DB_NAME="atelier"
DB_USER="postgres"

CARGO_BIN="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

die() {
    echo "deps.sh: error: $*" >&2
    exit 1
}

# Prints one status line per service.
report() { printf '%-10s %-17s %s\n' "$1" "127.0.0.1:$2" "$3"; }

is_root() { [ "$(id -u)" = 0 ]; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# True while process $1 exists and is not a zombie.
proc_running() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# Waits (bounded) until 127.0.0.1:$2 answers; $1 names the service, $3 is its log, $4 seconds,
# $5 an optional pid that must stay alive meanwhile.
wait_port() {
    local name="$1" port="$2" log="$3" secs="$4" pid="${5:-}" i
    for ((i = 0; i < secs * 5; i++)); do
        port_open "$port" && return 0
        if [ -n "$pid" ] && ! proc_running "$pid"; then
            echo "deps.sh: $name (pid $pid) exited before listening on 127.0.0.1:$port; last lines of $log:" >&2
            tail -n 20 "$log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    echo "deps.sh: $name did not listen on 127.0.0.1:$port within ${secs}s; last lines of $log:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
}

APT_UPDATED=0
apt_install() {
    is_root || die "'$*' must be installed, which needs root (apt-get)"
    command -v apt-get >/dev/null || die "'$*' must be installed, but apt-get is not available"
    local log="$LOGS/apt.log"
    echo "deps.sh: installing $* with apt-get (log: $log)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update failed (log: $log)"; }
        APT_UPDATED=1
    fi
    apt-get install -y --no-upgrade --no-install-recommends "$@" >>"$log" 2>&1 \
        || { tail -n 20 "$log" >&2; die "apt-get install $* failed (log: $log)"; }
}

# pid files: "<pid> <executable name>"; a pid is only trusted while its command line still names
# the same executable (guards against pid reuse).
pid_alive() {
    local pid="$1" exe="$2" argv0
    [ -r "/proc/$pid/cmdline" ] || return 1
    argv0="$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)"
    [ "$(basename -- "$argv0")" = "$exe" ]
}

recorded_pid() {
    local file="$RUN/$1.pid" pid exe
    [ -f "$file" ] || return 1
    read -r pid exe <"$file" || true
    if [ -n "${pid:-}" ] && [ -n "${exe:-}" ] && pid_alive "$pid" "$exe"; then
        echo "$pid"
        return 0
    fi
    rm -f "$file"
    return 1
}

# Closes every file descriptor above 2 of the current (sub)shell. Whatever starts a daemon must not
# pass on our lock (fd 9) nor a pipe inherited from whoever runs this script: the daemon would keep
# the lock, or a CI runner waiting for EOF on its pipe, forever.
close_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd="${fd##*/}"
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
}

# Runs "$@" (a command or a function) with close_fds applied.
run_clean() {
    (
        close_fds
        if declare -F "$1" >/dev/null; then "$@"; else exec "$@"; fi
    )
}

# Starts "$@" in the background in its own session (so a Ctrl-C aimed at the caller does not reach
# it), stdin from /dev/null, output appended to the log $1; prints its pid (one fork: the subshell
# execs setsid, which, not being a group leader, execs the command in place).
start_bg() {
    local log="$1"
    shift
    (
        close_fds
        exec setsid "$@" </dev/null >>"$log" 2>&1
    ) &
    echo "$!"
}

for port in "$NATS_PORT" "$PG_PORT" "$S3_PORT"; do
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "not a TCP port: '$port'"
done

mkdir -p "$RUN" "$LOGS" "$DATA"
chmod 755 "$LOCAL" "$DATA" "$LOGS"

# One deps.sh at a time (a concurrent run would race to start the same services).
exec 9>"$RUN/deps.lock"
if ! flock -n 9; then
    echo "deps.sh: another deps.sh is running; waiting for it" >&2
    flock -w 1800 9 || die "timed out waiting for another deps.sh ($RUN/deps.lock)"
fi

# ---------------------------------------------------------------------------------------------
# NATS with JetStream
# ---------------------------------------------------------------------------------------------
nats_info() {
    timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; IFS= read -r line <&3; printf '%s' \"\$line\"" 2>/dev/null || true
}

ensure_nats() {
    local port="$NATS_PORT" name="nats-$NATS_PORT" log="$LOGS/nats-$NATS_PORT.log" pid info
    if port_open "$port"; then
        info="$(nats_info "$port")"
        case "$info" in
            INFO*'"jetstream":true'*) ;;
            INFO*) die "NATS on 127.0.0.1:$port runs without JetStream; restart it with -js or set ATELIER_LOCAL_NATS_PORT" ;;
            *) die "127.0.0.1:$port answers, but not as a NATS server; free the port or set ATELIER_LOCAL_NATS_PORT" ;;
        esac
        if pid="$(recorded_pid "$name")"; then
            report nats "$port" "reused (started earlier by deps.sh, pid $pid, log $log)"
        else
            report nats "$port" "reused (already listening, JetStream on)"
        fi
        return
    fi
    command -v nats-server >/dev/null || apt_install nats-server
    command -v nats-server >/dev/null || die "nats-server is still missing after apt-get install"
    # the package's own service may have come up on the port meanwhile
    if port_open "$port"; then
        report nats "$port" "reused (started by the nats-server package)"
        return
    fi
    mkdir -p "$DATA/nats-$port"
    pid="$(start_bg "$log" nats-server -js -a 127.0.0.1 -p "$port" -sd "$DATA/nats-$port")"
    echo "$pid nats-server" >"$RUN/$name.pid"
    wait_port "NATS (nats-server)" "$port" "$log" 30 "$pid"
    case "$(nats_info "$port")" in
        INFO*'"jetstream":true'*) ;;
        *) die "NATS started on 127.0.0.1:$port but reports no JetStream (log: $log)" ;;
    esac
    report nats "$port" "started (pid $pid, log $log)"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
PG_BIN=""
pg_find_bin() {
    PG_BIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]
}

as_postgres() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_psql() {
    PGCONNECT_TIMEOUT=5 psql -X -w -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" "$@"
}

pg_can_login() { pg_psql -d postgres -tAc 'select 1' >/dev/null 2>&1; }

# The Debian cluster (version, name) configured for $PG_PORT, if any.
pg_debian_cluster() {
    local conf ver cport
    for conf in $(printf '%s\n' /etc/postgresql/*/main/postgresql.conf | sort -rV); do
        [ -f "$conf" ] || continue
        ver="$(basename "$(dirname "$(dirname "$conf")")")"
        cport="$(sed -nE 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p' "$conf" | tail -n 1)"
        if [ "${cport:-5432}" = "$PG_PORT" ] && [ -x "/usr/lib/postgresql/$ver/bin/postgres" ]; then
            echo "$ver main"
            return 0
        fi
    done
    return 1
}

# Debian's own clusters ask for a password over TCP (scram-sha-256); for a cluster this script
# started or installed, let loopback in without one, as the rest of local use assumes.
pg_trust_loopback() {
    local ver="$1" name="$2" hba="/etc/postgresql/$1/$2/pg_hba.conf" marker="# added by atelier deploy/local/deps.sh"
    pg_can_login && return 0
    [ -w "$hba" ] || return 0
    if ! grep -qF "$marker" "$hba"; then
        local tmp
        tmp="$(mktemp)"
        {
            echo "$marker: passwordless loopback for local development"
            echo "host all all 127.0.0.1/32 trust"
            echo "host all all ::1/128 trust"
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba"
        rm -f "$tmp"
    fi
    run_clean pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload </dev/null >/dev/null 2>&1 || true
}

pg_throwaway_dir() {
    # initdb refuses root, so the cluster belongs to `postgres`, who must reach its directory.
    local dir="$DATA/pg-$PG_PORT"
    if ! is_root || as_postgres test -x "$DATA"; then
        echo "$dir"
    else
        echo "/var/tmp/atelier-$(printf '%s' "$REPO" | sha256sum | cut -c1-12)-pg-$PG_PORT"
    fi
}

ensure_postgres() {
    local port="$PG_PORT" log how="" installed=0 cluster ver name dir
    if port_open "$port"; then
        command -v psql >/dev/null || apt_install postgresql-client
        if dir="$(cat "$RUN/postgres-$port.datadir" 2>/dev/null)" && [ -f "$dir/postmaster.pid" ]; then
            how="reused (started earlier by deps.sh, data $dir)"
        elif cluster="$(cat "$RUN/postgres-$port.cluster" 2>/dev/null)"; then
            how="reused (cluster $cluster started earlier by deps.sh)"
        else
            how="reused (already listening)"
        fi
    else
        if ! pg_find_bin; then
            apt_install postgresql
            installed=1
            pg_find_bin || die "PostgreSQL binaries are still missing after apt-get install postgresql"
        fi
        command -v psql >/dev/null || apt_install postgresql-client
        if [ "$installed" = 1 ] && port_open "$port"; then
            # the package created and started its cluster on this port
            if cluster="$(pg_debian_cluster)"; then
                read -r ver name <<<"$cluster"
                pg_trust_loopback "$ver" "$name"
            fi
            how="reused (started by the postgresql package)"
        elif cluster="$(pg_debian_cluster)"; then
            read -r ver name <<<"$cluster"
            log="/var/log/postgresql/postgresql-$ver-$name.log"
            run_clean pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start </dev/null \
                || die "PostgreSQL: pg_ctlcluster $ver $name start failed (log: $log)"
            echo "$ver $name" >"$RUN/postgres-$port.cluster"
            wait_port "PostgreSQL (cluster $ver/$name)" "$port" "$log" 60
            pg_trust_loopback "$ver" "$name"
            how="started (Debian cluster $ver/$name, log $log)"
        else
            dir="$(pg_throwaway_dir)"
            log="$LOGS/postgres-$port.log"
            touch "$log"
            is_root && chown postgres: "$log"
            if [ ! -f "$dir/PG_VERSION" ]; then
                rm -rf "$dir"
                mkdir -p "$dir"
                is_root && chown postgres: "$dir"
                chmod 700 "$dir"
                as_postgres "$PG_BIN/initdb" -D "$dir" -U "$DB_USER" --auth=trust -E UTF8 --no-locale \
                    </dev/null >>"$log" 2>&1 || die "PostgreSQL: initdb failed (log: $log)"
                # loopback TCP only; no Unix socket (keeps clear of the system's /var/run/postgresql)
                cat >>"$dir/postgresql.conf" <<EOF

# added by atelier deploy/local/deps.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = off
EOF
            fi
            echo "$dir" >"$RUN/postgres-$port.datadir"
            run_clean as_postgres "$PG_BIN/pg_ctl" -D "$dir" -l "$log" -w -t 60 \
                -o "-c listen_addresses=127.0.0.1 -p $port" start </dev/null >/dev/null \
                || { tail -n 20 "$log" >&2; die "PostgreSQL: pg_ctl start failed (log: $log)"; }
            wait_port "PostgreSQL (throwaway cluster $dir)" "$port" "$log" 60
            how="started (throwaway cluster $dir, log $log)"
        fi
    fi
    local i
    for ((i = 0; i < 25; i++)); do # a pg_hba.conf reload takes effect asynchronously
        pg_can_login && break
        sleep 0.2
    done
    pg_can_login || die "PostgreSQL on 127.0.0.1:$port does not let role '$DB_USER' in without a password (trust auth on loopback is expected); $(pg_psql -d postgres -tAc 'select 1' 2>&1 | head -n 1)"
    if [ -z "$(pg_psql -d postgres -tAc "select 1 from pg_database where datname = '$DB_NAME'")" ]; then
        pg_psql -d postgres -c "create database \"$DB_NAME\"" >/dev/null \
            || die "PostgreSQL: could not create database $DB_NAME"
        how="$how; created database $DB_NAME"
    fi
    report postgres "$port" "$how"
}

# ---------------------------------------------------------------------------------------------
# S3-compatible server: s3s-fs
# ---------------------------------------------------------------------------------------------
s3s_fs_ok() {
    command -v s3s-fs >/dev/null && [ "$(s3s-fs --version 2>/dev/null)" = "s3s-fs $S3S_FS_VERSION" ]
}

# pids of a running `cargo install ... s3s-fs...` (someone else's), read from /proc.
s3s_fs_installers() {
    local f cmd
    for f in /proc/[0-9]*/cmdline; do
        cmd="$(tr '\0' ' ' <"$f" 2>/dev/null)" || continue
        case "$cmd" in
            *cargo\ install\ *s3s-fs*) f="${f#/proc/}" && echo "${f%/cmdline}" ;;
        esac
    done
}

ensure_s3s_fs() {
    s3s_fs_ok && return 0
    local waited=0 log="$LOGS/s3s-fs-install.log"
    while [ -n "$(s3s_fs_installers)" ]; do
        [ "$waited" = 0 ] && echo "deps.sh: an install of s3s-fs is running; waiting for it" >&2
        [ "$waited" -ge 1800 ] && die "gave up after ${waited}s waiting for a running 'cargo install s3s-fs'"
        sleep 5
        waited=$((waited + 5))
    done
    s3s_fs_ok && return 0
    command -v cargo >/dev/null || die "s3s-fs must be built with cargo, which is not on PATH"
    echo "deps.sh: installing s3s-fs $S3S_FS_VERSION with cargo install (~2 min; log: $log)" >&2
    cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --locked -j 2 </dev/null >>"$log" 2>&1 \
        || { tail -n 20 "$log" >&2; die "cargo install s3s-fs@$S3S_FS_VERSION failed (log: $log)"; }
    s3s_fs_ok || die "s3s-fs $S3S_FS_VERSION is still not on PATH after cargo install (log: $log)"
}

EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# HTTP status of a SigV4-signed, path-style request without a body to the S3 server (curl >= 7.75
# signs; s3s wants x-amz-content-sha256, which curl 7.88 does not add by itself).
s3_status() {
    local method=(-X "$1") code
    [ "$1" = HEAD ] && method=(-I)
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${method[@]}" \
        --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H "x-amz-content-sha256: $EMPTY_SHA256" \
        "http://127.0.0.1:$S3_PORT/$2")" || true
    echo "${code:-000}"
}

ensure_s3() {
    local port="$S3_PORT" name="s3s-fs-$S3_PORT" log="$LOGS/s3s-fs.log" pid how code
    [ "$port" = 9000 ] || log="$LOGS/s3s-fs-$port.log"
    if port_open "$port"; then
        if pid="$(recorded_pid "$name")"; then
            how="reused (started earlier by deps.sh, pid $pid, log $log)"
        else
            how="reused (already listening)"
        fi
    else
        ensure_s3s_fs
        # s3s-fs serves one directory per bucket under its root; the root must exist.
        mkdir -p "$S3_DIR/$S3_BUCKET"
        pid="$(start_bg "$log" env RUST_LOG="${ATELIER_LOCAL_S3_LOG:-info}" s3s-fs \
            --host 127.0.0.1 --port "$port" \
            --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$S3_DIR")"
        echo "$pid s3s-fs" >"$RUN/$name.pid"
        wait_port "S3 (s3s-fs)" "$port" "$log" 30 "$pid"
        how="started (pid $pid, data $S3_DIR, log $log)"
    fi
    # the default bucket must exist (s3s-fs: a directory under its root)
    if command -v curl >/dev/null; then
        code="$(s3_status HEAD "$S3_BUCKET")"
        case "$code" in
            200) ;;
            404)
                code="$(s3_status PUT "$S3_BUCKET")"
                [ "$code" = 200 ] || die "S3 on 127.0.0.1:$port: creating bucket $S3_BUCKET answered HTTP $code (log: $log)"
                how="$how; created bucket $S3_BUCKET"
                ;;
            *) die "S3 on 127.0.0.1:$port: HEAD /$S3_BUCKET with access key $S3_ACCESS_KEY answered HTTP $code (log: $log)" ;;
        esac
    else
        mkdir -p "$S3_DIR/$S3_BUCKET"
    fi
    report s3 "$port" "$how"
}

# ---------------------------------------------------------------------------------------------
# Media tools: ffmpeg (the video engine encodes with it; its tests probe with ffprobe), the
# fonts the image and slides engines set text in (CJK: WenQuanYi Micro Hei; Latin: DejaVu Sans)
# and espeak-ng, the offline speech synthesiser the slides engine narrates with
# ---------------------------------------------------------------------------------------------
CJK_FONT=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
LATIN_FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

ensure_media_tools() {
    local missing=() how="present"
    if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
        missing+=(ffmpeg)
    fi
    [ -f "$CJK_FONT" ] || missing+=(fonts-wqy-microhei)
    [ -f "$LATIN_FONT" ] || missing+=(fonts-dejavu-core)
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
        how="installed ${missing[*]}"
    fi
    command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null \
        || die "ffmpeg/ffprobe are still missing after apt-get install ffmpeg"
    [ -f "$CJK_FONT" ] || die "$CJK_FONT is still missing after apt-get install fonts-wqy-microhei"
    [ -f "$LATIN_FONT" ] || die "$LATIN_FONT is still missing after apt-get install fonts-dejavu-core"
    command -v espeak-ng >/dev/null || die "espeak-ng is still missing after apt-get install espeak-ng"
    printf '%-10s %s\n' media "$how (ffmpeg $(command -v ffmpeg), espeak-ng $(command -v espeak-ng), fonts $CJK_FONT, $LATIN_FONT)"
}

# ---------------------------------------------------------------------------------------------
# The browser the console's end-to-end test drives: Debian's Chromium and its chromedriver
# (WebDriver), at /usr/bin/chromium and /usr/bin/chromedriver
# ---------------------------------------------------------------------------------------------
CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

ensure_browser() {
    local missing=() how="present"
    [ -x "$CHROMIUM" ] || missing+=(chromium)
    [ -x "$CHROMEDRIVER" ] || missing+=(chromium-driver)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
        how="installed ${missing[*]}"
    fi
    [ -x "$CHROMIUM" ] || die "$CHROMIUM is still missing after apt-get install chromium"
    [ -x "$CHROMEDRIVER" ] || die "$CHROMEDRIVER is still missing after apt-get install chromium-driver"
    printf '%-10s %s\n' browser "$how ($CHROMIUM, $CHROMEDRIVER)"
}

ensure_nats
ensure_postgres
ensure_s3
ensure_media_tools
ensure_browser

tmp="$(mktemp "$LOCAL/env.XXXXXX")"
cat >"$tmp" <<EOF
# Written by deploy/local/deps.sh: the local services' endpoints. Source it: . .local/env
export ATELIER_DATABASE_URL=postgres://$DB_USER@127.0.0.1:$PG_PORT/$DB_NAME
export ATELIER_NATS_URL=nats://127.0.0.1:$NATS_PORT
export ATELIER_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export ATELIER_S3_BUCKET=$S3_BUCKET
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_REGION=$S3_REGION
EOF
chmod 644 "$tmp"
mv -f "$tmp" "$LOCAL/env"
echo "env        $LOCAL/env"
