//! A command's failure in the terms of the exit code table ([`super::exit`]): said on
//! stderr once, by [`CommandError::report`], which gives the code.

use std::path::{Path, PathBuf};

use super::exit::{Exit, Outcome};
use crate::client::CallError;
use crate::runner::RunError;

/// Why a command failed, in the terms of the exit code table.
#[derive(Debug)]
pub enum CommandError {
    /// A usage, config or input error, or an internal one before anything was sent (exit 2).
    Usage(anyhow::Error),
    /// Rows that do not parse or render, as `FILE:LINE: message` lines (exit 2).
    Input(String),
    /// The pre-flight check refused, and said why: nothing was sent (exit 2).
    Refused,
    /// The key was refused (exit 4); the message says by what.
    Auth(String),
    /// The run stopped with no summary (results.jsonl could not be written, then not read
    /// back): resumable (exit 3).
    Stopped(String),
    /// A failure after requests may have been sent (exit 3): what they returned is kept in
    /// `output_dir`, and the same command run again resumes.
    AfterSend {
        /// What failed.
        error: anyhow::Error,
        /// Where the results so far are.
        output_dir: PathBuf,
    },
}

impl CommandError {
    /// A runner's error; `output_dir` is where the run was writing.
    pub fn from_run(e: RunError, output_dir: &Path) -> CommandError {
        match e {
            RunError::Input { errors, count } => {
                CommandError::Input(crate::runner::format_input_errors(&errors, count))
            }
            RunError::Config(msg) => CommandError::Usage(anyhow::anyhow!(msg)),
            RunError::Other(error) => CommandError::Usage(error),
            RunError::Stopped(msg) => CommandError::Stopped(msg),
            RunError::AfterSend(error) => CommandError::AfterSend {
                error,
                output_dir: output_dir.to_path_buf(),
            },
        }
    }

    /// Says the failure on stderr and gives its exit code.
    pub fn report(self) -> Exit {
        match self {
            CommandError::Usage(e) => {
                eprintln!("error: {e:#}");
                Exit::Usage
            }
            CommandError::Input(text) => {
                eprintln!("{text}");
                Exit::Usage
            }
            CommandError::Refused => Exit::Usage,
            CommandError::Auth(msg) => {
                eprintln!("error: {msg}");
                Exit::Auth
            }
            CommandError::Stopped(msg) => {
                eprintln!("error: {msg}");
                eprintln!(
                    "orbatch: run the same command again to resume once the output dir can be written"
                );
                Outcome {
                    stopped: true,
                    ..Outcome::default()
                }
                .exit()
            }
            CommandError::AfterSend { error, output_dir } => {
                eprintln!("error: {error:#}");
                eprintln!(
                    "orbatch: requests were sent before this error; what they returned is kept in {}: run the same command again to resume (finished rows are not sent again)",
                    output_dir.display()
                );
                Outcome {
                    stopped: true,
                    ..Outcome::default()
                }
                .exit()
            }
        }
    }
}

/// `?` on these is a usage error (exit 2): commands use it before anything is sent.
macro_rules! usage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for CommandError {
            fn from(e: $t) -> Self {
                CommandError::Usage(e.into())
            }
        }
    )*};
}
usage_errors!(
    anyhow::Error,
    std::io::Error,
    serde_json::Error,
    tokio::task::JoinError,
    crate::job::JobError,
    crate::endpoint::EndpointError
);

/// Marks a failure as coming after requests may have been sent (exit 3, not 2).
pub trait AfterSend<T> {
    /// The error as [`CommandError::AfterSend`], the results being in `output_dir`.
    fn after_send(self, output_dir: &Path) -> Result<T, CommandError>;
}

impl<T, E: Into<anyhow::Error>> AfterSend<T> for Result<T, E> {
    fn after_send(self, output_dir: &Path) -> Result<T, CommandError> {
        self.map_err(|e| CommandError::AfterSend {
            error: e.into(),
            output_dir: output_dir.to_path_buf(),
        })
    }
}

/// A query's answer; a refused key is [`CommandError::Auth`] (exit 4), any other failure a
/// usage error (exit 2).
pub(super) fn answer<T>(what: &str, r: Result<T, CallError>) -> Result<T, CommandError> {
    match r {
        Ok(v) => Ok(v),
        Err(CallError::Auth(status, msg)) => Err(CommandError::Auth(format!(
            "authentication refused (HTTP {status}): {msg}"
        ))),
        Err(e) => Err(anyhow::anyhow!("{what}: {e}").into()),
    }
}
