//! Arbitrary bytes as a front-desk CSV export, read with the shipped configuration.

use reminderd::import::{self, ParseOptions};

/// Longest `column` or `value` a row error may show (`import::shown_cell`): 40 characters of
/// the cell, each control character among them escaped (`\u{10ffff}` at most, 10 characters),
/// and the "…" that marks a cut. The bound is what stops a cell from flooding the terminal.
const SHOWN_CHARS_MAX: usize = 40 * 10 + 1;

/// The first byte picks the options a caller could pass (`--clinic`, `--format`); the rest is
/// the file. Panics unless every row error has a row ≥ 1, a message, and a column and value
/// that are short and free of control characters (reports go to a terminal, which a file must
/// not drive), and unless rows come back only when there are no errors.
pub fn check(data: &[u8]) {
    let (opts, bytes) = match data.split_first() {
        Some((b, rest)) => {
            let clinic = match b & 3 {
                0 => None,
                1 => Some("mumbai"),
                2 => Some("nyc"),
                _ => Some("nowhere"),
            };
            let format = (b & 4 != 0).then_some("practice-suite");
            (
                ParseOptions {
                    clinic,
                    format,
                    ..ParseOptions::default()
                },
                rest,
            )
        }
        None => (ParseOptions::default(), data),
    };
    // An Err is about the options (an unknown clinic or format), not the file.
    let Ok(parsed) = import::parse(bytes, super::shipped_config(), &opts) else {
        return;
    };
    for e in &parsed.errors {
        assert!(e.row >= 1, "row 0: {e:?}");
        assert!(!e.message.is_empty(), "no message: {e:?}");
        for (what, shown) in [("column", &e.column), ("value", &e.value)] {
            assert!(
                !shown.chars().any(char::is_control),
                "control character in the {what} shown: {e:?}"
            );
            assert!(
                shown.chars().count() <= SHOWN_CHARS_MAX,
                "{what} shown is {} characters long: {e:?}",
                shown.chars().count()
            );
        }
    }
    assert!(
        parsed.rows.is_empty() || parsed.errors.is_empty(),
        "rows returned alongside errors"
    );
}
