//! Sets `ORBATCH_VERSION` for `--version`: the crate's version, with the commit it was built
//! from (`git rev-parse --short=12 HEAD`) when git and a repository are there; the plain
//! version otherwise (a crate tarball, no git installed). The script reruns when HEAD or the
//! branch it points to moves (not on every change of the index: that would rebuild the crate
//! on each `git status`).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = env!("CARGO_PKG_VERSION");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    // Rebuild when HEAD moves (a commit, a checkout): HEAD itself and the branch it points to.
    if let Some(path) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={path}");
    }
    // Only files that exist: a missing one would rerun the script (and rebuild) every time.
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        for name in [branch.as_str(), "packed-refs"] {
            if let Some(path) = git(&["rev-parse", "--git-path", name])
                && std::path::Path::new(&path).exists()
            {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let full = match commit {
        Some(commit) => format!("{version} ({commit})"),
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=ORBATCH_VERSION={full}");
}
