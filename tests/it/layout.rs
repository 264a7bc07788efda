//! The architecture's invariants that can be read off the source: which rooms import which,
//! where blocking store work and SQL live, and how big a room may grow.

use std::path::{Path, PathBuf};

use crate::common::repo_file;

/// Every `.rs` file under `src/`, with its path relative to the repository.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = repo_file("");
    let mut files = Vec::new();
    walk(&repo_file("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .expect("under the repo")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&p).expect("read source");
            (rel, text)
        })
        .collect()
}

/// The code of a file without its `#[cfg(test)]` module (tests may use anything).
fn code(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn the_pure_rooms_import_no_store_server_desk_or_daemon() {
    for (file, text) in sources() {
        let pure = [
            "src/plan.rs",
            "src/template.rs",
            "src/replies.rs",
            "src/model.rs",
            "src/waitlist/plan.rs",
            "src/waitlist/csv.rs",
            "src/privacy/mod.rs",
        ];
        if !pure.contains(&file.as_str()) {
            continue;
        }
        for room in ["store", "server", "desk", "daemon", "dispatch", "jobs"] {
            assert!(
                !code(&text).contains(&format!("crate::{room}")),
                "{file} reaches into `{room}`; pure logic imports `model` and takes data in"
            );
        }
    }
}

#[test]
fn blocking_store_work_goes_through_store_db() {
    // The simulator has its own; password hashing is CPU work, not store work.
    let allowed = ["src/store/mod.rs", "src/desk/signin.rs"];
    for (file, text) in sources() {
        if file.starts_with("src/sim/") || allowed.contains(&file.as_str()) {
            continue;
        }
        assert!(
            !code(&text).contains("spawn_blocking"),
            "{file} calls spawn_blocking; reach the store with `store::Db::run`"
        );
    }
}

#[test]
fn only_the_store_writes_sql() {
    let statements = [
        "SELECT ",
        "INSERT INTO",
        "UPDATE ",
        "DELETE FROM",
        "CREATE TABLE",
    ];
    for (file, text) in sources() {
        if file.starts_with("src/store/") || file.starts_with("src/sim/") {
            continue;
        }
        for line in code(&text).lines() {
            let quoted = line.split('"').skip(1).step_by(2);
            for literal in quoted {
                assert!(
                    !statements
                        .iter()
                        .any(|s| literal.trim_start().starts_with(s)),
                    "{file} holds SQL ({literal:?}); only `store` knows SQL"
                );
            }
        }
    }
}

#[test]
fn no_room_outside_the_simulator_grows_past_900_lines() {
    for (file, text) in sources() {
        if file.starts_with("src/sim/") {
            continue;
        }
        let lines = text.lines().count();
        assert!(
            lines <= 900,
            "{file} has {lines} lines; give its concerns rooms of their own"
        );
    }
}

#[test]
fn every_room_says_what_it_is_for_on_its_first_line() {
    for (file, text) in sources() {
        assert!(
            text.starts_with("//!"),
            "{file} does not open with a `//!` line naming its concern"
        );
    }
}
