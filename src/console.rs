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
