# tend upgrade --self under Wine's SCM (issue 13, "tend itself"), sourced by e2e.sh after its
# setup (its helpers: check, wait_until, w, has, WORK, C, PORT, E2E_WAIT, TEND_EXE, and up,
# said from e2e-upgrade.sh). A tend.exe of this section's own (under a path with a space)
# installs two running services (the Go server, [health]) and a stopped one. A new tend.exe
# (the same build with bytes appended: another file) is swapped in while both hosts run it
# mapped, and each host is restarted on it and verified: both serve, each host a new
# process, the stopped one left alone. A bad tend (a Go program that answers --version and
# exits 3 at start) fails the first service and is rolled back (exit 6): the binary is the
# good one again, the first service restarted on it, the second never touched.
# `rollback --self` goes back by hand; tend.exe killed (taskkill /F) before the first
# restart is undone by the next `history --self`.
echo "== tend upgrade --self"
SPORT=$((PORT + 24))
SD="$C/Program Files/tend self"; STEND='C:\Program Files\tend self\tend.exe'
SSTORE="$C/ProgramData/tend/state/.releases/.tend"
SB="$WORK/self"; SBW='Z:'$(echo "$SB" | tr / '\\')
# The services' program and configs where a service's account reaches them (not Z:).
SA="$C/My Apps/self svc"; SAW='C:\My Apps\self svc'
mkdir -p "$SA"
mkdir -p "$SD" "$SB"
cp "$TEND_EXE" "$SD/tend.exe"
cp "$TEND_EXE" "$SB/new-tend.exe"
printf 'another build of tend\n' >> "$SB/new-tend.exe"
( cd "$HERE/gosvc" && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" \
    GOFLAGS=-mod=mod timeout 300 go build -ldflags "-X main.mode=badtend" -o "$SB/bad-tend.exe" . ) || bad "go build bad-tend"
cp "$WORK/gosvc.exe" "$SA/gosvc.exe"
for i in 1 2 3; do
    cat > "$SA/self$i.toml" <<TOML
name = "self$i"
command = ['${SAW}\\gosvc.exe', "-port", "$((SPORT + i - 1))"]
[service]
account = "system"
[stop]
timeout = "10s"
windows = "ctrl-c"
[health]
http = "http://127.0.0.1:$((SPORT + i - 1))/health"
interval = "300ms"
start_period = "0s"
[upgrade]
verify = "2s"
TOML
done
stend() { w "$STEND" "$@"; }
sup() { # sup ARGS...: the section's tend, output in $WORK/up.txt (shown), exit code returned
    timeout 300 wine "$STEND" "$@" > "$WORK/up.out" 2>&1; local rc=$?
    tr -d '\r' < "$WORK/up.out" > "$WORK/up.txt"; cat "$WORK/up.txt"; return $rc
}
sup_exits() { local want=$1; shift; sup "$@"; [ $? = "$want" ]; }
ssha() { sha256sum "$SD/tend.exe" | cut -d' ' -f1; }
shealth() { curl -fsS --max-time 2 "http://127.0.0.1:$1/health"; }
# host_pid NAME: the supervisor's (tend.exe's) Windows pid, from its status.
host_pid() { status_of "$STEND" "$1" 'd["supervisor"]["pid"]'; }
orig=$(ssha) newsha=$(sha256sum "$SB/new-tend.exe" | cut -d' ' -f1)

for i in 1 2 3; do check "install self$i with the section's tend.exe" stend install "$SAW\\self$i.toml"; done
check "start self1" stend start self1
check "start self2" stend start self2
check "  self1 serves" wait_until "$E2E_WAIT" shealth "$SPORT"
check "  self2 serves" wait_until "$E2E_WAIT" shealth $((SPORT + 1))
p1=$(host_pid self1) p2=$(host_pid self2)

check "a program that is not tend is refused (exit 2)" sup_exits 2 upgrade --self "$SAW\\gosvc.exe"
check "  saying why, the binary unchanged" bash -c "grep -q 'not .tend <version>.' '$WORK/up.txt' && [ \"\$(sha256sum '$SD/tend.exe' | cut -d' ' -f1)\" = '$orig' ]"
check "--check exits 0" sup_exits 0 upgrade --self "$SBW\\new-tend.exe" --check
check "  names the services, the one left alone, and that nothing was changed" \
    bash -c "grep -q 'self1, self2' '$WORK/up.txt' && grep -q 'left alone: .self3.' '$WORK/up.txt' && grep -q 'nothing was changed' '$WORK/up.txt'"
check "  the binary is unchanged" test "$(ssha)" = "$orig"

check "upgrade --self to a good tend exits 0 (the binary in use by two hosts)" sup_exits 0 upgrade --self "$SBW\\new-tend.exe"
check "  both services were restarted and verified healthy" \
    bash -c "grep -q 'restart .*self1.: restarted, passed: .*healthy' '$WORK/up.txt' && grep -q 'restart .*self2.: restarted, passed: .*healthy' '$WORK/up.txt'"
check "  the binary in place is the new tend" test "$(ssha)" = "$newsha"
check "  the old hosts stopped their programs gracefully (Ctrl+C), their tend.exe moved aside" \
    bash -c "grep -q 'gosvc: got interrupt, shutting down' '$C/ProgramData/tend/logs/self1/self1.out.log' && grep -q 'gosvc: got interrupt, shutting down' '$C/ProgramData/tend/logs/self2/self2.out.log'"
check "  self1's host is a new process" differs "$(host_pid self1 2>&1)" "$p1"
check "  self2's host is a new process" differs "$(host_pid self2 2>&1)" "$p2"
check "  self1 serves" shealth "$SPORT"
check "  self2 serves" shealth $((SPORT + 1))
check "  self3 stays stopped" bash -c "timeout 60 wine sc query self3 | tr -d '\r' | grep -q STOPPED"
check "history --self: the new one current, the old one previous" \
    bash -c "timeout 60 wine '$STEND' history --self --json | tr -d '\r' | python3 -c 'import json,sys; r=json.load(sys.stdin)[\"releases\"]; s={x[\"state\"]: x[\"sha256\"] for x in r}; sys.exit(0 if s.get(\"current\") == \"$newsha\" and s.get(\"previous\") == \"$orig\" else 1)'"

p2=$(host_pid self2)
check "a tend that exits at start is rolled back (exit 6)" sup_exits 6 upgrade --self "$SBW\\bad-tend.exe"
check "  says ROLLED BACK, naming the service that failed" bash -c "grep -q 'ROLLED BACK tend' '$WORK/up.txt' && grep -q 'self1.: could not start' '$WORK/up.txt'"
echo "INFO: $(grep 'FAILED' "$WORK/up.txt")"
check "  the binary in place is the good tend again" test "$(ssha)" = "$newsha"
check "  self1 serves again" wait_until "$E2E_WAIT" shealth "$SPORT"
check "  self2 was never restarted" same "$(host_pid self2 2>&1)" "$p2"
check "  no journal is left" test ! -e "$SSTORE/host-journal.json"

check "rollback --self goes back to the first tend (exit 0)" sup_exits 0 rollback --self
check "  the binary is the original again" test "$(ssha)" = "$orig"
check "  self1 serves" wait_until "$E2E_WAIT" shealth "$SPORT"
check "  self2 serves" wait_until "$E2E_WAIT" shealth $((SPORT + 1))

rm -f "$WORK/sbg.out"
TEND_UPGRADE_PAUSE=restart WINEDEBUG=-all timeout 300 wine "$STEND" upgrade --self "$SBW\\new-tend.exe" > "$WORK/sbg.out" 2>&1 < /dev/null &
SBG=$!
check "an upgrade --self paused before the first restart" wait_until "$E2E_WAIT" grep -q "paused before step \`restart\`" "$WORK/sbg.out"
check "  the new tend was in place" test "$(ssha)" = "$newsha"
sp=$(tr -d '\r' < "$WORK/sbg.out" | sed -n 's/.*tend pid \([0-9]*\)).*/\1/p')
check "  taskkill /F of it" w taskkill /F /PID "${sp:-none}"
wait "$SBG" 2>/dev/null
check "  a journal is left" test -e "$SSTORE/host-journal.json"
check "history --self finishes it" stend history --self
check "  the binary is the one that ran before" test "$(ssha)" = "$orig"
check "  no journal is left" test ! -e "$SSTORE/host-journal.json"
check "  self1 serves" wait_until "$E2E_WAIT" shealth "$SPORT"
check "  self2 serves" shealth $((SPORT + 1))

for i in 1 2 3; do check "uninstall self$i" stend uninstall "self$i"; done
