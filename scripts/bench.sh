#!/usr/bin/env bash
# Throughput, CPU per request and peak memory of `orbatch run` against the built-in mock,
# run as a separate process (so its CPU is not counted as orbatch's).
#
#   scripts/bench.sh [ROWS=10000] [LATENCY_MS=0] [CONCURRENCY=64]
#   BIG=1000000 scripts/bench.sh          # also the peak-memory run over BIG rows
#
# Prints one line per run: rows, wall seconds, requests/s, CPU (user+sys) per request in us
# (start-up included), and peak RSS in MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000}"
LATENCY="${2:-0}"
CONC="${3:-64}"
BIN=target/release/orbatch
cargo build --release -q
WORK="$(mktemp -d)"
trap 'kill "${MOCK_PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

gen() { # gen N FILE: a JSONL of N prompts of varied length
    python3 scripts/bench-input.py "$1" "$2"
}

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$BIN" mock-server --addr "127.0.0.1:$PORT" --no-log --latency-ms "$LATENCY" 2>"$WORK/mock.log" &
MOCK_PID=$!
for _ in $(seq 50); do grep -q listening "$WORK/mock.log" && break; sleep 0.1; done

run() { # run N: one measured run over N rows
    local n="$1" input="$WORK/in-$1.jsonl" out="$WORK/out-$1"
    [ -f "$input" ] || gen "$n" "$input"
    rm -rf "$out"
    OPENROUTER_API_KEY=sk-or-v1-mock-bench /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
        "$BIN" run --input "$input" --model openai/gpt-4o-mini --max-tokens 16 \
        --base-url "http://127.0.0.1:$PORT/api/v1" --output-dir "$out" \
        --concurrency "$CONC" --no-progress --json >"$WORK/summary.json" 2>"$WORK/run.log" \
        || { cat "$WORK/run.log" >&2; exit 1; }
    read -r wall user sys rss <"$WORK/time"
    python3 - "$n" "$wall" "$user" "$sys" "$rss" "$WORK/summary.json" <<'PY'
import json, sys
n, wall, user, sys_, rss, summ = int(sys.argv[1]), *map(float, sys.argv[2:6]), sys.argv[6]
s = json.load(open(summ))
assert s["rows"]["ok"] == n, s["rows"]
print(f"rows={n} latency_ms={__import__('os').environ.get('LATENCY','?')} wall={wall:.2f}s "
      f"req/s={n / wall:.0f} cpu/request={(user + sys_) / n * 1e6:.1f}us "
      f"(user {user:.2f}s sys {sys_:.2f}s) peak_rss={rss / 1024:.1f}MiB")
PY
}

export LATENCY
run "$ROWS"
if [ -n "${BIG:-}" ]; then run "$BIG"; fi
