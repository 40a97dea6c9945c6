#!/usr/bin/env bash
# submit.sh JOB.toml N [sbatch options...]
#
# Submits JOB.toml as a Slurm array of N shards and the merge as a job that runs after all of
# them succeeded (--dependency=afterok), and prints the two job ids, one per line (the array's
# first). The sbatch options (a partition, an account, a time limit, ...) go to both. The
# environment (OPENROUTER_API_KEY, OPENROUTER_BASE_URL, ORBATCH, ORBATCH_RUN_ARGS) reaches the
# jobs as sbatch exports it (all of it, by default).
#
# The shards and the merge use one output dir: ORBATCH_OUTPUT_DIR, else the job file's
# top-level output_dir, else out/<name> (the job's name, else the job file's stem), relative to
# the directory the jobs run in (the submission's, unless --chdir says another).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 JOB.toml N [sbatch options...]" >&2
    exit 2
fi
job="$1"
n="$2"
shift 2
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "submit.sh: N must be a whole number of shards, at least 1 (got '$n')" >&2
    exit 2
fi
if [ ! -f "$job" ]; then
    echo "submit.sh: $job: no such job file" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"

# A top-level `key = "value"` of the job file (before its first [section]).
top_level() {
    awk -v key="$1" '
        /^[[:space:]]*\[/ { exit }
        $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            sub("^[^=]*=[[:space:]]*\"", ""); sub("\".*$", ""); print; exit
        }' "$job"
}
out="${ORBATCH_OUTPUT_DIR:-$(top_level output_dir)}"
if [ -z "$out" ]; then
    name="$(top_level name)"
    out="out/${name:-$(basename "${job%.*}")}"
fi

array="$(sbatch --parsable --array="0-$((n - 1))" "$@" "$here/orbatch-shard.sbatch" "$job" "$out")"
array="${array%%;*}"
merge="$(sbatch --parsable --dependency="afterok:$array" "$@" "$here/orbatch-merge.sbatch" "$out")"
merge="${merge%%;*}"
echo "$array"
echo "$merge"
