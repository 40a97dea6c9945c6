//! What a command talks to and runs: its endpoint, its client, its job.

use crate::cli::{ApiArgs, JobArgs};
use crate::client::Client;
use crate::endpoint::Endpoint;
use crate::job::{Job, JobError, Overrides};

/// The endpoint of a command: `--mock`, else `--base-url` (or the environment's) with the
/// key of `--api-key-file` (or the environment's).
pub(super) async fn endpoint(api: &ApiArgs, base_url: &Option<String>) -> anyhow::Result<Endpoint> {
    Endpoint::resolve(api.mock, base_url.clone(), api.api_key_file.as_deref()).await
}

/// A client for `endpoint`'s queries (`/models`, `/key`, `/credits`).
pub(super) fn query_client(endpoint: &Endpoint) -> anyhow::Result<Client> {
    Client::new(
        &endpoint.base_url,
        endpoint.key.as_ref(),
        std::time::Duration::from_secs(60),
        4,
    )
}

/// Resolves a job from a job file and flags (`more` adds the command's own), pointing it at
/// `endpoint`.
pub(super) fn resolve_job(
    args: &JobArgs,
    endpoint: &Endpoint,
    more: impl FnOnce(&mut Overrides),
) -> Result<Job, JobError> {
    let mut o = args.overrides();
    more(&mut o);
    o.base_url = Some(endpoint.base_url.clone());
    let mut job = Job::resolve(args.job.as_deref(), o, None)?;
    crate::shard::apply(&mut job, &args.shard, |k| std::env::var(k).ok())?;
    Ok(job)
}
