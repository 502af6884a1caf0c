# tend upgrade --self under a real systemd: tend replaces its own binary, the one every
# installed service's host runs. Two running services (the Go server, with [health]) and a
# stopped one are installed with a tend of this test's own ($T/bin/tend). A new tend (the
# same build with bytes appended, so another file) is swapped in and each running host is
# restarted on it one at a time and verified: every service keeps running, its host now the
# new file, the stopped one left alone. A bad tend (answers --version, exits at start) fails
# the first service and is rolled back (exit 6): the binary is the previous one again, the
# first service restarted on it, the second never touched. `rollback --self` goes back by
# hand; `--check` changes nothing; tend killed with -9 before the first restart is undone by
# the next `history --self`.
PORT=18631
SELF_STORE=/var/lib/tend/.releases/.tend

mkdir -p "$T/bin"
chmod 755 "$T/bin"
install -m 755 "$TEND" "$T/bin/tend"
MY=$T/bin/tend
# A second build of tend: the same code, another file (trailing bytes do not change what an
# ELF runs).
install -m 755 "$TEND" "$T/new-tend"
printf 'another build of tend\n' >> "$T/new-tend"
cat > "$T/bad-tend" <<'EOF'
#!/bin/sh
case "$1" in --version) echo "tend 9.9.9-bad"; exit 0 ;; esac
echo "bad tend: this build cannot start: missing runtime" >&2
exit 3
EOF
chmod 755 "$T/bad-tend"
printf '#!/bin/sh\necho hello\n' > "$T/not-tend"
chmod 755 "$T/not-tend"

svc() {  # svc NAME PORT
    GOSVC_ARGS="\"-port\", \"$2\"" cfg "$1" \
        '[stop]' 'signal = "SIGINT"' \
        '[health]' "http = \"http://127.0.0.1:$2/health\"" 'interval = "300ms"' 'start_period = "0s"' \
        '[upgrade]' 'verify = "2s"'
}
svc s1 "$PORT"
svc s2 $((PORT + 1))
svc s3 $((PORT + 2))
for s in s1 s2 s3; do check "install $s with this test's tend" box "$MY" install "$s.toml"; done
check "start s1" box "$MY" start s1
check "start s2" box "$MY" start s2
check "s1 serves" wait_until "$SD_WAIT" http_ok "$PORT"
check "s2 serves" wait_until "$SD_WAIT" http_ok $((PORT + 1))

sha() { box sha256sum "$1" | cut -d' ' -f1; }
# host_runs NAME FILE: the service's host (MainPID) runs FILE as it is now (not a deleted,
# replaced one).
host_runs() {
    local pid exe
    pid=$(main_pid "$1"); [ "$pid" -gt 0 ] || return 1
    exe=$(box readlink "/proc/$pid/exe") || return 1
    [ "$exe" = "$2" ]
}
current_self() { box "$MY" history --self --json | jq -r '[.releases[] | select(.state == "current")] | last | .sha256'; }

orig=$(sha "$MY")
newsha=$(sha "$T/new-tend")
p1=$(main_pid s1) p2=$(main_pid s2)

exits 2 "a program that is not tend is refused (exit 2)" box "$MY" upgrade --self "$T/not-tend"
shows "  saying why" "not \`tend <version>\`"
check "  the binary is unchanged" test "$(sha "$MY")" = "$orig"

check "--check exits 0" box "$MY" upgrade --self "$T/new-tend" --check
shows "  names the services it would restart" "s1, s2"
shows "  and the one it leaves alone" "left alone: \`s3\`"
shows "  and that nothing was changed" "nothing was changed"
check "  the binary is unchanged" test "$(sha "$MY")" = "$orig"
check "  the hosts were not restarted" test "$(main_pid s1) $(main_pid s2)" = "$p1 $p2"

exits 0 "upgrade --self to a good tend exits 0" box "$MY" upgrade --self "$T/new-tend"
shows "  restarts s1" "restart      \`s1\`: restarted"
shows "  and s2" "restart      \`s2\`: restarted"
shows "  verified healthy" "healthy"
shows "  says it is done" "upgraded tend"
check "  the binary in place is the new tend" test "$(sha "$MY")" = "$newsha"
check "  the old hosts stopped their programs gracefully (SIGINT), their file replaced" \
    box bash -c "grep -q 'gosvc: got interrupt, shutting down' /var/log/tend/s1/s1.out.log && grep -q 'gosvc: got interrupt, shutting down' /var/log/tend/s2/s2.out.log"
check "  s1's host is a new process" test "$(main_pid s1)" != "$p1"
check "  s2's host is a new process" test "$(main_pid s2)" != "$p2"
check "  s1's host runs the new file" host_runs s1 "$MY"
check "  s2's host runs the new file" host_runs s2 "$MY"
check "  s1 serves" http_ok "$PORT"
check "  s2 serves" http_ok $((PORT + 1))
check "  s3 stays stopped" prop_is s3 ActiveState inactive
check "history --self shows both" box "$MY" history --self
shows "  the old one as previous" "previous"
check "  the new one is current" test "$(current_self)" = "$newsha"
exits 0 "the same tend again changes nothing" box "$MY" upgrade --self "$T/new-tend"
shows "  saying so" "nothing to do"

p1=$(main_pid s1) p2=$(main_pid s2)
exits 6 "a tend that exits at start is rolled back (exit 6)" box "$MY" upgrade --self "$T/bad-tend"
shows "  says ROLLED BACK" "ROLLED BACK tend"
shows "  names the service that failed" "\`s1\`: could not start"
shows "  with the bad tend's own last words" "bad tend: this build cannot start: missing runtime"
shows "  puts the good tend back" "undo-swap"
check "  the binary in place is the good tend again" test "$(sha "$MY")" = "$newsha"
check "  s1 runs again, on the good tend" wait_until "$SD_WAIT" host_runs s1 "$MY"
check "  s1 serves" wait_until "$SD_WAIT" http_ok "$PORT"
check "  s2 was never restarted" test "$(main_pid s2)" = "$p2"
check "  s2 serves" http_ok $((PORT + 1))
check "history --self records the failure" box "$MY" history --self
shows "  as failed" "failed"
check "  no journal is left" box test ! -e "$SELF_STORE/host-journal.json"

exits 0 "rollback --self goes back to the first tend" box "$MY" rollback --self
shows "  says so" "rolled back tend"
check "  the binary is the original again" test "$(sha "$MY")" = "$orig"
check "  s1's host runs it" host_runs s1 "$MY"
check "  s2's host runs it" host_runs s2 "$MY"
check "  s1 serves" http_ok "$PORT"
check "  s2 serves" http_ok $((PORT + 1))

# Killed before the first restart (the new tend already in place): the next --self command
# puts the old one back and restarts the service that may have been touched.
boxsh "TEND_UPGRADE_PAUSE=restart '$MY' upgrade --self '$T/new-tend' > '$T/paused.out' 2>&1 < /dev/null &"
check "an upgrade --self paused before the first restart" wait_until "$SD_WAIT" box grep -q "paused before step \`restart\`" "$T/paused.out"
pid=$(box cat "$T/paused.out" | sed -n 's/.*tend pid \([0-9]*\)).*/\1/p' | tail -1)
check "  the new tend was in place" test "$(sha "$MY")" = "$newsha"
check "  killed with -9" kill9_and_wait "$pid"
check "  a journal is left" box test -e "$SELF_STORE/host-journal.json"
check "tend status warns about it" box "$MY" status s1
shows "  saying how to finish it" "history --self"
box "$MY" doctor s1 > "$T/last" 2>&1
shows "tend doctor warns about it too" "warn  unfinished"
check "history --self finishes it" box "$MY" history --self
check "  the binary is the one that ran before" test "$(sha "$MY")" = "$orig"
check "  no journal is left" box test ! -e "$SELF_STORE/host-journal.json"
check "  s1 serves, on it" host_runs s1 "$MY"
check "  s2 serves" http_ok $((PORT + 1))
