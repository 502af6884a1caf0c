# tend apply under a real systemd: a set of 3 services installed and running (one healthy
# by its [health] check), a second apply that touches nothing (unit files' and copies'
# mtimes, tend's and the programs' pids), an edit that reloads only its service, --check
# that only reports, a bad file that changes nothing, --prune that removes only what tend
# installed.
PORT=18651

# svc NAME PORT [extra toml lines...]: a Go server config in $T/set.
svc() {
    local name=$1 port=$2; shift 2
    mkdir -p "$T/set"; chmod 755 "$T/set"
    { echo "name = \"$name\""
      echo "command = [\"$GOSVC\", \"-port\", \"$port\"]"
      echo '[stop]'
      echo 'signal = "SIGINT"'
      for l in "$@"; do echo "$l"; done; } > "$T/set/$name.toml"
    chmod 644 "$T/set/$name.toml"
}
# stamp NAME: the unit's and the config copy's mtimes (nanoseconds), tend's pid and the
# program's pid; MISSING in it if a file or a pid is missing.
stamp() {
    local t p f
    t=$(main_pid "$1"); p=$(box pgrep -P "$t")
    f=$(box stat -c %y "/etc/systemd/system/$1.service" "/etc/tend/$1.toml") || f=MISSING
    echo "$f tend=${t:-MISSING} prog=${p:-MISSING}" | tr '\n' ' '
}
# same NAME STAMP: NAME's stamp is STAMP, and STAMP is complete (a service that vanished
# must not compare equal to another that vanished).
same() { local now; now=$(stamp "$1"); [ "$now" = "$2" ] && case $2 in *MISSING*|*tend=0*) false ;; esac; }
# pids NAME: tend's pid and the program's.
pids() { local t; t=$(main_pid "$1"); echo "tend=$t prog=$(box pgrep -P "$t")"; }
running_in_list() { [ "$(box "$TEND" list --json | grep -c '"state": "running"')" = "$1" ]; }

svc a $PORT '[health]' "http = \"http://127.0.0.1:$PORT/health\"" 'interval = "1s"' 'start_period = "10s"'
svc b $((PORT + 1))
svc c $((PORT + 2))

exits 10 "first apply installs 3 and waits (exit 10: changed)" box "$TEND" apply set --wait
shows "  a was installed" 'install'
shows "  and is healthy" 'now running, healthy'
check "  a serves" http_ok $PORT
check "  b serves" http_ok $((PORT + 1))
check "  c serves" http_ok $((PORT + 2))
check "tend list --json shows 3 running" running_in_list 3

sa=$(stamp a) sb=$(stamp b) sc=$(stamp c)
exits 0 "second apply: nothing to do (exit 0)" box "$TEND" apply set
shows "  0 changed" '0 changed, 3 unchanged, 0 failed'
check "  a untouched (files, tend, program)" same a "$sa"
check "  b untouched" same b "$sb"
check "  c untouched" same c "$sc"

svc b $((PORT + 1)) '[restart]' 'delay = "2s"'
exits 11 "--check after an edit: pending (exit 11)" box "$TEND" apply set --check --diff
shows "  b would be reloaded" 'would update-reload'
shows "  with the diff (unified)" '+delay = "2s"'
check "  and nothing changed" same b "$sb"

pb=$(pids b)
exits 10 "apply of the edit (exit 10)" box "$TEND" apply set --json
shows "  b reloaded" '"action": "update-reload"'
check "  b's copy has the edit" box grep -q 'delay = "2s"' /etc/tend/b.toml
check "  b's tend and program kept running (a reload)" test "$(pids b)" = "$pb" -a -n "${pb##*prog=}"
check "  b's tend logged the reload" wait_until "$SD_WAIT" box grep -q 'reload' /var/log/tend/b/b.tend.log
check "  a untouched" same a "$sa"
check "  c untouched" same c "$sc"

printf 'name = "bad"\ncommand = ["%s"]\n[restart]\npolicy = "sometimes"\n' "$GOSVC" > "$T/set/bad.toml"
svc c $((PORT + 2)) '[restart]' 'delay = "3s"'
exits 2 "a set with a bad file: exit 2" box "$TEND" apply set
shows "  names the file" "set/bad.toml"
shows "  and the key" 'restart.policy'
check "  nothing changed (c's edit not applied)" same c "$sc"
fails "  bad was not installed" box test -e /etc/tend/bad.toml
rm -f "$T/set/bad.toml"
svc c $((PORT + 2))

# A unit tend did not write, and c leaves the set.
box bash -c 'printf "[Service]\nExecStart=/bin/sleep infinity\n" > /etc/systemd/system/handmade.service && systemctl daemon-reload'
rm -f "$T/set/c.toml"
exits 10 "--prune after deleting c's file (exit 10)" box "$TEND" apply set --prune
shows "  c removed" 'remove'
fails "  c's unit is gone" box test -e /etc/systemd/system/c.service
fails "  c's copy is gone" box test -e /etc/tend/c.toml
fails "  c no longer serves" http_ok $((PORT + 2))
check "  the hand-made unit is untouched" box test -f /etc/systemd/system/handmade.service
check "  a untouched" same a "$sa"
check "tend list --json shows 2 running" running_in_list 2
exits 0 "apply --prune again: nothing to do" box "$TEND" apply set --prune
