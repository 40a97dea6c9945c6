//! File helpers shared by every file orbatch writes: the one atomic replace (temp file in the
//! same directory, fsync, rename), the removal of temp files a killed process left, and opening
//! an output file without following a symbolic link.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The marker between a temp file's name and the PID of the process writing it.
const TEMP_MARK: &str = ".tmp-";

/// The temp file used while `path` is rewritten: same directory, hidden, per process
/// (`.NAME.tmp-PID`).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    path.with_file_name(format!(".{name}{TEMP_MARK}{}", std::process::id()))
}

/// Replaces `path` atomically: `write` fills a temp file in the same directory, which is then
/// flushed, fsynced and renamed over `path` (and the directory fsynced). On error the temp file
/// is removed and `path` is left as it was. A reader (or a crash) sees the old file or the new
/// one, never half of one.
pub fn replace_file<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<T>,
) -> io::Result<T> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut w = BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
        let value = write(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        drop(w);
        fs::rename(&tmp, path)?;
        sync_parent(path);
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` with [`replace_file`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(path, |w| w.write_all(bytes))
}

/// Best effort: makes a rename in `path`'s directory durable (a no-op where directories cannot
/// be opened).
fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes the temp files ([`temp_path`]) in `dir` whose process is gone (killed in the middle
/// of a rewrite). Call it holding the directory's lock. Returns the files removed.
pub fn remove_stale_temps(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        if pid == std::process::id() || pid_alive(pid) {
            continue;
        }
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

/// The PID in a temp file's name (`.NAME.tmp-PID`), `None` for any other name.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, pid) = rest.rsplit_once(TEMP_MARK)?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// True when a process with this PID exists (it may belong to another user).
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Opens `path` with `options`, refusing a symbolic link (`O_NOFOLLOW`) and anything that is
/// not a regular file, with an error of kind `InvalidInput` naming the path.
pub fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let refused = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {what}; orbatch writes only regular files (remove it or use another --output-dir)",
                path.display()
            ),
        )
    };
    let file = match options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused("a symbolic link"));
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(refused("not a regular file"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_file_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_atomic(&p, b"1").unwrap();
        let err = replace_file(&p, |_| -> io::Result<()> { Err(io::Error::other("boom")) });
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"1");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_names_carry_their_pid() {
        assert_eq!(temp_owner(".results.jsonl.tmp-123"), Some(123));
        assert_eq!(temp_owner(".a.tmp-1.tmp-42"), Some(42));
        assert_eq!(temp_owner("results.jsonl.tmp-1"), None);
        assert_eq!(temp_owner(".results.jsonl.tmp-"), None);
        assert_eq!(temp_owner(".results.jsonl.tmp-12x"), None);
    }

    #[test]
    fn stale_temps_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A PID above the kernel's maximum (4194304) is never alive.
        let dead = dir.path().join(".results.jsonl.tmp-999999999");
        let ours = temp_path(&dir.path().join("results.csv"));
        let other = dir.path().join("results.jsonl");
        for p in [&dead, &ours, &other] {
            fs::write(p, b"x").unwrap();
        }
        let removed = remove_stale_temps(dir.path()).unwrap();
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists() && ours.exists() && other.exists());
    }

    #[test]
    fn symlinks_and_non_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_regular(&link, OpenOptions::new().append(true)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(err.to_string().contains("link"), "{err}");
        let err = open_regular(dir.path(), OpenOptions::new().read(true)).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(open_regular(&target, OpenOptions::new().read(true)).is_ok());
    }
}
