#!/usr/bin/env bash
# Run the whole test suite with its real parts: Debian's Chromium for the browser tests and a private
# PostgreSQL server on loopback for the queue tests (both installed and started here when missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The type check first: it needs no services, and a type error fails the run before they start.
.venv/bin/mypy

scripts/system-deps.sh

export COPILOT_TEST_PG_URL="$(scripts/postgres.sh)"
trap 'scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT
export COPILOT_TEST_CHROMIUM="${COPILOT_TEST_CHROMIUM:-$(command -v chromium || true)}"
mkdir -p test-output
.venv/bin/pytest -q --durations=15 --junitxml=test-output/junit.xml "$@"
