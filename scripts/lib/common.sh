# shellcheck shell=bash disable=SC2034
# Shared by scripts/dist, scripts/dist-setup and scripts/dist-check (sourced, not run).
# The pinned tool versions live here and nowhere else.

# cargo auditable embeds the dependency list (the SBOM) into both binaries.
CARGO_AUDITABLE_VERSION=0.7.7
MUSL=x86_64-unknown-linux-musl
WIN=x86_64-pc-windows-gnu
WINCROSS_HOME=${WINCROSS_HOME:-/opt/wincross}
# Where scripts/musl-std puts the musl std it builds when rustup cannot add the target.
TEND_MUSL_HOME=${TEND_MUSL_HOME:-/opt/tend-musl}
# The Python packages (jsonschema, PyYAML, the published winget and Scoop schemas) for the
# manifest checks, in a venv of their own.
DIST_VENV=${DIST_VENV:-${ROOT:?}/target/dist-venv}

_T0=${_T0:-$SECONDS}
log() { printf '[%s +%3ds] %s\n' "$(basename "$0")" "$((SECONDS - _T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# need_cmd CMD... : each must be on PATH, else say how to get it.
need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 && continue
        case $c in
            minisign | osslsigncode | lintian | dpkg-deb | file | unzip | python3)
                die "'$c' is missing: run scripts/dist-setup as root (or apt-get install $c)" ;;
            readelf | objdump | objcopy)
                die "'$c' is missing: run scripts/dist-setup as root (or apt-get install binutils)" ;;
            cargo-win)
                die "'cargo-win' is missing: run ../shared/wincross/setup-windows-cross.sh as root" ;;
            *) die "'$c' is missing: run scripts/dist-setup as root" ;;
        esac
    done
}

# auditable_version: the installed cargo-auditable's version (it has no --version of its
# own: `cargo auditable --version` is cargo's), or nothing.
auditable_version() {
    command -v cargo-auditable >/dev/null 2>&1 || return 0
    cargo install --list 2>/dev/null | awk '$1 == "cargo-auditable" {sub(/^v/, "", $2); sub(/:$/, "", $2); print $2}'
}

need_auditable() {
    local have
    have=$(auditable_version)
    [ "$have" = "$CARGO_AUDITABLE_VERSION" ] ||
        die "cargo-auditable $CARGO_AUDITABLE_VERSION is needed (found '${have:-none}'): run scripts/dist-setup"
}

# setup_musl: sets MUSL_CARGO and MUSL_RUSTC (arrays) to the cargo and rustc that build for
# $MUSL. rustup's prebuilt std when it has it or can add it; else the std that
# scripts/musl-std builds from Debian's rust-web-src (Debian's rustc, like cargo-win).
# TEND_MUSL_STD=debian forces the second way (to test it, or to build without rustup).
setup_musl() {
    if [ "${TEND_MUSL_STD:-}" != debian ] && {
        rustup target list --installed 2>/dev/null | grep -qx "$MUSL" ||
            timeout 300 rustup target add "$MUSL" >/dev/null 2>&1
    }; then
        # rustup's own rustc by full path: /opt/wincross/env.sh puts a `rustc` (Debian's,
        # with the Windows sysroot) first on PATH, and cargo would pick that one.
        local rustc
        rustc=$(rustup which rustc) || die "rustup which rustc failed"
        MUSL_CARGO=(env "RUSTC=$rustc" "$(rustup which cargo)")
        MUSL_RUSTC=("$rustc")
        return
    fi
    log "using the $MUSL std built from Debian's rust-web-src (rustup cannot add it, or TEND_MUSL_STD=debian)"
    if [ ! -x "$TEND_MUSL_HOME/bin/rustc" ]; then
        bash "$ROOT/scripts/musl-std" || die "scripts/musl-std failed"
    fi
    MUSL_CARGO=(env "RUSTC=$TEND_MUSL_HOME/bin/rustc" "PATH=/usr/bin:$PATH" /usr/bin/cargo)
    MUSL_RUSTC=("$TEND_MUSL_HOME/bin/rustc")
}

setup_wincross() {
    if ! command -v cargo-win >/dev/null 2>&1; then
        [ -f "$WINCROSS_HOME/env.sh" ] ||
            die "the Windows cross toolchain is missing: run ../shared/wincross/setup-windows-cross.sh as root"
        # shellcheck disable=SC1091
        . "$WINCROSS_HOME/env.sh"
    fi
    need_cmd cargo-win
}

# venv_python: the Python of the dist venv (scripts/dist-setup makes it).
venv_python() {
    [ -x "$DIST_VENV/bin/python" ] || die "no Python venv at $DIST_VENV: run scripts/dist-setup"
    echo "$DIST_VENV/bin/python"
}
