#!/usr/bin/env bash
# Checks the mock OpenRouter server with the official `openrouter` Python SDK
# (scripts/sdk_fidelity.py): starts `orbatch mock-server` on a free loopback port, runs the
# script against it, prints its report and exits with its status.
#
#   scripts/sdk_fidelity.sh [extra mock flags, e.g. --generation-lag-ms 500]
#
# The Python comes from scripts/sdk_venv.sh ($ORBATCH_SDK_PYTHON, else a venv it sets up).
# `cargo test --test mock_server sdk_fidelity` runs the same script against an in-process mock.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="$(scripts/sdk_venv.sh)" || exit 2

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
"$PY" scripts/sdk_fidelity.py --base-url "http://127.0.0.1:$PORT/api/v1" --key sk-or-v1-mock-key-1
rc=$?
exit "$rc"
