# tend upgrade / history / rollback under a real systemd, with real Go builds (the Go server
# linked with -X main.build=... -X main.mode=...): a good build is upgraded to; a build that
# exits at start, one that never becomes healthy, and one whose verify_command fails are
# each rolled back with the old build serving again (exit 6, the reason shown); rollback by
# hand; --check changes nothing; a second upgrade meets the lock; and tend killed with -9
# before each step leaves, after the next `tend history`, exactly one complete release in
# place, the one that ran before, and no journal.
PORT=18611
STORE=/var/lib/tend/.releases/web

# gob OUT LDFLAGS: a build of the Go server.
gob() {
    ( cd "$ROOT/tests/windows/gosvc" && CGO_ENABLED=0 GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" \
        GOFLAGS=-mod=mod timeout 300 go build -ldflags "$2" -o "$1" . )
}
mkdir -p "$T/builds" "$T/app"
chmod 755 "$T/builds" "$T/app"
gob "$T/builds/v1" "-X main.build=v1" || bad "go build v1"
gob "$T/builds/v2" "-X main.build=v2" || bad "go build v2"
gob "$T/builds/v3-crash" "-X main.build=v3 -X main.mode=crash" || bad "go build v3"
gob "$T/builds/v4-unhealthy" "-X main.build=v4 -X main.mode=unhealthy" || bad "go build v4"
gob "$T/builds/v5" "-X main.build=v5" || bad "go build v5"
cp "$T/builds/v1" "$T/app/gosvc"
chmod 755 "$T/app/gosvc"
printf 'not a program\n' > "$T/builds/notes.txt"
chmod 755 "$T/builds/notes.txt"
# The smoke test the operator's verify_command runs: fails for build v5 while
# $T/verify-fail exists (the build it rolls back to must pass it).
cat > "$T/verify.sh" <<EOF
#!/bin/sh
v=\$(curl -fsS --max-time 2 http://127.0.0.1:$PORT/version) || exit 1
if [ "\$v" = v5 ] && [ -e "$T/verify-fail" ]; then echo "smoke test: /orders answered 500" >&2; exit 1; fi
EOF
chmod 755 "$T/verify.sh"

cat > "$T/web.toml" <<EOF
name = "web"
command = ["$T/app/gosvc", "-port", "$PORT"]
[stop]
signal = "SIGINT"
[restart]
delay = "0s"
[health]
http = "http://127.0.0.1:$PORT/health"
interval = "300ms"
start_period = "0s"
failures = 2
on_unhealthy = "log"
[upgrade]
verify = "3s"
verify_command = ["$T/verify.sh"]
keep = 4
EOF
chmod 644 "$T/web.toml"

version() { box curl -fsS --max-time 2 "http://127.0.0.1:$PORT/version"; }
serves() { [ "$(version 2>/dev/null)" = "$1" ]; }
# Inside the box: what tend writes there (the program it swaps, the files of a background
# tend) lands in the box's own layer, which the host does not see.
sha() { box sha256sum "$1" | cut -d' ' -f1; }
# One release is current, it is the file in place, no journal and nothing half-staged.
one_release() {
    local cur n
    cur=$(box "$TEND" history web --json | jq -r '[.releases[] | select(.state == "current") | .sha256] | join(" ")')
    n=$(echo "$cur" | wc -w)
    [ "$n" = 1 ] && [ "$cur" = "$(sha "$T/app/gosvc")" ] \
        && ! box test -e "$STORE/journal.json" \
        && [ -z "$(box find "$STORE" "$T/app" -name '.*tmp' -o -name '.*tend-new*')" ]
}

check "install exits 0" box "$TEND" install web.toml
check "start exits 0" box "$TEND" start web
check "v1 serves" wait_until "$SD_WAIT" serves v1

before=$(sha "$T/app/gosvc")
check "--check exits 0" box "$TEND" upgrade web "$T/builds/v2" --check
shows "  says what it would do" "would replace"
shows "  and that nothing was changed" "nothing was changed"
check "  the program file is unchanged" test "$(sha "$T/app/gosvc")" = "$before"
fails "  no release store was made" box test -e "$STORE"

exits 2 "a file that is not a program is refused (exit 2)" box "$TEND" upgrade web "$T/builds/notes.txt"
shows "  saying why" "is not a program this OS can run"
exits 2 "a missing file is refused (exit 2)" box "$TEND" upgrade web "$T/builds/nope"
shows "  saying so" "does not exist"
check "  v1 still serves, untouched" serves v1

exits 0 "upgrade to a good build exits 0" box "$TEND" upgrade web "$T/builds/v2"
shows "  prints the steps" "swap"
shows "  and the downtime" "downtime"
shows "  and the verification" "verify_command passed"
check "  v2 serves" serves v2
check "history lists both" box "$TEND" history web
shows "  the first as previous" "previous"
shows "  the new one as current" "current"
check "  exactly one current release, the file in place" one_release

exits 6 "a build that exits at start is rolled back (exit 6)" box "$TEND" upgrade web "$T/builds/v3-crash"
shows "  with its last stderr line" "panic: cannot open database"
shows "  saying it rolled back" "ROLLED BACK"
check "  v2 serves again" serves v2
check "  one current release" one_release

exits 6 "a build that never becomes healthy is rolled back (exit 6)" box "$TEND" upgrade web "$T/builds/v4-unhealthy"
shows "  saying why" "did not become healthy"
check "  v2 serves again" serves v2

touch "$T/verify-fail"
exits 6 "a build whose verify_command fails is rolled back (exit 6)" box "$TEND" upgrade web "$T/builds/v5" --json
check "  the JSON says rolled-back" contains "$T/last" '"end": "rolled-back"'
shows "  with the command's stderr" "smoke test: /orders answered 500"
check "  v2 serves again" serves v2
rm -f "$T/verify-fail"

check "history shows the failures and why" box "$TEND" history web
shows "  a failed release" "failed"
shows "  with its reason" "did not become healthy"

exits 0 "rollback by hand exits 0" box "$TEND" rollback web
check "  v1 serves" serves v1
check "  one current release" one_release
exits 0 "rollback --to the v2 release" box "$TEND" rollback web --to "$(box "$TEND" history web --json | jq -r '[.releases[] | select(.state == "previous")] | last | .id')"
check "  v2 serves" serves v2

# bg STEP BUILD: an upgrade paused (test hook) before STEP, in the background of the box.
bg() {
    box rm -f "$T/bg.out"
    boxsh "TEND_UPGRADE_PAUSE=$1 '$TEND' upgrade web '$2' > '$T/bg.out' 2>&1 < /dev/null &"
    wait_until "$SD_WAIT" box grep -q "paused before step \`$1\`" "$T/bg.out"
}
# kill9: kill -9 of the background tend (the pid its pause line names).
kill9() { box kill -9 "$(box sed -n 's/.*tend pid \([0-9]*\)).*/\1/p' "$T/bg.out")"; }

# kill -9 before each step: the next command finds the journal and undoes the change.
for step in staged stop swap start verify; do
    check "an upgrade paused before $step" bg "$step" "$T/builds/v5"
    if [ "$step" = verify ]; then
        exits 2 "  a second upgrade meets the lock (exit 2)" box "$TEND" upgrade web "$T/builds/v1"
        shows "  and says so" "is under way"
    fi
    kill9
    check "  killed before $step: history recovers" box "$TEND" history web
    shows "  saying what it found" "found an interrupted upgrade"
    check "  v2 serves again" wait_until "$SD_WAIT" serves v2
    check "  exactly one complete release, the one before" one_release
done
for step in undo-stop undo-swap undo-start undo-verify; do
    check "a failing upgrade paused before $step" bg "$step" "$T/builds/v3-crash"
    kill9
    box "$TEND" status web > "$T/last" 2>&1
    shows "  killed before $step: status says the upgrade was interrupted" "was interrupted before step \`$step\`"
    check "  the next upgrade finishes the undo, then upgrades" box "$TEND" upgrade web "$T/builds/v2"
    shows "  saying what it found" "found an interrupted upgrade"
    check "  v2 serves" serves v2
    check "  exactly one complete release" one_release
done
check "history: the kept releases ([upgrade] keep = 4, plus current and previous)" \
    test "$(box "$TEND" history web --json | jq '.releases | length')" -le 6

check "uninstall exits 0" box "$TEND" uninstall web
