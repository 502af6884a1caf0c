#!/usr/bin/env bash
# End-to-end tests of tend.exe as a real Windows service under Wine (issue 4's acceptance):
# install/start/status/restart-by-policy/stop/taskkill/auto-start-at-boot/uninstall/bad input,
# apply, upgrade/rollback (e2e-upgrade.sh), upgrade --self (e2e-self.sh), with tend.exe and the program under paths that contain spaces. Headless, throwaway prefix,
# every wait bounded. Prints 'N passed, M failed' last; exits non-zero if anything failed.
#
# Env: TEND_EXE, FIXTURE_EXE  the Windows builds (default: target/x86_64-pc-windows-gnu/release)
#      WINCROSS_HOME          default /opt/wincross
#      E2E_WAIT               seconds per wait (default 30)
#      KEEP=1                 keep the prefix for inspection
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WINCROSS_HOME=${WINCROSS_HOME:-/opt/wincross}
TGT="$ROOT/target/x86_64-pc-windows-gnu/release"
TEND_EXE=${TEND_EXE:-$TGT/tend.exe}
FIXTURE_EXE=${FIXTURE_EXE:-$TGT/tend-fixture.exe}
E2E_WAIT=${E2E_WAIT:-30}
PORT=18573

PASS=0 FAIL=0
ok()  { echo "PASS: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAIL=$((FAIL + 1)); }
check() { # check DESC cmd... (output shown only on failure)
    local d=$1; shift
    if "$@" > "$WORK/check.out" 2>&1; then ok "$d"; else bad "$d"; sed 's/^/      | /' "$WORK/check.out" | tr -d '\r' | tail -20; fi
}
wait_until() { # wait_until SECONDS cmd...
    local end=$((SECONDS + $1)); shift
    while [ $SECONDS -lt $end ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
    "$@"
}

for f in "$TEND_EXE" "$FIXTURE_EXE" "$WINCROSS_HOME/wine/bcryptprimitives.dll"; do
    [ -f "$f" ] || { echo "missing $f (build with cargo-win --release, run setup-windows-cross.sh)"; exit 2; }
done
command -v go >/dev/null || { echo "go not installed (apt-get install golang-go)"; exit 2; }
command -v curl >/dev/null || { echo "curl not installed"; exit 2; }

WORK=$(mktemp -d /tmp/tend-e2e.XXXXXX)
export WINEPREFIX="$WORK/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
KEEPALIVE=
cleanup() {
    [ -n "$KEEPALIVE" ] && kill "$KEEPALIVE" 2>/dev/null
    timeout 30 wineserver -k 2>/dev/null; timeout 30 wineserver -w 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "prefix kept: $WINEPREFIX"; return; fi
    if [ -d "$WINEPREFIX" ]; then
        local key; key=$(stat -c '%D-%i' "$WINEPREFIX" | awk -F- '{printf "%s-%x", $1, $2}')
        for d in /tmp/wine-*/server-"$key"; do [ -d "$d" ] && rm -rf "$(dirname "$d")"; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------------ setup
T0=$SECONDS
( cd "$HERE/gosvc" && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" \
    GOFLAGS=-mod=mod timeout 300 go build -o "$WORK/gosvc.exe" . ) || { echo "FAIL: go build"; exit 1; }
timeout 180 wineboot --init >/dev/null 2>&1; timeout 120 wineserver -w
[ -d "$WINEPREFIX/drive_c/windows/system32" ] || { echo "FAIL: wineboot"; exit 1; }
cp "$WINCROSS_HOME/wine/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
C="$WINEPREFIX/drive_c"
TD="$C/Program Files/tend e2e";  TEND='C:\Program Files\tend e2e\tend.exe'
AD="$C/My Apps/go svc";          CFG='C:\My Apps\go svc\gosvc.toml'
mkdir -p "$TD" "$AD"
cp "$TEND_EXE" "$TD/tend.exe"; cp "$FIXTURE_EXE" "$TD/tend-fixture.exe"; cp "$WORK/gosvc.exe" "$AD/gosvc.exe"
LOGS="$C/ProgramData/tend/logs/gosvc"
CONFIG_COPY="$C/ProgramData/tend/services/gosvc.toml"
echo "INFO: prefix ready in $((SECONDS - T0))s"

start_keepalive() {
    # Wine ends every service, without a shutdown control, when its last ordinary process
    # exits: one must stay up for the whole test.
    timeout 900 wine 'C:\Program Files\tend e2e\tend-fixture.exe' --sleep >/dev/null 2>&1 &
    KEEPALIVE=$!
    # Boot the prefix (services.exe, auto-start services) from a command whose output goes
    # nowhere: processes started by the first Wine command inherit its stdout, and a later
    # `$(wine ...)` would wait for them forever.
    timeout 120 wine cmd /c exit >/dev/null 2>&1
}
w() { timeout 120 wine "$@" 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }
tend() { w "$TEND" "$@"; }
sc_state() { w sc query "$1" | awk '/STATE/ {print $4}'; }
state_is() { [ "$(sc_state "$1")" = "$2" ]; }
# Linux-side view of this prefix's Wine processes (other prefixes on the machine, e.g. a
# developer's, must not count); defunct ones have exited.
procs() {
    local pid
    for pid in $(pgrep -f "$1"); do
        grep -qa "defunct" "/proc/$pid/stat" 2>/dev/null && continue
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && continue
        tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qxF "WINEPREFIX=$WINEPREFIX" || continue
        echo "$pid $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
    done
}
none_left() { [ -z "$(procs 'gosvc[.]exe')" ]; }
some_running() { [ -n "$(procs 'gosvc[.]exe')" ]; }
two_running() { [ "$(procs 'gosvc[.]exe' | wc -l)" -ge 2 ]; }
has() { grep -q -- "$2" "$1" 2>/dev/null; }
# status_of TEND NAME EXPR: EXPR of `tend status NAME --json` (d is the document; a tuple is
# printed space-separated), asked again for up to E2E_WAIT seconds while the answer is no
# document: one empty answer from a Wine process under load (seen once in CI) must not fail
# or, worse, pass a comparison. When every answer failed, the last one's exit code and
# stderr go to stderr and it returns 1.
status_of() {
    local end=$((SECONDS + E2E_WAIT)) rc
    while :; do
        timeout 60 wine "$1" status "$2" --json > "$WORK/status.json" 2> "$WORK/status.err"; rc=$?
        python3 -c "import json,sys; d=json.load(open(sys.argv[2])); v=eval(sys.argv[1]); print(*(v if isinstance(v, tuple) else (v,)))" "$3" "$WORK/status.json" 2>> "$WORK/status.err" && return 0
        if [ $SECONDS -ge $end ]; then
            echo "tend status $2 --json gave no document (exit $rc, $(wc -c < "$WORK/status.json") bytes): $(tr -d '\r' < "$WORK/status.err" | tail -5)" >&2
            return 1
        fi
        sleep 0.25
    done
}
# same A B: A is B, both shown when not.
same() { [ "$1" = "$2" ] || { echo "got '$1', want '$2'"; return 1; }; }
# differs A B: both known, and A is not B.
differs() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ] || { echo "got '$1', want a value other than '$2'"; return 1; }; }
json_field() { status_of "$TEND" gosvc "$1"; }

write_config() { # write_config EXTRA_SERVICE_LINES
    cat > "$AD/gosvc.toml" <<TOML
name = "gosvc"
display_name = "Go service (tend e2e)"
description = "gosvc under tend, installed by the e2e test"
command = ["./gosvc.exe", "-port", "$PORT", "-spawn-child"]

[restart]
policy = "on-failure"
delay = "500ms"
limit = 5
limit_window = "1m"

[stop]
timeout = "10s"
windows = "ctrl-c"

[diagnostics]
dumps = true

[service]
$1
TOML
}
DUMPS_KEY='HKLM\SOFTWARE\Microsoft\Windows\Windows Error Reporting\LocalDumps\gosvc.exe'
start_keepalive

# ------------------------------------------------------------------ install + start
echo "== install and start"
write_config 'start = "auto"
account = "system"'
check "tend install (paths with spaces)" bash -c "timeout 60 wine '$TEND' install '$CFG' > '$WORK/install.out' 2>&1"
check "  ... a plain auto service asks for no delayed auto-start (no warning about it)" bash -c "! grep -q 'delayed auto-start' '$WORK/install.out'"
check "  ... a warning keeps its OS error" bash -c "! grep -q 'IO error in winapi call' '$WORK/install.out'"
check "config copied under ProgramData" test -f "$CONFIG_COPY"
check "[diagnostics] dumps: a WER LocalDumps key for gosvc.exe, marked as tend's" bash -c "[ \"\$(timeout 60 wine reg query '$DUMPS_KEY' /v TendService | tr -d '\r' | awk '/TendService/ {print \$3}')\" = gosvc ]"
check "  ... its DumpFolder is the service's state dir" bash -c "timeout 60 wine reg query '$DUMPS_KEY' /v DumpFolder | tr -d '\r' | grep -qi 'ProgramData.tend.state.gosvc.dumps'"
check "installed copy records base_dir" grep -q "base_dir = 'C:\\\\My Apps\\\\go svc'" "$CONFIG_COPY"
check "tend start" tend start gosvc
check "sc query: RUNNING" wait_until "$E2E_WAIT" state_is gosvc RUNNING
check "tend status: running with a pid" wait_until "$E2E_WAIT" bash -c "timeout 60 wine '$TEND' status gosvc | grep -q 'state *running (pid [0-9]'"
check "tend status exit code 0 (LSB running)" tend status gosvc
check "numbered lines in the log dir" wait_until "$E2E_WAIT" has "$LOGS/gosvc.out.log" 'gosvc line 3$'
check "supervisor log in the log dir" has "$LOGS/gosvc.tend.log" 'started pid'
check "/health answers" wait_until "$E2E_WAIT" curl -sf "http://127.0.0.1:$PORT/health"
check "program and its child run" wait_until "$E2E_WAIT" two_running

# ------------------------------------------------------------------ restart by policy
echo "== restart by policy"
curl -s -X POST "http://127.0.0.1:$PORT/exit?code=3" >/dev/null
check "tend restarts the failed program" wait_until "$E2E_WAIT" has "$LOGS/gosvc.tend.log" 'restarting in'
check "status shows the restart count" wait_until "$E2E_WAIT" bash -c "[ \"\$(timeout 60 wine '$TEND' status gosvc --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"supervisor\"][\"restarts_total\"])')\" = 1 ]"
check "status shows the last exit code" bash -c "timeout 60 wine '$TEND' status gosvc | grep -q 'last exit *exited with code 3'"
check "running again after the restart" wait_until "$E2E_WAIT" bash -c "timeout 60 wine '$TEND' status gosvc | grep -q 'state *running (pid'"
check "/health answers again" wait_until "$E2E_WAIT" curl -sf "http://127.0.0.1:$PORT/health"

# ------------------------------------------------------------------ console events (issue 11, item 5)
echo "== console events do not reach tend.exe"
tpid=$(json_field 'd["os"]["pid"]' 2>/dev/null)
ppid=$(json_field 'd["supervisor"]["pid"]' 2>/dev/null)
graceful_lines() { grep -c 'gosvc: got interrupt, shutting down' "$LOGS/gosvc.out.log" 2>/dev/null; }
reloads() { grep -c 'reloaded: no changes' "$LOGS/gosvc.tend.log" 2>/dev/null; }
g0=$(graceful_lines); r0=$(reloads)
# Ctrl+C on whatever console tend.exe has (the helper attaches to it, as anything on a
# shared console would); its failure to attach, when tend.exe has left its console, is fine.
w "$TEND" console-event "$tpid" ctrl-c >/dev/null 2>&1
# Proof the event was handled (or had nowhere to go): tend.exe answers a reload after it.
w "$TEND" reload gosvc >/dev/null 2>&1
check "tend.exe (pid $tpid) answers after a Ctrl+C on its console" wait_until "$E2E_WAIT" bash -c "[ \$(grep -c 'reloaded: no changes' '$LOGS/gosvc.tend.log') -gt $r0 ]"
check "  ... is still alive and the program still runs (same pid $ppid)" same "$(json_field 'd["os"]["pid"], d["supervisor"]["pid"], d["supervisor_alive"]' 2>&1)" "$tpid $ppid True"
check "  ... and the program got no graceful stop from it" bash -c "[ \"\$(grep -c 'gosvc: got interrupt' '$LOGS/gosvc.out.log')\" = '$g0' ]"

# ------------------------------------------------------------------ graceful stop
echo "== stop (after tend.exe was renamed, as an upgrade does)"
g0=$(graceful_lines)
mv "$TD/tend.exe" "$TD/tend renamed.exe"
check "tend stop, with tend.exe renamed while the service runs" w 'C:\Program Files\tend e2e\tend renamed.exe' stop gosvc
mv "$TD/tend renamed.exe" "$TD/tend.exe"
check "  ... graceful: the program got its Ctrl+C" bash -c "[ \"\$(grep -c 'gosvc: got interrupt' '$LOGS/gosvc.out.log')\" -gt '$g0' ]"
check "  ... and was not killed" bash -c "! grep -q 'killing\\|cannot signal' '$LOGS/gosvc.tend.log'"
check "sc query: STOPPED" wait_until "$E2E_WAIT" state_is gosvc STOPPED
check "the program printed its graceful-shutdown line (Ctrl+C -> os.Interrupt)" has "$LOGS/gosvc.out.log" 'gosvc: got interrupt, shutting down'
check "no process of the program's tree is left" wait_until "$E2E_WAIT" none_left
check "tend status exit code 3 (LSB stopped)" bash -c "timeout 60 wine '$TEND' status gosvc >/dev/null; [ \$? = 3 ]"

# ------------------------------------------------------------------ taskkill /F of tend.exe
echo "== taskkill /F tend.exe"
tend start gosvc >/dev/null
check "running before the kill" wait_until "$E2E_WAIT" two_running
tpid=$(json_field 'd["os"]["pid"]' 2>/dev/null)
check "taskkill /F of tend.exe (pid $tpid)" w taskkill /F /PID "$tpid"
check "the program's tree is gone too (Job Object)" wait_until "$E2E_WAIT" none_left
status_after_kill() { timeout 60 wine "$TEND" status gosvc > "$WORK/killed.status" 2>&1; echo $? > "$WORK/killed.rc"; tr -d '\r' < "$WORK/killed.status"; }
status_after_kill
check "status after taskkill: non-zero exit" bash -c "[ \"\$(cat '$WORK/killed.rc')\" != 0 ]"
check "  ... says the supervisor is not running" grep -q 'supervisor .*not running' "$WORK/killed.status"
check "  ... shows no pid or uptime for the dead run" bash -c "! grep -q '^state .*(pid' '$WORK/killed.status'"
check "  ... and what the SCM reports" grep -q '^os service' "$WORK/killed.status"

# ------------------------------------------------------------------ auto start at boot
echo "== auto start after the prefix reboots"
kill "$KEEPALIVE" 2>/dev/null; KEEPALIVE=
timeout 60 wineserver -k; timeout 60 wineserver -w
start_keepalive
check "start=auto service is running again after reboot" wait_until "$E2E_WAIT" state_is gosvc RUNNING
check "its program runs again" wait_until "$E2E_WAIT" some_running
check "and answers /health" wait_until "$E2E_WAIT" curl -sf "http://127.0.0.1:$PORT/health"

# ------------------------------------------------------------------ reload
echo "== reload (install again with a changed config)"
pid_before=$(json_field 'd["supervisor"]["pid"]' 2>/dev/null)
gen_before=$(json_field 'd["supervisor"]["config_generation"]' 2>/dev/null)
write_config 'start = "auto"
account = "system"' 
sed -i 's/^delay = "500ms"/delay = "700ms"/' "$AD/gosvc.toml"
check "re-install of a changed config reloads the running service" bash -c "timeout 60 wine '$TEND' install '$CFG' | tr -d '\r' | grep -q 'reload sent'"
check "the reload is applied (config generation +1)" wait_until "$E2E_WAIT" bash -c "[ \"\$(timeout 60 wine '$TEND' status gosvc --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"supervisor\"][\"config_generation\"])')\" = $((gen_before + 1)) ]"
check "  ... live, without restarting the program (same pid $pid_before)" same "$(json_field 'd["supervisor"]["pid"]' 2>&1)" "$pid_before"
r0=$(reloads)
check "tend reload <name> sends PARAMCHANGE" bash -c "timeout 60 wine '$TEND' reload gosvc | tr -d '\r' | grep -q 'reload sent'"
check "  ... and the service applies it" wait_until "$E2E_WAIT" bash -c "[ \$(grep -c 'reloaded: no changes' '$LOGS/gosvc.tend.log') -gt $r0 ]"

# ------------------------------------------------------------------ install again = update
echo "== re-install updates"
write_config 'start = "manual"
account = "system"'
check "re-install says what changed" bash -c "timeout 60 wine '$TEND' install '$CFG' | tr -d '\r' | grep -q 'start: Auto -> Demand'"

# ------------------------------------------------------------------ hardening, delayed auto-start
echo "== re-install with hardening = strict and start = delayed-auto"
write_config 'start = "delayed-auto"
account = "system"
hardening = "strict"'
timeout 60 wine "$TEND" install "$CFG" > "$WORK/strict.out" 2>&1; strict_rc=$?
tr -d '\r' < "$WORK/strict.out" > "$WORK/strict.txt"; sed 's/^/INFO: | /' "$WORK/strict.txt"
check "install with hardening = strict succeeds" test "$strict_rc" = 0
# Wine cannot read the SID type back nor apply it: then install must say the service runs
# less hardened than configured, and why.
check "  ... says what it changes (restricted service SID), or why it could not" bash -c "grep -q 'service SID: None -> Restricted' '$WORK/strict.txt' || grep -q 'restricted (hardening = \"strict\"): the service runs less hardened than configured: .*os error' '$WORK/strict.txt'"
check "  ... every warning keeps its OS error" bash -c "! grep -q 'IO error in winapi call' '$WORK/strict.txt' && ! grep '^warning' '$WORK/strict.txt' | grep -qv 'os error'"
if grep -q 'cannot set delayed auto-start' "$WORK/strict.txt"; then
    echo "INFO: this Wine cannot store delayed auto-start; status cannot show it"
else
    check "tend status shows delayed-auto (not auto)" bash -c "timeout 60 wine '$TEND' status gosvc | tr -d '\r' | grep -q '^os service .*start delayed-auto'"
fi

# ------------------------------------------------------------------ uninstall
echo "== uninstall"
check "tend uninstall (stops first)" tend uninstall gosvc
check "the service is gone" bash -c "! timeout 60 wine sc query gosvc >/dev/null 2>&1"
check "the config copy is gone" test ! -e "$CONFIG_COPY"
check "the WER LocalDumps key tend set is gone" bash -c "[ -z \"\$(timeout 60 wine reg query '$DUMPS_KEY' 2>/dev/null | tr -d '\r' | grep TendService)\" ]"
check "the logs remain" test -s "$LOGS/gosvc.out.log"
check "no process of the program's tree is left" wait_until "$E2E_WAIT" none_left
check "status of an uninstalled service exits 4" bash -c "timeout 60 wine '$TEND' status gosvc >/dev/null; [ \$? = 4 ]"

# ------------------------------------------------------------------ bad input changes nothing
echo "== bad input"
unchanged() { ! timeout 60 wine sc query "$1" >/dev/null 2>&1 && [ ! -e "$C/ProgramData/tend/services/$1.toml" ]; }
fails_with() { # fails_with CODE NEEDLE args...: tend exits CODE and says NEEDLE
    local code=$1 needle=$2; shift 2
    local out; out=$(timeout 60 wine "$TEND" "$@" 2>&1 | tr -d '\r'); local rc=${PIPESTATUS[0]}
    echo "$out"; [ "$rc" = "$code" ] && grep -q -- "$needle" <<<"$out"
}
cat > "$AD/bad.toml" <<'TOML'
name = "bad"
command = ["./gosvc.exe"]
[restart]
policy = "sometimes"
TOML
check "invalid config: exit 2 with the key path" fails_with 2 'restart.policy' install 'C:\My Apps\go svc\bad.toml'
check "  ... and nothing changed" unchanged bad
cat > "$AD/acct.toml" <<'TOML'
name = "acct"
command = ["./gosvc.exe"]
[service]
account = "NOSUCHDOMAIN\\nobody"
TOML
check "unknown account: exit 2, says so" fails_with 2 'does not exist' install 'C:\My Apps\go svc\acct.toml'
check "  ... and nothing changed" unchanged acct
cat > "$AD/missing.toml" <<'TOML'
name = "missing"
command = ["./no-such-program.exe"]
TOML
check "missing program: exit 2, names it" fails_with 2 'no-such-program.exe' install 'C:\My Apps\go svc\missing.toml'
check "  ... and nothing changed" unchanged missing
w sc create taken binpath= 'C:\windows\system32\notepad.exe' >/dev/null
cat > "$AD/taken.toml" <<'TOML'
name = "taken"
command = ["./gosvc.exe"]
TOML
check "name taken by another service: exit 2, says so" fails_with 2 'already exists and is not managed by tend' install 'C:\My Apps\go svc\taken.toml'
check "  ... and the other service is untouched" bash -c "timeout 60 wine sc qc taken 2>/dev/null | grep -qi notepad || timeout 60 wine sc query taken >/dev/null 2>&1"
check "  ... and no config copy was written" test ! -e "$C/ProgramData/tend/services/taken.toml"
# The service account NT SERVICE\reach cannot read a program only its owner may (Wine derives
# the DACL from the unix mode: 0700 grants the owner alone).
mkdir -p "$C/private app"; cp "$WORK/gosvc.exe" "$C/private app/gosvc.exe"; chmod 700 "$C/private app"; chmod 700 "$C/private app/gosvc.exe"
cat > "$AD/reach.toml" <<'TOML'
name = "reach"
command = ['C:\private app\gosvc.exe']
TOML
check "isolated account that cannot run the program: exit 2, names it and the fix" fails_with 2 'command\[0\].*icacls' install 'C:\My Apps\go svc\reach.toml'
check "  ... and nothing changed" unchanged reach
check "  ... --no-access-check installs anyway, with the problem as a warning" bash -c \
    'timeout 60 wine "$1" install --no-access-check "$2" 2>&1 | tr -d "\r" | grep -q "command\[0\].*installing anyway"' _ "$TEND" 'C:\My Apps\go svc\reach.toml'
timeout 60 wine "$TEND" uninstall reach >/dev/null 2>&1
cat > "$AD/deps.toml" <<'TOML'
name = "deps"
command = ["./gosvc.exe"]
[service]
account = "system"
depends_on = ["NoSuchService"]
TOML
check "depends_on naming a missing service: exit 2, names the key and the service" fails_with 2 'depends_on\[0\].*NoSuchService' install 'C:\My Apps\go svc\deps.toml'
check "  ... and nothing changed" unchanged deps
check "'tend service' from a console says so and exits non-zero" fails_with 2 'started by the Windows Service Control Manager' service gosvc

# ------------------------------------------------------------------ tend logs: bytes, not text
echo "== tend logs: a program printing GBK (not UTF-8)"
mkdir -p "$AD/gbk logs"
printf 'line 1\n\xd6\xd0\xce\xc4 gbk\nline 3\n' > "$AD/gbk logs/gbk.out.log"
cat > "$AD/gbk.toml" <<'TOML'
name = "gbk"
command = ["./gosvc.exe"]
[logs]
dir = "gbk logs"
TOML
GBKCFG='C:\My Apps\go svc\gbk.toml'
timeout 60 wine "$TEND" logs "$GBKCFG" -n 10 --out > "$WORK/gbk.piped" 2>"$WORK/gbk.err"; rc=$?
check "piped: exit 0 and the bytes exactly as logged" bash -c "[ $rc = 0 ] && cmp '$WORK/gbk.piped' '$AD/gbk logs/gbk.out.log'"
# A console (Wine turns a pseudo-terminal into one): every line, invalid bytes shown as U+FFFD.
console_logs() { timeout 60 script -qec "wine '$TEND' logs '$GBKCFG' -n 10 --out" /dev/null < /dev/null; }
console_logs > "$WORK/gbk.console" 2>&1; rc=$?
check "console: exit 0 and every line, past the GBK bytes" bash -c "[ $rc = 0 ] && grep -q 'line 3' '$WORK/gbk.console' && grep -q 'gbk' '$WORK/gbk.console'"
follow_console() {
    timeout 60 script -qfec "wine '$TEND' logs '$GBKCFG' -f -n 10 --out" /dev/null < /dev/null > "$WORK/gbk.follow" 2>&1 &
    local sp=$! ok=1
    wait_until 30 grep -q 'line 3' "$WORK/gbk.follow" || ok=0
    printf 'line 4\n' >> "$AD/gbk logs/gbk.out.log"
    [ $ok = 1 ] && wait_until 30 grep -q 'line 4' "$WORK/gbk.follow" || ok=0
    kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
    [ $ok = 1 ]
}
check "console: tend logs -f keeps following past the GBK bytes" follow_console
timeout 60 wine "$TEND" logs "$GBKCFG" -n 10 --out > /dev/full 2>"$WORK/full.err"; rc=$?
check "a real write error (disk full) is reported with a non-zero exit" bash -c "[ $rc != 0 ] && grep -q 'cannot write' '$WORK/full.err'"

# ------------------------------------------------------------------ tend logs -f across fast rotations
echo "== tend logs -f across fast rotations (max_size = 4KiB)"
N=20000
mkdir -p "$AD/gen logs"; printf 'ready\n' > "$AD/gen logs/gen.out.log"
cat > "$AD/gen.toml" <<TOML
name = "gen"
command = ['C:\\Program Files\\tend e2e\\tend-fixture.exe', "--generate", "$N"]
[restart]
policy = "never"
[logs]
dir = "gen logs"
max_size = "4KiB"
keep = 0
TOML
GENCFG='C:\My Apps\go svc\gen.toml'
timeout 300 wine "$TEND" logs "$GENCFG" -f -n 1 --out > "$WORK/gen.follow" 2>"$WORK/gen.follow.err" &
FOLLOWER=$!
# The follower shows the last line first: from then on it is following.
check "the follower is following" wait_until "$E2E_WAIT" grep -q '^ready' "$WORK/gen.follow"
check "tend run: the program prints $N numbered lines into 4KiB files" bash -c "timeout 300 wine '$TEND' run '$GENCFG' >/dev/null 2>&1"
check "  ... it rotated many times" bash -c "[ \$(ls '$AD/gen logs' | grep -c '^gen.out') -gt 100 ]"
# Each line is "<timestamp> <12-digit number> ... x" (tend stamps the lines it logs).
check "  ... the follower printed the last line" wait_until 120 grep -q " $(printf '%012d' $((N - 1))) " "$WORK/gen.follow"
kill "$FOLLOWER" 2>/dev/null
check "  ... and all $N lines, in order, none twice" python3 - "$WORK/gen.follow" "$N" <<'PY'
import sys
lines = open(sys.argv[1], 'rb').read().split(b'\n')
import re
nums = [int(m.group(1)) for m in (re.search(rb' (\d{12}) +x$', l) for l in lines) if m]
n = int(sys.argv[2])
if nums != list(range(n)):
    missing = sorted(set(range(n)) - set(nums))
    print(f"{len(nums)} lines; first missing {missing[:5]}; out of order at",
          next((i for i, (a, b) in enumerate(zip(nums, range(n))) if a != b), None))
    sys.exit(1)
PY

# ------------------------------------------------------------------ crash records
echo "== a crash with an NTSTATUS exit code is named"
cat > "$AD/av.toml" <<'TOML'
name = "av"
command = ['C:\Program Files\tend e2e\tend-fixture.exe', "--say-err", "about to crash", "--exit", "-1073741819"]
[restart]
policy = "never"
[logs]
dir = "av logs"
TOML
AVCFG='C:\My Apps\go svc\av.toml'
timeout 120 wine "$TEND" run "$AVCFG" >"$WORK/av.out" 2>"$WORK/av.err"
check "the exit line names 0xC0000005 STATUS_ACCESS_VIOLATION" bash -c "tr -d '\r' < '$WORK/av.err' | grep -q 'exited with code 0xC0000005 STATUS_ACCESS_VIOLATION.*; last stderr: about to crash'"
check "tend crashes shows the record with its last stderr line" bash -c "timeout 60 wine '$TEND' crashes '$AVCFG' 2>&1 | tr -d '\r' | grep -q 'STATUS_ACCESS_VIOLATION: about to crash'"
cat > "$AD/gopanic.toml" <<'TOML'
name = "gopanic"
command = ['C:\My Apps\go svc\gosvc.exe', "-panic-after", "200ms"]
[restart]
policy = "never"
[logs]
dir = "gopanic logs"
TOML
GPCFG='C:\My Apps\go svc\gopanic.toml'
timeout 120 wine "$TEND" run "$GPCFG" >"$WORK/gp.out" 2>"$WORK/gp.err"
check "a real Go panic: the exit line ends with the panic, not the goroutine dump" bash -c "tr -d '\r' < '$WORK/gp.err' | grep -q 'exited with code 2.*panic: runtime error: index out of range \[.*main.lookup'"
check "  tend crashes shows it" bash -c "timeout 60 wine '$TEND' crashes '$GPCFG' 2>&1 | tr -d '\r' | grep -q 'panic: runtime error: index out of range'"

# ------------------------------------------------------------------ tend apply (issue 14)
echo "== tend apply: a folder of three services"
mkdir -p "$AD/set"
SET='C:\My Apps\go svc\set'
set_svc() { # set_svc NAME PORT [extra toml lines...]
    local name=$1 port=$2; shift 2
    { echo "name = \"$name\""
      echo "command = ['C:\\My Apps\\go svc\\gosvc.exe', \"-port\", \"$port\"]"
      echo '[service]'
      echo 'account = "system"'
      for l in "$@"; do echo "$l"; done; } > "$AD/set/$name.toml"
}
app() { timeout 120 wine "$TEND" apply "$@" > "$WORK/apply.out" 2>&1; local rc=$?; tr -d '\r' < "$WORK/apply.out"; return $rc; }
exits() { local want=$1; shift; "$@"; [ $? = "$want" ]; }
svc_pids() { status_of "$TEND" "$1" 'd["os"]["pid"], d["supervisor"]["pid"]'; }
set_svc sa $((PORT + 20))
set_svc sb $((PORT + 21))
set_svc sc $((PORT + 22))
check "first apply installs and starts all three (exit 10)" exits 10 app "$SET" --wait
check "  ... sa serves" wait_until "$E2E_WAIT" curl -sf "http://127.0.0.1:$((PORT + 20))/health"
check "  ... sb serves" wait_until "$E2E_WAIT" curl -sf "http://127.0.0.1:$((PORT + 21))/health"
check "  ... sc serves" wait_until "$E2E_WAIT" curl -sf "http://127.0.0.1:$((PORT + 22))/health"
check "  ... tend list --json shows the three running" bash -c "[ \"\$(timeout 60 wine '$TEND' list --json | tr -d '\r' | grep -c '\"state\": \"running\"')\" -ge 3 ]"
pa=$(svc_pids sa); ma=$(stat -c %y "$C/ProgramData/tend/services/sa.toml")
check "second apply: nothing to do (exit 0)" exits 0 app "$SET"
check "  ... sa untouched (config copy mtime, tend and program pids)" same "$(stat -c %y "$C/ProgramData/tend/services/sa.toml") $(svc_pids sa 2>&1)" "$ma $pa"
set_svc sb $((PORT + 21)) '[restart]' 'delay = "2s"'
mb=$(stat -c %y "$C/ProgramData/tend/services/sb.toml")
check "--check after an edit: pending (exit 11)" exits 11 app "$SET" --check
check "  ... and nothing changed" bash -c "[ \"\$(stat -c %y '$C/ProgramData/tend/services/sb.toml')\" = '$mb' ]"
pc=$(svc_pids sc); mc=$(stat -c %y "$C/ProgramData/tend/services/sc.toml")
check "apply of the edit (exit 10)" exits 10 app "$SET"
check "  ... only sb changed: sa and sc untouched (copies, tend and program pids)" bash -c "[ \"\$(stat -c %y '$C/ProgramData/tend/services/sa.toml') \$(stat -c %y '$C/ProgramData/tend/services/sc.toml')\" = '$ma $mc' ]" 
check "  ... sa's and sc's tend and program are the ones from before" same "$(svc_pids sa 2>&1) $(svc_pids sc 2>&1)" "$pa $pc"
check "  ... the copy has it" grep -q 'delay = "2s"' "$C/ProgramData/tend/services/sb.toml"
check "  ... sb serves after the reload" wait_until "$E2E_WAIT" curl -sf "http://127.0.0.1:$((PORT + 21))/health"
cp "$AD/set/sb.toml" "$WORK/sb.good"
set_svc sb $((PORT + 21)) '[restart]' 'delay = "soon"'
check "a bad file changes nothing (exit 2) and names the key" bash -c "timeout 120 wine '$TEND' apply '$SET' 2>&1 | tr -d '\r' | grep -q 'restart.delay'; [ \${PIPESTATUS[0]} = 2 ]"
check "  ... the installed copy kept the good config" grep -q 'delay = "2s"' "$C/ProgramData/tend/services/sb.toml"
rm -f "$AD/set/sb.toml"
# A copy under tend's dir whose SCM service is not tend's (someone replaced it): never pruned.
w sc create foreign binPath= 'C:\windows\system32\cmd.exe /c exit 0' >/dev/null
sed 's/^name = .*/name = "foreign"/' "$AD/set/sa.toml" > "$C/ProgramData/tend/services/foreign.toml"
check "--prune after removing sb's file (exit 10)" exits 10 app "$SET" --prune
check "  ... sb is uninstalled" bash -c "! timeout 60 wine sc query sb >/dev/null 2>&1"
check "  ... sa still runs" state_is sa RUNNING
check "  ... sc still runs" state_is sc RUNNING
check "  ... a service tend did not install is never pruned (skipped, still there)" bash -c "grep -q 'foreign' '$WORK/apply.out' && timeout 60 wine sc query foreign >/dev/null 2>&1"
w sc delete foreign >/dev/null; rm -f "$C/ProgramData/tend/services/foreign.toml"
# The DSC v3 resource (docs/dsc.md) against the same SCM: JSON in, JSON out.
dsc() { # dsc OP JSON: tend dsc OP with JSON on stdin; its stdout
    printf '%s' "$2" > "$WORK/dsc.in"
    timeout 120 wine "$TEND" dsc "$1" < "$WORK/dsc.in" 2>"$WORK/dsc.err" | tr -d '\r'
}
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"; }
SA_JSON_PATH='C:\\My Apps\\go svc\\set\\sa.toml'
dsc_get_sa() { [ "$(dsc get '{"name":"sa"}' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["_exist"], d["running"])')" = 'True True' ]; }
dsc_test_sa() { [ "$(dsc test "{\"name\":\"sa\",\"path\":\"$SA_JSON_PATH\",\"running\":true}" | field _inDesiredState)" = True ]; }
dsc_remove_sa() { [ "$(dsc set '{"name":"sa","_exist":false}' | field _exist)" = False ] && ! timeout 60 wine sc query sa >/dev/null 2>&1; }
check "tend dsc get: sa exists and runs" dsc_get_sa
check "tend dsc test with sa's file: in the desired state" dsc_test_sa
check "tend dsc set _exist false: sa uninstalled" dsc_remove_sa
check "tend uninstall sc" tend uninstall sc

# ------------------------------------------------------------------ import --replace (issue 17)
echo "== tend import --from nssm SERVICE --install --replace"
# An NSSM service as NSSM registers it: ImagePath is nssm.exe (here a copy of tend.exe,
# whose `service <host>` runs gosvc from the config <host>.toml, as NSSM runs it from its
# Parameters), auto start, LocalSystem, and the Parameters key with Application,
# AppParameters, AppDirectory and AppEnvironmentExtra, which `tend import` reads.
SVCKEY='HKLM\SYSTEM\CurrentControlSet\Services'
mkdir -p "$C/nssm"; cp "$TEND_EXE" "$C/nssm/nssm.exe"
nssm_register() { # nssm_register SERVICE HOST PORT APPPARAMETERS
    cat > "$AD/$2.toml" <<TOML
name = "$2"
command = ["./gosvc.exe", "-port", "$3"]
env = { APP_MODE = "prod" }
[service]
start = "manual"
account = "system"
TOML
    timeout 60 wine "$TEND" install "C:\\My Apps\\go svc\\$2.toml" >/dev/null 2>&1 \
    && w sc create "$1" binpath= "C:\\nssm\\nssm.exe service $2" start= auto DisplayName= "$1 (NSSM)" >/dev/null \
    && w reg add "$SVCKEY\\$1\\Parameters" /v Application /t REG_EXPAND_SZ /d 'C:\My Apps\go svc\gosvc.exe' /f >/dev/null \
    && w reg add "$SVCKEY\\$1\\Parameters" /v AppParameters /t REG_EXPAND_SZ /d "$4" /f >/dev/null \
    && w reg add "$SVCKEY\\$1\\Parameters" /v AppDirectory /t REG_EXPAND_SZ /d 'C:\My Apps\go svc' /f >/dev/null \
    && w reg add "$SVCKEY\\$1\\Parameters" /v AppEnvironmentExtra /t REG_MULTI_SZ /d 'APP_MODE=prod' /f >/dev/null
}
image_path() { w reg query "$SVCKEY\\$1" /v ImagePath | awk '/ImagePath/ {sub(/.*REG_(EXPAND_)?SZ +/, ""); print}'; }
params() { w reg query "$SVCKEY\\$1\\Parameters"; }
health() { curl -sf "http://127.0.0.1:$1/health"; }
imp() { timeout 180 wine "$TEND" import "$@" > "$WORK/import.out" 2>&1; local rc=$?; tr -d '\r' < "$WORK/import.out"; return $rc; }
gosvc_with() { procs 'gosvc[.]exe' | grep -q -- "gosvc.exe -port $1 *$"; }
NPORT=18581 NPORT2=18582
check "an NSSM-style service legacysvc is registered" nssm_register legacysvc nssmhost $NPORT "-port $NPORT"
check "  ... and runs (sc start)" w sc start legacysvc
check "  ... RUNNING" wait_until "$E2E_WAIT" state_is legacysvc RUNNING
check "  ... it serves" wait_until "$E2E_WAIT" health $NPORT
params legacysvc > "$WORK/legacy.params"
check "  ... its Parameters are NSSM's" grep -q "AppParameters.*-port $NPORT" "$WORK/legacy.params"
check "import --install --replace --check changes nothing" bash -c "timeout 120 wine '$TEND' import --from nssm legacysvc --install --replace --check | tr -d '\r' | grep -q 'nothing was changed' && [ \"\$(timeout 60 wine reg query '$SVCKEY\\legacysvc' /v ImagePath | tr -d '\r' | grep -c nssm.exe)\" = 1 ]"
check "import --from nssm legacysvc --install --replace --verify 3s (exit 0)" imp --from nssm legacysvc --install --replace --verify 3s
check "  ... says it replaced it" grep -q 'replaced `legacysvc`' "$WORK/import.out"
check "  ... ImagePath is tend's now" bash -c "image_path() { timeout 60 wine reg query '$SVCKEY\\legacysvc' /v ImagePath | tr -d '\r'; }; image_path | grep -q 'tend e2e.tend.exe. service legacysvc'"
check "  ... the Parameters key stays as NSSM wrote it" bash -c "[ \"\$(timeout 60 wine reg query '$SVCKEY\\legacysvc\\Parameters' | tr -d '\r')\" = \"\$(cat '$WORK/legacy.params')\" ]"
check "  ... RUNNING" wait_until "$E2E_WAIT" state_is legacysvc RUNNING
check "  ... tend runs the program (status: running)" wait_until "$E2E_WAIT" bash -c "timeout 60 wine '$TEND' status legacysvc | tr -d '\r' | grep -q 'state *running (pid [0-9]'"
check "  ... with NSSM's arguments, and it serves" wait_until "$E2E_WAIT" bash -c "curl -sf http://127.0.0.1:$NPORT/health"
check "  ... its argv is NSSM's Application + AppParameters" gosvc_with "$NPORT"
# (Wine does not show a process's Windows environment in /proc: the config says it.)
check "  ... its environment has AppEnvironmentExtra" grep -q 'APP_MODE = "prod"' "$C/ProgramData/tend/services/legacysvc.toml"
check "  ... the record of the old service is kept" grep -q 'nssm.exe service nssmhost' "$C/ProgramData/tend/state/.replace/legacysvc/foreign.json"

# The put-back: the Parameters say -exit-after (the program exits at once under tend's
# service), while the "NSSM" host runs it fine.
check "an NSSM-style service pickysvc is registered" nssm_register pickysvc pickyhost $NPORT2 "-port $NPORT2 -exit-after 300ms -exit-code 3"
check "  ... and runs" w sc start pickysvc
check "  ... it serves" wait_until "$E2E_WAIT" health $NPORT2
picky_image=$(image_path pickysvc)
params pickysvc > "$WORK/picky.params"
check "  ... its ImagePath is nssm.exe's" bash -c "[ '$picky_image' = 'C:\\nssm\\nssm.exe service pickyhost' ]"
check "  ... its Parameters are NSSM's" grep -q 'AppParameters.*-exit-after 300ms' "$WORK/picky.params"
check "  ... it has a description (sc description)" w sc description pickysvc "Picky API (NSSM)"
check "import --replace of pickysvc exits 6 (put back)" exits 6 imp --from nssm pickysvc --install --replace --verify 3s
check "  ... says why" grep -q 'exited with code 3' "$WORK/import.out"
check "  ... and that it put pickysvc back" grep -q 'PUT BACK `pickysvc`' "$WORK/import.out"
check "  ... ImagePath is NSSM's again" bash -c "[ \"\$(timeout 60 wine reg query '$SVCKEY\\pickysvc' /v ImagePath | tr -d '\r' | awk '/ImagePath/ {sub(/.*REG_(EXPAND_)?SZ +/, \"\"); print}')\" = '$picky_image' ]"
check "  ... the Parameters key is unchanged" bash -c "[ \"\$(timeout 60 wine reg query '$SVCKEY\\pickysvc\\Parameters' | tr -d '\r')\" = \"\$(cat '$WORK/picky.params')\" ]"
check "  ... the record has its description (QueryServiceConfig2)" grep -q '"description": *"Picky API (NSSM)"' "$C/ProgramData/tend/state/.replace/pickysvc/foreign.json"
# (tend's install wrote the description it imported, the same text: this checks that the
# put-back writes the recorded one, not that it replaced another.)
check "  ... and its description is as it was" bash -c "timeout 60 wine reg query '$SVCKEY\\pickysvc' /v Description | tr -d '\r' | grep -q 'Picky API (NSSM)'"
check "  ... pickysvc is RUNNING again" wait_until "$E2E_WAIT" state_is pickysvc RUNNING
check "  ... and serves" wait_until "$E2E_WAIT" health $NPORT2
check "  ... tend's config copy of pickysvc is gone" test ! -e "$C/ProgramData/tend/services/pickysvc.toml"
check "tend uninstall legacysvc (now tend's)" tend uninstall legacysvc
check "  ... pickysvc (NSSM's) stops" bash -c "timeout 60 wine sc stop pickysvc >/dev/null 2>&1; true"
check "  ... STOPPED" wait_until "$E2E_WAIT" state_is pickysvc STOPPED
check "  ... and is deleted, with the hosts" bash -c "timeout 60 wine sc delete pickysvc >/dev/null && timeout 60 wine '$TEND' uninstall nssmhost >/dev/null && timeout 60 wine '$TEND' uninstall pickyhost >/dev/null"
check "  ... no program is left running" wait_until "$E2E_WAIT" none_left
# ------------------------------------------------------------------ tend upgrade (issue 13)
. "$HERE/e2e-upgrade.sh"
# ------------------------------------------------------------------ tend upgrade --self (issue 13)
. "$HERE/e2e-self.sh"

# ------------------------------------------------------------------ per-user install (logon Run entry)
echo "== install --user"
RUNKEY='HKCU\Software\Microsoft\Windows\CurrentVersion\Run'
ULOCAL="$C/users/$(id -un)/AppData/Local/tend"
run_value() { w reg query "$RUNKEY" /v tend-gosvc; }
run_value_is_tend() { run_value | grep -qF "tend-gosvc    REG_SZ    \"$TEND\" service --user gosvc"; }
no_run_value() { ! run_value; }
user_running() { timeout 60 wine "$TEND" status --user gosvc | tr -d '\r' | grep -q 'os service *running'; }
# `tend start --user` leaves a tend running; under Wine it inherits the caller's unix
# stdout/stderr, so its output goes to a file rather than through a pipe that would stay open.
tend_to_file() { timeout 120 wine "$TEND" "$@" > "$WORK/user.out" 2>&1; local rc=$?; tr -d '\r' < "$WORK/user.out"; return $rc; }
write_config 'start = "auto"'
check "tend install --user (no Administrator needed)" tend install --user "$CFG"
check "Run value: quoted tend.exe, then service --user <name>" run_value_is_tend
check "config copy under %LOCALAPPDATA%" test -f "$ULOCAL/services/gosvc.toml"
check "tend start --user" tend_to_file start --user gosvc
check "  ... /health answers" wait_until "$E2E_WAIT" curl -sf "http://127.0.0.1:$PORT/health"
check "  ... logs under %LOCALAPPDATA%" wait_until "$E2E_WAIT" has "$ULOCAL/logs/gosvc/gosvc.out.log" 'gosvc line 3$'
check "tend status --user: running" user_running
check "tend stop --user (graceful)" tend_to_file stop --user gosvc
check "  ... the program got Ctrl+C" has "$ULOCAL/logs/gosvc/gosvc.out.log" 'gosvc: got interrupt, shutting down'
check "  ... no process of the program's tree is left" wait_until "$E2E_WAIT" none_left
check "tend uninstall --user" tend uninstall --user gosvc
check "  ... the Run value is gone" no_run_value
check "  ... the config copy is gone" test ! -e "$ULOCAL/services/gosvc.toml"
check "  ... the logs remain" test -s "$ULOCAL/logs/gosvc/gosvc.out.log"

echo "INFO: e2e took $((SECONDS - T0))s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
