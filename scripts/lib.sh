# shellcheck shell=bash
# Helpers shared by scripts/*.sh. Sourced, never run on its own.
#
# Sets REPO_ROOT and offers: log, die, as_root, apt_install, ensure_uv (sets UV_BIN),
# uv_sync.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$REPO_ROOT/.tools"
PYTHON="${PYTHON:-python3}"
UV_BIN=""
# uv must use the machine's Python (3.11+), never fetch one of its own.
export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"

log() {
  printf '==> %s\n' "$*" >&2
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "root or sudo is needed to run: $*"
  fi
}

_apt_updated=0

# apt_install PACKAGE...: Debian packages, without recommends, non-interactively.
apt_install() {
  command -v apt-get >/dev/null 2>&1 \
    || die "apt-get not found: install these by hand, then re-run: $*"
  if [ "$_apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _apt_updated=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@"
}

# ensure_uv: finds uv (PATH, then .tools/uv), else installs it into .tools/uv, a
# private venv of the machine's Python. Sets UV_BIN.
ensure_uv() {
  if command -v uv >/dev/null 2>&1; then
    UV_BIN="$(command -v uv)"
    return 0
  fi
  local venv="$TOOLS_DIR/uv"
  if [ -x "$venv/bin/uv" ]; then
    UV_BIN="$venv/bin/uv"
    return 0
  fi
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: Python 3.11+ is required"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1): Python 3.11+ is required"
  log "uv not found: installing it into .tools/uv"
  mkdir -p "$TOOLS_DIR"
  if ! "$PYTHON" -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv/ensurepip separately from python3.
    rm -rf "$venv"
    local minor
    minor="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install "python${minor}-venv" || apt_install python3-venv
    "$PYTHON" -m venv "$venv" || die "could not create a venv with $PYTHON"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv \
    || die "could not install uv with pip"
  UV_BIN="$venv/bin/uv"
}

# uv_sync: the project's venv (.venv) with every extra and the dev group, from the lock.
uv_sync() {
  [ -n "$UV_BIN" ] || ensure_uv
  if [ -f "$REPO_ROOT/uv.lock" ]; then
    (cd "$REPO_ROOT" && "$UV_BIN" sync --all-extras --frozen)
  else
    log "uv.lock is missing: resolving afresh"
    (cd "$REPO_ROOT" && "$UV_BIN" sync --all-extras)
  fi
}
