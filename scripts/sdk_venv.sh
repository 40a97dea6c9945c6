#!/usr/bin/env bash
# Prints the path of a Python that can `import openrouter` (the official OpenRouter SDK), setting
# one up when needed: $ORBATCH_SDK_PYTHON if set, else a venv at ${TMPDIR:-/tmp}/orbatch-sdk-venv
# (created with `pip install openrouter==1.3.84`; PyPI must be reachable the first time).
# Exits 1, saying why on stderr, when no such Python can be had.
#
#   PY="$(scripts/sdk_venv.sh)"
set -uo pipefail

SDK_VERSION=1.3.84
if [ -n "${ORBATCH_SDK_PYTHON:-}" ]; then
    if "$ORBATCH_SDK_PYTHON" -c 'import openrouter' 2>/dev/null; then
        echo "$ORBATCH_SDK_PYTHON"; exit 0
    fi
    echo "ORBATCH_SDK_PYTHON=$ORBATCH_SDK_PYTHON cannot import openrouter" >&2; exit 1
fi

VENV="${TMPDIR:-/tmp}/orbatch-sdk-venv"
if "$VENV/bin/python" -c 'import openrouter' 2>/dev/null; then
    echo "$VENV/bin/python"; exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "no python3 on PATH: cannot set up the openrouter SDK" >&2; exit 1
fi
echo "setting up $VENV with openrouter==$SDK_VERSION" >&2
rm -rf "$VENV"
if ! python3 -m venv "$VENV" >&2; then
    echo "python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2; exit 1
fi
for attempt in 1 2 3; do
    if timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check \
        "openrouter==$SDK_VERSION" >&2; then
        break
    fi
    echo "pip install failed (attempt $attempt of 3)" >&2
    sleep $((attempt * 5))
done
if "$VENV/bin/python" -c 'import openrouter' 2>/dev/null; then
    echo "$VENV/bin/python"; exit 0
fi
echo "could not install openrouter==$SDK_VERSION into $VENV" >&2
exit 1
