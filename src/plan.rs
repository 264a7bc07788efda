//! Planning: which messages are due, evaluated in each clinic's time zone. Pure: appointments,
//! rules and `now` in, due messages out. No I/O, no clock.
//!
//! A message is *materialised* (turned into an outbox row) once its send time has come; rows
//! are unique per (appointment, kind, rule, slot start), so planning twice adds nothing and a
//! moved appointment gets fresh rows for its new time while the old ones are skipped at send
//! time.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::config::{Clinic, Config, Offset, QuietHours, Rule};
pub use crate::model::Kind;
use crate::model::{Channel, ChannelChoice, Recipient, RemindWhom, Response, Status};
use crate::time::local_to_utc_forward;

mod feedback;
pub use feedback::{Visit, asks_feedback, lookback, plan_feedback};

/// The rule name stored on booking confirmations.
pub const BOOKING_RULE: &str = "booking";

/// How long after an appointment first appears a booking confirmation is still worth sending.
pub const BOOKING_WINDOW: Duration = Duration::hours(24);

/// What planning needs to know about an appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Appointment row id.
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// When reminderd first saw it.
    pub created_at: DateTime<Utc>,
    /// Schedule status.
    pub status: Status,
    /// The patient's answer.
    pub response: Response,
    /// The patient has opted out of messages.
    pub opted_out: bool,
    /// Who is reminded, and how they can be reached.
    pub reach: Reach,
}

/// How an appointment's people can be reached, as the store knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// The schedule's `channel` for the patient (`None`: not given).
    pub choice: Option<ChannelChoice>,
    /// Whom to remind.
    pub remind: RemindWhom,
    /// A caregiver's number is on file.
    pub has_contact: bool,
    /// The patient's number is known not to be on WhatsApp until then.
    pub patient_sms_until: Option<DateTime<Utc>>,
    /// The caregiver's number is known not to be on WhatsApp until then.
    pub contact_sms_until: Option<DateTime<Utc>>,
}

/// Who gets an appointment's messages and on which channel, at `now`: the schedule's choice
/// first (`sms`: SMS only; `none`: nobody, staff call), then what WhatsApp taught us (a number
/// not on WhatsApp, or who blocked the clinic, gets SMS until WhatsApp is tried again), then
/// WhatsApp. A recipient whose only way is SMS at a clinic without an SMS provider gets
/// nothing: staff call (`Store::follow_ups` lists them).
pub fn routes(clinic: &Clinic, reach: &Reach, now: DateTime<Utc>) -> Vec<(Recipient, Channel)> {
    let who: &[Recipient] = match (reach.remind, reach.has_contact) {
        (RemindWhom::Patient, _) | (_, false) => &[Recipient::Patient],
        (RemindWhom::Contact, true) => &[Recipient::Contact],
        (RemindWhom::Both, true) => &[Recipient::Patient, Recipient::Contact],
    };
    let sms = clinic.sms_provider.is_some();
    who.iter()
        .filter_map(|&r| {
            let sms_until = match r {
                Recipient::Patient => reach.patient_sms_until,
                Recipient::Contact => reach.contact_sms_until,
            };
            let channel = match reach.choice {
                // Nobody to message: no automated messages, or texts only without a provider.
                Some(ChannelChoice::None | ChannelChoice::Sms) if !sms => return None,
                Some(ChannelChoice::None) => return None,
                Some(ChannelChoice::Sms) => Channel::Sms,
                _ if sms_until.is_some_and(|u| u > now) => {
                    if !sms {
                        return None;
                    }
                    Channel::Sms
                }
                _ => Channel::WhatsApp,
            };
            Some((r, channel))
        })
        .collect()
}

/// A message whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Appointment row id.
    pub appointment_id: i64,
    /// Reminder or booking confirmation.
    pub kind: Kind,
    /// Rule name (or [`BOOKING_RULE`]).
    pub rule: String,
    /// Template config key.
    pub template: String,
    /// The appointment start it is for.
    pub slot_start: DateTime<Utc>,
    /// When it should go (quiet hours applied).
    pub send_at: DateTime<Utc>,
    /// Not to be sent after this.
    pub latest_at: DateTime<Utc>,
    /// Set when it is already too late: recorded as `expired` with this reason.
    pub expired: Option<String>,
    /// Whom it is for.
    pub recipient: Recipient,
    /// How it goes.
    pub channel: Channel,
}

/// Every message due at `now` for these appointments.
pub fn plan(config: &Config, candidates: &[Candidate], now: DateTime<Utc>) -> Vec<Due> {
    let mut out = Vec::new();
    for a in candidates {
        let Some(clinic) = config.clinic(&a.clinic) else {
            continue;
        };
        // Past, cancelled and opted-out appointments are never reminded.
        if a.starts_at <= now || a.status != Status::Booked || a.opted_out {
            continue;
        }
        for rule in config
            .rules
            .iter()
            .filter(|r| r.clinics.contains(&a.clinic))
        {
            if rule.skip_if_confirmed && a.response == Response::Confirmed {
                continue;
            }
            if let Some(d) = due_for_rule(rule, clinic, a, now) {
                out.extend(routed(d, clinic, a, now));
            }
        }
        if let Some(template) = &config.booking_confirmation
            && let Some(d) = due_booking(template, clinic, a, now)
        {
            out.extend(routed(d, clinic, a, now));
        }
    }
    out
}

/// One message per recipient and channel of the appointment.
fn routed<'a>(
    d: Due,
    clinic: &Clinic,
    a: &'a Candidate,
    now: DateTime<Utc>,
) -> impl Iterator<Item = Due> + 'a {
    routes(clinic, &a.reach, now)
        .into_iter()
        .map(move |(recipient, channel)| Due {
            recipient,
            channel,
            ..d.clone()
        })
}

/// The furthest ahead of an appointment any message can be due: candidates starting later
/// than `now` plus this need not be read.
pub fn horizon(config: &Config) -> Duration {
    let longest = config
        .rules
        .iter()
        .map(|r| r.before.approx())
        .max()
        .unwrap_or_default();
    // A DST change adds an hour to a `1d` offset, and quiet hours can move a message to the
    // evening before.
    longest + Duration::hours(26)
}

fn due_for_rule(rule: &Rule, clinic: &Clinic, a: &Candidate, now: DateTime<Utc>) -> Option<Due> {
    let zone = clinic.time_zone;
    let latest_at = a.starts_at - rule.latest;
    let ideal = send_time(rule.before, a.starts_at, zone);
    let send_at = clinic
        .quiet_hours
        .map_or(ideal, |q| shift_out_of_quiet(ideal, latest_at, q, zone));
    if send_at > now {
        return None;
    }
    let expired = (now > latest_at).then(|| {
        format!(
            "not sent in time: due at {}, and the last useful moment ({} before the start) was {}",
            local(send_at, zone),
            humanize(rule.latest),
            local(latest_at, zone)
        )
    });
    Some(Due {
        appointment_id: a.id,
        kind: Kind::Reminder,
        rule: rule.name.clone(),
        template: rule.template.clone(),
        slot_start: a.starts_at,
        send_at,
        latest_at,
        expired,
        recipient: Recipient::Patient,
        channel: Channel::WhatsApp,
    })
}

fn due_booking(template: &str, clinic: &Clinic, a: &Candidate, now: DateTime<Utc>) -> Option<Due> {
    if now - a.created_at > BOOKING_WINDOW {
        return None;
    }
    let zone = clinic.time_zone;
    let latest_at = a.starts_at;
    let send_at = clinic.quiet_hours.map_or(a.created_at, |q| {
        shift_out_of_quiet(a.created_at, latest_at, q, zone)
    });
    if send_at > now {
        return None;
    }
    Some(Due {
        appointment_id: a.id,
        kind: Kind::BookingConfirmation,
        rule: BOOKING_RULE.into(),
        template: template.into(),
        slot_start: a.starts_at,
        send_at,
        latest_at,
        expired: None,
        recipient: Recipient::Patient,
        channel: Channel::WhatsApp,
    })
}

/// The ideal send time of an offset: exact spans subtract; `Nd` keeps the local wall time on
/// the calendar day N days earlier (a time lost to a DST gap moves to just after the gap; a
/// time that happens twice takes the first).
pub fn send_time(before: Offset, start: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    match before {
        Offset::Exact(d) => start - d,
        Offset::Days(n) => {
            let local = start.with_timezone(&zone).naive_local();
            let earlier = local - Duration::days(i64::from(n));
            local_to_utc_forward(zone, earlier)
        }
    }
}

/// Whether a local instant falls in the quiet period.
pub fn is_quiet(at: DateTime<Utc>, quiet: QuietHours, zone: Tz) -> bool {
    quiet_period(at, quiet, zone).is_some()
}

/// The quiet period (as UTC start and end) containing `at`, if any.
fn quiet_period(
    at: DateTime<Utc>,
    q: QuietHours,
    zone: Tz,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let local = at.with_timezone(&zone).naive_local();
    let (date, t) = (local.date(), local.time());
    let day = Duration::days(1);
    let (start, end): (NaiveDateTime, NaiveDateTime) = if q.start < q.end {
        if t < q.start || t >= q.end {
            return None;
        }
        (date.and_time(q.start), date.and_time(q.end))
    } else if t >= q.start {
        (date.and_time(q.start), (date + day).and_time(q.end))
    } else if t < q.end {
        ((date - day).and_time(q.start), date.and_time(q.end))
    } else {
        return None;
    };
    Some((
        local_to_utc_forward(zone, start),
        local_to_utc_forward(zone, end),
    ))
}

/// How long before quiet hours begin a message moved "to the start of quiet hours" is due,
/// so that planning and sending, which run every minute or so, are sure to reach it before
/// quiet begins (a one-minute margin let 911 reminders of a simulated week expire; found by
/// bench/plan.py).
pub const BEFORE_QUIET: Duration = Duration::minutes(30);

/// Moves a send time out of quiet hours: to the end of the quiet period if that is still no
/// later than `latest`, else back to [`BEFORE_QUIET`] before the period starts.
pub fn shift_out_of_quiet(
    at: DateTime<Utc>,
    latest: DateTime<Utc>,
    q: QuietHours,
    zone: Tz,
) -> DateTime<Utc> {
    match quiet_period(at, q, zone) {
        None => at,
        Some((_, end)) if end <= latest => end,
        Some((start, _)) => start - BEFORE_QUIET,
    }
}

/// At send time: `Ok(())` if a message may go now, or `Err(when)` with the end of the
/// current quiet period (which may be after `latest`: then it must expire).
pub fn check_quiet(
    now: DateTime<Utc>,
    q: Option<QuietHours>,
    zone: Tz,
) -> Result<(), DateTime<Utc>> {
    match q.and_then(|q| quiet_period(now, q, zone)) {
        None => Ok(()),
        Some((_, end)) => Err(end),
    }
}

/// The start of a manual reminder's rule column; the press's one-time nonce follows, so a
/// press sent twice (a double click, a resubmitted form, a retry) meets its own row.
pub const PRESS_RULE: &str = "press:";

/// A reminder staff asked for ("Remind now"): the template it uses and when it may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manual {
    /// The rule whose template it uses ([`manual_rule`]).
    pub rule: String,
    /// Template config key.
    pub template: String,
    /// Now, or the end of the quiet hours it was asked for in.
    pub send_at: DateTime<Utc>,
    /// The appointment's start: a reminder after it would help nobody.
    pub latest_at: DateTime<Utc>,
    /// Whom it goes to and how ([`routes`]).
    pub routes: Vec<(Recipient, Channel)>,
}

/// Why no reminder can be sent on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotNow {
    /// The clinic is no longer configured.
    UnknownClinic,
    /// Cancelled, completed or a no-show.
    NotBooked(Status),
    /// The appointment has started (or is over).
    Started,
    /// The patient opted out of messages.
    OptedOut,
    /// No reminder rule applies to the clinic, so there is no template to send.
    NoRule,
    /// Quiet hours last until this instant, which is not before the appointment starts.
    QuietPastStart(DateTime<Utc>),
    /// The schedule says no messages for this patient (channel `none`), or texts only at a
    /// clinic without an SMS provider.
    NoChannel,
}

impl NotNow {
    /// The sentence a receptionist reads, with times as the clinic writes them.
    pub fn sentence(&self, clinic: &Clinic) -> String {
        let none = "so no reminder can be sent";
        match self {
            Self::UnknownClinic => format!("This clinic is no longer set up, {none}."),
            Self::NotBooked(status) => {
                let is = match status {
                    Status::Cancelled => "cancelled",
                    Status::Completed => "marked as completed",
                    Status::NoShow => "marked as a no-show",
                    Status::Booked => "booked",
                };
                format!("This appointment is {is}, {none}.")
            }
            Self::Started => format!("This appointment has already started, {none}."),
            Self::OptedOut => format!(
                "The patient asked not to get WhatsApp messages (they replied STOP), {none}. Call them instead."
            ),
            Self::NoRule => format!(
                "No reminder message is set up for this clinic, {none}. Ask the administrator to set one up."
            ),
            Self::NoChannel => format!(
                "The schedule says this patient gets no messages (or texts only, and this clinic has no text service), {none}. Call them instead."
            ),
            Self::QuietPastStart(end) => format!(
                "Quiet hours at the clinic last until {}, after the appointment starts, {none}.",
                clock_time(*end, clinic)
            ),
        }
    }
}

/// The rule whose template a manual reminder uses: the first `[[rules]]` entry of
/// reminders.toml that applies to the clinic, the message `reminderd preview` shows by default.
pub fn manual_rule<'c>(config: &'c Config, clinic: &str) -> Option<&'c Rule> {
    config
        .rules
        .iter()
        .find(|r| r.clinics.iter().any(|c| c == clinic))
}

/// What a press of "Remind now" at `now` may send for this appointment: never for a cancelled
/// (or completed) appointment, an opted-out patient or an appointment that has started; in
/// quiet hours it waits for their end, unless that is not before the start.
pub fn manual(config: &Config, a: &Candidate, now: DateTime<Utc>) -> Result<Manual, NotNow> {
    let clinic = config.clinic(&a.clinic).ok_or(NotNow::UnknownClinic)?;
    if a.status != Status::Booked {
        return Err(NotNow::NotBooked(a.status));
    }
    if a.starts_at <= now {
        return Err(NotNow::Started);
    }
    if a.opted_out {
        return Err(NotNow::OptedOut);
    }
    let rule = manual_rule(config, &a.clinic).ok_or(NotNow::NoRule)?;
    let send_at =
        check_quiet(now, clinic.quiet_hours, clinic.time_zone).map_or_else(|end| end, |()| now);
    if send_at >= a.starts_at {
        return Err(NotNow::QuietPastStart(send_at));
    }
    let routes = routes(clinic, &a.reach, now);
    if routes.is_empty() {
        return Err(NotNow::NoChannel);
    }
    Ok(Manual {
        rule: rule.name.clone(),
        template: rule.template.clone(),
        send_at,
        latest_at: a.starts_at,
        routes,
    })
}

/// Whether an appointment is among the unanswered a clinic may remind all at once: booked, not
/// answered, the patient not opted out, and not yet started.
pub fn unanswered(a: &Candidate, now: DateTime<Utc>) -> bool {
    a.status == Status::Booked && a.response == Response::None && !a.opted_out && a.starts_at > now
}

/// A time of day as the clinic writes it (`time_format`), with its zone's abbreviation.
pub fn clock_time(t: DateTime<Utc>, clinic: &Clinic) -> String {
    let local = t.with_timezone(&clinic.time_zone);
    format!(
        "{} {}",
        local.format(&clinic.time_format),
        local.format("%Z")
    )
}

fn local(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// `4h`, `30m`, `1d 2h` for messages.
pub fn humanize(d: Duration) -> String {
    let mins = d.num_minutes();
    let (days, hours, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if m > 0 || parts.is_empty() {
        parts.push(format!("{m}m"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::time::parse_instant;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_instant(s).expect("instant")
    }

    fn config() -> Config {
        Config::example().expect("the shipped reminders.toml is valid")
    }

    fn appt(clinic: &str, starts: &str) -> Candidate {
        Candidate {
            id: 1,
            clinic: clinic.into(),
            starts_at: utc(starts),
            created_at: utc("2020-01-01T00:00:00Z"),
            status: Status::Booked,
            response: Response::None,
            opted_out: false,
            reach: Reach::default(),
        }
    }

    fn send_times(
        c: &Config,
        a: &Candidate,
        now: &str,
    ) -> Vec<(String, DateTime<Utc>, Option<String>)> {
        plan(c, std::slice::from_ref(a), utc(now))
            .into_iter()
            .map(|d| (d.rule, d.send_at, d.expired))
            .collect()
    }

    #[test]
    fn kolkata_day_before_and_same_day() {
        let c = config();
        // Thu 26 Nov 2026 10:00 IST = 04:30Z.
        let a = appt("mumbai", "2026-11-26T04:30:00Z");
        assert!(
            send_times(&c, &a, "2026-11-25T04:29:00Z").is_empty(),
            "not due yet"
        );
        let due = send_times(&c, &a, "2026-11-25T04:30:00Z");
        assert_eq!(
            due,
            vec![("day-before".to_string(), utc("2026-11-25T04:30:00Z"), None)]
        );
        let due = send_times(&c, &a, "2026-11-26T02:30:00Z");
        assert_eq!(due.len(), 2, "same-day is due at 08:00 IST too: {due:?}");
        assert_eq!(due[1].1, utc("2026-11-26T02:30:00Z"));
    }

    #[test]
    fn new_york_spring_forward_2d_keeps_wall_time_and_48h_does_not() {
        // Mon 15 Mar 2027 10:00 EDT (14:00Z); clocks went forward on Sun 14 Mar.
        let start = utc("2027-03-15T14:00:00Z");
        let zone = chrono_tz::America::New_York;
        assert_eq!(
            send_time(Offset::Days(2), start, zone),
            utc("2027-03-13T15:00:00Z"),
            "Sat 10:00 EST"
        );
        assert_eq!(
            send_time(Offset::Exact(Duration::hours(48)), start, zone),
            utc("2027-03-13T14:00:00Z"),
            "Sat 09:00 EST"
        );
    }

    #[test]
    fn new_york_fall_back_2d_keeps_wall_time_and_48h_does_not() {
        // Mon 8 Nov 2027 10:00 EST (15:00Z); clocks went back on Sun 7 Nov.
        let start = utc("2027-11-08T15:00:00Z");
        let zone = chrono_tz::America::New_York;
        assert_eq!(
            send_time(Offset::Days(2), start, zone),
            utc("2027-11-06T14:00:00Z"),
            "Sat 10:00 EDT"
        );
        assert_eq!(
            send_time(Offset::Exact(Duration::hours(48)), start, zone),
            utc("2027-11-06T15:00:00Z"),
            "Sat 11:00 EDT"
        );
    }

    #[test]
    fn a_day_offset_landing_in_a_dst_gap_moves_past_it() {
        // 1d before Mon 02:30 is Sun 02:30, which the spring-forward gap skips.
        let start = utc("2027-03-15T06:30:00Z"); // Mon 02:30 EDT
        let at = send_time(Offset::Days(1), start, chrono_tz::America::New_York);
        assert_eq!(
            at,
            utc("2027-03-14T07:00:00Z"),
            "Sun 03:00 EDT, the first minute after the gap"
        );
    }

    #[test]
    fn quiet_hours_move_to_the_end_if_before_latest_else_to_the_start() {
        let c = config();
        // Mumbai 07:30 IST appointment (02:00Z): same-day is 05:30, quiet until 08:00 which is
        // after latest (07:00), so it moves back to 20:30, half an hour before quiet begins.
        let a = appt("mumbai", "2026-11-27T02:00:00Z");
        let due = plan(&c, std::slice::from_ref(&a), utc("2026-11-27T01:00:00Z"));
        let same_day = due.iter().find(|d| d.rule == "same-day").expect("same-day");
        assert_eq!(
            same_day.send_at,
            utc("2026-11-26T15:00:00Z"),
            "20:30 IST the evening before"
        );
        // Planned at 20:58 it is pending, and 20:58 is not quiet, so it can still be sent.
        let mut same_day_only = c.clone();
        same_day_only.rules.retain(|r| r.name == "same-day");
        let at_2058 = utc("2026-11-26T15:28:00Z");
        let late = plan(&same_day_only, std::slice::from_ref(&a), at_2058);
        assert_eq!(late.len(), 1);
        assert!(late[0].expired.is_none());
        let quiet = c.clinic("mumbai").and_then(|m| m.quiet_hours);
        assert_eq!(
            check_quiet(at_2058, quiet, chrono_tz::Asia::Kolkata),
            Ok(())
        );
        // The day-before reminder would be 07:30 the day before, inside quiet hours; 08:00 is
        // before latest (03:30 on the day), so it moves to 08:00.
        let day_before = due
            .iter()
            .find(|d| d.rule == "day-before")
            .expect("day-before");
        assert_eq!(
            day_before.send_at,
            utc("2026-11-26T02:30:00Z"),
            "08:00 IST the day before"
        );
    }

    #[test]
    fn a_late_plan_is_expired_with_a_reason() {
        let c = config();
        // Daemon down all day: at 09:45 IST for a 10:00 IST appointment, both are past latest.
        let a = appt("mumbai", "2026-11-26T04:30:00Z");
        let due = send_times(&c, &a, "2026-11-26T04:15:00Z");
        assert_eq!(due.len(), 2);
        for (rule, _, expired) in &due {
            let reason = expired
                .as_deref()
                .unwrap_or_else(|| panic!("{rule} should be expired"));
            assert!(
                reason.contains("not sent in time") && reason.contains("IST"),
                "{reason}"
            );
        }
    }

    #[test]
    fn confirmed_cancelled_opted_out_and_past_appointments_get_nothing() {
        let c = config();
        let mut a = appt("mumbai", "2026-11-26T04:30:00Z");
        a.response = Response::Confirmed;
        let rules: Vec<String> = send_times(&c, &a, "2026-11-26T02:40:00Z")
            .into_iter()
            .map(|d| d.0)
            .collect();
        assert_eq!(rules, ["day-before"], "same-day skips confirmed patients");
        a.response = Response::None;
        a.status = Status::Cancelled;
        assert!(send_times(&c, &a, "2026-11-26T02:40:00Z").is_empty());
        a.status = Status::Booked;
        a.opted_out = true;
        assert!(send_times(&c, &a, "2026-11-26T02:40:00Z").is_empty());
        a.opted_out = false;
        assert!(
            send_times(&c, &a, "2026-11-26T05:00:00Z").is_empty(),
            "already started"
        );
    }

    #[test]
    fn booking_confirmation_goes_when_the_appointment_first_appears_outside_quiet_hours() {
        let c = config();
        let mut a = appt("nyc", "2026-12-01T15:00:00Z");
        a.created_at = utc("2026-11-25T03:00:00Z"); // 22:00 EST: quiet
        let due = plan(&c, std::slice::from_ref(&a), utc("2026-11-25T14:00:00Z"));
        let b = due
            .iter()
            .find(|d| d.kind == Kind::BookingConfirmation)
            .expect("booking");
        assert_eq!(
            b.send_at,
            utc("2026-11-25T13:00:00Z"),
            "08:00 EST next morning"
        );
        assert!(
            plan(&c, &[a], utc("2026-11-27T14:00:00Z"))
                .iter()
                .all(|d| d.kind != Kind::BookingConfirmation),
            "too old"
        );
    }

    #[test]
    fn a_manual_reminder_goes_now_or_when_quiet_hours_end_and_never_to_the_wrong_appointment() {
        let c = config();
        // Thu 26 Nov 2026 09:00 IST (03:30Z).
        let a = appt("mumbai", "2026-11-26T03:30:00Z");
        let evening = utc("2026-11-25T12:30:00Z"); // 18:00 IST
        let m = manual(&c, &a, evening).expect("at 18:00 it goes now");
        assert_eq!(
            (m.rule.as_str(), m.template.as_str(), m.send_at, m.latest_at),
            ("day-before", "reminder", evening, a.starts_at),
            "the template of the clinic's first rule"
        );
        // 23:00 IST is quiet: it waits for 08:00 IST, before the 09:00 start.
        let late = manual(&c, &a, utc("2026-11-25T17:30:00Z")).expect("waits");
        assert_eq!(late.send_at, utc("2026-11-26T02:30:00Z"));
        // A 07:30 appointment: quiet hours end at 08:00, after it starts.
        let early = appt("mumbai", "2026-11-26T02:00:00Z");
        let refused = manual(&c, &early, utc("2026-11-25T17:30:00Z")).expect_err("too early");
        let mumbai = c.clinic("mumbai").expect("mumbai");
        assert_eq!(
            refused.sentence(mumbai),
            "Quiet hours at the clinic last until 08:00 IST, after the appointment starts, so no reminder can be sent."
        );
        let mut x = a.clone();
        x.status = Status::Cancelled;
        assert_eq!(
            manual(&c, &x, evening),
            Err(NotNow::NotBooked(Status::Cancelled))
        );
        let mut x = a.clone();
        x.opted_out = true;
        assert!(manual(&c, &x, evening).is_err_and(|e| e.sentence(mumbai).contains("STOP")));
        assert_eq!(manual(&c, &a, a.starts_at), Err(NotNow::Started));
        let mut no_rules = c.clone();
        no_rules.rules.clear();
        assert_eq!(manual(&no_rules, &a, evening), Err(NotNow::NoRule));
        // New York writes 12-hour times.
        let nyc = c.clinic("nyc").expect("nyc");
        assert_eq!(clock_time(utc("2026-11-26T13:00:00Z"), nyc), "8:00 AM EST");
    }

    #[test]
    fn the_unanswered_are_booked_unanswered_reachable_and_still_to_come() {
        let now = utc("2026-11-25T12:30:00Z");
        let a = appt("mumbai", "2026-11-26T03:30:00Z");
        assert!(unanswered(&a, now));
        let mut x = a.clone();
        x.response = Response::Confirmed;
        assert!(!unanswered(&x, now));
        let mut x = a.clone();
        x.opted_out = true;
        assert!(!unanswered(&x, now));
        let mut x = a.clone();
        x.status = Status::Cancelled;
        assert!(!unanswered(&x, now));
        assert!(!unanswered(&a, a.starts_at));
    }

    #[test]
    fn date_line_zone_quiet_hours() {
        let zone = chrono_tz::Pacific::Kiritimati; // UTC+14
        let q = crate::config::parse_quiet_hours("21:00-08:00").expect("quiet");
        // 06:00 local on 26 Nov = 16:00Z on 25 Nov.
        let at = utc("2026-11-25T16:00:00Z");
        assert!(is_quiet(at, q, zone));
        assert_eq!(
            shift_out_of_quiet(at, utc("2026-11-26T00:00:00Z"), q, zone),
            utc("2026-11-25T18:00:00Z")
        );
        assert_eq!(
            check_quiet(at, Some(q), zone),
            Err(utc("2026-11-25T18:00:00Z"))
        );
        assert_eq!(
            check_quiet(utc("2026-11-25T20:00:00Z"), Some(q), zone),
            Ok(())
        );
    }
}
