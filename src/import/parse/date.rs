//! Dates as the clinic writes them: the format's patterns (ISO by default) and a year-first
//! date always; day-month-year or month-day-year when the clinic's `date_order` says which.
//! Without it such a date is refused with the reason, and with both readings when it could
//! be either (`03/04/2026`), because guessing would remind patients on the wrong day.

use chrono::NaiveDate;

use super::super::Audience;
use crate::config::DateOrder;

/// What a clinic's dates are read with.
pub(super) struct DateRules<'a> {
    /// The format's patterns, tried first.
    pub patterns: &'a [String],
    /// The clinic's order for numeric dates, if configured.
    pub order: Option<DateOrder>,
    /// Who is told how to fix a date.
    pub audience: Audience,
    /// The clinic's key, for the administrator's advice.
    pub clinic: &'a str,
}

impl DateRules<'_> {
    /// The date `v` stands for, or what is wrong with it and how to fix it.
    pub fn read(&self, written: &str) -> Result<NaiveDate, String> {
        let v = written;
        if let Some(d) = self
            .patterns
            .iter()
            .find_map(|p| NaiveDate::parse_from_str(v, p).ok())
        {
            return Ok(d);
        }
        let not_a_date = || format!("is not a date; write it as {}", self.example());
        let Some([first, second, third]) = numeric_parts(v) else {
            return Err(not_a_date());
        };
        // Year first (2026/11/26) reads one way only.
        if first.len() == 4 {
            return ymd(first, second, third).ok_or_else(not_a_date);
        }
        let Some(year) = year_of(third) else {
            return Err(not_a_date());
        };
        match self.order {
            Some(DateOrder::Dmy) => date(year, second, first).ok_or_else(not_a_date),
            Some(DateOrder::Mdy) => date(year, first, second).ok_or_else(not_a_date),
            Some(DateOrder::Ymd) => Err(not_a_date()),
            None => Err(
                match (date(year, second, first), date(year, first, second)) {
                    (Some(dmy), Some(mdy)) if dmy != mdy => format!(
                        "{v} could be {} or {}: {}",
                        dmy.format("%-d %B"),
                        mdy.format("%-d %B"),
                        self.set_order()
                    ),
                    (Some(d), _) | (_, Some(d)) => format!(
                        "is not a date in the form this clinic's files use; write it as {}, or, if it means {}: {}",
                        self.example(),
                        d.format("%-d %B %Y"),
                        self.set_order()
                    ),
                    (None, None) => not_a_date(),
                },
            ),
        }
    }

    /// Who can make such dates readable, in words for the reader.
    fn set_order(&self) -> String {
        match self.audience {
            Audience::Desk => "ask the administrator to set the clinic's date order".into(),
            Audience::Cli => format!(
                "set date_order for this clinic in reminders.toml ([clinics.{}] date_order = \"dmy\" for day first, \"mdy\" for month first)",
                self.clinic
            ),
        }
    }

    /// 25 November 2026 as this clinic writes dates.
    fn example(&self) -> String {
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default();
        match self.order {
            Some(DateOrder::Dmy) => d.format("%d/%m/%Y").to_string(),
            Some(DateOrder::Mdy) => d.format("%m/%d/%Y").to_string(),
            _ => d
                .format(self.patterns.first().map_or("%Y-%m-%d", String::as_str))
                .to_string(),
        }
    }
}

/// Three groups of digits with one kind of separator between them (`/`, `-` or `.`).
fn numeric_parts(v: &str) -> Option<[&str; 3]> {
    let sep = v.chars().find(|c| matches!(c, '/' | '-' | '.'))?;
    let parts: Vec<&str> = v.split(sep).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let ok = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
    (ok(a) && ok(b) && ok(c)).then_some([*a, *b, *c])
}

/// A four-digit year, or a two-digit one in this century (`26` → 2026).
fn year_of(s: &str) -> Option<i32> {
    let n: i32 = s.parse().ok()?;
    match s.len() {
        4 => Some(n),
        2 => Some(2000 + n),
        _ => None,
    }
}

fn date(year: i32, month: &str, day: &str) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?)
}

fn ymd(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    date(y.parse().ok()?, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(order: Option<DateOrder>, audience: Audience) -> DateRules<'static> {
        static ISO: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["%Y-%m-%d".to_string()]);
        DateRules {
            patterns: &ISO,
            order,
            audience,
            clinic: "mumbai",
        }
    }

    fn ymd_(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn a_clinic_with_a_date_order_reads_its_dates_that_way() {
        let dmy = rules(Some(DateOrder::Dmy), Audience::Desk);
        assert_eq!(dmy.read("26/11/2026"), Ok(ymd_(2026, 11, 26)));
        assert_eq!(dmy.read("03/04/2026"), Ok(ymd_(2026, 4, 3)));
        assert_eq!(dmy.read("3.4.26"), Ok(ymd_(2026, 4, 3)));
        assert_eq!(
            dmy.read("2026-11-26"),
            Ok(ymd_(2026, 11, 26)),
            "ISO still reads"
        );
        assert_eq!(
            dmy.read("11/26/2026"),
            Err("is not a date; write it as 25/11/2026".into())
        );
        let mdy = rules(Some(DateOrder::Mdy), Audience::Desk);
        assert_eq!(mdy.read("03/04/2026"), Ok(ymd_(2026, 3, 4)));
        assert_eq!(mdy.read("11-26-2026"), Ok(ymd_(2026, 11, 26)));
    }

    #[test]
    fn without_a_date_order_an_ambiguous_date_is_refused_with_both_readings() {
        let desk = rules(None, Audience::Desk);
        assert_eq!(
            desk.read("03/04/2026"),
            Err("03/04/2026 could be 3 April or 4 March: ask the administrator to set the clinic's date order".into())
        );
        let cli = rules(None, Audience::Cli);
        let m = cli.read("03/04/2026").expect_err("ambiguous");
        assert!(m.contains("[clinics.mumbai] date_order = \"dmy\""), "{m}");
        // One reading only: still refused (ISO is the default), saying what it would be.
        let m = desk.read("26/11/2026").expect_err("not configured");
        assert_eq!(
            m,
            "is not a date in the form this clinic's files use; write it as 2026-11-25, or, if it means 26 November 2026: ask the administrator to set the clinic's date order"
        );
        assert!(!m.contains("reminders.toml"), "no file advice on the desk");
        // The same day both ways is one date, but still not the clinic's form.
        assert!(desk.read("05/05/2026").is_err());
        assert_eq!(desk.read("2026/11/26"), Ok(ymd_(2026, 11, 26)));
        assert_eq!(
            desk.read("31/31/2026"),
            Err("is not a date; write it as 2026-11-25".into())
        );
        assert_eq!(
            desk.read("next week"),
            Err("is not a date; write it as 2026-11-25".into())
        );
    }
}
