# The tend.tend Ansible collection (contrib/ansible) against localhost inside the box, with
# ansible-core from PyPI (pinned; tests/systemd/ansible-setup installs it, .ci/run calls
# that): the first run installs and reports changed, the second reports ok and touches
# nothing, check mode with an edit reports changed and changes nothing (diff mode shows the
# line), the edit applies, a bad config fails the task with tend's own error, settings as a
# dictionary work, and absent removes (then ok).
PORT=18671
AB=$ROOT/target/ansible-venv/bin
if [ ! -x "$AB/ansible-playbook" ]; then
    echo "SKIP: no ansible-core in $AB (run tests/systemd/ansible-setup)"
    return 0 2>/dev/null || exit 0
fi

mkdir -p "$T/src" "$T/home" "$T/conf"
chmod 755 "$T/src" "$T/conf"
# src NAME [extra toml lines...]: the operator's config for the Go server, as TOML text.
src() {
    local name=$1; shift
    { echo "name = \"$name\""
      echo "command = [\"$GOSVC\", \"-port\", \"$PORT\"]"
      echo '[stop]'
      echo 'signal = "SIGINT"'
      echo '[health]'
      echo "http = \"http://127.0.0.1:$PORT/health\""
      echo 'interval = "1s"'
      echo 'start_period = "10s"'
      for l in "$@"; do echo "$l"; done; } > "$T/src/$name.toml"
}
cat > "$T/web.yml" <<YAML
- hosts: localhost
  gather_facts: false
  tasks:
    - name: web under tend
      tend.tend.tend_service:
        name: web
        content: "{{ lookup('file', '$T/src/web.toml') }}"
        config_dir: $T/conf
        state: started
        wait: true
        tend: $TEND
YAML
cat > "$T/api.yml" <<YAML
- hosts: localhost
  gather_facts: false
  tasks:
    - name: api from a dictionary
      tend.tend.tend_service:
        name: api
        settings:
          command: ["$GOSVC", "-port", "$((PORT + 1))"]
          stop:
            signal: SIGINT
          env:
            GREETING: "hello from ansible"
        config_dir: $T/conf
        state: started
        wait: true
        tend: $TEND
YAML
cat > "$T/absent.yml" <<YAML
- hosts: localhost
  gather_facts: false
  tasks:
    - name: web gone
      tend.tend.tend_service:
        name: web
        state: absent
        config_dir: $T/conf
        tend: $TEND
YAML
# play FILE [ansible-playbook options...]: in the box, output in $T/last.
play() {
    local f=$1; shift
    box env HOME="$T/home" ANSIBLE_COLLECTIONS_PATH="$ROOT/contrib/ansible" \
        ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
        "$AB/ansible-playbook" -i localhost, -c local -e ansible_python_interpreter=/usr/bin/python3 "$@" "$f"
}
recap() { grep -E "^localhost +: ok=[0-9]+ +changed=$1 +unreachable=0 +failed=$2 " "$T/last"; }
stamp() {
    local t p f
    t=$(main_pid "$1"); p=$(box pgrep -P "$t")
    f=$(box stat -c %y "/etc/systemd/system/$1.service" "/etc/tend/$1.toml" "$T/conf/$1.toml") || f=MISSING
    echo "$f tend=${t:-MISSING} prog=${p:-MISSING}" | tr '\n' ' '
}
# listed NAME STATE: tend list --json has NAME in STATE.
listed() {
    box "$TEND" list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(s["name"]==sys.argv[1] and s["state"]==sys.argv[2] for s in d["services"]) else 1)' "$1" "$2"
}
only_api() {
    [ "$(box "$TEND" list --json | python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["services"]))')" = api ]
}
program_is() { [ "$(box pgrep -P "$(main_pid "$1")")" = "$2" ]; }
same() { local now; now=$(stamp "$1"); [ "$now" = "$2" ] && case $2 in *MISSING*|*tend=0*) false ;; esac; }

check "ansible-doc shows the module's documentation" bash -c \
    "ANSIBLE_COLLECTIONS_PATH='$ROOT/contrib/ansible' HOME='$T/home' '$AB/ansible-doc' tend.tend.tend_service | grep -q 'tend apply --json'"

src web
exits 0 "first run: web installed and started (waits for healthy)" play "$T/web.yml"
check "  changed=1" recap 1 0
check "  web serves" http_ok $PORT
check "  tend list --json: web running" listed web running

sw=$(stamp web)
exits 0 "second run: nothing to do" play "$T/web.yml"
check "  changed=0 (ok)" recap 0 0
check "  unit, config copy, source file, tend and the program untouched" same web "$sw"

src web '[restart]' 'delay = "2s"'
exits 0 "check mode with an edit" play "$T/web.yml" --check --diff
shows "  diff mode shows the changed line (unified diff)" '+delay = "2s"'
check "  reports changed" recap 1 0
check "  and nothing changed" same web "$sw"
check "  the source file is as it was" bash -c "! grep -q delay '$T/conf/web.toml'"

pw=$(box pgrep -P "$(main_pid web)")
exits 0 "the edit applies" play "$T/web.yml"
check "  changed=1" recap 1 0
check "  the installed copy has it" box grep -q 'delay = "2s"' /etc/tend/web.toml
check "  applied live: the same program (pid $pw)" program_is web "$pw"

sw=$(stamp web)
src web '[restart]' 'delay = "soon"'
exits 2 "a bad config fails the task" play "$T/web.yml"
shows "  with tend's own error (the key)" 'restart.delay'
check "  failed=1" recap 0 1
check "  and nothing changed" same web "$sw"
src web '[restart]' 'delay = "2s"'

exits 0 "settings as a dictionary: api installed" play "$T/api.yml"
check "  changed=1" recap 1 0
check "  api serves" http_ok $((PORT + 1))
check "  its env came through" box grep -q 'GREETING = "hello from ansible"' /etc/tend/api.toml
exits 0 "  again: ok" play "$T/api.yml"
check "  changed=0" recap 0 0

exits 0 "absent: web removed" play "$T/absent.yml"
check "  changed=1" recap 1 0
fails "  the unit is gone" box test -e /etc/systemd/system/web.service
check "  tend list has api only" only_api
exits 0 "absent again: ok" play "$T/absent.yml"
check "  changed=0" recap 0 0
