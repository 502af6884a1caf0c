# tend install checks what the service's account and sandbox will reach (issue 11 item 12):
# each of these installed "fine" before and failed only at start.
PORT=18631
GOSVC_ARGS="\"-port\", \"$PORT\"" cfg web '[stop]' 'signal = "SIGINT"'

# tend itself under /tmp: an isolated unit gets a private /tmp (systemd: 203/EXEC).
boxsh "cp '$TEND' /tmp/tend && chmod 755 /tmp/tend"
fails "tend in /tmp: install refused" box /tmp/tend install web.toml
shows "  naming the tend binary and the private /tmp" 'the tend binary `/tmp/tend`: the service gets a private /tmp'
shows "  and the way out" '--no-access-check'
fails "  nothing was installed" box test -e /etc/systemd/system/web.service
fails "  no config copy either" box test -e /etc/tend/web.toml
# Installed anyway, it fails at start as the check said.
check "--no-access-check installs, with a warning" box /tmp/tend install --no-access-check web.toml
shows "  the warning is the problem" 'warning: the tend binary `/tmp/tend`'
fails "  and start then fails, as predicted" box /tmp/tend start web
check "  (systemd says why: 203/EXEC)" prop_is web ExecMainStatus 203
check "  uninstall" box /tmp/tend uninstall web

# The program under /root (0700): the dynamic user cannot enter it (permission denied).
boxsh "mkdir -p /root/app && cp '$GOSVC' /root/app/gosvc && chmod 700 /root"
cfg_root() { sed "s#$GOSVC#/root/app/gosvc#" "$T/web.toml" > "$T/root.toml"; chmod 644 "$T/root.toml"; }
cfg_root
fails "program under /root: install refused" box "$TEND" install root.toml
shows "  naming the key and the directory" 'command `/root/app/gosvc`'
shows "  cannot enter /root" 'cannot enter `/root` (mode 0700'
fails "  nothing was installed" box test -e /etc/systemd/system/web.service

# A relative log dir (beside the config): read-only for an isolated unit.
cfg logs "[logs]" 'dir = "logs"'
fails "relative log dir: install refused" box "$TEND" install logs.toml
shows "  naming logs.dir and read-only" "logs.dir \`$T/logs\`: the file system is read-only"
fails "  nothing was installed" box test -e /etc/systemd/system/logs.service

# A named account: env_file readable only by root is refused, chown fixes it.
box useradd --system --no-create-home tendsvc
printf 'GREETING=hi\n' > "$T/secret.env"; chmod 600 "$T/secret.env"
GOSVC_ARGS="\"-port\", \"$((PORT + 1))\"" cfg named 'env_file = "secret.env"' '[service]' 'account = "tendsvc"'
fails "env_file only root can read, account tendsvc: refused" box "$TEND" install named.toml
shows "  says the user cannot read it" 'user `tendsvc` cannot read it (mode 0600, owner uid 0)'
boxsh "chown tendsvc '$T/secret.env'"
check "  after chown it installs" box "$TEND" install named.toml
check "  and starts" box "$TEND" start named
check "  and serves" wait_until "$SD_WAIT" http_ok $((PORT + 1))
check "  uninstall" box "$TEND" uninstall named

# An account that does not exist (systemd: 217/USER at start).
GOSVC_ARGS="\"-port\", \"$((PORT + 2))\"" cfg ghost '[service]' 'account = "no-such-user-x"'
fails "missing account: install refused" box "$TEND" install ghost.toml
shows "  names the account" 'account = "no-such-user-x": there is no such user'

# depends_on must name units systemd knows (issue 11 item 8): a typo is refused.
GOSVC_ARGS="\"-port\", \"$((PORT + 3))\"" cfg dep '[service]' 'depends_on = ["no-such-db", "network-online.target"]'
fails "depends_on an unknown unit: install refused" box "$TEND" install dep.toml
shows "  naming the key and the unit" 'depends_on names "no-such-db" (no-such-db.service), which systemd does not know'
fails "  nothing was installed" box test -e /etc/systemd/system/dep.service
GOSVC_ARGS="\"-port\", \"$((PORT + 3))\"" cfg dep2 '[service]' 'depends_on = ["systemd-journald", "network-online.target"]'
check "depends_on known units: installs" box "$TEND" install dep2.toml
check "  with After= and Wants=" box grep -qx 'Wants=systemd-journald.service network-online.target' /etc/systemd/system/dep2.service
