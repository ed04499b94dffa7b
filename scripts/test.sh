#!/usr/bin/env bash
# Set up a virtual environment and run every check: format, lint, types, layers, tests.
# Usage: ./scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[test]'
# tus-js-client for the interop tests (tests/interop/package-lock.json).
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
.venv/bin/ruff format --check src tests bench
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/pytest "$@"
