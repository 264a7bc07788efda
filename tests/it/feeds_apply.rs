//! One inbound path: a feed's record goes through the upload's own rules (`decide`, audit
//! rows, re-planning on a move), remembers its source, and never clobbers a patient's answer.

use chrono::{DateTime, Utc};
use reminderd::config::Config;
use reminderd::feeds::{Reading, apply_reading};
use reminderd::import::{ImportRow, Reach, RowStatus};
use reminderd::phone::E164;
use reminderd::store::Store;

use crate::common::{Env, HEADER};

const FEEDS: &str = r#"
[feeds.ehr]
kind = "hl7"
clinic = "mumbai"
listen = "127.0.0.1:0"

[feeds.shared]
kind = "hl7"
clinic = "mumbai"
listen = "127.0.0.1:0"
same_ids_as = "csv"
"#;

fn utc(s: &str) -> DateTime<Utc> {
    reminderd::time::parse_instant(s).expect("instant")
}

struct Setup {
    env: Env,
    config: Config,
    store: Store,
    seq: u32,
}

fn setup() -> Setup {
    let env = Env::new();
    let text = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    env.write_config(format!("{text}\n{FEEDS}"));
    let config = Config::load(&env.path("reminders.toml")).unwrap_or_else(|e| panic!("{e}"));
    let mut store = env.store().expect("open");
    store.sync_clinics(&config.clinics).expect("clinics");
    Setup {
        env,
        config,
        store,
        seq: 0,
    }
}

fn record(id: &str, starts: &str, status: RowStatus) -> ImportRow {
    let starts_at = utc(starts);
    ImportRow {
        row: 1,
        clinic: "mumbai".into(),
        appointment_id: id.into(),
        patient_id: "P-1".into(),
        patient_name: "Aarav Sharma".into(),
        phone: E164::parse("+919820012345", "IN".parse().expect("region")).expect("phone"),
        language: "en".into(),
        starts_at,
        local_date: starts_at
            .with_timezone(&chrono_tz::Asia::Kolkata)
            .date_naive(),
        duration_min: 15,
        provider: Some("Dr. Mehta".into()),
        status,
        reach: Reach::default(),
    }
}

impl Setup {
    /// Stores a message from `feed` and applies `row` as it says; returns what it did.
    fn feed(&mut self, feed: &str, row: ImportRow, now: &str) -> String {
        self.seq += 1;
        let received = self
            .store
            .receive_feed_message(
                feed,
                &format!("MSG{}", self.seq),
                "SIU^S12",
                "MSH|...",
                utc(now),
            )
            .expect("receive");
        let feed = &self.config.feeds[feed];
        apply_reading(
            &mut self.store,
            &self.config,
            feed,
            received.id,
            &format!("SIU^S12 MSG{}", self.seq),
            &Reading::Appointment(row),
            utc(now),
        )
        .expect("apply")
    }

    fn db(&self) -> reminderd::store::sql::Conn {
        self.env.sql()
    }

    /// (status, cancelled_by, starts_at) of `source`'s appointment `id`.
    fn appointment(&self, source: &str, id: &str) -> (String, Option<String>, i64) {
        self.db()
            .query_row(
                "SELECT status, cancelled_by, starts_at FROM appointments WHERE source = ?1 AND external_id = ?2",
                [source, id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("appointment")
    }

    fn audit(&self, id: &str) -> Vec<(String, String, String)> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT l.actor, l.action, coalesce(l.reason, '') FROM audit_log l JOIN appointments a ON a.id = l.appointment_id
                 WHERE a.external_id = ?1 AND a.source = 'ehr' ORDER BY l.id",
            )
            .expect("prepare");
        stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    }
}

#[test]
fn a_feed_record_creates_moves_and_replans_through_the_uploads_rules() {
    let mut s = setup();
    assert_eq!(
        s.feed(
            "ehr",
            record("SCH-1", "2026-11-27T04:30:00Z", RowStatus::Booked),
            "2026-11-25T04:00:00Z"
        ),
        "new"
    );
    let planned = s.env.run(&["plan", "--now", "2026-11-25T04:00:00Z"]);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let slots = |s: &Setup| -> Vec<i64> {
        let db = s.db();
        let mut stmt = db
            .prepare("SELECT DISTINCT o.slot_start FROM outbox o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = 'SCH-1' ORDER BY 1")
            .expect("prepare");
        stmt.query_map((), |r| r.get(0))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    };
    assert_eq!(slots(&s), vec![utc("2026-11-27T04:30:00Z").timestamp()]);

    // S13: the same appointment an hour later. The audit trail names the feed and the message;
    // the next plan adds reminders for the new time (the old ones are skipped at send time).
    assert_eq!(
        s.feed(
            "ehr",
            record("SCH-1", "2026-11-27T05:30:00Z", RowStatus::Booked),
            "2026-11-25T05:00:00Z"
        ),
        "updated"
    );
    let audit = s.audit("SCH-1");
    assert!(
        audit
            .iter()
            .any(|(actor, action, reason)| actor == "feed:ehr"
                && action == "reschedule"
                && reason == "SIU^S12 MSG2"),
        "{audit:?}"
    );
    assert!(s.env.run(&["plan", "--now", "2026-11-25T05:00:00Z"]).code == 0);
    assert_eq!(
        slots(&s),
        vec![
            utc("2026-11-27T04:30:00Z").timestamp(),
            utc("2026-11-27T05:30:00Z").timestamp()
        ]
    );
    // The same message again changes nothing.
    assert_eq!(
        s.feed(
            "ehr",
            record("SCH-1", "2026-11-27T05:30:00Z", RowStatus::Booked),
            "2026-11-25T05:01:00Z"
        ),
        "unchanged"
    );
    let applied: i64 = s
        .db()
        .query_row(
            "SELECT count(*) FROM feed_messages WHERE feed = 'ehr' AND state = 'applied' AND external_id = 'SCH-1'",
            (),
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(applied, 3);
}

#[test]
fn a_patients_cancellation_stands_against_a_feed_until_the_appointment_moves() {
    let mut s = setup();
    s.feed(
        "ehr",
        record("SCH-2", "2026-11-27T04:30:00Z", RowStatus::Booked),
        "2026-11-25T04:00:00Z",
    );
    s.db()
        .execute(
            "UPDATE appointments SET status = 'cancelled', cancelled_by = 'patient' WHERE external_id = 'SCH-2'",
            (),
        )
        .expect("patient cancels");
    // S14 (a non-time change) still says booked: the patient's answer is not clobbered.
    let mut modified = record("SCH-2", "2026-11-27T04:30:00Z", RowStatus::Booked);
    modified.provider = Some("Dr. Iyer".into());
    s.feed("ehr", modified, "2026-11-25T06:00:00Z");
    assert_eq!(
        s.appointment("ehr", "SCH-2"),
        (
            "cancelled".into(),
            Some("patient".into()),
            utc("2026-11-27T04:30:00Z").timestamp()
        )
    );
    // S13 books it at another time: in effect a new booking.
    s.feed(
        "ehr",
        record("SCH-2", "2026-11-28T04:30:00Z", RowStatus::Booked),
        "2026-11-25T07:00:00Z",
    );
    assert_eq!(s.appointment("ehr", "SCH-2").0, "booked");
}

#[test]
fn a_deletion_is_the_sources_and_a_no_show_is_recorded() {
    let mut s = setup();
    s.feed(
        "ehr",
        record("SCH-3", "2026-11-27T04:30:00Z", RowStatus::Booked),
        "2026-11-25T04:00:00Z",
    );
    assert_eq!(
        s.feed(
            "ehr",
            record("SCH-3", "2026-11-27T04:30:00Z", RowStatus::Deleted),
            "2026-11-25T05:00:00Z"
        ),
        "cancelled"
    );
    assert_eq!(
        s.appointment("ehr", "SCH-3").1.as_deref(),
        Some("source"),
        "a deletion is never the patient's cancellation"
    );
    assert!(
        s.audit("SCH-3")
            .iter()
            .any(|(_, action, _)| action == "delete")
    );

    s.feed(
        "ehr",
        record("SCH-4", "2026-11-25T04:30:00Z", RowStatus::Booked),
        "2026-11-25T04:00:00Z",
    );
    s.feed(
        "ehr",
        record("SCH-4", "2026-11-25T04:30:00Z", RowStatus::NoShow),
        "2026-11-25T06:00:00Z",
    );
    assert_eq!(s.appointment("ehr", "SCH-4").0, "no_show");
}

#[test]
fn the_same_id_from_two_sources_is_two_appointments_unless_the_feed_shares_the_uploads_ids() {
    let mut s = setup();
    let csv = s.env.file(
        "day.csv",
        format!(
            "{HEADER}\nSCH-9,P-1,Aarav Sharma,+919820012345,en,2026-11-27,10:00,15,Dr. Mehta,mumbai,booked\n"
        ),
    );
    let out = s.env.run(&["import", csv.to_str().expect("path")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    s.feed(
        "ehr",
        record("SCH-9", "2026-11-27T05:30:00Z", RowStatus::Booked),
        "2026-11-25T04:00:00Z",
    );
    let count = |s: &Setup| -> i64 {
        s.db()
            .query_row(
                "SELECT count(*) FROM appointments WHERE external_id = 'SCH-9'",
                (),
                |r| r.get(0),
            )
            .expect("count")
    };
    assert_eq!(count(&s), 2);
    assert_eq!(
        s.appointment("csv", "SCH-9").2,
        utc("2026-11-27T04:30:00Z").timestamp(),
        "the upload's appointment is untouched by another source"
    );
    // A feed configured as the same clinic system as the uploads moves the upload's one.
    assert_eq!(
        s.feed(
            "shared",
            record("SCH-9", "2026-11-27T06:30:00Z", RowStatus::Booked),
            "2026-11-25T04:10:00Z"
        ),
        "updated"
    );
    assert_eq!(count(&s), 2);
    assert_eq!(
        s.appointment("csv", "SCH-9").2,
        utc("2026-11-27T06:30:00Z").timestamp()
    );
}
