//! Stamps `wabridge --version` with the git commit the binary was built from.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let full = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => format!("{version} (commit {c})"),
        None => format!("{version} (commit unknown)"),
    };
    // Not named WABRIDGE_*: `cargo run` passes it to the program, whose
    // check for mistyped WABRIDGE_* settings would warn about it.
    println!("cargo:rustc-env=BUILT_WABRIDGE_VERSION={full}");
    // Asked of git, not assumed to be `.git/`: in a worktree `.git` is a file,
    // and a path that does not exist would make cargo rebuild every time.
    let head = git(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"]);
    let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]);
    let watched = head.map(PathBuf::from).into_iter().chain(
        common
            .map(PathBuf::from)
            .into_iter()
            .flat_map(|c| [c.join("refs/heads"), c.join("packed-refs")]),
    );
    for path in watched.filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    // Without a watched path cargo would rerun this on any change in the
    // package; the version stamp needs no more than a source change gives.
    println!("cargo:rerun-if-changed=build.rs");
}
