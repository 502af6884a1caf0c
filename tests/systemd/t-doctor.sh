# tend doctor against a real systemd (issue 17 section 2): before the first start, on a
# running service, on a unit edited by hand, and on a failed service; each check read from
# --json, whose exit code is 1 exactly when a check fails.
PORT=18651
# doctor ARGS: `tend doctor ARGS --json` in the box, its output also kept in $T/doc.json.
doctor() { box "$TEND" doctor "$@" --json > "$T/doc.json" 2>&1; local rc=$?; cat "$T/doc.json"; return $rc; }
# status_is ID STATUS: the check's status in $T/doc.json (pretty JSON: "status" follows "id").
status_is() { grep -A1 -F "\"id\": \"$1\"" "$T/doc.json" | grep -qF "\"status\": \"$2\""; }

GOSVC_ARGS="\"-port\", \"$PORT\"" cfg web '[health]' "http = \"http://127.0.0.1:$PORT/health\"" '[stop]' 'signal = "SIGINT"'

# Before the first start: the config file; nothing installed, the port free.
exits 0 "doctor web.toml before install: no check fails" doctor web.toml
check "  access ok (files the dynamic user can reach)" status_is access ok
check "  port free" status_is port ok
check "  drift: not installed" status_is drift skip
entries() { [ "$(grep -c '"id": ' "$T/doc.json")" = 10 ]; }
check "  one entry per check" entries

# A port taken by someone else before the start: the program could not listen.
# (box, not boxsh: its `cd && ...` would put the job in a subshell, and $! be that shell.)
box bash -c "setsid '$GOSVC' -port $PORT >/dev/null 2>&1 & echo \$! > squatter.pid"
squat() { http_ok $PORT; }
check "a squatter listens on the port" wait_until "$SD_WAIT" squat
exits 1 "doctor: port taken before the start fails" doctor web.toml
check "  port fail" status_is port fail
box bash -c 'kill "$(cat squatter.pid)"'
gone() { ! squat; }
check "  squatter gone" wait_until "$SD_WAIT" gone

# Installed and running: by name, the port answers, the unit matches.
check "install web" box "$TEND" install web.toml
check "start web" box "$TEND" start web
check "  serves" wait_until "$SD_WAIT" http_ok $PORT
running() { doctor web && status_is port ok; }
check "doctor web while running: no check fails, port answers" wait_until "$SD_WAIT" running
check "  drift ok" status_is drift ok
check "  last-failure ok" status_is last-failure ok

# The unit edited by hand: drift fails, and install puts it right.
boxsh "sed -i 's/^Restart=.*/Restart=no/' /etc/systemd/system/web.service && systemctl daemon-reload"
exits 1 "doctor web after the unit was edited fails" doctor web
check "  drift fail" status_is drift fail
check "  with the line" contains "$T/doc.json" '- Restart=no'
check "  install rewrites the unit" box "$TEND" install web.toml
exits 0 "  then doctor passes again" doctor web
check "stop and uninstall web" box bash -c "'$TEND' stop web && '$TEND' uninstall web"

# A program that fails at once: tend gives up; doctor gives the reason and its stderr.
GOSVC_ARGS="\"-exit-after\", \"100ms\", \"-exit-code\", \"3\"" cfg crash '[restart]' 'delay = "0s"' 'limit = 2'
check "install crash" box "$TEND" install crash.toml
box "$TEND" start crash >/dev/null 2>&1
gave_up() { box "$TEND" status crash | grep -q '^state *failed'; }
check "tend gives up on crash" wait_until "$SD_WAIT" gave_up
exits 1 "doctor crash fails" doctor crash
check "  last-failure fail" status_is last-failure fail
check "  with the reason" contains "$T/doc.json" 'gave up'
check "  and the program's last stderr line" contains "$T/doc.json" 'stderr: gosvc: exiting with code 3'
check "uninstall crash" box "$TEND" uninstall crash
