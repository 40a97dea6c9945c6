//! `orbatch completions SHELL` and `orbatch man`: generated from the clap definitions, so they
//! list exactly the commands and flags the binary has.

use std::io::Write;

use clap::CommandFactory;

use super::error::CommandError;
use super::exit::Exit;
use crate::cli::Cli;

/// Prints the completion script for `shell` on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<Exit, CommandError> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "orbatch", &mut out);
    write_stdout(&out)
}

/// Prints the man page (roff): the top-level page, then a section per command.
pub(super) fn man() -> Result<Exit, CommandError> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("orbatch {}", sub.get_name());
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let man = clap_mangen::Man::new(sub.clone());
        man.render_description_section(&mut out)?;
        man.render_options_section(&mut out)?;
    }
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<Exit, CommandError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(Exit::Ok)
}
