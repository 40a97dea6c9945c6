//! `orbatch report`: write report.html for an output dir. Exit 0, or 2 when the dir holds no
//! results or a file cannot be read or written. `run --report` calls [`after_run`].

use std::path::Path;

use super::error::CommandError;
use super::exit::Exit;
use crate::cli::ReportArgs;

pub(super) fn report(a: ReportArgs) -> Result<Exit, CommandError> {
    let path = crate::report::write(&a.dir, a.output.as_deref())
        .map_err(|e| CommandError::Usage(e.into()))?;
    eprintln!("orbatch: report in {}", path.display());
    Ok(Exit::Ok)
}

/// `run --report`: the report of the run's output dir. A failure is said on stderr and does
/// not change the run's exit code (the results are whole; `orbatch report` can be re-run).
pub(super) fn after_run(dir: &Path, budget: Option<rust_decimal::Decimal>) {
    let opts = crate::report::Options { budget };
    match crate::report::write_with(dir, None, &opts) {
        Ok(path) => eprintln!("orbatch: report in {}", path.display()),
        Err(e) => eprintln!("error: writing report.html: {e} (`orbatch report` writes it again)"),
    }
}
