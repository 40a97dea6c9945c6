//! stdout carries only a command's result: a table, or one JSON document.

use std::io::Write;

/// Prints to stdout; a closed pipe (`| head`) is a clean exit, not a panic.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let r = out.write_all(text.as_bytes()).and_then(|_| {
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()
    });
    if let Err(e) = r
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to stdout: {e}");
    }
}

/// Prints `value` as one JSON document on stdout.
pub(super) fn print_json(value: &impl serde::Serialize) -> serde_json::Result<()> {
    print_stdout(&serde_json::to_string_pretty(value)?);
    Ok(())
}
