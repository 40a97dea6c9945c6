//! The `orbatch` binary: parse the command line, set up logging and Ctrl-C, call the library.

use std::io::IsTerminal;

use clap::{CommandFactory, FromArgMatches};
use orbatch::cli::Cli;
use orbatch::eprintln;
use orbatch::runner::Control;

/// The command line; help and errors in colour only when `NO_COLOR` allows it.
fn parse_cli() -> Cli {
    let mut cmd = Cli::command();
    if !orbatch::console::color_allowed() {
        cmd = cmd.color(clap::ColorChoice::Never);
    }
    let matches = cmd.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> std::process::ExitCode {
    // Before anything holds the key: a crash must not dump it to a core file.
    orbatch::console::disable_core_dumps();
    let cli = parse_cli();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(orbatch::console::QuietStderr)
        // Colour only on a terminal: logs redirected to a file or a CI log stay plain text.
        .with_ansi(std::io::stderr().is_terminal() && orbatch::console::color_allowed())
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async {
        let control = Control::default();
        tokio::spawn(orbatch::signals::handle_stop_signals(control.clone()));
        orbatch::commands::dispatch(cli.command, control).await
    });
    // Do not wait for tasks still blocked (a hung request after an abort).
    runtime.shutdown_background();
    std::process::ExitCode::from(code as u8)
}
