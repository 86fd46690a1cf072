#!/usr/bin/env bash
# The test command: ./scripts/test.sh [pytest args...]   (default: the whole suite)
#
# On a fresh Debian machine with Python 3.11+ it installs what the suite needs: uv
# (into .tools/uv), Mosquitto, PostgreSQL, openssl and systemd-analyze (apt-get, only
# when their binaries are absent), then the project's venv from uv.lock. The fixtures start their own broker
# and database cluster on free ports; system services are never used.
# Set MOCKMOCK_TEST_PG_DSN to test against an existing PostgreSQL instead.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_mosquitto() {
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]
}

have_postgres() {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    return 0
  fi
  for dir in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      return 0
    fi
  done
  return 1
}

missing=()
have_mosquitto || missing+=(mosquitto)
if [ -z "${MOCKMOCK_TEST_PG_DSN:-}" ] && ! have_postgres; then
  missing+=(postgresql)
fi
# The deploy tests: throwaway certificates, and `systemd-analyze verify` on the units
# (Debian's systemd package ships it; it needs no running systemd).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
fi

ensure_uv
log "uv: $UV_BIN ($("$UV_BIN" --version))"
uv_sync

cd "$REPO_ROOT"
output="$(mktemp)"
trap 'rm -f "$output"' EXIT

# Most tests wait on brokers, databases and child processes rather than the CPU, so
# the suite runs in MOCKMOCK_TEST_WORKERS pytest-xdist workers (default 3 on this
# 2-core machine kind; 0 turns xdist off), a test file per worker at a time (its
# module fixtures stay in one process). Each worker takes ports from its own block.
case "${MOCKMOCK_TEST_WORKERS:-3}" in
  '' | *[!0-9]* | ????*) die "MOCKMOCK_TEST_WORKERS: must be a whole number from 0 to 999, got '${MOCKMOCK_TEST_WORKERS}'" ;;
esac
workers=(-n "${MOCKMOCK_TEST_WORKERS:-3}" --dist loadfile)
for arg in "$@"; do
  case "$arg" in -n | -n* | --numprocesses* | no:xdist) workers=() ;; esac
done
if [ "${MOCKMOCK_TEST_WORKERS:-3}" = "0" ]; then
  workers=()
fi

log "pytest ${workers[*]} $*"
set +e
"$UV_BIN" run --no-sync pytest "${workers[@]}" "$@" 2>&1 | tee "$output"
status="${PIPESTATUS[0]}"
set -e

# pytest's closing line, e.g. "==== 3 failed, 40 passed, 2 skipped in 12.3s ====".
summary="$(sed 's/\x1b\[[0-9;]*m//g' "$output" \
  | grep -E '(passed|failed|error|skipped|deselected|no tests ran).* in [0-9.]+s' \
  | tail -n 1 || true)"
count() {
  local n
  n="$(printf '%s\n' "$summary" | grep -Eo "[0-9]+ $1\b" | grep -Eo '^[0-9]+' | tail -n 1 || true)"
  printf '%s' "${n:-0}"
}
passed="$(count passed)"
failed="$(($(count failed) + $(count 'errors?')))"
skipped="$(count skipped)"

verdict="ok"
if [ "$status" -eq 5 ]; then
  verdict="FAILED: pytest collected no tests"
  status=1
elif [ "$status" -ne 0 ]; then
  verdict="FAILED: pytest exited $status"
elif [ "$passed" -eq 0 ]; then
  verdict="FAILED: no test passed"
  status=1
fi
printf '==> %s\n' "$verdict" >&2
printf 'tests: %s passed, %s failed, %s skipped\n' "$passed" "$failed" "$skipped"
exit "$status"
