//! Planning feedback requests: "how was your visit?" some time after an appointment ended,
//! for visits that were not cancelled or missed. Pure, like the reminders' planning.

use chrono::{DateTime, Duration, Utc};

use super::{Due, Kind, Reach, local, routes, shift_out_of_quiet};
use crate::config::{Config, FeedbackRule};
use crate::model::Status;

/// A visit a feedback request may be about, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    /// Appointment row id.
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Length in minutes.
    pub duration_min: u32,
    /// Schedule status.
    pub status: Status,
    /// The patient opted out of messages, or their data was erased.
    pub opted_out: bool,
    /// Who is messaged, and how.
    pub reach: Reach,
}

impl Visit {
    /// When it ended.
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.starts_at + Duration::minutes(i64::from(self.duration_min))
    }
}

/// How far back a visit's end may lie and still owe a feedback request: the longest
/// `latest` of any feedback rule, and a day for quiet hours. `None`: no feedback rule.
pub fn lookback(config: &Config) -> Option<Duration> {
    config
        .feedback
        .iter()
        .map(|r| r.latest)
        .max()
        .map(|l| l + Duration::hours(26))
}

/// Every feedback request due at `now` for these visits: at the end plus `after` (out of
/// quiet hours, as reminders), one per visit and rule, to the first of the appointment's
/// recipients. A cancelled or missed visit, or one whose patient opted out, gets none.
pub fn plan_feedback(config: &Config, visits: &[Visit], now: DateTime<Utc>) -> Vec<Due> {
    let mut out = Vec::new();
    for v in visits {
        let Some(clinic) = config.clinic(&v.clinic) else {
            continue;
        };
        if !asks_feedback(v.status) || v.opted_out {
            continue;
        }
        for rule in config
            .feedback
            .iter()
            .filter(|r| r.clinics.contains(&v.clinic))
        {
            let Some(mut d) = due_after(rule, clinic, v, now) else {
                continue;
            };
            // One request per visit: to the patient, or to the caregiver who acts for them.
            let Some((recipient, channel)) = routes(clinic, &v.reach, now).into_iter().next()
            else {
                continue;
            };
            d.recipient = recipient;
            d.channel = channel;
            out.push(d);
        }
    }
    out
}

/// Whether a visit with this status is asked about: one that happened, or was not marked
/// either way; never one cancelled or missed.
pub fn asks_feedback(status: Status) -> bool {
    matches!(status, Status::Booked | Status::Completed)
}

fn due_after(
    rule: &FeedbackRule,
    clinic: &crate::config::Clinic,
    v: &Visit,
    now: DateTime<Utc>,
) -> Option<Due> {
    let zone = clinic.time_zone;
    let ends = v.ends_at();
    let ideal = ends + rule.after;
    let latest_at = ends + rule.latest;
    let send_at = clinic
        .quiet_hours
        .map_or(ideal, |q| shift_out_of_quiet(ideal, latest_at, q, zone));
    // Quiet hours that last past `latest` move it back before the visit's end: then it
    // waits for the end, and is sent if there is still time.
    let send_at = send_at.max(ends);
    if send_at > now {
        return None;
    }
    let expired = (now > latest_at).then(|| {
        format!(
            "not sent in time: due at {}, and the last useful moment ({} after the visit) was {}",
            local(send_at, zone),
            super::humanize(rule.latest),
            local(latest_at, zone)
        )
    });
    Some(Due {
        appointment_id: v.id,
        kind: Kind::Feedback,
        rule: rule.name.clone(),
        template: rule.template.clone(),
        slot_start: v.starts_at,
        send_at,
        latest_at,
        expired,
        recipient: crate::model::Recipient::Patient,
        channel: crate::model::Channel::WhatsApp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_instant;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_instant(s).expect("instant")
    }

    fn config() -> Config {
        let mut c = Config::example().expect("shipped config");
        c.feedback.push(FeedbackRule {
            name: "after-visit".into(),
            label: None,
            after: Duration::hours(2),
            latest: Duration::days(1),
            template: "reminder".into(),
            clinics: vec!["mumbai".into()],
        });
        c
    }

    fn visit(starts: &str) -> Visit {
        Visit {
            id: 7,
            clinic: "mumbai".into(),
            starts_at: utc(starts),
            duration_min: 30,
            status: Status::Completed,
            opted_out: false,
            reach: Reach::default(),
        }
    }

    #[test]
    fn a_request_goes_two_hours_after_the_end_and_not_for_a_cancelled_or_missed_visit() {
        let c = config();
        // 10:00–10:30 IST (04:30Z): due at 12:30 IST.
        let v = visit("2026-11-26T04:30:00Z");
        assert!(
            plan_feedback(&c, std::slice::from_ref(&v), utc("2026-11-26T06:59:00Z")).is_empty()
        );
        let due = plan_feedback(&c, std::slice::from_ref(&v), utc("2026-11-26T07:00:00Z"));
        assert_eq!(due.len(), 1);
        assert_eq!(
            (
                due[0].kind,
                due[0].rule.as_str(),
                due[0].send_at,
                due[0].latest_at
            ),
            (
                Kind::Feedback,
                "after-visit",
                utc("2026-11-26T07:00:00Z"),
                utc("2026-11-27T05:00:00Z")
            )
        );
        for status in [Status::Cancelled, Status::NoShow] {
            let v = Visit {
                status,
                ..v.clone()
            };
            assert!(
                plan_feedback(&c, &[v], utc("2026-11-26T08:00:00Z")).is_empty(),
                "{status}"
            );
        }
        let v = Visit {
            opted_out: true,
            ..v
        };
        assert!(plan_feedback(&c, &[v], utc("2026-11-26T08:00:00Z")).is_empty());
        let nyc = Visit {
            clinic: "nyc".into(),
            ..visit("2026-11-26T15:00:00Z")
        };
        assert!(
            plan_feedback(&c, &[nyc], utc("2026-11-27T00:00:00Z")).is_empty(),
            "rule is Mumbai's only"
        );
    }

    #[test]
    fn an_evening_visit_is_asked_about_when_quiet_hours_end_and_a_late_plan_expires() {
        let c = config();
        // 19:30–20:00 IST (14:00Z): +2h is 22:00 IST, in quiet hours (21:00–08:00): 08:00 IST.
        let v = visit("2026-11-26T14:00:00Z");
        let due = plan_feedback(&c, std::slice::from_ref(&v), utc("2026-11-27T03:00:00Z"));
        assert_eq!(
            due[0].send_at,
            utc("2026-11-27T02:30:00Z"),
            "08:00 IST next morning"
        );
        assert!(due[0].expired.is_none());
        let late = plan_feedback(&c, &[v], utc("2026-11-28T03:00:00Z"));
        let why = late[0].expired.as_deref().expect("expired");
        assert!(
            why.contains("1d after the visit") && why.contains("IST"),
            "{why}"
        );
        assert_eq!(lookback(&c), Some(Duration::hours(50)));
        assert_eq!(lookback(&Config::example().expect("config")), None);
    }
}
