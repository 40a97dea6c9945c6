//! Sets `ORBATCH_VERSION` for `--version`: the crate's version, with the commit it was built
//! from (`git rev-parse --short HEAD`, `-dirty` when the work tree has changes) when git and a
//! repository are there; the plain version otherwise (a crate tarball, no git installed).

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
    for name in ["HEAD", "index"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={path}");
    }
    let full = match commit {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
            let suffix = if dirty { "-dirty" } else { "" };
            format!("{version} ({commit}{suffix})")
        }
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=ORBATCH_VERSION={full}");
}
