#!/usr/bin/env bash
# Local engines against the reference tools, side by side: quality (PSNR against an original)
# and speed on the same fixed inputs, with the targets of issue #3 checked at the end.
#
#   deploy/bench/engines.sh [SECTION...]     sections: inpaint upscale video generate (default: all)
#
# Environment: RUNS (timed runs per case, median reported; default 5), BENCH_JOBS (cargo build
# jobs; default 2), CARGO_TARGET_DIR (as cargo reads it).
#
# Installs what it needs, idempotently: scikit-image, OpenCV and numpy into the project
# virtualenv .local/venv (from deploy/bench/requirements.txt, re-installed when that changes),
# and libvips-tools and ImageMagick from Debian when `vips` or a real `convert` is missing.
# Inputs, outputs and results go to .local/bench/engines/: each case directory keeps every
# implementation's output image for a look.
#
# To add a section (say `video`): a `generate_video` and `baseline_video` in baselines.py, its
# targets in TARGETS there, a `bench_video` function here that prints the Rust bench's JSON
# lines, and `video` in SECTIONS. The report reads whatever lines the sections wrote.
#
# Exit status: 0 when every target is met, 1 when one is missed or a metric disagrees.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
VENV="$REPO/.local/venv"
REQUIREMENTS="$REPO/deploy/bench/requirements.txt"
STAMP="$VENV/.atelier-bench-requirements.sha256"
OUT="$REPO/.local/bench/engines"
RESULTS="$OUT/results.jsonl"
RUNS="${RUNS:-5}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
SECTIONS=(inpaint upscale video generate)

log() { printf '==> %s\n' "$*" >&2; }

ensure_venv() {
    local wanted
    wanted="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$wanted" ]; then
        return
    fi
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y --no-upgrade python3-venv
    fi
    mkdir -p "$REPO/.local"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    log "installing the baseline python packages into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$wanted" >"$STAMP"
}

ensure_tools() {
    local missing=()
    command -v vips >/dev/null || missing+=(libvips-tools)
    [ -x /usr/bin/time ] || missing+=(time)  # GNU time: the tools' peak memory
    # A stand-in `convert` may sit in front of the real one; only ImageMagick names itself so.
    convert -version 2>/dev/null | grep -q ImageMagick || missing+=(imagemagick)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}" >/dev/null
    fi
}

build() {
    log "building the benches (release)"
    (cd "$REPO" && cargo build --release -j "${BENCH_JOBS:-2}" -p atelier-inpaint -p atelier-upscale \
        -p atelier-video -p atelier-image --bins)
}

baselines() {
    PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" "$REPO/deploy/bench/baselines.py" "$@"
}

# Each section prints the Rust bench's lines first (which write ours.png), then the baselines'
# (which re-check our PSNR from ours.png with their own metric code).
bench_inpaint() {
    "$TARGET_DIR/release/inpaint-bench" "$OUT/inpaint" --runs "$RUNS"
    baselines inpaint "$OUT" "$RUNS"
}

bench_upscale() {
    "$TARGET_DIR/release/upscale-bench" "$OUT/upscale" --scale 4 --runs "$RUNS"
    baselines upscale "$OUT" "$RUNS"
}

# No baseline tool makes these; the target is the video engine's own (faster than real time).
bench_video() {
    mkdir -p "$OUT/video"
    "$TARGET_DIR/release/video-bench" "$OUT/video" | baselines tag video
}

bench_generate() {
    mkdir -p "$OUT/generate"
    "$TARGET_DIR/release/generate-bench" "$OUT/generate" | baselines tag generate
}

main() {
    local sections=("$@")
    [ "${#sections[@]}" -gt 0 ] || sections=("${SECTIONS[@]}")
    ensure_venv
    ensure_tools
    build
    mkdir -p "$OUT"
    log "writing the fixed inputs to $OUT"
    baselines generate "$OUT"
    : >"$RESULTS"
    for section in "${sections[@]}"; do
        log "section $section ($RUNS runs per case)"
        "bench_$section" | tee -a "$RESULTS"
    done
    baselines report "$RESULTS"
}

main "$@"
