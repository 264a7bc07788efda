//! The store's side of export, erasure, kept opt-outs, roles and the purge.

use chrono::{DateTime, Utc};

use super::super::Store;
use crate::model::Role;
use crate::privacy::Cutoffs;

const NOW: i64 = 1_800_000_000;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).expect("now")
}

/// Priya (1) with a past and, optionally, an upcoming appointment, a message, a reply with its
/// webhook event and a status event naming her number; Aarav (2) with his own.
fn seeded(upcoming: bool) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(&dir.path().join("p.db")).expect("open");
    let future = if upcoming { NOW + 86_400 } else { NOW - 3_600 };
    s.conn
        .execute_batch(&format!(
            "INSERT INTO clinics (id, key, display_name, time_zone, phone_region) VALUES (1, 'mumbai', 'M', 'Asia/Kolkata', 'IN');
             INSERT INTO patients (id, clinic_id, external_id, name, phone, language, opted_out_at, created_at, updated_at) VALUES
               (1, 1, 'P-1', 'Priya Patil', '+919876543210', 'mr', {old}, 0, 0),
               (2, 1, 'P-2', 'Aarav Sharma', '+919820012345', 'en', NULL, 0, 0);
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, starts_at, duration_min, status, status_at, response_text, created_at, updated_at) VALUES
               (10, 1, 'A-10', 1, {old}, 15, 'completed', 0, 'yes Priya here', 0, 0),
               (11, 1, 'A-11', 1, {future}, 15, 'booked', 0, NULL, 0, 0),
               (12, 1, 'A-12', 2, {old}, 15, 'completed', 0, NULL, 0, 0);
             INSERT INTO outbox (id, appointment_id, kind, rule, slot_start, send_at, latest_at, params, state, wa_id, created_at, updated_at) VALUES
               (100, 10, 'reminder', 'day-before', {old}, {old}, {old}, '[\"Priya Patil\"]', 'read', '919876543210', {old}, 0),
               (101, 12, 'reminder', 'day-before', {old}, {old}, {old}, '[\"Aarav Sharma\"]', 'read', '919820012345', {old}, 0);
             INSERT INTO inbound_events (id, received_at, body, processed_at) VALUES
               (1000, {old}, '{{\"from\":\"919876543210\",\"text\":\"yes Priya here\"}}', {old}),
               (1001, {old}, '{{\"recipient_id\":\"919876543210\",\"status\":\"read\"}}', {old}),
               (1002, {old}, '{{\"recipient_id\":\"919820012345\",\"status\":\"read\"}}', {old});
             INSERT INTO replies (id, message_id, event_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, received_at) VALUES
               (50, 'w1', 1000, '+919876543210', 1, 10, 'text', 'yes Priya here', 'confirm', 'applied', {old});
             INSERT INTO feed_messages (id, feed, message_id, kind, body, received_at, state) VALUES
               (7, 'his', 'M1', 'SIU^S12', 'PID|||P-1||Patil^Priya||||||+919876543210', {old}, 'applied');
             INSERT INTO audit_log (at, patient_id, actor, action, old_value, new_value) VALUES
               ({old}, 1, 'staff:asha', 'note', NULL, 'called Priya Patil on +919876543210'),
               ({old}, 1, 'import:s.csv', 'phone_changed', '+919811122233', '+919876543210');
             INSERT INTO inbound_events (id, received_at, body, processed_at) VALUES
               (1003, {old}, '{{\"from\":\"919811122233\",\"text\":\"from my old phone\"}}', {old});",
            old = NOW - 86_400 * 10,
        ))
        .expect("seed");
    (dir, s)
}

fn count(s: &Store, sql: &str) -> i64 {
    s.conn.query_row(sql, (), |r| r.get(0)).expect(sql)
}

#[test]
fn export_holds_every_row_naming_the_patient_and_no_other_patients() {
    let (_dir, mut s) = seeded(true);
    let doc = s.export_patient(1, "cli", now()).expect("export");
    let ids = |section: &str| -> Vec<i64> {
        doc[section]
            .as_array()
            .expect(section)
            .iter()
            .map(|r| r["id"].as_i64().expect("id"))
            .collect()
    };
    assert_eq!(doc["patient"]["name"], "Priya Patil");
    assert_eq!(ids("appointments"), [10, 11]);
    assert_eq!(ids("outbox"), [100]);
    assert_eq!(ids("replies"), [50]);
    assert_eq!(
        ids("inbound_events"),
        [1000, 1001, 1003],
        "also from her earlier number"
    );
    assert_eq!(ids("feed_messages"), [7]);
    assert_eq!(doc["audit_log"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        doc["appointments"][0]["starts_at"],
        "2027-01-05T08:00:00+00:00"
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM audit_log WHERE action = 'patient_exported' AND patient_id = 1"
        ),
        1
    );
}

#[test]
fn erase_refuses_an_upcoming_appointment_unless_forced() {
    let (_dir, mut s) = seeded(true);
    let err = s
        .erase_patient(1, "cli", false, now())
        .expect_err("refused");
    assert!(err.to_string().contains("1 upcoming appointment;"), "{err}");
    assert_eq!(count(&s, "SELECT count(*) FROM erasures"), 0);
    s.conn
        .execute_batch(&format!(
            "INSERT INTO outbox (id, appointment_id, kind, rule, slot_start, send_at, latest_at, state, created_at, updated_at)
               VALUES (102, 11, 'reminder', 'day-before', {f}, {f}, {f}, 'pending', 0, 0);
             INSERT INTO waitlist_entries (id, clinic_id, patient_id, earliest, source, created_at, updated_at)
               VALUES (5, 1, 1, '2027-01-01', 'staff:asha', 0, 0);",
            f = NOW + 86_400
        ))
        .expect("pending");
    let done = s.erase_patient(1, "cli", true, now()).expect("forced");
    assert_eq!(done.cancelled, 1);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM outbox WHERE id = 102 AND state = 'skipped'"
        ),
        1,
        "no message goes to a number no longer stored"
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM waitlist_entries WHERE id = 5 AND state = 'removed'"
        ),
        1
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM erasures WHERE patient_id = 1 AND forced = 1"
        ),
        1
    );
    let again = s.erase_patient(1, "cli", true, now()).expect_err("twice");
    assert!(again.to_string().contains("already erased"), "{again}");
}

#[test]
fn erase_empties_what_names_the_patient_and_keeps_the_rest() {
    let (_dir, mut s) = seeded(false);
    let done = s
        .erase_patient(1, "staff:asha", false, now())
        .expect("erase");
    assert!(done.opt_out_kept);
    assert_eq!(
        done.payloads, 4,
        "reply event, status event, a body from her earlier number, HL7 message"
    );
    let text =
        |sql: &str| -> Option<String> { s.conn.query_row(sql, (), |r| r.get(0)).expect(sql) };
    assert_eq!(
        text("SELECT name FROM patients WHERE id = 1").as_deref(),
        Some(crate::privacy::ERASED_NAME)
    );
    assert_eq!(text("SELECT text FROM replies WHERE id = 50"), None);
    assert_eq!(text("SELECT params FROM outbox WHERE id = 100"), None);
    assert_eq!(
        text("SELECT response_text FROM appointments WHERE id = 10"),
        None
    );
    assert_eq!(
        text("SELECT new_value FROM audit_log WHERE action = 'note'").as_deref(),
        Some("called [erased] on [erased]")
    );
    // Aarav's rows, and Priya's states, are untouched.
    assert_eq!(
        text("SELECT name FROM patients WHERE id = 2").as_deref(),
        Some("Aarav Sharma")
    );
    assert_eq!(
        text("SELECT params FROM outbox WHERE id = 101").as_deref(),
        Some("[\"Aarav Sharma\"]")
    );
    assert_eq!(
        count(&s, "SELECT count(*) FROM inbound_events WHERE body = ''"),
        3
    );
    assert_eq!(
        text("SELECT old_value FROM audit_log WHERE action = 'phone_changed'").as_deref(),
        Some("[erased]")
    );
    assert_eq!(
        text("SELECT state FROM outbox WHERE id = 100").as_deref(),
        Some("read")
    );
    assert_eq!(
        text("SELECT intent FROM replies WHERE id = 50").as_deref(),
        Some("confirm")
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM audit_log WHERE action = 'patient_erased' AND actor = 'staff:asha'"
        ),
        1
    );
    assert_eq!(
        count(&s, "SELECT count(*) FROM opt_outs WHERE channel = 'all'"),
        1
    );
}

#[test]
fn a_patient_imported_with_an_erased_opted_out_number_starts_opted_out() {
    let (_dir, mut s) = seeded(false);
    s.erase_patient(1, "cli", false, now()).expect("erase");
    let conn = &s.conn;
    conn.execute(
        "INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
         VALUES (3, 1, 'P-9', 'New Person', '+919876543210', 'en', 0, 0)",
        (),
    )
    .expect("insert");
    super::apply_kept_opt_outs(conn, 3, "+919876543210", NOW).expect("apply");
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM patients WHERE id = 3 AND opted_out_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM consents WHERE patient_id = 3 AND given = 0"
        ),
        2
    );
    super::apply_kept_opt_outs(&s.conn, 2, "+919820012345", NOW).expect("none kept");
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM patients WHERE id = 2 AND opted_out_at IS NOT NULL"
        ),
        0
    );
}

#[test]
fn roles_change_once_and_are_audited() {
    let (_dir, mut s) = seeded(false);
    s.conn
        .execute(
            "INSERT INTO staff_users (name, password_hash, created_at, updated_at) VALUES ('asha', 'x', 0, 0)",
            (),
        )
        .expect("user");
    assert_eq!(
        s.staff_roles().expect("roles"),
        [("asha".to_string(), Role::Staff)]
    );
    assert_eq!(
        s.set_staff_role("Asha", Role::Admin, "admin:root", now())
            .expect("set"),
        Some(true)
    );
    assert_eq!(
        s.set_staff_role("asha", Role::Admin, "admin:root", now())
            .expect("set"),
        Some(false)
    );
    assert_eq!(
        s.set_staff_role("nobody", Role::Admin, "admin:root", now())
            .expect("set"),
        None
    );
    assert_eq!(s.staff_roles().expect("roles")[0].1, Role::Admin);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM audit_log WHERE action = 'user_role'"
        ),
        1
    );
}

#[test]
fn purge_empties_exactly_what_is_past_its_age_in_batches() {
    let (_dir, mut s) = seeded(false);
    // Ages: inbound 1000-1002 and feed 7 are 10 days old; add a 40-day-old event, a
    // 40-day-old unprocessed one, and a 200-day-old message and reply.
    let t40 = NOW - 86_400 * 40;
    let t200 = NOW - 86_400 * 200;
    s.conn
        .execute_batch(&format!(
            "INSERT INTO inbound_events (id, received_at, body, processed_at) VALUES
               (2000, {t40}, 'old', {t40}), (2001, {t40}, 'waiting', NULL), (2002, {t40}, 'old2', {t40});
             INSERT INTO outbox (id, appointment_id, kind, rule, slot_start, send_at, latest_at, params, state, created_at, updated_at) VALUES
               (200, 12, 'reminder', 'week-before', {t200}, {t200}, {t200}, '[\"x\"]', 'delivered', {t200}, 0);
             INSERT INTO staff_users (id, name, password_hash, created_at, updated_at) VALUES (1, 'asha', 'x', 0, 0);
             INSERT INTO import_previews (token, user_id, file_name, body, complete, summary, created_at, decided_at, decision) VALUES
               ('t-old', 1, 'old.csv', CAST('Priya Patil,+919876543210' AS BLOB), 0, '{{}}', {t40}, {t40}, 'confirmed'),
               ('t-open', 1, 'new.csv', CAST('Aarav' AS BLOB), 0, '{{}}', {t40}, NULL, NULL);
             INSERT INTO replies (id, message_id, from_phone, patient_id, kind, text, intent, outcome, received_at) VALUES
               (60, 'w2', '+919820012345', 2, 'text', 'old words', 'unknown', 'ignored', {t200});"
        ))
        .expect("seed");
    let c = Cutoffs::at(now(), &crate::config::Privacy::default());
    let due = s.purge_due(c).expect("due");
    assert_eq!(
        (due.webhook_bodies, due.message_texts, due.reply_texts),
        (2, 1, 1)
    );
    assert_eq!(due.feed_payloads, 0);
    assert_eq!(
        due.uploaded_files, 1,
        "a decided upload, not one still open"
    );
    let first = s.purge_batch(c, now(), 1).expect("batch");
    assert_eq!(first.webhook_bodies, 1, "one row per kind per batch");
    let mut total = first;
    loop {
        let b = s.purge_batch(c, now(), 1).expect("batch");
        if b.total() == 0 {
            break;
        }
        total.add(&b);
    }
    assert_eq!(total, due);
    assert_eq!(
        count(&s, "SELECT count(*) FROM inbound_events WHERE body = ''"),
        2
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM inbound_events WHERE id = 2001 AND body = 'waiting'"
        ),
        1
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM outbox WHERE params IS NULL AND purged_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM outbox WHERE state = 'delivered' AND id = 200"
        ),
        1
    );
    assert_eq!(s.purge_due(c).expect("due").total(), 0);
    s.audit_purge(&total, c, "purge", now()).expect("audit");
    let v = s.reclaim_space().expect("vacuum");
    assert!(v.converted);
    assert_eq!(count(&s, "PRAGMA auto_vacuum"), 2);
    assert!(!s.reclaim_space().expect("again").converted);
}
