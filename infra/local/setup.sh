#!/usr/bin/env bash
# Idempotent set-up for a Debian/Ubuntu machine: the tools the local stack runs (redis-server,
# a Java 17+ runtime, Maven) and the project's virtualenv. Safe to run again: it installs only
# what is missing, runs `apt-get update` only when it has something to install, and reinstalls
# the virtualenv's packages only when pyproject.toml or the lock changed. Python packages come
# from infra/local/requirements.lock (exact versions, the ones CI tests), installed with uv
# (pinned below): seconds instead of pip's minutes of resolving. Uses sudo only when not root.
set -euo pipefail

cd "$(dirname "$0")/../.."
VENV=.venv
STAMP="$VENV/.pyproject.sha256"
LOCK=infra/local/requirements.lock
UV_VERSION=0.13.9

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and sudo is missing: run as root or install sudo"
    SUDO=sudo
fi

java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.\{0,1\}\([0-9]*\).*/\1 \2/p' | head -1 |
        awk '{ print ($1 == 1) ? $2 : $1 }'
}

# 1. System packages ---------------------------------------------------------------------
packages=()
command -v redis-server >/dev/null || packages+=(redis-server)
if ! command -v java >/dev/null; then
    packages+=(JAVA)
elif [ "$(java_major)" -lt 17 ] 2>/dev/null; then
    log "warning: $(command -v java) is Java $(java_major); the stack needs 17+ (it will say so)"
fi
command -v mvn >/dev/null || packages+=(maven)
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)

if [ ${#packages[@]} -gt 0 ]; then
    command -v apt-get >/dev/null ||
        die "missing ${packages[*]} and apt-get is not available: install them yourself (see docs/local-stack.md)"
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get update (to install: ${packages[*]})"
    $SUDO apt-get update -qq
    for i in "${!packages[@]}"; do
        if [ "${packages[$i]}" = JAVA ]; then
            # Debian 12 ships openjdk-17; elsewhere the distribution's default runtime is 17+.
            if apt-cache show openjdk-17-jre-headless >/dev/null 2>&1; then
                packages[$i]=openjdk-17-jre-headless
            else
                packages[$i]=default-jre-headless
            fi
        fi
    done
    log "apt-get install ${packages[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    if [[ " ${packages[*]} " == *" redis-server "* ]]; then
        # The package starts a server on 6379. The stack runs its own on other ports and
        # does not need it: stop it and keep it from starting at boot.
        if [ -d /run/systemd/system ]; then
            $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
        elif command -v service >/dev/null; then
            $SUDO service redis-server stop >/dev/null 2>&1 || true
        fi
        log "stopped the distribution's redis-server service (port 6379); the stack runs its own"
    fi
else
    log "system packages present: redis-server, java, mvn"
fi

# 2. Python virtualenv -------------------------------------------------------------------
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "Python 3.11+ is required, found $(python3 --version 2>&1)"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
want="$(cat pyproject.toml "$LOCK" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    if [ "$("$VENV/bin/uv" --version 2>/dev/null)" != "uv $UV_VERSION" ]; then
        log "installing uv $UV_VERSION into $VENV (pip, from PyPI)"
        "$VENV/bin/python" -m pip install -q "uv==$UV_VERSION" ||
            die "could not install uv from PyPI: check the network or a proxy (PIP_INDEX_URL)"
    fi
    log "installing the project into $VENV (uv pip install -c $LOCK -e '.[dev]')"
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" -c "$LOCK" -e '.[dev]'
    echo "$want" > "$STAMP"
else
    log "$VENV is up to date with pyproject.toml"
fi

# 3. Toxiproxy, for the fault-injection suite (make chaos, tests/chaos): a Go binary. ----------
TOXIPROXY=.tools/toxiproxy-server
if [ ! -x "$TOXIPROXY" ] && ! command -v toxiproxy-server >/dev/null; then
    if command -v go >/dev/null; then
        log "go install toxiproxy (for make chaos)"
        mkdir -p .tools
        GOBIN="$PWD/.tools" go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0 &&
            mv .tools/server "$TOXIPROXY" ||
            log "warning: could not install toxiproxy; make chaos and tests/chaos will say so"
    else
        log "warning: no Go toolchain: install toxiproxy-server for make chaos (docs/chaos.md)"
    fi
fi

# 4. Optional: Chromium (Debian's `chromium`), only for the consistency checker's status-page
#    test (tests/integration/test_consistency.py skips that test without it). ----------------
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
    log "apt-get install chromium (for the status-page test)"
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
        log "warning: could not install chromium; the status-page test will be skipped"
fi

# 4. Tools for the offline deployment checks (Helm, Terraform, promtool, checkov...): see
#    infra/local/install-tools.sh. SETUP_DEPLOY_TOOLS=0 skips them (their tests then skip).
if [ "${SETUP_DEPLOY_TOOLS:-1}" != 0 ]; then
    infra/local/install-tools.sh
fi
