#!/usr/bin/env bash
# Checks the mock OpenRouter server with the official `openrouter` Python SDK
# (shared/tools/sdk_fidelity.py): starts `orbatch mock-server` on a free loopback port, runs the
# script against it, prints its report and exits with its status.
#
#   scripts/sdk_fidelity.sh [extra mock flags, e.g. --generation-lag-ms 500]
#
# Env: ORBATCH_SDK_PYTHON (default /tmp/orvenv/bin/python; the venv is created with
# `pip install openrouter==1.3.84` when missing), ORBATCH_SDK_FIDELITY_SCRIPT (default:
# shared/tools/sdk_fidelity.py beside the checkout, else /work/shared/tools/sdk_fidelity.py).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${ORBATCH_SDK_PYTHON:-/tmp/orvenv/bin/python}"
if ! "$PY" -c 'import openrouter' 2>/dev/null; then
    if [ -n "${ORBATCH_SDK_PYTHON:-}" ]; then
        echo "no openrouter SDK in $PY" >&2; exit 2
    fi
    echo "creating /tmp/orvenv with openrouter==1.3.84" >&2
    python3 -m venv /tmp/orvenv
    /tmp/orvenv/bin/pip install -q openrouter==1.3.84
    PY=/tmp/orvenv/bin/python
fi

SCRIPT="${ORBATCH_SDK_FIDELITY_SCRIPT:-}"
for s in "$SCRIPT" ../shared/tools/sdk_fidelity.py /work/shared/tools/sdk_fidelity.py; do
    if [ -n "$s" ] && [ -f "$s" ]; then SCRIPT="$s"; break; fi
done
[ -f "$SCRIPT" ] || { echo "sdk_fidelity.py not found" >&2; exit 2; }

cargo build -q --bin orbatch
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOG="$(mktemp)"
./target/debug/orbatch mock-server --addr "127.0.0.1:$PORT" "$@" 2>"$LOG" &
MOCK_PID=$!
trap 'kill "$MOCK_PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
    grep -q 'listening on' "$LOG" && break
    kill -0 "$MOCK_PID" 2>/dev/null || { cat "$LOG" >&2; exit 2; }
    sleep 0.1
done

set +e
"$PY" "$SCRIPT" --base-url "http://127.0.0.1:$PORT/api/v1" --key sk-or-v1-mock-key-1
rc=$?
exit "$rc"
