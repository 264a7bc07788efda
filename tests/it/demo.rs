//! `reminderd demo`, the README's first command: it must work on a fresh machine, in under a
//! minute, tell a plausible evening in each clinic's own time, and leave the state its table
//! describes.

use std::time::{Duration, Instant};

use crate::common::Env;

#[test]
fn the_demo_runs_the_whole_job_and_keeps_its_database_on_request() {
    let env = Env::new();
    let keep = env.path("demo");
    // The shipped config's desk port held by someone else (a running daemon, say) must not
    // stop the demo. If the bind fails, the port is already taken, which is the same test.
    let _desk_port = std::net::TcpListener::bind("127.0.0.1:8081");
    let started = Instant::now();
    let r = env
        .run(&["demo", "--keep", keep.to_str().expect("path")])
        .expect(0);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    for section in [
        "What was sent",
        "What the patients answered",
        "What staff must follow up",
        "nothing left running",
    ] {
        assert!(
            r.stdout.contains(section),
            "missing {section:?}:\n{}",
            r.stdout
        );
    }
    assert!(
        !r.stdout.contains("+919820012345"),
        "numbers are masked on screen"
    );
    // A plausible evening: at each clinic it is 18:00 the day before the sample schedule's
    // Thursday, and every time shown is the clinic's own, with its zone.
    for line in [
        "Sunrise Family Clinic, Andheri (mumbai): Wednesday 25 November 2026, from 18:00 IST",
        "Hudson Street Medical, New York (nyc): Wednesday 25 November 2026, from 18:00 EST",
    ] {
        assert!(r.stdout.contains(line), "missing {line:?}:\n{}", r.stdout);
    }
    for appointment in [
        "Thu 26 Nov 09:00 IST MUM-1001",
        "Thu 26 Nov 17:30 IST MUM-1008",
        "Thu 26 Nov 08:30 EST NYC-501",
        "Thu 26 Nov 15:30 EST NYC-506",
    ] {
        assert!(
            r.stdout.contains(appointment),
            "the appointment at the time of examples/schedule.csv: {appointment:?}\n{}",
            r.stdout
        );
    }
    let times = local_times(&r.stdout);
    assert!(times.len() > 40, "times shown: {times:?}");
    for (hour, minute, zone) in &times {
        assert!(
            (6..22).contains(hour),
            "{hour:02}:{minute:02} {zone} is not an hour a clinic works or messages its patients:\n{}",
            r.stdout
        );
        assert!(
            ["IST", "EST"].contains(&zone.as_str()),
            "{zone}: a clinic's zone"
        );
    }
    assert!(
        times
            .iter()
            .any(|(h, m, z)| (*h, *m, z.as_str()) == (18, 0, "IST"))
            && times
                .iter()
                .any(|(h, m, z)| (*h, *m, z.as_str()) == (18, 0, "EST")),
        "messages go at 18:00 at each clinic"
    );
    assert!(
        !r.stdout.contains("UTC") && !r.stdout.contains("+00:00") && !r.stdout.contains(":00Z"),
        "no UTC instants on screen:\n{}",
        r.stdout
    );

    // The kept database says what the table said.
    let config = keep.join("reminders.toml");
    let cfg = config.to_str().expect("path");
    let list = env
        .run(&[
            "--config",
            cfg,
            "appointments",
            "--from",
            "2000-01-01",
            "--json",
        ])
        .expect(0)
        .json();
    let appt = |id: &str| {
        list.as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == id))
            .cloned()
            .expect(id)
    };
    assert_eq!(appt("MUM-1001")["response"], "confirmed", "tapped Confirm");
    assert_eq!(appt("MUM-1002")["status"], "cancelled", "typed रद्द करा");
    assert_eq!(appt("MUM-1002")["cancelled_by"], "patient");
    assert_eq!(appt("NYC-502")["response"], "confirmed", "typed Yes!");
    assert_eq!(
        appt("NYC-503")["response"],
        "reschedule_requested",
        "typed cambiar hora"
    );
    assert_eq!(
        appt("MUM-1008")["response"],
        "none",
        "Aarav's other appointment is untouched"
    );
    let outbox = env
        .run(&["--config", cfg, "outbox", "--json"])
        .expect(0)
        .json();
    let rows = outbox.as_array().expect("array");
    assert!(
        rows.iter()
            .all(|o| o["state"] != "sending" && o["state"] != "pending"),
        "{outbox}"
    );
    // Carlos is not on WhatsApp: his reminder failed there, went by text, and his "1"
    // confirmed it; nobody has to call him.
    let carlos: Vec<_> = rows
        .iter()
        .filter(|o| o["appointment_id"] == "NYC-506" && o["kind"] == "reminder")
        .collect();
    assert!(
        carlos.iter().any(|o| o["channel"] == "whatsapp"
            && o["state"] == "failed"
            && o["needs_staff"].is_null()),
        "{carlos:?}"
    );
    assert_eq!(
        carlos
            .iter()
            .filter(|o| o["channel"] == "sms" && o["state"] == "delivered")
            .count(),
        1,
        "one text for the failed WhatsApp reminder: {carlos:?}"
    );
    assert_eq!(appt("NYC-506")["response"], "confirmed", "texted 1");
    assert_eq!(rows.iter().filter(|o| o["kind"] == "reply_ack").count(), 5);
    let staff = env
        .run(&["--config", cfg, "replies", "--needs-staff", "--json"])
        .expect(0)
        .json();
    assert_eq!(staff.as_array().map(Vec::len), Some(1), "{staff}");
}

/// Every `HH:MM ZONE` on screen (a zone is 3 or 4 capital letters), as (hour, minute, zone).
fn local_times(text: &str) -> Vec<(u32, u32, String)> {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut out = Vec::new();
    for i in 0..b.len() {
        let starts = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if !(starts && digit(i) && digit(i + 1) && b.get(i + 2) == Some(&b':'))
            || !(digit(i + 3) && digit(i + 4) && b.get(i + 5) == Some(&b' '))
        {
            continue;
        }
        let zone: String = text[i + 6..]
            .chars()
            .take_while(char::is_ascii_uppercase)
            .collect();
        if (3..=4).contains(&zone.len()) {
            let n = |s: &str| s.parse::<u32>().expect("digits");
            out.push((n(&text[i..i + 2]), n(&text[i + 3..i + 5]), zone));
        }
    }
    out
}
