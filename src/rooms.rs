//! What each room may import (docs/architecture.md), checked on the source:
//! a `use` that crosses a wall fails here before a reviewer has to spot it.

use std::path::{Path, PathBuf};

/// (room, what it must not name). Crates are matched as `name::`, the
/// crate's own modules as `crate::name`.
const WALLS: &[(&str, &[&str])] = &[
    (
        "domain",
        &[
            "crate::store",
            "crate::usecase",
            "crate::http",
            "crate::worker",
            "crate::cli",
            "crate::app",
            "redb::",
            "hyper::",
            "ureq::",
            "tokio::",
        ],
    ),
    (
        "meta",
        &[
            "crate::store",
            "crate::usecase",
            "crate::http",
            "crate::worker",
            "crate::cli",
            "crate::app",
            "redb::",
            "hyper::",
        ],
    ),
    (
        "store",
        &[
            "crate::usecase",
            "crate::http",
            "crate::worker",
            "crate::cli",
            "crate::app",
            "crate::meta",
            "hyper::",
            "ureq::",
        ],
    ),
    (
        "usecase",
        &[
            "crate::http",
            "crate::worker",
            "crate::cli",
            "crate::app",
            "redb::",
            "hyper::",
            "askama::",
        ],
    ),
    // The delivery sender is hyper's client; the server side stays in http/.
    (
        "worker",
        &[
            "crate::usecase",
            "crate::http",
            "crate::cli",
            "crate::app",
            "redb::",
            "hyper::server",
            "hyper_util::server",
        ],
    ),
    (
        "http",
        &[
            "crate::worker",
            "crate::cli",
            "crate::app",
            "redb::",
            "ureq::",
        ],
    ),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `line` names `wall` as code (not in a comment): `redb::` must not
/// match `xredb::`, nor `crate::store` match `crate::stores`. A grouped
/// `crate::{…}` is read as one `crate::` path per name in it.
fn names(line: &str, wall: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    let spread = spread_groups(code);
    spread.match_indices(wall).any(|(at, _)| {
        let code = spread.as_str();
        let before = code[..at].chars().next_back();
        let after = code[at + wall.len()..].chars().next();
        let starts = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        let ends = wall.ends_with("::") || !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
        starts && ends
    })
}

/// `crate::{a::b, c}` → `crate::a::b, crate::c` (on one line, as rustfmt
/// writes a short group).
fn spread_groups(code: &str) -> String {
    let Some(at) = code.find("crate::{") else {
        return code.to_string();
    };
    let inner = &code[at + "crate::{".len()..];
    let inner = inner.split('}').next().unwrap_or_default();
    let parts: Vec<String> = inner
        .split(',')
        .map(|p| format!("crate::{}", p.trim()))
        .collect();
    format!("{} {}", &code[..at], parts.join(", "))
}

#[test]
fn every_room_imports_only_what_the_architecture_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut crossings = Vec::new();
    for (room, walls) in WALLS {
        let mut files = Vec::new();
        sources(&src.join(room), &mut files);
        assert!(!files.is_empty(), "no sources in src/{room}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for (n, line) in text.lines().enumerate() {
                for wall in walls.iter().filter(|w| names(line, w)) {
                    crossings.push(format!(
                        "{}:{}: {room} names {wall}",
                        file.strip_prefix(&src).unwrap_or(&file).display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(crossings.is_empty(), "{}", crossings.join("\n"));
}

#[test]
fn a_wall_is_matched_as_a_name_not_as_text() {
    assert!(names("use crate::store::Store;", "crate::store"));
    assert!(names("    let db = redb::Database::create(p);", "redb::"));
    assert!(!names("use crate::stores;", "crate::store"));
    assert!(!names("// only store/ knows redb::", "redb::"));
    assert!(!names("use x::hyper::Body;", "hyper::"));
    assert!(names(
        "use crate::{domain::ids, http::AppState};",
        "crate::http"
    ));
    assert!(!names("use crate::{domain::ids, store};", "crate::http"));
}
