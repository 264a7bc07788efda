//! `reminderd demo`: runs the library's demo and shows what happened, clinic by clinic, every
//! time in the clinic's own time zone (the demo's clock is a simulated evening at each).

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use chrono::{DateTime, Utc};

use reminderd::config::Clinic;
use reminderd::store::{AppointmentFilter, OutboxView, ReplyView, Store};
use reminderd::time::parse_instant;

use super::output::print_table;
use super::{DemoArgs, exit, fail, runtime};

/// How the demo writes an instant: the clinic's local date and time with its zone's
/// abbreviation (`Wed 25 Nov 18:00 IST`).
const WHEN: &str = "%a %d %b %H:%M %Z";

pub(super) fn demo(args: DemoArgs) -> Result<u8> {
    let DemoArgs { keep } = args;
    let temp;
    let dir = match &keep {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                return Err(fail(
                    exit::USAGE,
                    format!(
                        "{} is not empty; give --keep a new or empty folder",
                        d.display()
                    ),
                ));
            }
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "reminderd demo: the evening before a clinic day at two clinics, a simulated WhatsApp Cloud API and simulated patients."
    )?;
    writeln!(
        out,
        "The clock is simulated: at each clinic in turn it is 18:00, the schedule for the next day is uploaded, the day-before reminders go out and patients answer."
    )?;
    writeln!(out, "Working in {} ...", dir.display())?;
    drop(out);
    let outcome = runtime()?
        .block_on(reminderd::demo::run(&dir))
        .map_err(|e| fail(exit::SOFTWARE, e.to_string()))?;
    let store = Store::open(&outcome.db)?;
    let config = &outcome.config;
    let appointments = appointments(&store)?;
    let outbox = store.outbox(None)?;
    let replies = store.replies(false, None)?;
    for (key, evening) in &outcome.evenings {
        let Some(c) = config.clinic(key) else {
            continue;
        };
        println!(
            "\n{} ({key}): {}",
            c.display_name,
            evening
                .with_timezone(&c.time_zone)
                .format("%A %-d %B %Y, from %H:%M %Z")
        );
        println!(
            "What was sent (every message is one outbox row; button taps and statuses find it by its id):"
        );
        let sent: Vec<&OutboxView> = outbox.iter().filter(|o| o.clinic == *key).collect();
        print_outbox(c, &sent, &appointments)?;
        println!("What the patients answered:");
        let said: Vec<&ReplyView> = replies
            .iter()
            .filter(|r| r.clinic.as_deref() == Some(key))
            .collect();
        print_replies(Some(c), &said)?;
    }
    let elsewhere: Vec<&ReplyView> = replies.iter().filter(|r| r.clinic.is_none()).collect();
    if !elsewhere.is_empty() {
        println!("\nMessages about no appointment:");
        print_replies(None, &elsewhere)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nWhat staff must follow up (reminderd follow-ups):")?;
    for c in config.clinics.values() {
        let day = outcome.first_start.with_timezone(&c.time_zone).date_naive();
        for offset in 0..=1 {
            let on = day + chrono::Duration::days(offset);
            for f in reminderd::jobs::follow_ups_for(&store, config, c, on)? {
                writeln!(
                    out,
                    "  {}  {}/{}  {}  {}",
                    f.starts_at.with_timezone(&c.time_zone).format(WHEN),
                    f.clinic,
                    f.appointment_id,
                    f.patient_name,
                    reminderd::phone::mask(&f.phone)
                )?;
                for r in &f.reasons {
                    writeln!(out, "        - {r}")?;
                }
            }
        }
    }
    for r in elsewhere {
        writeln!(
            out,
            "  a message from {} needs a person: {}",
            reminderd::phone::mask(&r.from),
            r.reason.as_deref().unwrap_or("")
        )?;
    }
    writeln!(
        out,
        "\n{} messages reached the simulated API; done in {:.1} s, nothing left running.",
        outcome.accepted,
        outcome.elapsed.as_secs_f64()
    )?;
    match keep {
        Some(d) => writeln!(
            out,
            "The database is in {}: try `reminderd --config {}/reminders.toml outbox` or `... replies`.",
            d.display(),
            d.display()
        )?,
        None => writeln!(
            out,
            "(Run `reminderd demo --keep DIR` to keep the database and explore it.)"
        )?,
    }
    Ok(exit::OK)
}

/// Appointments' starts and patients' names, by (clinic, appointment id).
type Appointments = HashMap<(String, String), (DateTime<Utc>, String)>;

/// Every stored appointment's start and patient.
fn appointments(store: &Store) -> Result<Appointments> {
    let all = store.appointments(&AppointmentFilter {
        from: DateTime::<Utc>::MIN_UTC,
        to: DateTime::<Utc>::MAX_UTC,
        clinic: None,
        status: None,
    })?;
    Ok(all
        .into_iter()
        .map(|a| ((a.clinic, a.id), (a.starts_at, a.patient_name)))
        .collect())
}

/// A stored RFC 3339 instant in the clinic's time.
fn local(text: &str, clinic: &Clinic) -> String {
    parse_instant(text).map_or_else(
        |_| text.to_string(),
        |t| t.with_timezone(&clinic.time_zone).format(WHEN).to_string(),
    )
}

fn print_outbox(
    c: &Clinic,
    rows: &[&OutboxView],
    appointments: &Appointments,
) -> std::io::Result<()> {
    let header = [
        "id",
        "appointment",
        "patient",
        "kind",
        "rule",
        "state",
        "sent",
        "detail",
    ];
    print_table(rows, "nothing was sent", header, Some("messages"), |r| {
        let (starts, patient) = appointments
            .get(&(r.clinic.clone(), r.appointment_id.clone()))
            .map(|(t, name)| {
                (
                    t.with_timezone(&c.time_zone).format(WHEN).to_string(),
                    name.clone(),
                )
            })
            .unwrap_or_default();
        let detail = r
            .needs_staff
            .clone()
            .or_else(|| r.last_error.clone())
            .or_else(|| r.reason.clone())
            .or_else(|| r.wamid.as_deref().map(reminderd::whatsapp::message_ref))
            .unwrap_or_default();
        [
            r.id.to_string(),
            format!("{starts} {}", r.appointment_id),
            patient,
            r.kind.clone(),
            r.rule.clone(),
            r.state.clone(),
            r.sent_at
                .as_deref()
                .map(|t| local(t, c))
                .unwrap_or_default(),
            detail,
        ]
    })
}

/// Replies with their time in the clinic's zone (in UTC, said so, when they concern none).
fn print_replies(c: Option<&Clinic>, rows: &[&ReplyView]) -> std::io::Result<()> {
    let header = [
        "received",
        "from",
        "patient",
        "appointment",
        "said",
        "read as",
        "outcome",
    ];
    print_table(rows, "no replies", header, None, |r| {
        let outcome = match &r.reason {
            Some(why) => format!("{}: {why}", r.outcome),
            None => r.outcome.clone(),
        };
        [
            c.map_or_else(
                || format!("{} UTC", r.received_at),
                |c| local(&r.received_at, c),
            ),
            reminderd::phone::mask(&r.from),
            r.patient_name.clone().unwrap_or_default(),
            r.appointment_id.clone().unwrap_or_default(),
            r.text.clone().unwrap_or_else(|| format!("({})", r.kind)),
            r.intent.clone(),
            outcome,
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reminderd::config::Config;

    #[test]
    fn instants_show_in_the_clinic_zone_with_its_abbreviation() {
        let config = Config::example().expect("shipped config");
        let mumbai = config.clinic("mumbai").expect("mumbai");
        assert_eq!(
            local("2026-11-25T12:30:00Z", mumbai),
            "Wed 25 Nov 18:00 IST"
        );
        let nyc = config.clinic("nyc").expect("nyc");
        assert_eq!(local("2026-11-25T23:00:00Z", nyc), "Wed 25 Nov 18:00 EST");
    }
}
