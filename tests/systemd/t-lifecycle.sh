# The life of a tend service under systemd: install, start, serve, restart, reload, kill -9
# of the program and of tend (both recover), graceful stop, uninstall leaving nothing.
PORT=18601
GOSVC_ARGS="\"-port\", \"$PORT\"" cfg web '[stop]' 'signal = "SIGINT"' '[restart]' 'delay = "0s"'

# prog_pid: the program's pid (tend's child), empty if none.
prog_pid() { local t; t=$(main_pid web); [ "$t" != 0 ] && box pgrep -P "$t"; }
# changed OLD: the program has a pid other than OLD and serves.
changed() { local p; p=$(prog_pid) && [ -n "$p" ] && [ "$p" != "$1" ] && http_ok $PORT; }
status_running() { box "$TEND" status web | grep -q '^state *running'; }

check "install exits 0" box "$TEND" install web.toml
check "unit file exists" box test -f /etc/systemd/system/web.service
check "config copy exists" box test -f /etc/tend/web.toml
check "start exits 0" box "$TEND" start web
check "the Go server answers" wait_until "$SD_WAIT" http_ok $PORT
check "status says running (exit 0)" box "$TEND" status web
shows "  state running with the program's pid" 'running (pid'

p1=$(prog_pid); t1=$(main_pid web)
check "restart exits 0" box "$TEND" restart web
check "  a new program serves" wait_until "$SD_WAIT" changed "$p1"
check "  and a new tend" test "$(main_pid web)" != "$t1"

p2=$(prog_pid)
check "reload exits 0" box "$TEND" reload web
check "  tend logged the reload" wait_until "$SD_WAIT" box grep -q 'reload' /var/log/tend/web/web.tend.log
check "  the program kept running (same config)" test "$(prog_pid)" = "$p2"
check "  and serves" http_ok $PORT

box kill -9 "$p2"
check "kill -9 of the program: tend restarts it" wait_until "$SD_WAIT" changed "$p2"
check "  tend logged the death by signal" box grep -q 'was killed by SIGKILL' /var/log/tend/web/web.tend.log

p3=$(prog_pid); t3=$(main_pid web)
box kill -9 "$t3"
# systemd restarts tend after RestartSec=5s; the new tend starts a new program. (The old
# program dies with the cgroup: KillMode=mixed kills the rest when the main process dies.)
check "kill -9 of tend: systemd restarts it, a new program serves" wait_until $((SD_WAIT + 10)) changed "$p3"
check "  a new tend" test "$(main_pid web)" != "$t3"
check "  systemd counted one restart" prop_is web NRestarts 1
check "  status says running again" wait_until "$SD_WAIT" status_running

check "stop exits 0" box "$TEND" stop web
fails "the Go server no longer answers" http_ok $PORT
check "  the stop was graceful (SIGINT reached the program)" box grep -q 'got interrupt' /var/log/tend/web/web.out.log
exits 3 "status says stopped (exit 3)" box "$TEND" status web

check "uninstall exits 0" box "$TEND" uninstall web
fails "the unit file is gone" box test -e /etc/systemd/system/web.service
fails "the config copy is gone" box test -e /etc/tend/web.toml
check "systemd no longer knows the unit" prop_is web LoadState not-found
fails "no unit named web is left (not even failed)" boxsh "systemctl list-units --all --no-legend | grep -q '^ *web.service'"
fails "no process of it is left" box pgrep -f "$GOSVC"
check "the logs stay, as documented" box test -f /var/log/tend/web/web.out.log
exits 4 "status says not installed (exit 4)" box "$TEND" status web
