# tend upgrade / history / rollback under Wine's SCM (issue 13), sourced by e2e.sh after its
# setup (its helpers: check, wait_until, w, tend, procs, has, WORK, C, TEND, PORT). The Go
# server's builds differ by link-time variables: a good one is upgraded to; one that exits at
# start, one that never becomes healthy and one whose verify_command fails are each rolled
# back (exit 6, the reason shown, the old build serving); rollback by hand; --check changes
# nothing; tend.exe killed (taskkill /F) while paused before a step leaves, after the next
# tend command, exactly one complete release in place. And the file Windows will not
# overwrite: a second copy of the program running outside tend (the upgrade goes through),
# and a process holding the file open without sharing its deletion (refused, nothing changed).
# The news: a webhook (a receiver on the Linux side) gets `upgraded` and `rolled_back`, the
# service's .tend.log has the step lines, /metrics counts the upgrades by result.
echo "== tend upgrade: builds of a Go server"
# Ports clear of the rest of e2e.sh (PORT..+3, the import section's 18581 and 18582,
# +20..+22) and of tests/systemd (18601 on), which may run at the same time: sdbox shares
# the network. UPORT + 1 is the second copy's.
UPORT=$((PORT + 12)) UHOOK=$((PORT + 14)) UMETRICS=$((PORT + 15))
UD="$C/My Apps/up svc"; UPCFG='C:\My Apps\up svc\up.toml'
UPEXE='C:\My Apps\up svc\upsvc.exe'
USTORE="$C/ProgramData/tend/state/.releases/upsvc"
UB="$WORK/builds"; UBW='Z:'$(echo "$UB" | tr / '\\')
mkdir -p "$UD" "$UB"
gobw() { # gobw NAME LDFLAGS: a Windows build of the Go server
    ( cd "$HERE/gosvc" && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" \
        GOFLAGS=-mod=mod timeout 300 go build -ldflags "$2" -o "$UB/$1.exe" . )
}
for b in "v1 -X main.build=v1" "v2 -X main.build=v2" "v3-crash -X main.build=v3 -X main.mode=crash" \
         "v4-unhealthy -X main.build=v4 -X main.mode=unhealthy" "v5 -X main.build=v5"; do
    gobw "${b%% *}" "${b#* }" || bad "go build ${b%% *}"
done
cp "$UB/v1.exe" "$UD/upsvc.exe"
# The smoke test is a copy of its own: the program file is what the upgrades replace.
cp "$UB/v1.exe" "$UD/probe.exe"
printf 'not a program\n' > "$UB/notes.exe"
cat > "$WORK/hook.py" <<EOF
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open("$WORK/hook.jsonl", "a") as f:
            f.write(json.dumps(json.loads(body)) + "\\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", $UHOOK), H).serve_forever()
EOF
timeout 1200 python3 "$WORK/hook.py" > "$WORK/hook.err" 2>&1 &
HOOKPID=$!
cat > "$UD/up.toml" <<TOML
name = "upsvc"
command = ['$UPEXE', "-port", "$UPORT"]
[service]
account = "system"
[stop]
timeout = "10s"
windows = "ctrl-c"
[restart]
delay = "0s"
[health]
http = "http://127.0.0.1:$UPORT/health"
interval = "300ms"
start_period = "0s"
failures = 2
on_unhealthy = "log"
[upgrade]
verify = "3s"
verify_command = ['C:\\My Apps\\up svc\\probe.exe', "-check", "http://127.0.0.1:$UPORT/version", "-refuse", "v5"]
keep = 4
[notify]
webhook = "http://127.0.0.1:$UHOOK/hook"
events = ["upgraded", "rolled_back"]
[metrics]
listen = "127.0.0.1:$UMETRICS"
TOML

up() { # up ARGS...: tend with its output in $WORK/up.out (shown), its exit code returned
    timeout 180 wine "$TEND" "$@" > "$WORK/up.out" 2>&1; local rc=$?
    tr -d '\r' < "$WORK/up.out" > "$WORK/up.txt"; cat "$WORK/up.txt"; return $rc
}
up_exits() { local want=$1; shift; up "$@"; [ $? = "$want" ]; }
said() { grep -q -- "$1" "$WORK/up.txt"; }
version() { curl -fsS --max-time 2 "http://127.0.0.1:$UPORT/version"; }
serves() { [ "$(version 2>/dev/null)" = "$1" ]; }
usha() { sha256sum "$UD/upsvc.exe" | cut -d' ' -f1; }
history_json() { timeout 120 wine "$TEND" history upsvc --json 2>/dev/null | tr -d '\r'; }
# One release is current and it is the file in place; no journal, nothing half-staged or
# half-copied next to the program.
one_release() {
    local cur
    cur=$(history_json | python3 -c 'import json,sys; print(" ".join(r["sha256"] for r in json.load(sys.stdin)["releases"] if r["state"] == "current"))')
    [ "$cur" = "$(usha)" ] && [ ! -e "$USTORE/journal.json" ] \
        && [ -z "$(find "$USTORE" "$UD" -name '.*tmp' -o -name '.*tend-new*')" ]
}
# hooked EVENT FIELD VALUE: the webhook got an EVENT alert whose FIELD is VALUE (or, for a
# list, has a line that contains it).
hooked() {
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    a = json.loads(l); v = a.get(sys.argv[3])
    if a["event"] == sys.argv[2] and (v == sys.argv[4] or (isinstance(v, list) and any(sys.argv[4] in x for x in v))): sys.exit(0)
sys.exit(1)' "$WORK/hook.jsonl" "$@"
}
current_id() { history_json | python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin)["releases"] if r["state"] == "current"][-1])'; }
ulog_has() { local n; for n in "$@"; do grep -qF -- "$n" "$C/ProgramData/tend/logs/upsvc/upsvc.tend.log" || return 1; done; }
upgrades() { curl -fsS --max-time 2 "http://127.0.0.1:$UMETRICS/metrics" | sed -n "s/^tend_upgrades_total{service=\"upsvc\",result=\"$1\"} //p"; }
counts_are() { [ "$(upgrades upgraded) $(upgrades rolled_back) $(upgrades broken)" = "$1" ]; }
up_pid() { status_of "$TEND" upsvc 'd["supervisor"]["pid"]'; }

check "install exits 0" tend install "$UPCFG"
check "start exits 0" tend start upsvc
check "v1 serves" wait_until "$E2E_WAIT" serves v1

before=$(usha)
check "--check exits 0" up upgrade upsvc "$UBW\\v2.exe" --check
check "  says what it would do, and that nothing was changed" bash -c "grep -q 'would replace' '$WORK/up.txt' && grep -q 'nothing was changed' '$WORK/up.txt'"
check "  the program file is unchanged" test "$(usha)" = "$before"
check "  no release store was made" test ! -e "$USTORE"
check "a file that is not a program is refused (exit 2), saying why" \
    bash -c "timeout 60 wine '$TEND' upgrade upsvc '$UBW\\notes.exe' 2>&1 | tr -d '\r' | grep -q 'not a program this OS can run'; [ \${PIPESTATUS[0]} = 2 ]"
check "a missing file is refused (exit 2), saying so" \
    bash -c "timeout 60 wine '$TEND' upgrade upsvc '$UBW\\nope.exe' 2>&1 | tr -d '\r' | grep -q 'does not exist'; [ \${PIPESTATUS[0]} = 2 ]"
check "  v1 still serves, untouched" serves v1

check "upgrade to a good build exits 0" up_exits 0 upgrade upsvc "$UBW\\v2.exe"
check "  prints the steps, the verification and the downtime" bash -c "grep -q '^  swap' '$WORK/up.txt' && grep -q 'verify_command passed' '$WORK/up.txt' && grep -q 'downtime [0-9.]*s' '$WORK/up.txt'"
check "  v2 serves" serves v2
check "history lists both: the first previous, the new one current" bash -c "timeout 60 wine '$TEND' history upsvc | tr -d '\r' > '$WORK/hist.txt' && grep -q ' previous ' '$WORK/hist.txt' && grep -q ' current ' '$WORK/hist.txt'"
check "  exactly one current release, the file in place" one_release
check "  the webhook got \`upgraded\` to the new release" wait_until "$E2E_WAIT" hooked upgraded to_release "$(current_id)"
check "  the service's .tend.log has the steps and the end" ulog_has "swap        \`$UPEXE\` is release" "upgraded \`upsvc\`: release"

check "a build that exits at start is rolled back (exit 6)" up_exits 6 upgrade upsvc "$UBW\\v3-crash.exe"
check "  with its exit code and last stderr line, saying it rolled back" bash -c "grep -q 'exited with code 3' '$WORK/up.txt' && grep -q 'panic: cannot open database' '$WORK/up.txt' && grep -q '^ROLLED BACK' '$WORK/up.txt'"
check "  v2 serves again" wait_until "$E2E_WAIT" serves v2
check "  one current release" one_release
check "  the webhook got \`rolled_back\` with the last stderr line" wait_until "$E2E_WAIT" hooked rolled_back last_stderr "gosvc v3: panic: cannot open database"
check "  the .tend.log has the failed verification and the roll-back" ulog_has "FAILED: the program exited with code 3" "ROLLED BACK \`upsvc\`"
check "  /metrics counts one upgraded, one rolled back" wait_until "$E2E_WAIT" counts_are "1 1 0"

check "a build that never becomes healthy is rolled back (exit 6)" up_exits 6 upgrade upsvc "$UBW\\v4-unhealthy.exe"
check "  saying why" said "did not become healthy"
check "  v2 serves again" wait_until "$E2E_WAIT" serves v2

check "a build whose verify_command fails is rolled back (exit 6)" up_exits 6 upgrade upsvc "$UBW\\v5.exe" --json
check "  the JSON says rolled-back" said '"end": "rolled-back"'
check "  with the command's stderr" said "smoke test: /orders answered 500"
check "  v2 serves again" wait_until "$E2E_WAIT" serves v2

check "history shows the failures and why" bash -c "timeout 60 wine '$TEND' history upsvc | tr -d '\r' > '$WORK/hist.txt' && grep -q ' failed ' '$WORK/hist.txt' && grep -q 'did not become healthy' '$WORK/hist.txt'"

# Wine stores no Event Log record, but with WINEDEBUG=+eventlog it prints what it was given.
check "rollback by hand exits 0" env WINEDEBUG=+eventlog bash -c "$(declare -f up up_exits); TEND='$TEND' WORK='$WORK' up_exits 0 rollback upsvc"
check "  each step and the end went to the Event Log too" bash -c "grep -q 'eventlog.*swap  *.C:.*upsvc.exe. is release' '$WORK/up.txt' && grep -q 'eventlog.*rolled back .upsvc.: release' '$WORK/up.txt'"
check "  v1 serves" serves v1
check "  one current release" one_release
v2id=$(history_json | python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin)["releases"] if r["state"] == "previous"][-1])')
check "rollback --to the v2 release" up_exits 0 rollback upsvc --to "$v2id"
check "  v2 serves" serves v2

# bg STEP BUILD: an upgrade paused (test hook) before STEP, in the background.
bg() {
    rm -f "$WORK/bg.out"
    TEND_UPGRADE_PAUSE=$1 WINEDEBUG=-all timeout 300 wine "$TEND" upgrade upsvc "$2" > "$WORK/bg.out" 2>&1 < /dev/null &
    BG=$!
    wait_until "$E2E_WAIT" grep -q "paused before step \`$1\`" "$WORK/bg.out"
}
# killbg: taskkill /F of the paused tend.exe (the Windows pid its pause line names).
killbg() {
    local p; p=$(tr -d '\r' < "$WORK/bg.out" | sed -n 's/.*tend pid \([0-9]*\)).*/\1/p')
    [ -n "$p" ] && w taskkill /F /PID "$p" >/dev/null; wait "$BG" 2>/dev/null
    ! kill -0 "$BG" 2>/dev/null
}
for step in swap verify; do
    check "an upgrade paused before $step" bg "$step" "$UBW\\v5.exe"
    if [ "$step" = verify ]; then
        check "  a second upgrade meets the lock (exit 2), saying so" bash -c "timeout 60 wine '$TEND' upgrade upsvc '$UBW\\v1.exe' 2>&1 | tr -d '\r' | grep -q 'is under way'; [ \${PIPESTATUS[0]} = 2 ]"
    fi
    check "  taskkill /F of tend.exe" killbg
    check "  killed before $step: tend status says the upgrade was interrupted" bash -c "timeout 60 wine '$TEND' status upsvc 2>&1 | tr -d '\r' | grep -q \"was interrupted before step \\\`$step\\\`\""
    check "  tend history recovers, saying what it found" bash -c "timeout 180 wine '$TEND' history upsvc 2>&1 | tr -d '\r' | grep -q 'found an interrupted upgrade'"
    check "  v2 serves again" wait_until "$E2E_WAIT" serves v2
    check "  exactly one complete release, the one before" one_release
done
# The service's own start ends an interrupted change (the SCM host does, as LocalSystem,
# before it supervises): no tend command in between.
check "an upgrade paused before start (v5 swapped in, the service stopped)" bg start "$UBW\\v5.exe"
check "  taskkill /F of tend.exe" killbg
check "  the service's own start (sc start, no tend command)" bash -c "timeout 60 wine sc start upsvc >/dev/null"
check "  v2 serves again: the host put it back before starting" wait_until "$E2E_WAIT" serves v2
check "  exactly one complete release, the one before, and no journal" one_release
check "a failing upgrade paused before undo-swap" bg undo-swap "$UBW\\v3-crash.exe"
check "  taskkill /F of tend.exe" killbg
check "  the next upgrade finishes the undo, then upgrades" up_exits 0 upgrade upsvc "$UBW\\v1.exe"
check "  saying what it found" said "found an interrupted upgrade"
check "  v1 serves" serves v1
check "  exactly one complete release" one_release

echo "== tend upgrade: a program file Windows will not overwrite"
# A second copy of the program, outside tend, keeps the file mapped while the service is
# stopped for the swap.
timeout 600 wine "$UPEXE" -port $((UPORT + 1)) > "$WORK/copy.out" 2>&1 < /dev/null &
COPY=$!
check "a second copy of v1 runs outside tend" wait_until "$E2E_WAIT" curl -fsS --max-time 2 "http://127.0.0.1:$((UPORT + 1))/version"
cp "$UB/v2.exe" "$UD/overwrite-test.exe"
timeout 60 wine cmd /c copy /y 'C:\My Apps\up svc\overwrite-test.exe' "$UPEXE" > "$WORK/ow.out" 2>&1
rm -f "$UD/overwrite-test.exe"
if [ "$(usha)" = "$(sha256sum "$UB/v1.exe" | cut -d' ' -f1)" ]; then
    echo "INFO: Wine refuses to overwrite the mapped program: $(tr -d '\r' < "$WORK/ow.out" | head -1)"
else
    bad "Wine overwrote a running program: this test proves nothing here"
    cp "$UB/v1.exe" "$UD/upsvc.exe"
fi
check "the upgrade goes through (exit 0)" up_exits 0 upgrade upsvc "$UBW\\v2.exe"
check "  v2 serves" serves v2
check "  the copy outside tend still runs the old build" bash -c "[ \"\$(curl -fsS --max-time 2 http://127.0.0.1:$((UPORT + 1))/version)\" = v1 ]"
check "  exactly one complete release" one_release
check "  nothing but the program and the test's files next to it" bash -c "[ \"\$(ls -A '$UD' | sort | tr '\n' ' ')\" = 'probe.exe up.toml upsvc.exe ' ]"
winpid() { tr -d '\r' < "$1" | sed -n 's/.*pid \([0-9]*\).*/\1/p' | head -1; }
w taskkill /F /PID "$(winpid "$WORK/copy.out")" >/dev/null; wait "$COPY" 2>/dev/null
check "  (the service's own program still runs after the copy was ended)" wait_until "$E2E_WAIT" serves v2

# A process that holds the file open without FILE_SHARE_DELETE: not even a rename is allowed.
timeout 600 wine 'C:\My Apps\up svc\probe.exe' -hold "$UPEXE" > "$WORK/hold.out" 2>&1 < /dev/null &
HOLD=$!
check "a process holds the program open (no FILE_SHARE_DELETE)" wait_until "$E2E_WAIT" grep -q holding "$WORK/hold.out"
pid_before=$(up_pid)
check "the upgrade is refused (exit 2), naming the file, nothing changed" up_exits 2 upgrade upsvc "$UBW\\v1.exe"
check "  it names the file and says nothing was changed" bash -c "grep -qi 'upsvc.exe' '$WORK/up.txt' && grep -q 'nothing was changed' '$WORK/up.txt'"
echo "INFO: $(grep 'not upgrading' "$WORK/up.txt")"
check "  v2 still serves, the same run (pid $pid_before)" same "$(version 2>&1) $(up_pid 2>&1)" "v2 $pid_before"
w taskkill /F /PID "$(winpid "$WORK/hold.out")" >/dev/null; wait "$HOLD" 2>/dev/null
check "once it lets go, the upgrade goes through" up_exits 0 upgrade upsvc "$UBW\\v1.exe"
check "  v1 serves" serves v1
check "  exactly one complete release" one_release

check "uninstall upsvc" tend uninstall upsvc
kill "$HOOKPID" 2>/dev/null; wait "$HOOKPID" 2>/dev/null
