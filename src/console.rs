//! Process set-up for hostile surroundings: no core dumps (a dump would hold the API key), and
//! a stderr that never panics when it is closed (see the crate's `eprintln!`).

use std::io::Write;

/// Makes the process non-dumpable and sets its core size limit to 0, so a crash never writes
/// the key in memory to a core file (and other users' tools cannot read its memory).
pub fn disable_core_dumps() {
    #[cfg(unix)]
    // SAFETY: plain system calls with valid arguments; failure leaves the defaults in place.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let _ = libc::setrlimit(libc::RLIMIT_CORE, &zero);
        #[cfg(target_os = "linux")]
        let _ = libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// False when `NO_COLOR` is set to anything but the empty string (<https://no-color.org>):
/// then no output of orbatch is coloured or styled, on a terminal or not.
pub fn color_allowed() -> bool {
    color_allowed_by(std::env::var_os("NO_COLOR"))
}

/// [`color_allowed`] for a given value of `NO_COLOR`.
pub fn color_allowed_by(no_color: Option<std::ffi::OsString>) -> bool {
    no_color.is_none_or(|v| v.is_empty())
}

/// A stderr for `tracing` whose write errors are swallowed (a log line lost, never a panic).
#[derive(Clone, Copy, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Report the bytes as written either way: a broken stderr must not stop the run.
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QuietStderr {
    type Writer = QuietStderr;

    fn make_writer(&'a self) -> QuietStderr {
        QuietStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_set_to_anything_but_empty_turns_colour_off() {
        assert!(color_allowed_by(None));
        assert!(color_allowed_by(Some("".into())));
        assert!(!color_allowed_by(Some("1".into())));
        assert!(!color_allowed_by(Some("false".into())));
    }
}
