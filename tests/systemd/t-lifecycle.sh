# Install, start, serve, stop, uninstall: the basic life of a tend service under systemd.
PORT=18601
GOSVC_ARGS="\"-port\", \"$PORT\"" cfg web '[stop]' 'signal = "SIGINT"'

check "install exits 0" box "$TEND" install web.toml
check "unit file exists" box test -f /etc/systemd/system/web.service
check "start exits 0" box "$TEND" start web
check "the Go server answers" wait_until "$SD_WAIT" http_ok $PORT
check "status says running (exit 0)" box "$TEND" status web
check "stop exits 0" box "$TEND" stop web
fails "the Go server no longer answers" http_ok $PORT
check "uninstall exits 0" box "$TEND" uninstall web
fails "the unit file is gone" box test -e /etc/systemd/system/web.service
