//! The CLI tests' names for the shared harness (`tests/support/`): kept so that `use
//! crate::common::*` goes on working. New helpers go into `tests/support/`.

#[allow(unused_imports)]
pub use crate::support::{
    HAIKU, KEY, MINI, Mock, PLAIN, Workdir, assert_costs_are_the_mocks, assert_one_line_per_pair,
    assert_summary_sums, assert_within_rpm, max_in_window, out, rows_csv,
};
