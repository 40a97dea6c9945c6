//! The `orbatch` binary: parse the command line, set up logging and Ctrl-C, call the library.

use std::io::IsTerminal;

use clap::Parser;
use orbatch::cli::Cli;
use orbatch::eprintln;
use orbatch::runner::Control;

fn main() -> std::process::ExitCode {
    // Before anything holds the key: a crash must not dump it to a core file.
    orbatch::console::disable_core_dumps();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(orbatch::console::QuietStderr)
        // Colour only on a terminal: logs redirected to a file or a CI log stay plain text.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
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
