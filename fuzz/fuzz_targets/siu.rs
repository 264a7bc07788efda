//! Arbitrary bytes as an HL7 feed's stream or message; the property is `checks::siu::check`.
//! The check is shared with `tests/it/fuzz_regressions.rs`, which replays saved inputs.

#![no_main]

// Each target uses one of the checks; the others are compiled in but unused here.
#[allow(dead_code)]
#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::siu::check(data));
