//! `reminderd demo`, the README's first command: it must work on a fresh machine, in under a
//! minute, and leave the state its table describes.

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
    assert!(
        rows.iter().any(|o| o["appointment_id"] == "NYC-506"
            && o["state"] == "failed"
            && o["needs_staff"]
                .as_str()
                .is_some_and(|s| s.contains("call"))),
        "the number not on WhatsApp is on the staff list"
    );
    assert_eq!(rows.iter().filter(|o| o["kind"] == "reply_ack").count(), 5);
    let staff = env
        .run(&["--config", cfg, "replies", "--needs-staff", "--json"])
        .expect(0)
        .json();
    assert_eq!(staff.as_array().map(Vec::len), Some(1), "{staff}");
}
