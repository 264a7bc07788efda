//! Arbitrary bytes as the text of `reminders.toml`.

use std::path::Path;

use reminderd::config::{Config, ConfigError};

/// The bytes are read as UTF-8 text (as `Config::load` reads the file; other bytes are
/// replaced so the fuzzer's mutations still reach the parser). Panics if reading panics, or if
/// a refusal does not say why: a parse error needs a message, and a validation error needs at
/// least one problem, each with a key and a message (`check-config` prints them to staff).
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Err(err) = Config::from_toml_at(&text, Path::new(super::CONFIG_PATH), super::now()) else {
        return;
    };
    match &err {
        ConfigError::Read { .. } => panic!("from_toml read a file: {err}"),
        ConfigError::Parse { message, .. } => {
            assert!(!message.trim().is_empty(), "parse error without a message");
        }
        ConfigError::Invalid { problems, .. } => {
            assert!(!problems.is_empty(), "invalid, but no problem listed");
            for p in problems {
                assert!(!p.key.trim().is_empty(), "problem without a key: {p:?}");
                assert!(
                    !p.message.trim().is_empty(),
                    "problem without a message: {p:?}"
                );
            }
        }
    }
    // What check-config prints must format too.
    assert!(!err.to_string().is_empty(), "empty error text");
}
