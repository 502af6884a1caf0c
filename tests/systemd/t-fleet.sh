# The fleet example of docs/upgrade.md (contrib/fleet/upgrade.yml: serial 1,
# max_fail_percentage 0, `tend upgrade --json` on each host) with ansible-core from PyPI
# against two "hosts" in the box, each with a service of its own (web-a, web-b): a good
# build rolls to both, one host after the other; the same build again changes nothing; a
# build that exits at start is rolled back on the first host by tend, the play fails there
# with tend's reason, and the second host is never touched.
PORT=18691
AB=$ROOT/target/ansible-venv/bin
if [ ! -x "$AB/ansible-playbook" ]; then
    echo "SKIP: no ansible-core in $AB (run tests/systemd/ansible-setup)"
    return 0 2>/dev/null || exit 0
fi

gob() {
    ( cd "$ROOT/tests/windows/gosvc" && CGO_ENABLED=0 GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" \
        GOFLAGS=-mod=mod timeout 300 go build -ldflags "$2" -o "$1" . )
}
mkdir -p "$T/builds" "$T/home" "$T/stage"
chmod 755 "$T/builds" "$T/stage"
gob "$T/builds/v1" "-X main.build=v1" || bad "go build v1"
gob "$T/builds/v2" "-X main.build=v2" || bad "go build v2"
gob "$T/builds/v3" "-X main.build=v3 -X main.mode=crash" || bad "go build v3"

# host NAME PORT: a service of its own, running build v1 from its own app dir.
host() {
    mkdir -p "$T/$1"
    cp "$T/builds/v1" "$T/$1/gosvc"
    chmod 755 "$T/$1" "$T/$1/gosvc"
    printf '%s\n' "name = \"$1\"" "command = [\"$T/$1/gosvc\", \"-port\", \"$2\"]" \
        '[stop]' 'signal = "SIGINT"' \
        '[health]' "http = \"http://127.0.0.1:$2/health\"" 'interval = "300ms"' 'start_period = "0s"' \
        '[upgrade]' 'verify = "2s"' > "$T/$1.toml"
    chmod 644 "$T/$1.toml"
    check "$1 installed" box "$TEND" install "$1.toml"
    check "$1 started" box "$TEND" start "$1"
}
host web-a $PORT
host web-b $((PORT + 1))
serves() { [ "$(box curl -fsS --max-time 2 "http://127.0.0.1:$1/version" 2>/dev/null)" = "$2" ]; }
check "web-a serves v1" wait_until "$SD_WAIT" serves $PORT v1
check "web-b serves v1" wait_until "$SD_WAIT" serves $((PORT + 1)) v1

printf '%s\n' '[fleet]' 'host-a tend_service=web-a' 'host-b tend_service=web-b' '[fleet:vars]' \
    'ansible_connection=local' 'ansible_python_interpreter=/usr/bin/python3' > "$T/hosts"
# roll BUILD: the example playbook as an operator runs it; its output also in $T/play
# (check's $T/last is overwritten by each check).
roll() {
    box env HOME="$T/home" ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false \
        "$AB/ansible-playbook" -i "$T/hosts" "$ROOT/contrib/fleet/upgrade.yml" \
        -e tend_hosts=fleet -e "tend_build=$T/builds/$1" \
        -e "tend_stage_dir=$T/stage" -e "tend_bin=$TEND" > "$T/play" 2>&1
    local rc=$?
    cat "$T/play"
    return $rc
}
# recap HOST CHANGED FAILED: the play recap line of HOST (a changed copy of the build and a
# changed upgrade count 2).
recap() {
    grep -E "^$1 +: ok=[0-9]+ +changed=$2 +unreachable=0 +failed=$3 " "$T/play" || { grep -A3 "PLAY RECAP" "$T/play"; false; }
}
# batches: "N host" for each host result line of the upgrade task, N counting that task's
# headers: serial 1 runs the task once per host, one batch after the other.
batches() {
    awk '/^TASK / { up = /^TASK \[tend upgrade/; n += up } up && /^(changed|ok|fatal): \[host-/ { h = $2; gsub(/[^a-z-]/, "", h); print n, h }' "$T/play"
}
failed_releases() { box "$TEND" history "$1" --json | jq '[.releases[] | select(.state == "failed")] | length'; }
releases() { box "$TEND" history "$1" --json | jq '.releases | length'; }

exits 0 "a good build rolls to both hosts" roll v2
check "  host-a changed (copy and upgrade)" recap host-a 2 0
check "  host-b changed" recap host-b 2 0
check "  one host per batch, host-a first" test "$(batches | tr '\n' ' ')" = "1 host-a 2 host-b "
check "  web-a serves v2" serves $PORT v2
check "  web-b serves v2" serves $((PORT + 1)) v2

exits 0 "the same build again" roll v2
check "  changes nothing on host-a (tend says unchanged)" recap host-a 0 0
check "  nor on host-b" recap host-b 0 0

hb=$(releases web-b)
exits 2 "a build that exits at start stops the roll (the play fails)" roll v3
shows "  with the build's last stderr line" "panic: cannot open database"
shows "  and that tend rolled back" "ROLLED BACK"
check "  host-a failed (after the copy)" recap host-a 1 1
fails "  host-b never ran" grep -E "^host-b +: ok=[1-9]" "$T/play"
check "  web-a serves v2 again (tend put it back)" serves $PORT v2
check "  web-b still serves v2" serves $((PORT + 1)) v2
check "  web-b's history is unchanged" test "$(releases web-b)" = "$hb"
check "  web-a's history has the failed release" test "$(failed_releases web-a)" = 1
