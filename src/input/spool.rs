//! Spooling `--input -`: stdin is streamed into a file in the output dir (`stdin.jsonl` or
//! `stdin.csv`, by its first significant byte), so the run can scan it twice and a resume can
//! fingerprint it. Memory stays flat in the size of the input: it is copied block by block.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes read from the source at a time.
const BLOCK: usize = 64 * 1024;

/// Streams `source` into `dir` and returns the spooled file's path. The file appears whole or
/// not at all: it is written under a temporary name, synced, then renamed.
pub fn spool(mut source: impl Read, dir: &Path) -> io::Result<PathBuf> {
    let tmp = dir.join(format!(".stdin.tmp-{}", std::process::id()));
    let first = match copy_to(&mut source, &tmp) {
        Ok(first) => first,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let name = if first == Some(b'{') {
        "stdin.jsonl"
    } else {
        "stdin.csv"
    };
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Copies `source` to a new file at `path` in blocks; returns the first byte that is neither
/// whitespace nor part of a UTF-8 byte-order mark.
fn copy_to(source: &mut impl Read, path: &Path) -> io::Result<Option<u8>> {
    let mut out = std::fs::File::create(path)?;
    let mut buf = vec![0u8; BLOCK];
    let mut first = None;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let block = &buf[..n];
        if first.is_none() {
            first = block
                .iter()
                .find(|b| !b.is_ascii_whitespace() && !matches!(**b, 0xEF | 0xBB | 0xBF))
                .copied();
        }
        out.write_all(block)?;
    }
    out.sync_all()?;
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source of `total` bytes that fails if anyone asks it for more than `max_read` bytes
    /// at once (a reader that slurps the whole input would ask for ever larger reads).
    struct Source {
        left: usize,
        max_read: usize,
        head: &'static [u8],
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if buf.len() > self.max_read {
                return Err(io::Error::other(format!(
                    "asked for {} bytes at once: the input is not streamed",
                    buf.len()
                )));
            }
            let n = buf.len().min(self.left);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = self.head.get(i).copied().unwrap_or(b'x');
            }
            self.head = &self.head[self.head.len().min(n)..];
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn streams_in_blocks_and_names_the_file_by_its_first_byte() {
        let dir = tempfile::tempdir().unwrap();
        let total = 8 * 1024 * 1024;
        let src = Source {
            left: total,
            max_read: 1024 * 1024,
            head: b"\xEF\xBB\xBF \n{",
        };
        let path = spool(src, dir.path()).unwrap();
        assert_eq!(path.file_name().unwrap(), "stdin.jsonl");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), total as u64);
        let csv = spool(&b"id,text\n1,a\n"[..], dir.path()).unwrap();
        assert_eq!(csv.file_name().unwrap(), "stdin.csv");
        assert_eq!(std::fs::read(&csv).unwrap(), b"id,text\n1,a\n");
    }

    #[test]
    fn a_failed_read_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = Source {
            left: 10,
            max_read: 0,
            head: b"",
        };
        assert!(spool(src, dir.path()).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
