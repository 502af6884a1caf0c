# What `tend status` says when something is wrong (issue 11 items 13 and 15): a program
# tend gave up on, tend itself in a systemd restart loop, a unit tend did not install, and
# an installed config that no longer loads; each with a non-zero exit and the reason.
PORT=18641

# 1. The program fails at once; tend gives up after 2 restarts: failed, exit 1, the reason.
GOSVC_ARGS="\"-exit-after\", \"100ms\", \"-exit-code\", \"3\"" cfg crash '[restart]' 'delay = "0s"' 'limit = 2'
check "install crash" box "$TEND" install crash.toml
box "$TEND" start crash >/dev/null 2>&1
gave_up() { box "$TEND" status crash | grep -q '^state *failed'; }
check "tend gives up on a crash loop" wait_until "$SD_WAIT" gave_up
exits 1 "  status: failed, exit 1" box "$TEND" status crash
shows "  with the give-up reason" 'gave up'
shows "  and the last exit code" 'with code 3'
check "  systemd leaves it down (exit 1 is not restarted)" prop_is crash ActiveState failed
check "  uninstall" box "$TEND" uninstall crash

# 2. tend itself fails (its log dir is read-only for the dynamic user, installed anyway):
#    systemd restarts it every RestartSec=5s. Before: "starting", exit 0.
GOSVC_ARGS="\"-port\", \"$PORT\"" cfg loop '[logs]' 'dir = "logs"'
check "install a tend that cannot start (--no-access-check)" box "$TEND" install --no-access-check loop.toml
fails "  start fails" box "$TEND" start loop
restarted() { [ "$(prop loop NRestarts)" -ge 1 ] && prop_is loop SubState auto-restart; }
check "  systemd restarts tend" wait_until $((SD_WAIT + 10)) restarted
exits 1 "  status: restarting, exit 1" box "$TEND" status loop
shows "  state restarting" 'restarting'
shows "  how often" 'restarted '
shows "  and how tend's last run ended" 'tend failed (exit code'
check "  stop ends the loop" box "$TEND" stop loop
check "  uninstall" box "$TEND" uninstall loop

# 3. A unit tend did not write. Before: "starting"/"running", exit 0.
exits 4 "status of systemd-journald: exit 4" box "$TEND" status systemd-journald
shows "  not a tend service" 'not-a-tend-service'
fails "  start of it is refused" box "$TEND" start systemd-journald
shows "  as not tend's" 'was not installed by tend'

# 4. The installed config stops loading after install (the env_file it names is gone).
printf 'GREETING=hi\n' > "$T/app.env"; chmod 644 "$T/app.env"
GOSVC_ARGS="\"-port\", \"$((PORT + 1))\"" cfg bad 'env_file = "app.env"' '[restart]' 'limit = 1' 'delay = "0s"'
check "install bad" box "$TEND" install bad.toml
# (Inside the box: a change on the host to a file the box has seen may not show there.)
boxsh "rm app.env"
exits 2 "start: exit 2, with tend's own error" box "$TEND" start bad
shows "  naming the key" 'env_file'
shows "  and the file" 'app.env'
shows "  and the fix" 'tend install'
# systemd starts tend anyway (at boot, say): tend exits 2, status says why, not a stale reason.
box systemctl start bad.service >/dev/null 2>&1
config_failed() { prop_is bad ActiveState failed; }
check "  tend in the service exits (2)" wait_until "$SD_WAIT" config_failed
check "  with exit code 2" prop_is bad ExecMainStatus 2
exits 1 "  status: failed, exit 1" box "$TEND" status bad
shows "  the config error" 'the installed config is invalid'
shows "  naming env_file" 'env_file'

# 5. The service's account cannot read what root can: root's check passes, tend's own
#    error comes back from the service.
boxsh "printf 'GREETING=hi\n' > app.env && chmod 644 app.env"
check "install bad again (the file is back)" box "$TEND" install bad.toml
boxsh "chmod 600 app.env"
fails "start fails as the dynamic user cannot read env_file" box "$TEND" start bad
shows "  with tend's own reason from the service" 'tend says: the installed config is invalid'
shows "  permission denied" 'ermission denied'

# 6. A real Go program that panics, as an installed service: status and `tend crashes` say
#    the panic and where, not "exit code 2" (issue 15).
GOSVC_ARGS="\"-panic-after\", \"200ms\"" cfg gopanic '[restart]' 'policy = "never"'
check "install gopanic" box "$TEND" install gopanic.toml
box "$TEND" start gopanic >/dev/null 2>&1
panicked() { box "$TEND" crashes gopanic | grep -q 'panic: runtime error: index out of range'; }
check "tend crashes: the Go panic's message" wait_until "$SD_WAIT" panicked
exits 0 "  tend crashes gopanic" box "$TEND" crashes gopanic
shows "  with its top frame" '(at main.lookup('
exits 1 "  status: failed (exit 1)" box "$TEND" status gopanic
shows "  status shows the panic as the last crash" 'panic: runtime error: index out of range'
check "  uninstall" box "$TEND" uninstall gopanic
