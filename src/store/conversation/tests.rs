//! Staff messages in the store: the window from the patient's last WhatsApp message, one row
//! per form, replies marked handled, the appointment a message is tied to, refusals.

use super::*;
use crate::store::DocumentQueued;

const T0: i64 = 1_800_000_000;

fn at(offset: i64) -> DateTime<Utc> {
    from_unix(T0 + offset)
}

/// A store with Mumbai's patient 1 (Priya), a past appointment (10) and two booked ones to
/// come (11 later, 12 sooner), and patient 2 (Rohan) who never wrote.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Store::open(&dir.path().join("c.db")).expect("open");
    let config = crate::config::Config::example().expect("config");
    s.sync_clinics(&config.clinics).expect("clinics");
    s.conn
        .execute_batch(&format!(
            "INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
               SELECT 1, id, 'P-1', 'Priya Patil', '+919876543210', 'en', {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
               SELECT 2, id, 'P-2', 'Rohan Gupta', '+919123456789', 'en', {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, starts_at, duration_min, status_at, created_at, updated_at)
               SELECT 10, id, 'A-10', 1, {T0} - 86400, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, starts_at, duration_min, status_at, created_at, updated_at)
               SELECT 11, id, 'A-11', 1, {T0} + 7 * 86400, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, starts_at, duration_min, status_at, created_at, updated_at)
               SELECT 12, id, 'A-12', 1, {T0} + 2 * 86400, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, starts_at, duration_min, status, status_at, created_at, updated_at)
               SELECT 20, id, 'A-20', 2, {T0} - 3600, 15, 'completed', {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
               VALUES ('wamid.in1', '+919876543210', 1, 12, 'text', 'can I come at 5 instead?', 'unknown', 'needs_staff', 'not understood', {T0} - 3600);"
        ))
        .expect("schedule");
    (dir, s)
}

fn text<'a>(nonce: &'a str, patient: i64, text: &'a str) -> StaffMessage<'a> {
    StaffMessage {
        patient,
        nonce,
        what: StaffSend::Text(text),
        actor: "staff:asha",
        overridden: None,
    }
}

#[test]
fn a_text_inside_the_window_is_queued_once_and_answers_the_waiting_reply() {
    let (_dir, mut s) = store();
    let now = at(0);
    let c = s.conversation(1, now).expect("read").expect("patient");
    assert_eq!(c.window_closes, Some(at(-3600) + WINDOW));
    assert!(c.window_open(now));
    assert!(matches!(c.lines.as_slice(), [Line::In(i)] if i.handled_by.is_none()));

    let first = s
        .queue_staff_message(&text("n1", 1, "Yes, 17:00 is fine."), now)
        .expect("queue");
    let StaffSent::Queued(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        s.queue_staff_message(&text("n1", 1, "Yes, 17:00 is fine."), now)
            .expect("again"),
        StaffSent::Again(id),
        "the same form again adds nothing"
    );
    let (appointment, kind, latest, sent_by, params): (i64, String, i64, String, String) = s
        .conn
        .query_row(
            "SELECT appointment_id, kind, latest_at, sent_by, params FROM outbox WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("row");
    assert_eq!(appointment, 12, "the next booked appointment");
    assert_eq!(kind, "staff_message");
    assert_eq!(latest, (at(-3600) + WINDOW).timestamp());
    assert_eq!(sent_by, "staff:asha");
    assert_eq!(params, r#"{"text":"Yes, 17:00 is fine."}"#);
    let c = s.conversation(1, now).expect("read").expect("patient");
    let [Line::In(reply), Line::Out(out)] = c.lines.as_slice() else {
        panic!("{:?}", c.lines)
    };
    assert_eq!(reply.handled_by.as_deref(), Some("staff:asha"));
    assert_eq!(out.text.as_deref(), Some("Yes, 17:00 is fine."));
    assert_eq!(out.sent_by.as_deref(), Some("staff:asha"));
    let audit: Vec<String> = s
        .conn
        .prepare("SELECT action FROM audit_log WHERE actor = 'staff:asha' ORDER BY id")
        .expect("prepare")
        .query_map((), |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(audit, ["staff_message", "reply_handled"]);
}

#[test]
fn outside_the_window_only_the_template_goes_and_never_to_a_patient_who_opted_out() {
    let (_dir, mut s) = store();
    let later = at(-3600) + WINDOW + Duration::seconds(1);
    assert_eq!(
        s.queue_staff_message(&text("n1", 1, "hello"), later)
            .expect("queue"),
        StaffSent::Refused(StaffRefusal::WindowClosed(Some(at(-3600) + WINDOW)))
    );
    assert_eq!(
        s.queue_staff_message(&text("n2", 2, "hello"), later)
            .expect("queue"),
        StaffSent::Refused(StaffRefusal::WindowClosed(None)),
        "a patient who never wrote has no window"
    );
    let call_us = StaffMessage {
        what: StaffSend::Template("call_us"),
        overridden: Some("report"),
        ..text("n3", 2, "")
    };
    let StaffSent::Queued(id) = s.queue_staff_message(&call_us, later).expect("queue") else {
        panic!("queued")
    };
    let (appointment, template, latest): (i64, String, i64) = s
        .conn
        .query_row(
            "SELECT appointment_id, template, latest_at FROM outbox WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("row");
    assert_eq!(
        (appointment, template.as_str(), latest),
        (20, "call_us", (later + WINDOW).timestamp()),
        "no appointment to come: the latest"
    );
    assert_eq!(
        s.conn
            .query_row(
                "SELECT new_value FROM audit_log WHERE action = 'sensitive_warning_overridden'",
                (),
                |r| r.get::<_, String>(0)
            )
            .expect("audited"),
        "report"
    );
    s.conn
        .execute("UPDATE patients SET opted_out_at = 1 WHERE id = 2", ())
        .expect("opt out");
    assert_eq!(
        s.queue_staff_message(
            &StaffMessage {
                nonce: "n4",
                ..call_us
            },
            later
        )
        .expect("queue"),
        StaffSent::Refused(StaffRefusal::OptedOut)
    );
    assert_eq!(
        s.queue_staff_message(&text("n5", 99, "x"), later)
            .expect("queue"),
        StaffSent::Refused(StaffRefusal::NoPatient)
    );
    assert_eq!(s.reply_patient(1).expect("read"), Some(1));
    assert_eq!(
        s.patients_by_external_id(None, "P-2").expect("read"),
        [(2, "mumbai".to_string())]
    );
}

#[test]
fn a_form_used_for_one_patient_sent_to_another_patients_page_is_refused_not_reported_sent() {
    let (_dir, mut s) = store();
    let now = at(0);
    let first = s
        .queue_staff_message(&text("n7", 1, "See you at 5."), now)
        .expect("queue");
    assert!(matches!(first, StaffSent::Queued(_)), "{first:?}");
    assert_eq!(
        s.queue_staff_message(&text("n7", 2, "See you at 5."), now)
            .expect("other patient"),
        StaffSent::Refused(StaffRefusal::OtherPatient),
        "another patient's page does not say it was sent"
    );

    let doc = s
        .queue_document(1, "fasting", None, "d7", "staff:asha", now)
        .expect("document");
    assert!(matches!(doc, DocumentQueued::New(_)), "{doc:?}");
    assert_eq!(
        s.queue_document(2, "fasting", None, "d7", "staff:asha", now)
            .expect("other patient"),
        DocumentQueued::OtherPatient
    );
}
