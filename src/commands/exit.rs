//! The process exit codes: the one table of them. Only `commands/` picks a code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every row ok |
//! | 1 | the run finished but some rows failed |
//! | 2 | usage, config or input error: nothing was sent |
//! | 3 | stopped early and resumable: budget reached, credits exhausted (402), interrupted, the input changed during the run, or an internal error after requests were sent |
//! | 4 | authentication refused |
//! | 5 | reserved: an evaluation threshold was not met |
//!
//! When several apply: 4, then 3, then 5, then 1 ([`Outcome::exit`]).
//!
//! Per command: `run` and `estimate` (whose pilot sends like a run) give any of them;
//! `validate` 0 or 2; `summary` 0, 1 or 2; `models` and `credits` 0, 2 or 4; `mock-server`
//! 0 or 2.
//!
//! An internal error (a file that cannot be written, a task that failed) is a 2 while nothing
//! has been sent, and a 3 once requests may have been: it is neither "nothing was sent" nor
//! "some rows failed". What was answered is in the output dir, and running the same command
//! again resumes without sending a finished row again (`CommandError::AfterSend` in
//! `error.rs`).

/// A process exit code (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Every row ok.
    Ok = 0,
    /// The run finished but some rows failed.
    RowsFailed = 1,
    /// Usage, config or input error: nothing was sent.
    Usage = 2,
    /// Stopped early and resumable.
    Stopped = 3,
    /// Authentication refused.
    Auth = 4,
    /// Reserved: an evaluation threshold (`min_pass_rate`) was not met.
    EvalFailed = 5,
}

impl Exit {
    /// The code the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// How a run (or a pilot) that sent requests ended; several may hold at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The key was refused.
    pub auth_refused: bool,
    /// It stopped before every pair was sent, or failed after sending; resumable.
    pub stopped: bool,
    /// An evaluation threshold was not met.
    pub eval_failed: bool,
    /// Some rows failed.
    pub rows_failed: bool,
}

impl Outcome {
    /// The exit code, by precedence 4, 3, 5, 1.
    pub fn exit(&self) -> Exit {
        if self.auth_refused {
            Exit::Auth
        } else if self.stopped {
            Exit::Stopped
        } else if self.eval_failed {
            Exit::EvalFailed
        } else if self.rows_failed {
            Exit::RowsFailed
        } else {
            Exit::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_contracts() {
        let codes = [
            Exit::Ok,
            Exit::RowsFailed,
            Exit::Usage,
            Exit::Stopped,
            Exit::Auth,
            Exit::EvalFailed,
        ]
        .map(Exit::code);
        assert_eq!(codes, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn precedence_is_4_then_3_then_5_then_1() {
        let all = |auth, stopped, eval, rows| Outcome {
            auth_refused: auth,
            stopped,
            eval_failed: eval,
            rows_failed: rows,
        };
        assert_eq!(all(true, true, true, true).exit(), Exit::Auth);
        assert_eq!(all(false, true, true, true).exit(), Exit::Stopped);
        assert_eq!(all(false, false, true, true).exit(), Exit::EvalFailed);
        assert_eq!(all(false, false, false, true).exit(), Exit::RowsFailed);
        assert_eq!(Outcome::default().exit(), Exit::Ok);
    }
}
