#!/usr/bin/env bash
# tend under a real systemd: every tests/systemd/t-*.sh runs in a box of its own, booted
# by ../shared/systemd/sdbox (systemd 252 as PID 1 in throw-away namespaces), against the
# release build of tend and a Go HTTP server. Root only. Prints 'N passed, M failed' last
# and exits non-zero if anything failed.
#
#   tests/systemd/run.sh [t-NAME.sh ...]     default: every t-*.sh
#
# Env: TEND_BIN    tend to install (default target/release/tend)
#      SDBOX       the box script (default ../shared/systemd/sdbox, or $TEND_SHARED/systemd/sdbox)
#      SD_WAIT     seconds per wait (default 20)
#      KEEP=1      keep the work dir (the boxes are always taken down)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHARED=${TEND_SHARED:-$ROOT/../shared}
export SDBOX=${SDBOX:-$SHARED/systemd/sdbox}
export TEND_BIN=${TEND_BIN:-$ROOT/target/release/tend}
export SD_WAIT=${SD_WAIT:-20}
export ROOT HERE

[ "$(id -u)" = 0 ] || { echo "tests/systemd needs root (unshare, mounts)"; exit 2; }
[ -x "$SDBOX" ] || [ -f "$SDBOX" ] || { echo "missing $SDBOX"; exit 2; }
[ -x "$TEND_BIN" ] || { echo "missing $TEND_BIN (cargo build --release -p tend)"; exit 2; }
command -v go >/dev/null || { echo "go not installed (apt-get install golang-go)"; exit 2; }

# Test files under the checkout's target/: the box has a fresh /tmp, and a DynamicUser=
# unit gets a private /tmp and /var/tmp, so a program there would be invisible to it (as
# on a real host). The boxes themselves (their overlay mounts) live under /var/tmp.
# A checkout under /tmp or /var/tmp (a CI runner's, a worktree) would be just as invisible
# to those units: then the test files go under /srv, which no unit gets a private copy of.
case "$ROOT/" in
    /tmp/*|/var/tmp/*) WORK_BASE=/srv ;;
    *) WORK_BASE=$ROOT/target ;;
esac
mkdir -p "$WORK_BASE"
WORK=$(mktemp -d "$WORK_BASE/tend-systemd-test.XXXXXX")
BOXES=$(mktemp -d /var/tmp/tend-sd.XXXXXX)
chmod 755 "$WORK"
export WORK
cleanup() {
    for b in "$BOXES"/*; do [ -d "$b" ] && bash "$SDBOX" down "$b" >/dev/null 2>&1; done
    rm -rf "$BOXES"
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The Go server of the Windows e2e builds for Linux too: /health, numbered output, SIGINT
# (os.Interrupt) for a graceful stop.
( cd "$ROOT/tests/windows/gosvc" && CGO_ENABLED=0 GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" \
    GOFLAGS=-mod=mod timeout 300 go build -o "$WORK/bin/gosvc" . ) || { echo "FAIL: go build"; exit 1; }
# tend as an operator installs it: a root-owned binary outside any home or /tmp.
install -m 755 "$TEND_BIN" "$WORK/bin/tend"
chmod 755 "$WORK/bin"
export TEND="$WORK/bin/tend" GOSVC="$WORK/bin/gosvc"

tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("$HERE"/t-*.sh)
PASS=0 FAIL=0
for t in "${tests[@]}"; do
    t=$HERE/$(basename "$t")
    name=$(basename "$t" .sh)
    BOX="$BOXES/$name"
    echo "=== $name"
    if ! bash "$SDBOX" up "$BOX" >/dev/null 2>&1; then
        echo "FAIL: $name: the box did not boot"; tail -5 "$BOX/console.log"; FAIL=$((FAIL + 1)); continue
    fi
    # Each test in a subshell of its own, so one cannot leave state in another.
    BOX="$BOX" T="$WORK/$name" bash -c '. "$HERE/lib.sh"; mkdir -p "$T"; chmod 755 "$T"; . "$1"; summary' _ "$t" \
        > "$WORK/$name.out" 2>&1
    cat "$WORK/$name.out"
    p=$(sed -n 's/^RESULT \([0-9]*\) \([0-9]*\)$/\1/p' "$WORK/$name.out")
    f=$(sed -n 's/^RESULT \([0-9]*\) \([0-9]*\)$/\2/p' "$WORK/$name.out")
    if [ -z "$p" ]; then echo "FAIL: $name ended early"; FAIL=$((FAIL + 1)); else PASS=$((PASS + p)); FAIL=$((FAIL + f)); fi
    bash "$SDBOX" down "$BOX" >/dev/null 2>&1
done
echo
echo "systemd: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
