//! `reminderd appointments`: what staff see.

use crate::common::{Env, csv};

fn setup() -> Env {
    let env = Env::new();
    env.import(
        "s.csv",
        &csv(&[
            "OLD,P0,Past Patient,98200 11111,en,2027-01-10,09:00,15,,mumbai,booked",
            "A1,P1,Aarav Sharma,98200 12345,en,2027-01-15,09:00,15,Dr. Mehta,mumbai,booked",
            "A2,P2,Priya Patil,98765 43210,mr,2027-01-15,18:00,15,Dr. Mehta,mumbai,cancelled",
            "N1,Q1,James Wilson,212-867-5309,en,2027-01-14,22:00,30,Dr. Chen,nyc,booked",
            "N2,Q2,Maria Gonzalez,(646) 867-5309,es,2027-01-16,08:00,30,Dr. Chen,nyc,booked",
        ]),
        &[],
    )
    .expect(0);
    env
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn default_lists_from_today_in_start_order_across_clinics() {
    let env = setup();
    // 2027-01-12 10:00 IST: OLD (Jan 10) is in the past and not listed.
    let r = env
        .run(&["appointments", "--now", "2027-01-12T04:30:00Z", "--json"])
        .expect(0)
        .json();
    // 22:00 on Jan 14 in New York is 03:00 UTC Jan 15, before 09:00 IST (03:30 UTC).
    assert_eq!(ids(&r), ["N1", "A1", "A2", "N2"]);
    let first = &r[0];
    for key in [
        "id",
        "clinic",
        "patient_id",
        "patient_name",
        "phone",
        "language",
        "provider",
        "starts_at",
        "starts_at_local",
        "status",
        "response",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert_eq!(first["starts_at"], "2027-01-15T03:00:00Z");
    assert_eq!(first["starts_at_local"], "2027-01-14T22:00:00-05:00");
}

#[test]
fn filters_by_local_date_clinic_and_status() {
    let env = setup();
    let r = env
        .run(&[
            "appointments",
            "--from",
            "2027-01-15",
            "--to",
            "2027-01-15",
            "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(
        ids(&r),
        ["A1", "A2"],
        "N1 is on Jan 14 in New York although Jan 15 in UTC"
    );
    let r = env
        .run(&[
            "appointments",
            "--from",
            "2027-01-01",
            "--clinic",
            "nyc",
            "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(ids(&r), ["N1", "N2"]);
    let r = env
        .run(&[
            "appointments",
            "--from",
            "2027-01-01",
            "--status",
            "cancelled",
            "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(ids(&r), ["A2"]);
    env.run(&["appointments", "--clinic", "delhi"]).expect(64);
}

#[test]
fn human_output_masks_numbers_and_shows_clinic_time() {
    let env = setup();
    let r = env
        .run(&["appointments", "--from", "2027-01-15", "--to", "2027-01-15"])
        .expect(0);
    assert!(r.stdout.contains("+91******2345"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("9820012345"),
        "full number leaked:\n{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Fri 2027-01-15 09:00 IST"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("cancelled (source)"), "{}", r.stdout);
    assert!(r.stdout.contains("2 appointment(s)"), "{}", r.stdout);
}

/// A mistyped appointment id is the user's slip, not a corrupt database: the message says what
/// to type instead.
#[test]
fn set_status_for_an_unknown_appointment_says_how_to_find_the_id() {
    let env = Env::new();
    let sample = crate::common::repo_file("examples/schedule.csv");
    env.run(&["import", sample.to_str().expect("path")])
        .expect(0);
    let r = env.run(&["set-status", "MUM-9999", "confirmed"]).expect(65);
    assert!(
        r.stderr.contains("no appointment \"MUM-9999\"")
            && r.stderr.contains("reminderd appointments"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("unexpected value"), "{}", r.stderr);
}

/// `reminderd stats` and the desk's stats page cover the same default range: the last 30
/// days, the end day included.
#[test]
fn stats_cover_the_last_thirty_days_by_default() {
    let env = Env::new();
    let r = env
        .run(&["stats", "--to", "2026-11-30", "--json"])
        .expect(0)
        .json();
    assert_eq!(r["from"], "2026-11-01", "{r}");
    assert_eq!(r["to"], "2026-11-30", "{r}");
}
