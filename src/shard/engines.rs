//! `--shard auto`: the shard index and count from the variables of the engine that started the
//! process. Kubernetes Indexed Jobs give only the index (`JOB_COMPLETION_INDEX`), so the count
//! comes from `ORBATCH_SHARDS`; a Slurm array's index is `SLURM_ARRAY_TASK_ID` less
//! `SLURM_ARRAY_TASK_MIN` (arrays need not start at 0); AWS Batch and Cloud Run give both.

use super::Shard;

/// One engine's variables: (its name, the index variable, the count variable, the variable
/// subtracted from the index, if any).
struct Engine {
    name: &'static str,
    index: &'static str,
    count: &'static str,
    base: Option<&'static str>,
}

const ENGINES: [Engine; 4] = [
    Engine {
        name: "Kubernetes",
        index: "JOB_COMPLETION_INDEX",
        count: "ORBATCH_SHARDS",
        base: None,
    },
    Engine {
        name: "Slurm",
        index: "SLURM_ARRAY_TASK_ID",
        count: "SLURM_ARRAY_TASK_COUNT",
        base: Some("SLURM_ARRAY_TASK_MIN"),
    },
    Engine {
        name: "AWS Batch",
        index: "AWS_BATCH_JOB_ARRAY_INDEX",
        count: "AWS_BATCH_JOB_ARRAY_SIZE",
        base: None,
    },
    Engine {
        name: "Cloud Run",
        index: "CLOUD_RUN_TASK_INDEX",
        count: "CLOUD_RUN_TASK_COUNT",
        base: None,
    },
];

/// The shard `--shard auto` found, and where (for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The shard.
    pub shard: Shard,
    /// `Slurm: SLURM_ARRAY_TASK_ID=5 - SLURM_ARRAY_TASK_MIN=4, SLURM_ARRAY_TASK_COUNT=3`.
    pub source: String,
}

/// Reads the engines' variables through `env`. Exactly the variables of one engine (or of
/// several that agree) must be set; none, half an engine's set, a value that is not a number,
/// an index out of range or two engines that disagree is an error saying which.
pub fn detect(env: impl Fn(&str) -> Option<String>) -> Result<Detected, String> {
    let mut found: Vec<Detected> = Vec::new();
    for engine in &ENGINES {
        if let Some(d) = read(engine, &env)? {
            found.push(d);
        }
    }
    match found.as_slice() {
        [] => Err(format!(
            "--shard auto: no shard variables found; set one of: {}",
            ENGINES
                .iter()
                .map(|e| {
                    let base = e.base.map_or(String::new(), |b| format!(" - {b}"));
                    format!("{} ({}{base} + {})", e.name, e.index, e.count)
                })
                .collect::<Vec<_>>()
                .join("; ")
        )),
        [first, rest @ ..] => match rest.iter().find(|d| d.shard != first.shard) {
            None => Ok(first.clone()),
            Some(other) => Err(format!(
                "--shard auto: the variables disagree: {} gives shard {}, {} gives shard {}",
                first.source, first.shard, other.source, other.shard
            )),
        },
    }
}

fn read(
    engine: &Engine,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Detected>, String> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let index = get(engine.index);
    let count = get(engine.count);
    let (index, count) = match (index, count) {
        (None, None) => return Ok(None),
        (Some(i), Some(c)) => (i, c),
        (Some(_), None) => {
            return Err(format!(
                "--shard auto: {} is set but {} is not (the shard count{})",
                engine.index,
                engine.count,
                if engine.name == "Kubernetes" {
                    ": an Indexed Job gives only the index, set ORBATCH_SHARDS to its completions"
                } else {
                    ""
                }
            ));
        }
        (None, Some(_)) => {
            return Err(format!(
                "--shard auto: {} is set but {} is not (the shard index)",
                engine.count, engine.index
            ));
        }
    };
    let number = |name: &str, value: &str| {
        value.trim().parse::<u32>().map_err(|_| {
            format!("--shard auto: {name}={value:?} is not a non-negative whole number")
        })
    };
    let raw = number(engine.index, &index)?;
    let n = number(engine.count, &count)?;
    let (k, base_text) = match engine.base {
        None => (raw, String::new()),
        Some(base_name) => {
            let base_value = get(base_name).ok_or_else(|| {
                format!(
                    "--shard auto: {} is set but {base_name} is not",
                    engine.index
                )
            })?;
            let base = number(base_name, &base_value)?;
            let k = raw.checked_sub(base).ok_or_else(|| {
                format!(
                    "--shard auto: {}={raw} is below {base_name}={base}",
                    engine.index
                )
            })?;
            (k, format!(" - {base_name}={base}"))
        }
    };
    let source = format!(
        "{}: {}={raw}{base_text}, {}={n}",
        engine.name, engine.index, engine.count
    );
    let shard = Shard::new(k, n).map_err(|e| format!("--shard auto: {source}: {e}"))?;
    Ok(Some(Detected { shard, source }))
}
