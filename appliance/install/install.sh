#!/bin/sh
# mockmock agent installer, served by the appliance at /agent/install.sh.
#
#   curl -sfL http://APPLIANCE:8383/agent/install.sh | sudo sh -s -- --token TOKEN
#
# Installs the agent from the appliance's own wheelhouse (/agent/wheels/: no package
# registry is needed, nor reachable in most labs), enrolls this board with the
# one-time TOKEN, and installs and starts the systemd unit mockmock-agent.service.
#
# Options:
#   --token TOKEN    one-time enrollment token (POST /api/v1/enrollment-tokens);
#                    not needed to upgrade a board that is already enrolled
#   --url URL        the appliance [default: where this script was downloaded from]
#   --capacity N     how many mocks this board offers [default: the agent's]
#   --prefix DIR     install into DIR without root, system user or systemd; the
#                    agent command is DIR/bin/mockmock-agent (needs --no-service)
#   --data-dir DIR   the agent's state [default: /var/lib/mockmock-agent, or
#                    DIR/data with --prefix]
#   --no-service     do not install or start the systemd unit
#   --python PY      Python 3.11+ to create the virtual environment with [python3]
#   --ca FILE        CA certificate of an https:// appliance with a private CA
#   --force          enroll again although this board is enrolled (new identity)
set -eu

MOCKMOCK_URL='__MOCKMOCK_URL__'
AGENT_VERSION='__AGENT_VERSION__'
SYSTEM_PREFIX=/opt/mockmock-agent
SYSTEM_DATA_DIR=/var/lib/mockmock-agent
SERVICE_USER=mockmock
UNIT_PATH=/etc/systemd/system/mockmock-agent.service

say() { printf 'mockmock: %s\n' "$*"; }
die() { printf 'mockmock: error: %s\n' "$*" >&2; exit 1; }
need_value() { [ "$#" -ge 2 ] && [ -n "$2" ] || die "$1: needs a value"; }
usage() {
    cat <<'USAGE'
usage: sh install.sh --token TOKEN [--url URL] [--capacity N] [--ca FILE] [--force]
                     [--prefix DIR --no-service] [--data-dir DIR] [--python PY]
USAGE
}

token=${MOCKMOCK_TOKEN:-}
url=$MOCKMOCK_URL
capacity=
prefix=
data_dir=
service=yes
python=python3
ca=
force=

while [ "$#" -gt 0 ]; do
    case "$1" in
        --token) need_value "$@"; token=$2; shift 2 ;;
        --url) need_value "$@"; url=$2; shift 2 ;;
        --capacity) need_value "$@"; capacity=$2; shift 2 ;;
        --prefix) need_value "$@"; prefix=$2; shift 2 ;;
        --data-dir) need_value "$@"; data_dir=$2; shift 2 ;;
        --no-service) service=no; shift ;;
        --python) need_value "$@"; python=$2; shift 2 ;;
        --ca) need_value "$@"; ca=$2; shift 2 ;;
        --force) force=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "$1: unknown option (see --help)" ;;
    esac
done

[ -n "$url" ] || die "--url: the appliance URL is needed (this script was not served by one)"
case "$url" in
    http://*|https://*) url=${url%/} ;;
    *) die "--url: $url is not an http:// or https:// URL" ;;
esac
case "$capacity" in
    ''|*[!0-9]*) [ -z "$capacity" ] || die "--capacity: $capacity is not a whole number" ;;
esac
if [ -n "$ca" ]; then
    [ -r "$ca" ] || die "--ca: cannot read $ca"
    case "$ca" in /*) ;; *) ca=$(pwd)/$ca ;; esac
fi

if [ -n "$prefix" ]; then
    # A private install: no root, no system user, no systemd.
    [ "$service" = no ] || die "--prefix: installs without systemd; add --no-service (or drop --prefix for a system install)"
    case "$prefix" in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
    [ -n "$data_dir" ] || data_dir=$prefix/data
    system=no
else
    [ "$(id -u)" -eq 0 ] || die "a system install needs root (sudo sh -s -- ...), or use --prefix DIR --no-service"
    prefix=$SYSTEM_PREFIX
    [ -n "$data_dir" ] || data_dir=$SYSTEM_DATA_DIR
    system=yes
fi
case "$data_dir" in /*) ;; *) data_dir=$(pwd)/$data_dir ;; esac
case "$prefix$data_dir" in
    *[!A-Za-z0-9/._-]*) die "--prefix/--data-dir: use letters, digits and / . _ - only" ;;
esac

# ---- Python and the virtual environment -------------------------------------------
command -v "$python" >/dev/null 2>&1 || die "--python: $python not found; install Python 3.11 or newer"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "--python: $python is older than 3.11; the agent needs 3.11 or newer"
"$python" -c 'import ensurepip, venv' 2>/dev/null \
    || die "--python: $python cannot create virtual environments (Debian, Raspberry Pi OS: apt install python3-venv)"

if [ "$system" = yes ] && ! id "$SERVICE_USER" >/dev/null 2>&1; then
    say "creating the system user $SERVICE_USER"
    if command -v useradd >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$data_dir" --no-create-home \
            --shell /usr/sbin/nologin --comment "mockmock agent" "$SERVICE_USER"
    else
        adduser --system --group --home "$data_dir" --no-create-home \
            --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
fi

mkdir -p "$prefix"
if [ ! -x "$prefix/bin/python" ]; then
    say "creating a virtual environment in $prefix"
    "$python" -m venv "$prefix"
fi

# ---- the agent, from the appliance's wheelhouse only ---------------------------------
say "installing mockmock-agent $AGENT_VERSION from $url/agent/wheels/"
# --isolated: no pip configuration or PIP_* variable may add a registry;
# --no-index: nothing but the appliance's wheelhouse is consulted.
set -- --isolated --disable-pip-version-check install --quiet --no-index \
    --find-links "$url/agent/wheels/" --upgrade
[ -z "$ca" ] || set -- "$@" --cert "$ca"
"$prefix/bin/python" -m pip "$@" "mockmock-agent==$AGENT_VERSION" \
    || die "installing the agent from $url/agent/wheels/ failed (see pip's message above)"
agent=$prefix/bin/mockmock-agent
[ -x "$agent" ] || die "$agent was not installed"

# ---- enrollment ------------------------------------------------------------------------
mkdir -p "$data_dir"
chmod 700 "$data_dir"
if [ -f "$data_dir/agent.json" ] && [ -z "$force" ]; then
    say "already enrolled ($data_dir/agent.json); --force enrolls again as a new agent"
else
    [ -n "$token" ] || die "--token: an enrollment token is needed (POST /api/v1/enrollment-tokens)"
    set -- enroll "$url" "$token" --data-dir "$data_dir"
    [ -z "$capacity" ] || set -- "$@" --capacity "$capacity"
    [ -z "$ca" ] || set -- "$@" --ca "$ca"
    [ -z "$force" ] || set -- "$@" --force
    "$agent" "$@" || die "enrollment failed (see the message above)"
fi
if [ "$system" = yes ]; then
    chown -R "$SERVICE_USER:$SERVICE_USER" "$data_dir"
fi

# ---- the service -----------------------------------------------------------------------
if [ "$service" = no ]; then
    say "installed; run it with: $agent run --data-dir $data_dir"
    exit 0
fi
command -v systemctl >/dev/null 2>&1 \
    || die "systemd not found; rerun with --no-service and start: $agent run --data-dir $data_dir"
say "installing $UNIT_PATH"
tmp_unit=$UNIT_PATH.tmp.$$
cat >"$tmp_unit" <<'MOCKMOCK_UNIT'
__AGENT_UNIT__
MOCKMOCK_UNIT
if [ "$data_dir" != "$SYSTEM_DATA_DIR" ]; then
    # A state directory elsewhere: point the unit at it and let it write there.
    sed -e "s#$SYSTEM_DATA_DIR#$data_dir#g" -e "/^StateDirectoryMode=/a\\
ReadWritePaths=$data_dir" "$tmp_unit" >"$tmp_unit.2"
    mv "$tmp_unit.2" "$tmp_unit"
fi
chmod 644 "$tmp_unit"
mv "$tmp_unit" "$UNIT_PATH"
systemctl daemon-reload
systemctl enable mockmock-agent.service
systemctl restart mockmock-agent.service
say "mockmock-agent.service is running; logs: journalctl -u mockmock-agent -f"
