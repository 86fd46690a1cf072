#!/usr/bin/env bash
# Installs uv when absent and the project's venv, so that .venv/bin/mockmock exists:
#
#   ./scripts/bootstrap.sh && .venv/bin/mockmock up
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_uv
log "uv: $UV_BIN ($("$UV_BIN" --version))"
uv_sync
[ -x "$REPO_ROOT/.venv/bin/mockmock" ] || die ".venv/bin/mockmock is missing after uv sync"
log "ready: $REPO_ROOT/.venv/bin/mockmock"
