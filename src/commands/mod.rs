//! What each command does, from parsed arguments to an exit code, one file per command. This
//! is the only place that prints results (stdout) and picks exit codes ([`exit`]); progress,
//! warnings and errors go to stderr.

mod cache;
mod credits;
mod docs;
mod error;
mod estimate;
pub mod exit;
mod merge;
mod mock_server;
mod models;
mod print;
mod report;
mod resolve;
mod run;
mod score;
mod summary;
mod validate;

pub use exit::{Exit, Outcome};

use crate::cli::Command;
use crate::runner::Control;
use error::CommandError;

/// Runs a parsed command line; says why it failed, if it did; returns the exit code.
pub async fn dispatch(cmd: Command, control: Control) -> Exit {
    let result = match cmd {
        Command::Run(a) => run::run(a, control).await,
        Command::Estimate(a) => estimate::estimate(a, control).await,
        Command::Validate(a) => validate::validate(a).await,
        Command::Summary(a) => summary::summary(a),
        Command::Merge(a) => merge::merge(a),
        Command::Score(a) => score::score(a, control).await,
        Command::Report(a) => report::report(a),
        Command::Models(a) => models::models(a).await,
        Command::Credits(a) => credits::credits(a).await,
        Command::Cache(a) => cache::cache(a),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man => docs::man(),
        Command::MockServer(a) => mock_server::mock_server(a.config).await,
    };
    result.unwrap_or_else(CommandError::report)
}
