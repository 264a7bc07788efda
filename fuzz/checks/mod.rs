//! The properties the fuzz targets check, one module per target. Each `check` takes the raw
//! input bytes and panics when a property is violated. The fuzz targets (`fuzz_targets/`)
//! call them from `fuzz_target!`, and the ordinary test suite (`tests/it/fuzz_regressions.rs`)
//! replays every saved input in `fuzz/regressions/<target>/` through the same functions, so a
//! crash kept there is checked by `cargo test` without libFuzzer or a nightly toolchain.
//!
//! Both crates include this folder with `#[path]`, so it may only use what both have:
//! reminderd, chrono, hmac, sha2 and tempfile (never libfuzzer-sys).

pub mod config;
pub mod csv_import;
pub mod siu;
pub mod webhook;

use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use reminderd::config::Config;

/// The shipped `reminders.toml`. The path is relative to this file, which is the same file
/// from both crates, so it resolves the same way from each.
pub const SHIPPED_CONFIG: &str = include_str!("../../reminders.toml");

/// Where the checks pretend the configuration lives; nothing is read from it.
pub const CONFIG_PATH: &str = "/nonexistent/reminders.toml";

/// The fixed instant every check runs at, so a saved input replays the same way on any day
/// (configuration checks compare cron expressions with `now`).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0)
        .single()
        .expect("fixed instant")
}

/// The shipped configuration, parsed once per process.
pub fn shipped_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_toml_at(SHIPPED_CONFIG, Path::new(CONFIG_PATH), now())
            .expect("the shipped reminders.toml is valid")
    })
}
