//! Every saved fuzz input (`fuzz/regressions/<target>/*`) replayed through its target's own
//! check, so a crash once found stays fixed without libFuzzer or a nightly toolchain. The
//! checks are the fuzz targets' bodies, included from `fuzz/checks/` (see `fuzz/README.md`).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/checks/mod.rs"]
mod checks;

/// The saved inputs of one target, in name order so failures list the same way each run.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("read_dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    // An empty folder would make the test pass without checking anything.
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

/// Runs each input through `check`, going on after a failure so one run names them all.
fn replay(target: &str, check: fn(&[u8])) {
    let mut failures = Vec::new();
    for file in inputs(target) {
        let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(a panic without a message)");
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of fuzz/regressions/{target} failed its check:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn csv_import_inputs_pass_the_fuzz_check() {
    replay("csv_import", checks::csv_import::check);
}

#[test]
fn siu_inputs_pass_the_fuzz_check() {
    replay("siu", checks::siu::check);
}

#[test]
fn webhook_inputs_pass_the_fuzz_check() {
    replay("webhook", checks::webhook::check);
}

#[test]
fn config_inputs_pass_the_fuzz_check() {
    replay("config", checks::config::check);
}
