# tend upgrade / history / rollback under a real systemd, with real Go builds (the Go server
# linked with -X main.build=... -X main.mode=...): a good build is upgraded to; a build that
# exits at start, one that never becomes healthy, and one whose verify_command fails are
# each rolled back with the old build serving again (exit 6, the reason shown); rollback by
# hand; --check changes nothing; a second upgrade meets the lock; and tend killed with -9
# before each step leaves, after the next `tend history`, exactly one complete release in
# place, the one that ran before, and no journal; the service's own start (systemctl
# alone) does the same. The application directory form (webd: /opt/webd, [upgrade]
# preserve) and --config, with a kill -9 between the two renames of a directory swap.
# The news: a webhook receives `upgraded` and `rolled_back` (with the release ids and the last
# stderr line), `tend logs --tend` has the step lines, /metrics counts the upgrades by result.
PORT=18611
HOOK=$((PORT + 3)) METRICS=$((PORT + 4))  # webd has PORT + 1
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
# The webhook: appends each POSTed body, one per line, to $T/hook.jsonl.
cat > "$T/hook.py" <<EOF
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open("$T/hook.jsonl", "a") as f:
            f.write(json.dumps(json.loads(body)) + "\\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", $HOOK), H).serve_forever()
EOF

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
[notify]
webhook = "http://127.0.0.1:$HOOK/hook"
events = ["upgraded", "rolled_back"]
[metrics]
listen = "127.0.0.1:$METRICS"
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

boxsh "python3 '$T/hook.py' > '$T/hook.err' 2>&1 < /dev/null &"
# hooked EVENT FIELD VALUE: the webhook got an EVENT alert whose FIELD is VALUE (or contains
# it; for a list, has a line that contains it).
hooked() {
    box python3 -c 'import json,sys
for l in open(sys.argv[1]):
    a = json.loads(l); v = a.get(sys.argv[3])
    if a["event"] == sys.argv[2] and (v == sys.argv[4] or (isinstance(v, str) and sys.argv[4] in v) or (isinstance(v, list) and any(sys.argv[4] in x for x in v))): sys.exit(0)
sys.exit(1)' "$T/hook.jsonl" "$@"
}
current_id() { box "$TEND" history web --json | jq -r '[.releases[] | select(.state == "current")] | last | .id'; }
upgrades() { box curl -fsS --max-time 2 "http://127.0.0.1:$METRICS/metrics" | sed -n "s/^tend_upgrades_total{service=\"web\",result=\"$1\"} //p"; }
counts_are() { [ "$(upgrades upgraded) $(upgrades rolled_back) $(upgrades broken)" = "$1" ]; }
# tend_log_has TEXT...: the service's .tend.log (through `tend logs --tend`) has each TEXT.
tend_log_has() {
    box "$TEND" logs web --tend -n 300 > "$T/tend.log.out" 2>&1 || return 1
    local n; for n in "$@"; do grep -qF -- "$n" "$T/tend.log.out" || return 1; done
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
check "  the webhook got \`upgraded\` to the new release" wait_until "$SD_WAIT" hooked upgraded to_release "$(current_id)"
check "  the service's .tend.log has the steps and the end" tend_log_has "swap        \`$T/app/gosvc\` is release" "upgraded \`web\`: release"

exits 6 "a build that exits at start is rolled back (exit 6)" box "$TEND" upgrade web "$T/builds/v3-crash"
shows "  with its last stderr line" "panic: cannot open database"
shows "  saying it rolled back" "ROLLED BACK"
check "  v2 serves again" serves v2
check "  one current release" one_release
check "  the webhook got \`rolled_back\` with the last stderr line" wait_until "$SD_WAIT" hooked rolled_back last_stderr "gosvc v3: panic: cannot open database"
check "  the .tend.log has the failed verification and the roll-back" tend_log_has "FAILED: the program exited with code 3" "ROLLED BACK \`web\`"
check "  /metrics counts one upgraded, one rolled back" wait_until "$SD_WAIT" counts_are "1 1 0"

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
# bg_webd STEP ARGS: the same for the directory form's service (ARGS: a directory, --config FILE).
bg_webd() {
    box rm -f "$T/bg.out"
    boxsh "TEND_UPGRADE_PAUSE=$1 '$TEND' upgrade webd $2 > '$T/bg.out' 2>&1 < /dev/null &"
    wait_until "$SD_WAIT" box grep -q "paused before step \`$1\`" "$T/bg.out"
}
fails_quietly() { ! "$@"; }
# kill9: kill -9 of the background tend (the pid its pause line names), and wait until it
# has died (its lock is released then).
kill9() { kill9_and_wait "$(box sed -n 's/.*tend pid \([0-9]*\)).*/\1/p' "$T/bg.out")"; }

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
# Killed once the journal holds how the change ended, before the releases record it and it
# is told: the next command records and tells it (the alert is never lost).
rolled_backs() { box grep -c '"event": "rolled_back"' "$T/hook.jsonl"; }
before=$(rolled_backs)
check "a failing upgrade paused at its end (rolled back; not yet recorded or told)" bg end "$T/builds/v3-crash"
check "  v2 serves already" wait_until "$SD_WAIT" serves v2
kill9
check "  killed: history records the end" box "$TEND" history web
shows "  saying so" "recording and telling its end"
check "  exactly one complete release" one_release
more_rolled_backs() { [ "$(rolled_backs)" -gt "$before" ]; }
check "  the webhook got the \`rolled_back\` all the same" wait_until "$SD_WAIT" more_rolled_backs
check "history: the kept releases ([upgrade] keep = 4, plus current and previous)" \
    test "$(box "$TEND" history web --json | jq '.releases | length')" -le 6

# Recovery at the service's own start (ExecStartPre=+tend upgrade-recover), no tend command:
# killed while the new build was being verified, the service restarted by systemctl alone
# comes back with the release that ran before.
check "the unit runs upgrade-recover as root before tend" \
    box grep -q '^ExecStartPre=-+.* upgrade-recover web$' /etc/systemd/system/web.service
check "an upgrade paused before verify (v5 running)" bg verify "$T/builds/v5"
check "  v5 serves" wait_until "$SD_WAIT" serves v5
kill9
check "  killed: systemctl restart alone" box systemctl restart web
check "  v2 serves again" wait_until "$SD_WAIT" serves v2
check "  the start's recovery is in the journal" box bash -c "journalctl -u web --no-pager | grep -q 'the service.s start ends it'"
check "  exactly one complete release, the one before" one_release
check "  history says what happened" box "$TEND" history web
shows "  the interrupted one failed, undone at the start" "the service's start undid the change"
check "  the webhook got \`rolled_back\` from the start's recovery" wait_until "$SD_WAIT" hooked rolled_back reason "the service's start undid the change"
check "an upgrade paused before start (stopped, v5 in place)" bg start "$T/builds/v5"
kill9
check "  killed: systemctl start alone" box systemctl start web
check "  v2 serves again" wait_until "$SD_WAIT" serves v2
check "  exactly one complete release" one_release

check "uninstall exits 0" box "$TEND" uninstall web

# The application directory form: /opt/webd (made inside the box, as an operator's would
# be: on the store's volume) holds the program; a new build's directory is staged whole,
# [upgrade] preserve carries data/ over, the old directory keeps its mode.
DPORT=18612
DSTORE=/var/lib/tend/.releases/webd
for v in v2 v3-crash v5; do
    mkdir -p "$T/dist/$v/static"
    cp "$T/builds/$v" "$T/dist/$v/gosvc"
    echo "$v" > "$T/dist/$v/static/index.html"
    echo "shipped by $v" > "$T/dist/$v/VERSION"
    mkdir -p "$T/dist/$v/data" && echo "an empty database" > "$T/dist/$v/data/db"
    chmod -R a+rX "$T/dist/$v"
done
chmod 700 "$T/dist/v2"
mkdir -p "$T/dist/noprog" && echo x > "$T/dist/noprog/readme"
chmod -R a+rX "$T/dist/noprog"
box mkdir -p /opt/webd/data
box cp "$T/builds/v1" /opt/webd/gosvc
box bash -c 'echo "v1 only" > /opt/webd/OLD-ONLY && echo "orders: 42" > /opt/webd/data/db && chmod 755 /opt/webd /opt/webd/gosvc && chmod -R a+rX /opt/webd'
webd_toml() { # FILE NAME DESCRIPTION [EXTRA-ARGS]
    cat > "$1" <<TOML
name = "$2"
description = "$3"
command = ["/opt/webd/gosvc", "-port", "$DPORT"$4]
[stop]
signal = "SIGINT"
[restart]
delay = "0s"
[health]
http = "http://127.0.0.1:$DPORT/health"
interval = "300ms"
start_period = "0s"
failures = 2
on_unhealthy = "log"
[upgrade]
verify = "2s"
preserve = ["data"]
keep = 6
TOML
    chmod 644 "$1"
}
webd_toml "$T/webd.toml" webd "web, directory form"
webd_toml "$T/webd2.toml" webd "web, second config"
webd_toml "$T/webd-exits.toml" webd "web, exits" ', "-exit-after", "1s", "-exit-code", "4"'
webd_toml "$T/other.toml" other "another service"
dserves() { [ "$(box curl -fsS --max-time 2 "http://127.0.0.1:$DPORT/version" 2>/dev/null)" = "$1" ]; }
# One current release, its program the one in place, the directory complete, no journal.
one_dir() {
    local cur n
    cur=$(box "$TEND" history webd --json | jq -r '[.releases[] | select(.state == "current") | .sha256] | join(" ")')
    n=$(echo "$cur" | wc -w)
    [ "$n" = 1 ] && [ "$cur" = "$(sha /opt/webd/gosvc)" ] && box test -f /opt/webd/data/db \
        && ! box test -e "$DSTORE/journal.json" \
        && [ -z "$(box find "$DSTORE" /opt -maxdepth 1 \( -name '.*tmp' -o -name '.*tend-new*' \))" ]
}

check "webd: install" box "$TEND" install webd.toml
check "webd: start" box "$TEND" start webd
check "  v1 serves" wait_until "$SD_WAIT" dserves v1
exits 2 "a directory without the program is refused (exit 2)" box "$TEND" upgrade webd "$T/dist/noprog/"
shows "  naming the program it looked for" "dist/noprog/gosvc"
check "  nothing was changed" box test -f /opt/webd/OLD-ONLY
check "--check of a directory exits 0" box "$TEND" upgrade webd "$T/dist/v2/" --check
shows "  says it replaces the application directory" 'would replace the application directory `/opt/webd`'
shows "  and what it carries over" "carrying over data"
exits 0 "upgrade to a new directory exits 0" box "$TEND" upgrade webd "$T/dist/v2/"
shows "  recorded the directory in place" "recorded the application directory in place"
shows "  swapped the directory" '`/opt/webd` is release'
check "  v2 serves" dserves v2
check "  the build's files are in place" box grep -qx v2 /opt/webd/static/index.html
check "  files only the old build had are gone" fails_quietly box test -e /opt/webd/OLD-ONLY
check "  data/ was carried over (preserve), not the build's" box grep -qx "orders: 42" /opt/webd/data/db
check "  the directory keeps the old one's mode (755, not the build's 700)" test "$(box stat -c %a /opt/webd)" = 755
check "  one complete release in place" one_dir
check "  history says app" box "$TEND" history webd --json
check "  as the new release's kind" contains "$T/last" '"kind": "app"'

box bash -c 'echo "orders: 43" > /opt/webd/data/db'
exits 6 "a directory whose build exits at start is rolled back (exit 6)" box "$TEND" upgrade webd "$T/dist/v3-crash/"
check "  v2 serves again" wait_until "$SD_WAIT" dserves v2
check "  its data as it was" box grep -qx "orders: 43" /opt/webd/data/db
check "  one complete release in place" one_dir

# kill -9 in the middle of the swap: the old directory is in the store, the new one not
# yet in place (/opt/webd does not exist). The service's start alone puts the old one back.
check "an upgrade paused between the two renames of the swap" bg_webd app-moved "$T/dist/v5/"
kill9
check "  /opt/webd is absent at that moment" fails_quietly box test -e /opt/webd
check "  killed: systemctl start alone" box systemctl start webd
check "  v2 serves again" wait_until "$SD_WAIT" dserves v2
check "  one complete release in place, with its data" one_dir
check "  history says the start undid it" box "$TEND" history webd
shows "  with the reason" "the service's start undid the change"
check "an upgrade paused before start (the new directory in place)" bg_webd start "$T/dist/v5/"
kill9
check "  killed: the next tend command undoes it" box "$TEND" history webd
check "  v2 serves again" wait_until "$SD_WAIT" dserves v2
check "  one complete release in place" one_dir
exits 0 "rollback of a directory release goes back to v1's directory" box "$TEND" rollback webd
check "  v1 serves" dserves v1
check "  v1's own files are back" box test -f /opt/webd/OLD-ONLY
check "  data/ carried over into it" box grep -qx "orders: 43" /opt/webd/data/db
exits 0 "upgrade forward again" box "$TEND" upgrade webd "$T/dist/v2/"
check "  v2 serves" dserves v2

# --config: a new config alone, then with a directory; refused for another service.
exits 2 "a config of another service is refused (exit 2)" box "$TEND" upgrade webd --config "$T/other.toml"
shows "  saying whose it is" 'is the config of `other`'
exits 0 "upgrade to a new config exits 0" box "$TEND" upgrade webd --config "$T/webd2.toml"
check "  the unit has the new description" box grep -qx "Description=web, second config" /etc/systemd/system/webd.service
check "  the config copy is the new one" box grep -q "second config" /etc/tend/webd.toml
check "  v2 still serves" dserves v2
check "  history says config" box "$TEND" history webd --json
check "  as the new release's kind" contains "$T/last" '"kind": "config"'
exits 6 "a config whose program exits is rolled back (exit 6)" box "$TEND" upgrade webd --config "$T/webd-exits.toml"
check "  the unit's description is back" box grep -qx "Description=web, second config" /etc/systemd/system/webd.service
check "  the config copy is back" fails_quietly box grep -q "exit-after" /etc/tend/webd.toml
check "  v2 serves" wait_until "$SD_WAIT" dserves v2
# kill -9 once the config was swapped (the unit and the config copy are the new ones, the
# service stopped): systemctl start alone puts both back, from inside the start.
check "a config upgrade paused before start (the new unit in place)" bg_webd start "--config $T/webd-exits.toml"
check "  the unit is the new one at that moment" box grep -qx "Description=web, exits" /etc/systemd/system/webd.service
kill9
check "  killed: systemctl start alone" box systemctl start webd
check "  v2 serves" wait_until "$SD_WAIT" dserves v2
check "  the unit is the old one again" box grep -qx "Description=web, second config" /etc/systemd/system/webd.service
check "  the config copy is the old one again" fails_quietly box grep -q "exit-after" /etc/tend/webd.toml
check "  systemd runs the old definition (reloaded)" prop_is webd Description "web, second config"
check "  the program keeps running (not the exiting config)" box "$TEND" status webd
check "  one complete release in place" one_dir
exits 0 "a directory and a config at once" box "$TEND" upgrade webd "$T/dist/v5/" --config "$T/webd.toml"
check "  v5 serves" dserves v5
check "  the unit's description is the config's" box grep -qx "Description=web, directory form" /etc/systemd/system/webd.service
check "  history says app+config" box "$TEND" history webd --json
check "  as the new release's kind" contains "$T/last" '"kind": "app+config"'
check "  one complete release in place" one_dir
check "webd: uninstall" box "$TEND" uninstall webd
