//! The evaluation report (pure): from one row per appointment, the figures a clinic manager asks
//! for ("did reminderd cut our no-shows?"), each with the number of appointments behind it.
//!
//! No I/O and no clock: the store hands the rows (`store/report.rs`), the caller names the
//! clinics' zones and the rules' labels. `csv.rs` writes the same figures for a spreadsheet.

mod csv;

pub use csv::{cell, to_csv};

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::model::{Response, Status};

/// The default `[report] min_count`: fewer appointments than this make a rate "too few".
pub const DEFAULT_MIN_COUNT: u64 = 20;

/// The most appointments one report reads: a bigger range is refused (asked to be narrowed)
/// rather than held in memory.
pub const MAX_ROWS: usize = 250_000;

/// The group name of appointments no reminder reached before they started.
pub const NO_REMINDER: &str = "No reminder sent";

/// One appointment as the store reads it for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The clinic's key.
    pub clinic: String,
    /// The provider as the schedule names them.
    pub provider: Option<String>,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// Its status now.
    pub status: Status,
    /// Whether the desk marked the patient arrived.
    pub arrived: bool,
    /// When the status last changed (for a cancellation: when it was cancelled).
    pub status_at: DateTime<Utc>,
    /// What the patient said.
    pub response: Response,
    /// The rule (`remind-now` for a press of Remind now) and channel of the last reminder
    /// accepted before the start.
    pub last_reminder: Option<(String, String)>,
    /// Reminder messages tried (sent, delivered, read, failed or unknown).
    pub reminders_tried: u64,
    /// Reminder messages accepted by WhatsApp or the text service.
    pub reminders_sent: u64,
    /// Reminder messages that failed.
    pub reminders_failed: u64,
    /// Seconds from the reminder to the patient's first answer (confirm, cancel, reschedule).
    pub answer_secs: Option<i64>,
    /// The feedback score (1–5), if the patient gave one.
    pub score: Option<u8>,
}

/// What the report names: the clinics' zones and display names, the rules' labels.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Each clinic's zone (UTC when missing).
    pub zones: BTreeMap<String, Tz>,
    /// Each clinic's display name (its key when missing).
    pub clinics: BTreeMap<String, String>,
    /// Each rule's label (its name when missing).
    pub rules: BTreeMap<String, String>,
}

impl Names {
    /// The names `config` gives: clinics' zones and display names, rules' labels.
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            zones: config
                .clinics
                .iter()
                .map(|(k, c)| (k.clone(), c.time_zone))
                .collect(),
            clinics: config
                .clinics
                .iter()
                .map(|(k, c)| (k.clone(), c.display_name.clone()))
                .collect(),
            rules: config
                .rules
                .iter()
                .map(|r| (r.name.clone(), config.rule_label(&r.name)))
                .collect(),
        }
    }
}

/// The UTC window that holds every local day of `[from, to]` in any zone (zones are at most
/// 14 hours from UTC): the store reads it and [`compute`] keeps each clinic's own days.
pub fn window(from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let day = chrono::Duration::days(1);
    let start = from.pred_opt().map_or(DateTime::<Utc>::MIN_UTC, midnight);
    let end = to
        .succ_opt()
        .and_then(|d| midnight(d).checked_add_signed(day))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (start, end)
}

/// A rate: `count` of `of` appointments; `enough` is false when `of` is under the minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Rate {
    /// The appointments counted (no-shows, confirmed, ...).
    pub count: u64,
    /// The appointments it is a share of.
    pub of: u64,
    /// Whether `of` reaches the minimum count.
    pub enough: bool,
}

impl Rate {
    fn new(count: u64, of: u64, min: u64) -> Self {
        Self {
            count,
            of,
            enough: of >= min.max(1),
        }
    }

    /// Whole percent, rounded half up; `None` when there is nothing to divide by.
    pub fn percent(&self) -> Option<u64> {
        (self.of > 0).then(|| {
            let (c, o) = (u128::from(self.count), u128::from(self.of));
            u64::try_from((c * 200 + o) / (o * 2)).unwrap_or(u64::MAX)
        })
    }

    /// "12%", or "too few" under the minimum count.
    pub fn shown(&self) -> String {
        match self.percent() {
            Some(p) if self.enough => format!("{p}%"),
            _ => "too few".into(),
        }
    }

    /// "12% (3 of 25)" or "too few (3 of 12)".
    pub fn text(&self) -> String {
        format!("{} ({} of {})", self.shown(), self.count, self.of)
    }
}

/// The outcome figures of a group of appointments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Outcomes {
    /// Every appointment in the group.
    pub appointments: u64,
    /// No-shows of the appointments whose outcome is known (completed, arrived or no-show).
    pub no_show: Rate,
    /// Confirmed by the patient, of the appointments a reminder reached before the start.
    pub confirmed: Rate,
    /// Cancelled, of every appointment in the group.
    pub cancelled: Rate,
}

/// Raw counts, turned into [`Outcomes`] once the group is complete.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    appointments: u64,
    known: u64,
    no_show: u64,
    reminded: u64,
    confirmed: u64,
    cancelled: u64,
}

impl Tally {
    fn add(&mut self, r: &Row) {
        self.appointments += 1;
        let no_show = r.status == Status::NoShow && !r.arrived;
        if no_show || r.status == Status::Completed || r.arrived {
            self.known += 1;
        }
        self.no_show += u64::from(no_show);
        if r.last_reminder.is_some() {
            self.reminded += 1;
            self.confirmed += u64::from(r.response == Response::Confirmed);
        }
        self.cancelled += u64::from(r.status == Status::Cancelled);
    }

    fn outcomes(&self, min: u64) -> Outcomes {
        Outcomes {
            appointments: self.appointments,
            no_show: Rate::new(self.no_show, self.known, min),
            confirmed: Rate::new(self.confirmed, self.reminded, min),
            cancelled: Rate::new(self.cancelled, self.appointments, min),
        }
    }
}

/// One row of a breakdown: its key (a month `2026-11`, a clinic key, ...), label and figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// What the group is, as stored: `2026-11`, a clinic key, a provider, `rule/channel`.
    pub key: String,
    /// As the clinic says it: "November 2026", the clinic's name, "Night before by WhatsApp".
    pub label: String,
    /// The group's clinic, when the group is one clinic's (months and before/after are).
    pub clinic: Option<String>,
    /// Its figures.
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

/// A clinic's appointments before its first reminder and from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BeforeAfter {
    /// The clinic's key.
    pub clinic: String,
    /// Its display name.
    pub label: String,
    /// When its first reminder was sent; `None`: none yet, so everything is "before".
    pub first_reminder: Option<DateTime<Utc>>,
    /// Appointments that started before it.
    pub before: Outcomes,
    /// Appointments that started at or after it.
    pub after: Outcomes,
}

/// How far ahead of the start cancellations came (could the slot be refilled?).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// "under 3 hours" (or after the start), "3 to 24 hours", "1 to 3 days", "more than 3 days".
    pub label: &'static str,
    /// Cancellations this far ahead, of every cancellation in the range.
    pub share: Rate,
}

/// The notice buckets: the label and the least notice (seconds) a cancellation in it gave.
pub const NOTICE: [(&str, i64); 4] = [
    ("under 3 hours", i64::MIN),
    ("3 to 24 hours", 3 * 3600),
    ("1 to 3 days", 24 * 3600),
    ("more than 3 days", 72 * 3600),
];

/// How long patients took to answer a reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Answers {
    /// The appointments answered after a reminder.
    pub answered: u64,
    /// The median minutes from the reminder to the answer; `None` under the minimum count.
    pub median_minutes: Option<i64>,
    /// Whether `answered` reaches the minimum count.
    pub enough: bool,
}

/// The patients' feedback scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Feedback {
    /// The appointments scored.
    pub scored: u64,
    /// How many gave each score, 1 to 5.
    pub scores: [u64; 5],
    /// The average to one decimal; `None` under the minimum count.
    pub average: Option<f64>,
    /// Whether `scored` reaches the minimum count.
    pub enough: bool,
}

/// Reminders that did not get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Failed reminder messages, of every reminder message tried.
    pub failed_messages: Rate,
    /// Appointments no reminder reached though one was tried and failed, of the appointments
    /// a reminder was tried for: numbers that could not be reached.
    pub unreachable: Rate,
}

/// The whole evaluation for a range of local days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// First local day.
    pub from: NaiveDate,
    /// Last local day, inclusive.
    pub to: NaiveDate,
    /// Rates from fewer appointments than this are "too few".
    pub min_count: u64,
    /// Every appointment in the range.
    pub total: Outcomes,
    /// Per local month and clinic, oldest first.
    pub months: Vec<Group>,
    /// Per clinic.
    pub clinics: Vec<Group>,
    /// Per provider (by name across clinics), most appointments first.
    pub providers: Vec<Group>,
    /// Per rule and channel of the last reminder before the start; no reminder last.
    pub reminders: Vec<Group>,
    /// Before versus after reminderd, per clinic.
    pub before_after: Vec<BeforeAfter>,
    /// How far ahead cancellations came.
    pub notice: Vec<Notice>,
    /// Answer times.
    pub answers: Answers,
    /// Feedback scores.
    pub feedback: Feedback,
    /// Failed and unreachable.
    pub delivery: Delivery,
}

/// The channel as the desk says it.
pub fn channel_words(channel: &str) -> &'static str {
    if channel == "sms" {
        "text message"
    } else {
        "WhatsApp"
    }
}

/// The report on `rows` whose local day (in their clinic's zone) is in `[from, to]`; rows
/// outside are ignored, so the store may hand a wider UTC window. `first` is each clinic's
/// first reminder.
pub fn compute(
    rows: &[Row],
    first: &BTreeMap<String, DateTime<Utc>>,
    names: &Names,
    (from, to): (NaiveDate, NaiveDate),
    min: u64,
) -> Report {
    let zone = |c: &str| names.zones.get(c).copied().unwrap_or(chrono_tz::UTC);
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| (from..=to).contains(&r.starts_at.with_timezone(&zone(&r.clinic)).date_naive()))
        .collect();
    let clinic_name = |c: &str| {
        names
            .clinics
            .get(c)
            .cloned()
            .unwrap_or_else(|| c.to_owned())
    };
    let mut total = Tally::default();
    let (mut months, mut clinics, mut providers, mut reminders) = (
        BTreeMap::<(String, String), Tally>::new(),
        BTreeMap::<String, Tally>::new(),
        BTreeMap::<String, Tally>::new(),
        BTreeMap::<(bool, String, String), Tally>::new(),
    );
    let mut eras = BTreeMap::<String, (Tally, Tally)>::new();
    let (mut cancelled, mut notice) = (0, [0u64; 4]);
    let (mut answer_secs, mut given) = (Vec::new(), [0u64; 5]);
    let (mut tried, mut failed, mut tried_for, mut unreachable) = (0, 0, 0, 0);
    for r in &rows {
        total.add(r);
        let month = r.starts_at.with_timezone(&zone(&r.clinic)).format("%Y-%m");
        months
            .entry((month.to_string(), r.clinic.clone()))
            .or_default()
            .add(r);
        clinics.entry(r.clinic.clone()).or_default().add(r);
        let provider = r.provider.clone().filter(|p| !p.trim().is_empty());
        providers
            .entry(provider.unwrap_or_default())
            .or_default()
            .add(r);
        let (rule, channel) = r.last_reminder.clone().unwrap_or_default();
        reminders
            .entry((r.last_reminder.is_none(), rule, channel))
            .or_default()
            .add(r);
        let era = eras.entry(r.clinic.clone()).or_default();
        match first.get(&r.clinic) {
            Some(f) if r.starts_at >= *f => era.1.add(r),
            _ => era.0.add(r),
        }
        if r.status == Status::Cancelled {
            cancelled += 1;
            let ahead = (r.starts_at - r.status_at).num_seconds();
            let i = NOTICE
                .iter()
                .rposition(|(_, least)| ahead >= *least)
                .unwrap_or(0);
            notice[i] += 1;
        }
        answer_secs.extend(r.answer_secs.filter(|s| *s >= 0));
        if let Some(s) = r.score.filter(|s| (1..=5).contains(s)) {
            given[usize::from(s - 1)] += 1;
        }
        (tried, failed) = (tried + r.reminders_tried, failed + r.reminders_failed);
        if r.reminders_tried > 0 {
            tried_for += 1;
            unreachable += u64::from(r.reminders_sent == 0 && r.reminders_failed > 0);
        }
    }
    let group = |key: String, label: String, clinic: Option<String>, t: &Tally| Group {
        key,
        label,
        clinic,
        outcomes: t.outcomes(min),
    };
    let mut providers: Vec<Group> = providers
        .iter()
        .map(|(p, t)| {
            let label = if p.is_empty() {
                "No provider named".into()
            } else {
                p.clone()
            };
            group(p.clone(), label, None, t)
        })
        .collect();
    providers.sort_by_key(|g| std::cmp::Reverse(g.outcomes.appointments));
    let rule_label = |rule: &str| match rule {
        "remind-now" => "Remind now".to_owned(),
        r => names.rules.get(r).cloned().unwrap_or_else(|| r.to_owned()),
    };
    answer_secs.sort_unstable();
    let answered = answer_secs.len() as u64;
    let scored: u64 = given.iter().sum();
    let weighted: u64 = given.iter().zip(1..).map(|(n, s)| n * s).sum();
    Report {
        from,
        to,
        min_count: min,
        total: total.outcomes(min),
        months: months
            .iter()
            .map(|((m, c), t)| group(m.clone(), month_words(m), Some(c.clone()), t))
            .collect(),
        clinics: clinics
            .iter()
            .map(|(c, t)| group(c.clone(), clinic_name(c), Some(c.clone()), t))
            .collect(),
        providers,
        reminders: reminders
            .iter()
            .map(|((none, rule, channel), t)| {
                let (key, label) = if *none {
                    (String::new(), NO_REMINDER.to_owned())
                } else {
                    let how = channel_words(channel);
                    (
                        format!("{rule}/{channel}"),
                        format!("{} by {how}", rule_label(rule)),
                    )
                };
                group(key, label, None, t)
            })
            .collect(),
        before_after: eras
            .iter()
            .map(|(c, (before, after))| BeforeAfter {
                clinic: c.clone(),
                label: clinic_name(c),
                first_reminder: first.get(c).copied(),
                before: before.outcomes(min),
                after: after.outcomes(min),
            })
            .collect(),
        notice: NOTICE
            .iter()
            .zip(notice)
            .map(|((label, _), n)| Notice {
                label,
                share: Rate::new(n, cancelled, min),
            })
            .collect(),
        answers: Answers {
            answered,
            median_minutes: (answered >= min.max(1)).then(|| median(&answer_secs) / 60),
            enough: answered >= min.max(1),
        },
        feedback: Feedback {
            scored,
            scores: given,
            #[allow(clippy::cast_precision_loss)] // counts of appointments: far below 2^52
            average: (scored >= min.max(1))
                .then(|| (weighted as f64 / scored as f64 * 10.0).round() / 10.0),
            enough: scored >= min.max(1),
        },
        delivery: Delivery {
            failed_messages: Rate::new(failed, tried, min),
            unreachable: Rate::new(unreachable, tried_for, min),
        },
    }
}

/// The median of sorted values (the lower middle of an even count); 0 when empty.
fn median(sorted: &[i64]) -> i64 {
    match sorted.len() {
        0 => 0,
        n => sorted[(n - 1) / 2],
    }
}

/// "2026-11" → "November 2026".
pub fn month_words(month: &str) -> String {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_or_else(|_| month.to_owned(), |d| d.format("%B %Y").to_string())
}

#[cfg(test)]
mod tests;
