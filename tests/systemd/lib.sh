# Helpers for tests/systemd/t-*.sh (sourced by run.sh inside a subshell).
# Given: BOX (the booted box), T (this test's own dir, visible in the box), TEND, GOSVC,
# ROOT, SD_WAIT. A test calls `check DESC cmd...`; every wait has a deadline.
PASS=0 FAIL=0
ok()  { echo "PASS: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAIL=$((FAIL + 1)); }
summary() { echo "RESULT $PASS $FAIL"; }

# box CMD...: run CMD inside the box (as root, in PID 1's namespaces), in $T.
box() { bash "$SDBOX" exec "$BOX" -- bash -c 'cd "$0" && exec "$@"' "$T" "$@"; }
# boxsh 'shell text': the same through a shell.
boxsh() { bash "$SDBOX" exec "$BOX" -- bash -c "cd '$T' && $1"; }

# check DESC cmd...: PASS if cmd exits 0; on failure its output is shown. The output of
# the last checked command that is not `contains` stays in $T/last, for `contains "$T/last"`.
check() {
    local d=$1; shift
    if "$@" > "$T/check.out" 2>&1; then ok "$d"; else bad "$d"; sed 's/^/      | /' "$T/check.out" | tail -25; fi
    [ "$1" = contains ] || cp "$T/check.out" "$T/last"
}
# fails DESC cmd...: PASS if cmd exits non-zero.
fails() {
    local d=$1; shift
    if "$@" > "$T/check.out" 2>&1; then bad "$d (exit 0)"; sed 's/^/      | /' "$T/check.out" | tail -25; else ok "$d"; fi
    [ "$1" = contains ] || cp "$T/check.out" "$T/last"
}
# exits CODE DESC cmd...: PASS if cmd exits with CODE.
exits() {
    local want=$1 d=$2 rc; shift 2
    "$@" > "$T/check.out" 2>&1; rc=$?
    if [ "$rc" = "$want" ]; then ok "$d"; else bad "$d (exit $rc, want $want)"; sed 's/^/      | /' "$T/check.out" | tail -25; fi
    cp "$T/check.out" "$T/last"
}
# shows DESC TEXT: PASS if the last checked command's output has TEXT; else shows it.
shows() {
    if grep -qF -- "$2" "$T/last"; then ok "$1"; else bad "$1 (no '$2')"; sed 's/^/      | /' "$T/last" | tail -25; fi
}
# wait_until SECONDS cmd...: until cmd exits 0, at most SECONDS; then its last exit code.
wait_until() {
    local end=$((SECONDS + $1)); shift
    while [ $SECONDS -lt $end ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    "$@"
}
# contains FILE-OR-- TEXT: grep -F on a file, or on stdin with "-".
contains() { grep -qF -- "$2" "$1"; }
# out CMD...: run CMD in the box, output into $T/out (also on failure), exit code kept.
out() { box "$@" > "$T/out" 2>&1; }

# A config in $T: cfg NAME [extra toml lines...]; the Go server on PORT if given in env.
cfg() {
    local name=$1; shift
    { echo "name = \"$name\""
      echo "command = [\"$GOSVC\"${GOSVC_ARGS:+, $GOSVC_ARGS}]"
      for l in "$@"; do echo "$l"; done; } > "$T/$name.toml"
    chmod 644 "$T/$name.toml"
}
http_ok() { box curl -fsS --max-time 2 "http://127.0.0.1:$1/health"; }
main_pid() { box systemctl show -p MainPID --value "$1.service"; }
# prop UNIT PROPERTY: one systemctl show property's value.
prop() { box systemctl show -p "$2" --value "$1.service"; }
# prop_is UNIT PROPERTY VALUE: exits 0 when it has that value.
prop_is() { [ "$(prop "$1" "$2")" = "$3" ]; }
# gone PID: the process PID in the box has ended (no longer there, or a zombie not reaped
# yet: either way its files, and so its locks, are closed). `kill -9` returns before the
# process has died; a test that goes on at once races the kernel.
gone() { ! box test -d "/proc/$1" || box grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
# kill9_and_wait PID: kill -9, then wait (with the deadline) until it is gone.
kill9_and_wait() { box kill -9 "$1" && wait_until "$SD_WAIT" gone "$1"; }
