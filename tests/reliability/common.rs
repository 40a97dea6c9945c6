//! The reliability tests' names for the shared harness (`tests/support/`): kept so that `use
//! crate::common::*` goes on working. New helpers go into `tests/support/`.

#[allow(unused_imports)]
pub use crate::support::{
    KEY, MODEL, Orb, Out, PROMPT, Scratch, assert_all_ok_once, csv, dec, latest, mock, read_lines,
    recorded_spend, rest_of, signal, sorted, until_requests, until_stderr, user, users_since, wait,
};
