//! Claims shared by several instances: a claim taken over is never sent, nor its outcome
//! written, by the stale holder; an instance that stops settles only its own claims.

use super::*;
use crate::store::{Outcome, SendWrite};

const T0: i64 = 1_800_000_000;

fn at(offset: i64) -> DateTime<Utc> {
    crate::time::from_unix(T0 + offset)
}

/// Two instances on one database (the SQLite file, or the test's PostgreSQL database), with
/// two due reminders at Mumbai.
fn two_instances() -> (tempfile::TempDir, Store, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a = Store::open_for_test(dir.path());
    let config = crate::config::Config::example().expect("config");
    a.sync_clinics(&config.clinics).expect("clinics");
    for (id, phone) in [(1, "+919876543210"), (2, "+919123456789")] {
        schedule(&a, id, phone, &["day-before"]);
    }
    let b = a.reopen_for_test();
    (dir, a, b)
}

/// Patient `id` at `phone`, with an appointment tomorrow and one due reminder per rule.
fn schedule(s: &Store, id: i64, phone: &str, rules: &[&str]) {
    let reminders: Vec<String> = rules
        .iter()
        .map(|rule| {
            format!(
                "({id}, 'reminder', '{rule}', {T0} + 86400, {T0}, {T0} + 86400, 'reminder', 'pending', {T0}, {T0})"
            )
        })
        .collect();
    s.conn
        .execute_batch(&format!(
            "INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
               SELECT {id}, id, 'P-{id}', 'Patient {id}', '{phone}', 'en', {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status_at, created_at, updated_at)
               SELECT {id}, id, 'MUM-{id}', {id}, 'Dr. Mehta', {T0} + 86400, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, created_at, updated_at)
               VALUES {};",
            reminders.join(", ")
        ))
        .expect("schedule");
}

fn claim(s: &mut Store, limit: usize, offset: i64) -> Vec<DueRow> {
    s.claim_due(at(offset), limit, &ClaimScope::All, Share::WHOLE, |_| {
        Verdict::Send
    })
    .expect("claim")
    .0
}

fn state(s: &Store, id: i64) -> (String, Option<String>) {
    s.conn
        .query_row("SELECT state, wamid FROM outbox WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("row")
}

#[test]
fn a_claim_taken_over_is_neither_sent_nor_recorded_by_its_stale_holder() {
    let (_dir, mut a, mut b) = two_instances();
    let first = claim(&mut a, 1, 0).remove(0);
    assert_eq!(first.epoch, 1);
    // A stalls past the grace period and is not seen live: B takes the row over and claims
    // it again.
    assert_eq!(
        b.recover_interrupted(at(600), at(590), at(600))
            .expect("recover"),
        (0, 1)
    );
    let second = claim(&mut b, 1, 601).remove(0);
    assert_eq!((second.id, second.epoch), (first.id, 2));
    // A wakes up: its note that the request is going out is refused, so it never sends...
    let stale = a
        .write_sends(&[SendWrite::Requested {
            id: first.id,
            epoch: first.epoch,
            at: at(602),
        }])
        .expect("write");
    assert!(matches!(stale[..], [Ok(false)]), "{stale:?}");
    // ...and an outcome it reports changes nothing.
    a.record_outcome(
        first.id,
        first.epoch,
        &Outcome::Sent {
            wamid: "wamid.stale".into(),
            wa_id: None,
        },
        Some("en"),
        None,
        at(603),
    )
    .expect("stale outcome");
    assert_eq!(state(&a, first.id), ("sending".into(), None));
    // B, the holder now, sends and records.
    assert!(
        b.mark_requested(second.id, second.epoch, at(604))
            .expect("mark")
    );
    b.record_outcome(
        second.id,
        second.epoch,
        &Outcome::Sent {
            wamid: "wamid.b".into(),
            wa_id: None,
        },
        Some("en"),
        None,
        at(605),
    )
    .expect("outcome");
    assert_eq!(state(&a, first.id), ("sent".into(), Some("wamid.b".into())));
}

#[test]
fn an_instance_that_stops_settles_only_its_own_claims() {
    let (_dir, mut a, mut b) = two_instances();
    let mine = claim(&mut a, 1, 0).remove(0);
    let theirs = claim(&mut b, 1, 0).remove(0);
    assert_ne!(mine.id, theirs.id);
    assert!(a.mark_requested(mine.id, mine.epoch, at(1)).expect("mark"));
    // A stops with its request in flight: its row is unknown; B's send goes on untouched.
    assert_eq!(a.release_claims(at(2)).expect("release"), (1, 0));
    assert_eq!(state(&a, mine.id).0, "unknown");
    assert_eq!(state(&a, theirs.id).0, "sending");
    assert!(
        b.mark_requested(theirs.id, theirs.epoch, at(3))
            .expect("mark")
    );
}

#[test]
fn the_live_instances_are_those_seen_within_the_window() {
    let (_dir, mut a, mut b) = two_instances();
    let window = chrono::Duration::seconds(5);
    assert_eq!(a.heartbeat(at(0), window).expect("beat").of, 1);
    assert_eq!(b.heartbeat(at(1), window).expect("beat").of, 2);
    // A goes quiet (a crash): after the window, B counts itself alone.
    assert_eq!(b.heartbeat(at(7), window).expect("beat").of, 1);
    assert_eq!(a.heartbeat(at(8), window).expect("beat").of, 2);
    // A stops cleanly: B is alone at once.
    a.leave().expect("leave");
    assert_eq!(b.heartbeat(at(9), window).expect("beat").of, 1);
}

#[test]
fn of_instances_whose_schedule_fires_at_once_one_takes_the_run() {
    let (_dir, mut a, mut b) = two_instances();
    assert!(a.take_cron_run("plan", at(60)).expect("take"));
    assert!(!b.take_cron_run("plan", at(60)).expect("take"));
    assert!(b.take_cron_run("plan", at(61)).expect("take"));
    assert!(a.take_cron_run("purge", at(61)).expect("take"));
}

#[test]
fn the_claims_of_an_instance_seen_live_are_never_taken_over() {
    let (_dir, mut a, mut b) = two_instances();
    let window = chrono::Duration::seconds(10);
    let first = claim(&mut a, 1, 0).remove(0);
    assert!(
        a.mark_requested(first.id, first.epoch, at(1))
            .expect("mark")
    );
    // A is slow (a busy database) but beating: its request may be in flight.
    a.heartbeat(at(595), window).expect("beat");
    assert_eq!(
        b.recover_interrupted(at(600), at(590), at(600))
            .expect("recover"),
        (0, 0)
    );
    assert_eq!(state(&a, first.id).0, "sending");
    // Once A has not been seen for the window, its claim is settled: unknown, never resent
    // blindly.
    assert_eq!(
        b.recover_interrupted(at(620), at(610), at(620))
            .expect("recover"),
        (1, 0)
    );
    assert_eq!(state(&a, first.id).0, "unknown");
}

#[test]
fn two_live_instances_claim_disjoint_recipients_and_between_them_all() {
    let (_dir, mut a, mut b) = two_instances();
    // Twenty more patients, three of them sharing one phone (a family), two messages each.
    for id in 3..=22 {
        let phone = if id <= 5 {
            "+919800000001".to_string()
        } else {
            format!("+9198{:08}", id * 7919)
        };
        schedule(&a, id, &phone, &["day-before", "two-hours"]);
    }
    let window = chrono::Duration::seconds(10);
    a.heartbeat(at(0), window).expect("beat");
    let sb = b.heartbeat(at(0), window).expect("beat");
    let sa = a.heartbeat(at(1), window).expect("beat");
    assert_eq!((sa.of, sb.of), (2, 2));
    assert_ne!(sa.position, sb.position);
    let take = |s: &mut Store, share: Share| -> Vec<DueRow> {
        s.claim_due(at(1), 100, &ClaimScope::All, share, |_| Verdict::Send)
            .expect("claim")
            .0
    };
    let (ra, rb) = (take(&mut a, sa), take(&mut b, sb));
    let phones = |rows: &[DueRow]| -> std::collections::BTreeSet<String> {
        rows.iter().map(|r| r.phone.as_str().to_string()).collect()
    };
    assert!(
        phones(&ra).is_disjoint(&phones(&rb)),
        "{:?} / {:?}",
        phones(&ra),
        phones(&rb)
    );
    assert_eq!(ra.len() + rb.len(), 42, "every due row, once");
    assert!(!ra.is_empty() && !rb.is_empty(), "each has a share");
    let family = |rows: &[DueRow]| {
        rows.iter()
            .filter(|r| r.phone.as_str() == "+919800000001")
            .count()
    };
    assert!(
        family(&ra) == 6 || family(&rb) == 6,
        "one family, one sender"
    );
}
