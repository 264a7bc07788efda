//! Arbitrary bytes as a front-desk CSV export, read with the shipped configuration.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reminderd::config::Config;
use reminderd::import::{self, ParseOptions};

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_toml(
            include_str!("../../reminders.toml"),
            Path::new("/nonexistent/reminders.toml"),
        )
        .expect("the shipped reminders.toml is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options a caller could pass, the rest is the file.
    let (opts, bytes) = match data.split_first() {
        Some((b, rest)) => {
            let clinic = match b & 3 {
                0 => None,
                1 => Some("mumbai"),
                2 => Some("nyc"),
                _ => Some("nowhere"),
            };
            let format = (b & 4 != 0).then_some("practice-suite");
            (ParseOptions { clinic, format }, rest)
        }
        None => (ParseOptions::default(), data),
    };
    let Ok(parsed) = import::parse(bytes, config(), &opts) else {
        return;
    };
    for e in &parsed.errors {
        assert!(e.row >= 1, "row 0: {e:?}");
        assert!(!e.message.is_empty(), "no message: {e:?}");
    }
    assert!(
        parsed.rows.is_empty() || parsed.errors.is_empty(),
        "rows returned alongside errors"
    );
});
