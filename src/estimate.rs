//! Cost and time estimates (placeholder while the estimator lands).

use crate::Exit;
use crate::cli::EstimateArgs;
use crate::commands::Endpoint;
use crate::job::Job;
use crate::runner::{Control, RunOptions};

/// `orbatch estimate`.
pub async fn command(_a: EstimateArgs, _control: Control) -> anyhow::Result<Exit> {
    anyhow::bail!("estimate is not built yet")
}

/// The pre-flight check of `run`.
pub async fn preflight(
    _job: &Job,
    _opts: &RunOptions,
    _endpoint: &Endpoint,
) -> anyhow::Result<Option<Exit>> {
    Ok(None)
}

/// The `credits` table.
pub fn render_credits(key: &serde_json::Value, credits: Option<&serde_json::Value>) -> String {
    format!("{key:#}\n{credits:?}")
}
