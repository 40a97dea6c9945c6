//! orbatch's reliability guarantees, proven against the built-in mock over 127.0.0.1: the
//! `orbatch` binary runs as a child process (so `kill -9` and SIGINT are real), the mock runs in
//! the test process (so its request log and charges can be compared with the result files).
//! One module per guarantee; the README's "Reliability" section maps each guarantee to its test.

mod account;
mod budget;
mod cache;
mod common;
mod crash;
mod failures;
mod hostile;
mod input_bounds;
mod interrupt;
mod lookups;
mod money_in_flight;
mod newcomer;
mod output_dir;
mod rate_limits;
mod resume;
mod security;
#[path = "../support/mod.rs"]
mod support;
mod validate;
