//! What a call settles, replies handled by a call or at the desk, reveals of a reply's number,
//! ambiguous answers applied to a chosen appointment, and the facts behind the held banner.

use super::*;

const T0: i64 = 1_800_000_000;

fn at(offset: i64) -> DateTime<Utc> {
    crate::time::from_unix(T0 + offset)
}

/// A store with the shipped clinics and, at Mumbai, appointments 1 (Priya) and 2 (Rohan,
/// another number) a day after `T0`, and 3 (Priya again) two days after.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Store::open(&dir.path().join("d.db")).expect("open");
    let config = crate::config::Config::example().expect("config");
    s.sync_clinics(&config.clinics).expect("clinics");
    s.conn
        .execute_batch(&format!(
            "INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
               SELECT 1, id, 'P-1', 'Priya Patil', '+919876543210', 'en', {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
               SELECT 2, id, 'P-2', 'Rohan Gupta', '+919123456789', 'hi', {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status_at, created_at, updated_at)
               SELECT 1, id, 'MUM-1', 1, 'Dr. Mehta', {T0} + 86400, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status_at, created_at, updated_at)
               SELECT 2, id, 'MUM-2', 2, 'Dr. Iyer', {T0} + 90000, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
             INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status_at, created_at, updated_at)
               SELECT 3, id, 'MUM-3', 1, 'Dr. Iyer', {T0} + 2 * 86400, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';"
        ))
        .expect("schedule");
    (dir, s)
}

/// The reasons on the list for each appointment (by row id) over the next three days.
fn listed(s: &Store) -> Vec<(i64, Vec<String>)> {
    s.follow_ups("mumbai", at(0), at(3 * 86400), 2, true)
        .expect("follow-ups")
        .into_iter()
        .map(|f| (f.id, f.reasons))
        .collect()
}

fn call(s: &mut Store, id: i64, outcome: CallOutcome, offset: i64) -> CallRecorded {
    s.record_call(id, outcome, None, "staff:asha", at(offset))
        .expect("call")
}

fn reply(s: &Store, id: i64, appointment: Option<i64>, text: &str, intent: &str) {
    s.conn
        .execute(
            "INSERT INTO replies (id, message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
             VALUES (?1, ?2, '+919876543210', 1, ?3, 'text', ?4, ?5, 'needs_staff', 'why', ?6)",
            params![id, format!("wamid.{id}"), appointment, text, intent, T0],
        )
        .expect("reply");
}

#[test]
fn a_request_leaves_the_list_only_when_the_patient_is_reached_after_it() {
    let (_dir, mut s) = store();
    s.conn
        .execute_batch(&format!(
            "UPDATE appointments SET response = 'reschedule_requested', response_at = {T0} WHERE id = 1"
        ))
        .expect("request");
    assert_eq!(
        listed(&s),
        [(1, vec!["asked to reschedule: find a new time".to_string()])]
    );
    call(&mut s, 1, CallOutcome::NoAnswer, 60);
    call(&mut s, 1, CallOutcome::LeftMessage, 120);
    assert_eq!(listed(&s).len(), 1, "a request needs a conversation");
    let calls = s.calls(&[1, 2], 5).expect("calls");
    let outcomes: Vec<_> = calls[&1]
        .iter()
        .map(|c| (c.outcome, c.by.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Some(CallOutcome::LeftMessage), "asha"),
            (Some(CallOutcome::NoAnswer), "asha")
        ],
        "newest first"
    );
    assert!(!calls.contains_key(&2));
    assert_eq!(
        call(&mut s, 1, CallOutcome::Reached, 180),
        CallRecorded::Saved(0)
    );
    assert!(listed(&s).is_empty());
    // A new request after that call puts the patient back.
    s.conn
        .execute_batch(&format!(
            "UPDATE appointments SET response_at = {T0} + 240 WHERE id = 1"
        ))
        .expect("asked again");
    assert_eq!(listed(&s).len(), 1);
    assert_eq!(
        call(&mut s, 99, CallOutcome::Reached, 300),
        CallRecorded::NoSuchAppointment
    );
}

#[test]
fn reminding_reasons_leave_on_a_message_left_and_unanswered_ones_on_a_reply_handled() {
    let (_dir, mut s) = store();
    s.conn
        .execute_batch(&format!(
            "UPDATE patients SET opted_out_at = {T0} WHERE id = 2;
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, needs_staff, created_at, updated_at)
               VALUES (1, 'reminder', 'day-before', {T0} + 86400, {T0}, {T0} + 86400, 'failed', 'cannot be reached: call them', {T0}, {T0});
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, sent_at, created_at, updated_at)
               VALUES (3, 'reminder', 'day-before', {T0} + 172800, {T0}, {T0} + 172800, 'read', {T0}, {T0}, {T0}),
                      (3, 'reminder', 'same-day', {T0} + 172800, {T0}, {T0} + 172800, 'delivered', {T0}, {T0}, {T0});"
        ))
        .expect("reasons");
    let reasons: Vec<i64> = listed(&s).into_iter().map(|(id, _)| id).collect();
    assert_eq!(reasons, [1, 2, 3]);
    call(&mut s, 1, CallOutcome::NoAnswer, 60);
    call(&mut s, 2, CallOutcome::LeftMessage, 60);
    assert_eq!(listed(&s)[0].0, 1, "no answer settles nothing");
    assert_eq!(
        listed(&s).len(),
        2,
        "a message left reminds an opted-out patient"
    );
    call(&mut s, 1, CallOutcome::LeftMessage, 120);
    // A message that fails after the call is news.
    s.conn
        .execute_batch(&format!(
            "UPDATE outbox SET updated_at = {T0} + 180 WHERE appointment_id = 1"
        ))
        .expect("failed again");
    assert_eq!(listed(&s)[0].0, 1);
    // Appointment 3 got no answer to either reminder; the patient then wrote.
    assert_eq!(
        listed(&s)[1],
        (3, vec!["no answer after all reminders".to_string()])
    );
    reply(&s, 7, Some(3), "Which floor?", "unknown");
    assert_eq!(
        listed(&s)[1],
        (
            3,
            vec!["a reply needs a person: \"Which floor?\"".to_string()]
        )
    );
    s.handle_reply(7, "staff:asha", None, at(200))
        .expect("handled");
    assert_eq!(
        listed(&s).len(),
        1,
        "the patient answered; the reply is dealt with"
    );
}

#[test]
fn reaching_the_patient_handles_their_waiting_replies_with_an_audit_row() {
    let (_dir, mut s) = store();
    reply(&s, 7, Some(1), "Can I come later?", "unknown");
    reply(&s, 8, None, "ok", "confirm");
    assert_eq!(s.waiting_reply_count().expect("count"), 2);
    assert_eq!(
        call(&mut s, 1, CallOutcome::Reached, 60),
        CallRecorded::Saved(1)
    );
    assert_eq!(s.waiting_reply_count().expect("count"), 1);
    let handled: (String, String) = s
        .conn
        .query_row(
            "SELECT actor, reason FROM audit_log WHERE action = 'reply_handled'",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("audit");
    assert_eq!(
        handled,
        (
            "staff:asha".into(),
            "the patient was reached by phone".into()
        )
    );
    assert!(listed(&s).is_empty());
    // A status set at the desk settles replies the same way.
    reply(&s, 9, Some(3), "Is there parking?", "unknown");
    assert_eq!(
        s.settle_replies("mumbai", "MUM-3", "staff:asha", None, at(90))
            .expect("settle"),
        1
    );
    assert_eq!(s.waiting_reply_count().expect("count"), 1);
}

#[test]
fn a_reveal_of_a_reply_is_audited_and_shown_only_to_who_revealed_it() {
    let (_dir, mut s) = store();
    reply(&s, 8, None, "who is this?", "unknown");
    assert_eq!(
        s.reveal_reply_phone(99, "staff:asha", at(0))
            .expect("reveal"),
        None
    );
    assert_eq!(
        s.reveal_reply_phone(8, "staff:asha", at(0))
            .expect("reveal")
            .as_deref(),
        Some("+919876543210")
    );
    let revealed = |who: &str, since: i64| {
        s.revealed_since(who, Some(8), None, at(since))
            .expect("revealed")
    };
    assert!(revealed("staff:asha", -600));
    assert!(!revealed("staff:ravi", -600));
    assert!(!revealed("staff:asha", 1), "not after the window");
    assert!(
        !s.revealed_since("staff:asha", None, Some(1), at(-600))
            .expect("revealed")
    );
}

#[test]
fn an_ambiguous_answer_applies_to_the_chosen_appointment_once_with_its_acknowledgement() {
    let (_dir, mut s) = store();
    reply(&s, 8, None, "ok", "confirm");
    let choices: Vec<i64> = s
        .reply_choices("+919876543210", at(0))
        .expect("choices")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(choices, [1, 3], "Priya's coming appointments, not Rohan's");
    let refused = s
        .apply_reply(8, 2, "staff:asha", None, at(60))
        .expect("apply");
    assert!(matches!(refused, ReplyApplied::Refused(_)), "{refused:?}");
    assert_eq!(
        s.apply_reply(8, 3, "staff:asha", Some("See you!"), at(60))
            .expect("apply"),
        ReplyApplied::Now
    );
    let (response, handled): (String, String) = s
        .conn
        .query_row(
            "SELECT a.response, r.handled_by FROM appointments a JOIN replies r ON r.appointment_id = a.id WHERE a.id = 3",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("applied");
    assert_eq!(
        (response.as_str(), handled.as_str()),
        ("confirmed", "staff:asha")
    );
    let audit: Vec<(String, String)> = s
        .conn
        .prepare("SELECT action, reason FROM audit_log WHERE actor = 'staff:asha' AND appointment_id = 3 ORDER BY id")
        .expect("prepare")
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        audit,
        [
            (
                "response".to_string(),
                "reply 8, applied at the desk".to_string()
            ),
            (
                "reply_handled".to_string(),
                "applied to this appointment at the desk".to_string()
            )
        ]
    );
    let ack: String = s
        .conn
        .query_row(
            "SELECT rule || ' ' || params FROM outbox WHERE kind = 'reply_ack'",
            (),
            |r| r.get(0),
        )
        .expect("ack");
    assert_eq!(ack, r#"reply:8 {"text":"See you!"}"#);
    assert_eq!(
        s.apply_reply(8, 1, "staff:ravi", None, at(90))
            .expect("apply"),
        ReplyApplied::Already("staff:asha".into())
    );
    assert_eq!(
        s.apply_reply(99, 1, "staff:ravi", None, at(90))
            .expect("apply"),
        ReplyApplied::NotWaiting
    );
}

#[test]
fn holds_come_from_old_imports_released_messages_and_refused_templates() {
    let (_dir, s) = store();
    let ages = s.schedule_ages(at(0)).expect("ages");
    let mumbai = ages.iter().find(|a| a.clinic == "mumbai").expect("mumbai");
    assert_eq!((mumbai.last_import, mumbai.upcoming), (None, true));
    assert_eq!(s.account_stop().expect("stop"), None);
    s.conn
        .execute_batch(&format!(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, reason, created_at, updated_at)
               VALUES (1, 'reminder', 'day-before', {T0} + 86400, {T0}, {T0} + 86400, 'reminder', 'pending', 'not sent: (190) Invalid OAuth access token', {T0}, {T0});
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, last_error_code, last_error, created_at, updated_at)
               VALUES (3, 'reminder', 'day-before', {T0} + 172800, {T0}, {T0} + 172800, 'reminder', 'failed', 132001, '(132001) Template name does not exist', {T0}, {T0} + 60);"
        ))
        .expect("trouble");
    let stop = s.account_stop().expect("stop").expect("a stop");
    assert_eq!(
        (stop.reason.as_str(), stop.messages),
        ("(190) Invalid OAuth access token", 1)
    );
    let troubles = s.send_troubles(at(0)).expect("troubles");
    assert_eq!(troubles.len(), 1);
    assert_eq!(
        (troubles[0].template.as_deref(), troubles[0].code),
        (Some("reminder"), 132_001)
    );
    assert!(
        s.send_troubles(at(120)).expect("troubles").is_empty(),
        "older than asked"
    );
    // A later send of the same template shows the trouble has passed.
    s.conn
        .execute_batch(&format!(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, sent_at, created_at, updated_at)
               VALUES (2, 'reminder', 'day-before', {T0} + 90000, {T0}, {T0} + 90000, 'reminder', 'sent', {T0} + 100, {T0}, {T0} + 100);"
        ))
        .expect("sent");
    assert!(s.send_troubles(at(0)).expect("troubles").is_empty());
}
