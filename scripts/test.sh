#!/usr/bin/env bash
# Set up a virtual environment and run every check: format, lint, types, layers, tests.
# Usage: ./scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests drive besides Python, from Debian's packages when missing (as root):
# curl and hey for end-to-end and benchmark transfers, nginx for the deployment example
# and the benchmark, Node.js and npm for tus-js-client, Chromium for the browser tests,
# unzip, bsdtar and 7z for checking streamed ZIP archives.
missing=()
for tool in curl hey nginx; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v unzip >/dev/null || missing+=(unzip)
command -v bsdtar >/dev/null || missing+=(libarchive-tools)
command -v 7z >/dev/null || missing+=(p7zip-full)
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

# The same code on the lowest crypto dependencies pyproject.toml allows, in a virtual
# environment of its own: a floor that is declared but not run is a guess. Runs the
# crypto, key and file tests (end to end on SQLite and local disk).
floor() { sed -nE "s/^ *\"$1>=([0-9.]+)\".*/\1/p" pyproject.toml; }
crypto_floor=$(floor cryptography)
argon2_floor=$(floor argon2-cffi)
python3 -m venv .venv-floor
.venv-floor/bin/pip install --quiet --only-binary=cryptography,argon2-cffi,argon2-cffi-bindings -e . pytest pytest-timeout hypothesis \
    "cryptography==$crypto_floor" "argon2-cffi==$argon2_floor" "argon2-cffi-bindings==21.2.0"
.venv-floor/bin/python - "$crypto_floor" "$argon2_floor" <<'PY'
import sys
from importlib.metadata import version
installed = (version("cryptography"), version("argon2-cffi"))
assert all(i == f or i.startswith(f + ".0") for i, f in zip(installed, sys.argv[1:])), installed
print("lowest crypto dependencies: cryptography %s, argon2-cffi %s" % installed)
PY
.venv-floor/bin/python -m pytest -q -p no:cacheprovider \
    tests/unit/test_stream.py tests/unit/test_keys.py tests/unit/test_secrecy.py tests/unit/test_file_service.py \
    "tests/integration/test_files_api.py" -k "not postgres-s3"
