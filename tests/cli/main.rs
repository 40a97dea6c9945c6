//! The `orbatch` binary as a user runs it, against the in-process mock over real 127.0.0.1
//! sockets: end-to-end runs, faults, limits, costs, input errors, resume and the CLI contract
//! (docs/contract.md §1-§7). One test binary; the harness is `tests/support/` (`common.rs`
//! keeps its old names).
//!
//! Only `limits::rpm_real_minute_120` takes long (~65 s: a real 60-second RPM window);
//! every other test takes a few seconds.

mod common;
#[path = "../support/mod.rs"]
mod support;
use support::summary_fields;

mod contract;
mod conventions;
mod cost;
mod eval;
mod exits;
mod faults;
mod input_errors;
mod judge_crash;
mod judges;
mod limits;
mod newcomer;
mod plan;
mod resume;
mod run;
mod spreadsheets;
mod stops;
mod variants;
