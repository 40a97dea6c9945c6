#!/usr/bin/env bash
# orbatch against the bare-HTTP floor (examples/http_floor.rs), side by side in one invocation.
#
#   scripts/bench-floor.sh                      # 10,000 requests, 3 repetitions
#   ROWS=10000 REPS=5 CONCS="40 256" LATENCIES="50 0" scripts/bench-floor.sh
#   CACHE=1 scripts/bench-floor.sh              # also orbatch with the response cache on
#   CALLGRIND=1 ROWS=2000 scripts/bench-floor.sh  # instruction counts instead of CPU time
#
# CALLGRIND=1 runs each program under `valgrind --tool=callgrind` and reports instructions
# (Ir, all threads) per request instead of CPU time: on a busy machine (other builds running)
# CPU time is noisy, instruction counts are not. Wall time and RSS are then valgrind's.
#   BIG=1000000 scripts/bench-floor.sh          # also the large-job figures (see below)
#   BIG=1000000 REPS=0 scripts/bench-floor.sh   # only the large-job figures
#
# For each mock latency (LATENCIES, ms) the mock runs as its own process (its CPU is not
# counted). For each concurrency (CONCS), REPS repetitions alternate: orbatch with
# --no-cache over its default (direct, hyper) chat transport, the same with
# ORBATCH_HTTP=reqwest, then the two floors (examples/http_floor.rs over reqwest and over
# hyper), so a noisy neighbour hits all four alike; CACHE=1 adds orbatch with the cache on (a
# fresh cache dir: every request a miss and an insert). Each run prints CPU (user+sys) per
# request in us (start-up included), wall seconds and peak RSS; the end table gives
# min/median/max of each, and each orbatch variant's ratio of CPU per request to each floor,
# repetition by repetition. The target is a median ratio <= 1.15 for `--no-cache` (the floor
# caches nothing, so that is the fair comparison).
#
# BIG=N adds the large-job figures over N rows (1,000,000 in the README): the validation scan
# (`orbatch validate`, the same scan `run` makes before its first request), the whole run,
# and the resume of the finished output dir (recovery of the N-line results.jsonl, then the
# end files: compaction, results.csv, summary.json), each with its syscall count (strace -c,
# when strace is installed) so per-row syscalls show, and orbatch's own debug lines timing
# the end of the run (from the last answer to summary.json); then a job whose answers are 90%
# refusals and its resume, whose recovery holds a prior for each failed key (memory).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-10000}"
REPS="${REPS:-3}"
CONCS="${CONCS:-40 256}"
LATENCIES="${LATENCIES:-50 0}"
BIN=target/release/orbatch
FLOOR=target/release/examples/http_floor
cargo build --release -q --bin orbatch --example http_floor
WORK="$(mktemp -d)"
MOCK_PID=
cleanup() {
    if [ -n "$MOCK_PID" ]; then kill -KILL "$MOCK_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
export OPENROUTER_API_KEY=sk-or-v1-mock-bench
RESULTS="$WORK/results.tsv" # kind latency conc rep requests wall user sys rss_kib

gen() { # gen N FILE: a JSONL of N prompts of varied length
    python3 scripts/bench-input.py "$1" "$2"
}

start_mock() { # start_mock LATENCY_MS [MOCK FLAGS...]: a mock process on a free port; sets PORT, MOCK_PID
    # The mock takes SIGTERM as a graceful stop that waits for idle connections: kill it.
    if [ -n "$MOCK_PID" ]; then kill -KILL "$MOCK_PID" 2>/dev/null || true; wait "$MOCK_PID" 2>/dev/null || true; fi
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "$BIN" mock-server --addr "127.0.0.1:$PORT" --no-log --latency-ms "$1" "${@:2}" 2>"$WORK/mock.log" &
    MOCK_PID=$!
    for _ in $(seq 100); do grep -q listening "$WORK/mock.log" && return; sleep 0.1; done
    echo "the mock did not start" >&2
    exit 1
}

METRIC="cpu/req us"
WRAP=()
if [ -n "${CALLGRIND:-}" ]; then
    METRIC="Ir/req"
    WRAP=(valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out")
fi

timed() { # timed KIND LAT CONC REP N CMD...: runs CMD under /usr/bin/time, records a row
    local kind="$1" lat="$2" conc="$3" rep="$4" n="$5" rc=0
    shift 5
    # Exit 1 is a run with failed rows (the mostly-failed job below): its figures still count.
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "${WRAP[@]}" "$@" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
    if [ "$rc" -gt 1 ]; then echo "$kind failed ($rc):" >&2; cat "$WORK/stderr" >&2; exit 1; fi
    # The last line: GNU time writes "Command exited with non-zero status N" above it.
    read -r wall user sys rss < <(tail -n 1 "$WORK/time")
    if [ -n "${CALLGRIND:-}" ]; then # instructions, in millions, as "user" (sys 0)
        user="$(awk '/^(summary|totals):/ { print $2 / 1e6; exit }' "$WORK/callgrind.out")"
        sys=0
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$lat" "$conc" "$rep" "$n" \
        "$wall" "$user" "$sys" "$rss" >>"$RESULTS"
    awk -v k="$kind" -v l="$lat" -v c="$conc" -v r="$rep" -v n="$n" -v w="$wall" -v u="$user" \
        -v s="$sys" -v m="$rss" -v metric="$METRIC" 'BEGIN { printf "%-16s latency=%-3s conc=%-4s rep=%s %s=%6.1f wall=%6.2fs rss=%5.1fMiB\n", k, l, c, r, metric, (u + s) / n * 1e6, w, m / 1024 }'
}

orbatch_run() { # orbatch_run N CONC OUT: sets RUN to the command of one run over N rows
    RUN=("$BIN" run --input "$WORK/in-$1.jsonl" --model openai/gpt-4o-mini --max-tokens 16
        --base-url "http://127.0.0.1:$PORT/api/v1" --output-dir "$3"
        --concurrency "$2" --no-progress --json)
}

check_ok() { # check_ok N SUMMARY: every row answered
    python3 -c 'import json,sys; s=json.load(open(sys.argv[2])); assert s["rows"]["ok"] == int(sys.argv[1]), s["rows"]' "$1" "$2"
}

if [ "$REPS" -gt 0 ]; then
gen "$ROWS" "$WORK/in-$ROWS.jsonl"
echo "# $ROWS requests per run, $REPS repetitions, concurrency $CONCS, mock latency $LATENCIES ms"
for lat in $LATENCIES; do
    start_mock "$lat"
    for conc in $CONCS; do
        for rep in $(seq "$REPS"); do
            rm -rf "$WORK/out" "$WORK/cache"
            orbatch_run "$ROWS" "$conc" "$WORK/out"
            timed orbatch "$lat" "$conc" "$rep" "$ROWS" "${RUN[@]}" --no-cache
            check_ok "$ROWS" "$WORK/stdout"
            rm -rf "$WORK/out"
            (export ORBATCH_HTTP=reqwest
                timed orbatch-reqwest "$lat" "$conc" "$rep" "$ROWS" "${RUN[@]}" --no-cache)
            check_ok "$ROWS" "$WORK/stdout"
            if [ -n "${CACHE:-}" ]; then
                rm -rf "$WORK/out"
                timed orbatch-cache "$lat" "$conc" "$rep" "$ROWS" "${RUN[@]}" --cache-dir "$WORK/cache"
                check_ok "$ROWS" "$WORK/stdout"
            fi
            for stack in reqwest hyper; do
                timed "floor-$stack" "$lat" "$conc" "$rep" "$ROWS" \
                    "$FLOOR" "http://127.0.0.1:$PORT/api/v1" "$ROWS" "$conc" "$stack"
            done
        done
    done
done

python3 - "$RESULTS" "$METRIC" <<'PY'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
runs = {}
for kind, lat, conc, rep, n, wall, user, sys_, rss in rows:
    cpu = (float(user) + float(sys_)) / int(n) * 1e6
    runs.setdefault((lat, conc, kind), []).append((int(rep), cpu, float(wall), int(rss) / 1024))
def mmm(xs, fmt):
    return "/".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))
print(f"\n# min/median/max per configuration; ratio: {sys.argv[2]} over the floor's, per repetition")
floors = ("floor-reqwest", "floor-hyper")
print(f"{'latency':>7} {'conc':>5} {'program':<16} {sys.argv[2]:>19} {'wall s':>17} {'rss MiB':>17}"
      f" {'/floor-reqwest':>16} {'/floor-hyper':>16}")
for (lat, conc, kind) in sorted(runs, key=lambda k: (-int(k[0]), int(k[1]), k[2])):
    r = runs[(lat, conc, kind)]
    ratios = []
    for f in floors:
        floor = dict((rep, cpu) for rep, cpu, _, _ in runs.get((lat, conc, f), []))
        mine = [cpu / floor[rep] for rep, cpu, _, _ in r if floor.get(rep)]
        ratios.append(mmm(mine, "{:.2f}") if kind not in floors and mine else "")
    print(f"{lat:>7} {conc:>5} {kind:<16} {mmm([x[1] for x in r], '{:.1f}'):>19} "
          f"{mmm([x[2] for x in r], '{:.2f}'):>17} {mmm([x[3] for x in r], '{:.1f}'):>17} "
          f"{ratios[0]:>16} {ratios[1]:>16}")
PY
fi

if [ -n "${BIG:-}" ]; then
    echo
    echo "# large job: $BIG rows (mock latency 0, concurrency 256)"
    start_mock 0
    gen "$BIG" "$WORK/in-$BIG.jsonl"
    syscalls() { # syscalls NAME CMD...: CMD's syscall count (strace -c -f), if strace exists
        local name="$1"
        shift
        if command -v strace >/dev/null; then
            strace -c -f -o "$WORK/strace" "$@" >/dev/null 2>&1 || true
            awk -v n="$name" '/ total$/ { printf "%-16s syscalls=%s (%s)\n", n, $4, "strace -c -f" }' "$WORK/strace"
            tail -n +3 "$WORK/strace" | sort -k4 -n -r | head -5 | sed 's/^/    /'
        fi
    }
    VALIDATE=("$BIN" validate --input "$WORK/in-$BIG.jsonl" --model openai/gpt-4o-mini
        --max-tokens 16 --base-url "http://127.0.0.1:$PORT/api/v1")
    timed validate-scan 0 - 1 "$BIG" "${VALIDATE[@]}"
    rm -rf "$WORK/big"
    orbatch_run "$BIG" 256 "$WORK/big"
    # The end of the run (summary, results.csv, summary.json) from orbatch's own debug log.
    ENDLOG=orbatch::runner::dispatch=debug,orbatch::output::finalize=debug
    timed run 0 256 1 "$BIG" env RUST_LOG="$ENDLOG" "${RUN[@]}" --no-cache
    check_ok "$BIG" "$WORK/stdout"
    grep -E 'all requests done|as written|compacted|wrote ' "$WORK/stderr" | sed 's/^/    run: /'
    timed resume-finished 0 256 1 "$BIG" env RUST_LOG="$ENDLOG" "${RUN[@]}" --no-cache
    grep -E 'all requests done|as written|compacted|wrote ' "$WORK/stderr" | sed 's/^/    resume: /'
    syscalls validate-scan "${VALIDATE[@]}"
    syscalls resume-finished "${RUN[@]}" --no-cache
    # A job whose answers are mostly refusals (90% moderation: not billed, not retried; seed 1
    # answers early, so the circuit breaker stays closed), then its resume: recovery holds each
    # failed key's prior (what it cost so far), and a plain re-run leaves the failed keys alone.
    start_mock 0 --moderation-rate 0.9 --seed 1
    rm -rf "$WORK/big"
    orbatch_run "$BIG" 256 "$WORK/big"
    timed run-90%-failed 0 256 1 "$BIG" "${RUN[@]}" --no-cache
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["rows"]; print("    run-90%-failed: ok", r["ok"], "error", r["error"])' "$WORK/stdout"
    timed resume-failed 0 256 1 "$BIG" env RUST_LOG="$ENDLOG" "${RUN[@]}" --no-cache
    grep -E 'as written|compacted|wrote ' "$WORK/stderr" | sed 's/^/    resume-failed: /'
    echo "(cpu/req above is the command's CPU divided by $BIG rows; wall is its whole time)"
fi
