# [service] hardening = "strict" (issue 11 item 19): systemd-analyze security rates the
# isolated unit below 4.0 (OK), and under that sandbox the Go server still serves, tend
# still writes its logs, and a stop is still graceful (SIGINT, exit code 0).
PORT=18621
GOSVC_ARGS="\"-port\", \"$PORT\"" cfg web '[stop]' 'signal = "SIGINT"' '[service]' 'hardening = "strict"'
GOSVC_ARGS="\"-port\", \"$((PORT + 1))\"" cfg plain '[stop]' 'signal = "SIGINT"'

# systemd-analyze security NAME: the overall exposure, e.g. 1.1.
exposure() { box systemd-analyze security --no-pager "$1.service" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p'; }

check "install (basic) exits 0" box "$TEND" install plain.toml
check "install (strict) exits 0" box "$TEND" install web.toml
basic=$(exposure plain)
strict=$(exposure web)
echo "      systemd-analyze security: basic (isolated) $basic, strict $strict"
check "basic is rated (a number)" test -n "$basic"
check "strict is below 4.0 (OK)" awk -v s="$strict" 'BEGIN { exit !(s != "" && s < 4.0) }'
check "the unit has the strict sandbox" box grep -qx 'ProtectSystem=strict' /etc/systemd/system/web.service
check "start exits 0" box "$TEND" start web
check "the Go server answers under the sandbox" wait_until "$SD_WAIT" http_ok $PORT
check "its output reaches the out log" wait_until "$SD_WAIT" box grep -q 'gosvc line' /var/log/tend/web/web.out.log
check "status says running" box "$TEND" status web
check "stop exits 0" box "$TEND" stop web
check "the stop was graceful (the program saw SIGINT)" box grep -q 'got interrupt' /var/log/tend/web/web.out.log
check "tend logged the clean exit" box grep -q 'exited with code 0' /var/log/tend/web/web.tend.log
check "uninstall exits 0" box "$TEND" uninstall web
check "uninstall (basic) exits 0" box "$TEND" uninstall plain
