//! Arbitrary bytes as a front-desk CSV export; the property is `checks::csv_import::check`.
//! The check is shared with `tests/it/fuzz_regressions.rs`, which replays saved inputs.

#![no_main]

// Each target uses one of the checks; the others are compiled in but unused here.
#[allow(dead_code)]
#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::csv_import::check(data));
