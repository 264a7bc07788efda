//! The pure decisions of dispatch: whether a due row is still right to send now
//! ([`verdict`]), and what a failed send means for its row ([`outcome`], [`backoff`]).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use super::{HOLD_RECHECK, offers};
use crate::config::{Config, WhatsApp};
use crate::model::Channel;
use crate::plan::{Kind, check_quiet, humanize};
use crate::store::{DueRow, Outcome, Response, Status, Verdict};
use crate::whatsapp::{ErrorClass, SendError, is_unreachable};

/// The send-time checks: is this message still right to send, now?
pub fn verdict(row: &DueRow, config: &Config, now: DateTime<Utc>) -> Verdict {
    verdict_with_feeds(row, config, now, &std::collections::BTreeMap::new())
}

/// As [`verdict`], with the clinics a schedule feed holds (clinic key → why:
/// [`crate::feeds::held_clinics`]), which wait like a stale upload's.
pub fn verdict_with_feeds(
    row: &DueRow,
    config: &Config,
    now: DateTime<Utc>,
    feed_holds: &std::collections::BTreeMap<String, String>,
) -> Verdict {
    // An acknowledgement answers what the patient just wrote (a cancellation, a STOP): none of
    // the schedule checks apply, only the 24-hour window for free-form messages.
    // A waitlist offer is checked against its offer and opening, not the appointment it is
    // filed under.
    if row.kind == Kind::WaitlistOffer {
        return offers::verdict(row, config, now);
    }
    // A staff message answers the patient too: it goes even if the appointment was cancelled.
    // A reschedule list answers the patient's "reschedule" the same way (free-form, in the
    // window); the claim checks its openings when the patient picks.
    if row.kind == Kind::ReplyAck || row.kind.is_staff() || row.kind == Kind::RescheduleOffer {
        return if now > row.latest_at {
            Verdict::Expire("the 24-hour window for answering the patient had closed".into())
        } else if row.kind == Kind::StaffTemplate && row.opted_out {
            Verdict::Skip("the patient opted out of messages".into())
        } else {
            Verdict::Send
        };
    }
    // A feedback request asks about a visit that happened: it goes after the start, but
    // never about a visit cancelled or missed since it was planned.
    let feedback = row.kind == Kind::Feedback;
    if feedback && row.status == Status::NoShow {
        return Verdict::Skip("the patient did not come (marked as a no-show)".into());
    }
    if !(feedback && crate::plan::asks_feedback(row.status)) && row.status != Status::Booked {
        let by = row
            .cancelled_by
            .map(|b| format!(" by the {b}"))
            .unwrap_or_default();
        return Verdict::Skip(format!("the appointment is {}{by}", row.status));
    }
    if row.starts_at != row.slot_start {
        return Verdict::Skip(format!(
            "the appointment moved to {} after this message was planned",
            row.starts_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    if row.opted_out {
        return Verdict::Skip("the patient opted out of messages".into());
    }
    if row.channel == Channel::Sms {
        if row.sms_opted_out {
            return Verdict::Skip("the number opted out of text messages (STOP)".into());
        }
        if config
            .clinic(&row.clinic)
            .is_some_and(|c| c.sms_provider.is_none())
        {
            return Verdict::Skip(format!(
                "clinic {} has no SMS provider configured",
                row.clinic
            ));
        }
    }
    if row.kind == Kind::Reminder {
        match config.rules.iter().find(|r| r.name == row.rule) {
            None => return Verdict::Skip(format!("rule {:?} is no longer configured", row.rule)),
            Some(r) if r.skip_if_confirmed && row.response == Response::Confirmed => {
                return Verdict::Skip("the patient already confirmed".into());
            }
            Some(_) => {}
        }
    }
    if feedback && !config.feedback.iter().any(|r| r.name == row.rule) {
        return Verdict::Skip(format!("rule {:?} is no longer configured", row.rule));
    }
    if !feedback && row.starts_at <= now {
        return Verdict::Expire("the appointment had already started".into());
    }
    if now > row.latest_at {
        let why = row
            .reason
            .as_deref()
            .map(|r| format!(" (it was held: {r})"))
            .unwrap_or_default();
        return Verdict::Expire(format!(
            "not sent before its latest time {}{why}",
            row.latest_at.to_rfc3339()
        ));
    }
    let Some(clinic) = config.clinic(&row.clinic) else {
        return Verdict::Skip(format!("clinic {:?} is no longer configured", row.clinic));
    };
    if let Some(reason) = feed_holds.get(&clinic.key) {
        return Verdict::Hold(now + HOLD_RECHECK, format!("held: {reason}"));
    }
    // A clinic a feed keeps up to date is guarded by the feed's freshness, not by uploads.
    if let Some(max_age) = clinic.max_import_age
        && !crate::feeds::is_fed(config, &clinic.key)
    {
        let stale = row.last_import_at.is_none_or(|t| now - t > max_age);
        if stale {
            let last = row.last_import_at.map_or("never".to_string(), |t| {
                format!("{} ago", humanize(now - t))
            });
            return Verdict::Hold(
                now + HOLD_RECHECK,
                format!(
                    "held: clinic {}'s schedule was last imported {last}, longer ago than max_import_age ({}); import today's schedule to release it",
                    clinic.key,
                    humanize(max_age)
                ),
            );
        }
    }
    if let Err(end) = check_quiet(now, clinic.quiet_hours, clinic.time_zone) {
        if end > row.latest_at {
            return Verdict::Expire("quiet hours last until after its latest time".into());
        }
        return Verdict::Hold(end, "held: quiet hours at the clinic".into());
    }
    Verdict::Send
}

/// What a failed send means for its row. `unit` is a random number in [0, 1) for jitter.
pub fn outcome(
    err: &SendError,
    row: &DueRow,
    cfg: &WhatsApp,
    now: DateTime<Utc>,
    unit: f64,
) -> Outcome {
    let attempts = row.attempts + 1;
    let code = err.code();
    let error = err.to_string();
    let retry_at = |delay: StdDuration| -> Outcome {
        let at = now + Duration::from_std(delay).unwrap_or(Duration::hours(1));
        if at > row.latest_at {
            Outcome::Expired {
                reason: format!("could not be sent before its latest time; last error: {error}"),
            }
        } else if attempts >= cfg.max_attempts {
            Outcome::Failed {
                code,
                error: format!("gave up after {attempts} attempts: {error}"),
                needs_staff: None,
            }
        } else {
            Outcome::Retry {
                at,
                code,
                error: error.clone(),
            }
        }
    };
    if code == Some(134_101) {
        // The template is still syncing after a change: Meta says to wait 10 minutes.
        return retry_at(StdDuration::from_mins(10));
    }
    match err.class() {
        ErrorClass::Retry | ErrorClass::Throttled => {
            retry_at(backoff(attempts, cfg.retry_base, cfg.retry_max, unit))
        }
        ErrorClass::PairLimit => retry_at(pair_backoff(attempts)),
        ErrorClass::LongWait => retry_at(StdDuration::from_hours(1)),
        ErrorClass::OperatorStop => Outcome::Released {
            reason: format!("not sent: {error}"),
        },
        ErrorClass::Terminal => match err {
            SendError::Ambiguous(_) => Outcome::Unknown { error },
            _ => Outcome::Failed {
                code,
                needs_staff: code.and_then(needs_staff),
                error,
            },
        },
    }
}

/// What staff must do about a message that failed with `code`: a patient who cannot be
/// reached on WhatsApp must be called. The one rule, for send errors and failed statuses.
pub fn needs_staff(code: i64) -> Option<String> {
    is_unreachable(code).then(|| "this patient cannot be reached on WhatsApp: call them".into())
}

/// Backoff before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped, with "equal jitter"
/// (half fixed, half random) so retries from many rows spread out. `unit` is a random number
/// in [0, 1), passed in to keep this pure.
pub fn backoff(attempt: u32, base: StdDuration, max: StdDuration, unit: f64) -> StdDuration {
    let exp = base.saturating_mul(
        1u32.checked_shl(attempt.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX),
    );
    let capped = exp.min(max);
    capped.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// The Cloud API's advice for the pair rate limit: wait 4^n seconds.
pub fn pair_backoff(attempt: u32) -> StdDuration {
    StdDuration::from_secs(4u64.saturating_pow(attempt.saturating_sub(1).min(6)))
}
