#!/usr/bin/env bash
# Set up a virtual environment and run every check: format, lint, types, layers, tests.
# Usage: ./scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests drive besides Python, from Debian's packages when missing (as root):
# curl and hey for end-to-end and benchmark transfers, nginx for the deployment example
# and the benchmark, Node.js and npm for tus-js-client, Chromium for the browser tests.
missing=()
for tool in curl hey nginx; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing: ${missing[*]} (install them with apt-get, or run this as root)" >&2
        exit 1
    fi
fi

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
