//! Who wrote: a patient's changed number (`system` messages) and business-scoped user ids, so
//! that a sender with a username and no number is still recognised. Signed bodies in Meta's
//! shapes, posted to `reminderd serve` over real HTTP.

use serde_json::{Value, json};

use crate::common::Env;
use crate::webhook::{Served, envelope, reminded, row};

const META: &str =
    r#"{"display_phone_number": "15550000000", "phone_number_id": "106540352242922"}"#;

#[allow(clippy::needless_pass_by_value)] // called with json!(..) temporaries
fn value(contacts: Option<Value>, messages: Value) -> Value {
    let mut v = json!({
        "messaging_product": "whatsapp",
        "metadata": serde_json::from_str::<Value>(META).expect("metadata"),
        "messages": messages,
    });
    if let Some(c) = contacts {
        v["contacts"] = c;
    }
    envelope(v)
}

/// Meta's `user_changed_number` system message: no contacts, `from` is the old number.
fn changed_number(id: &str, old: &str, new: &str, user_id: &str) -> Value {
    value(
        None,
        json!([{
            "from": old, "id": id, "timestamp": "1764500000", "type": "system",
            "system": {
                "body": format!("User Patient changed from {old} to {new}"),
                "wa_id": new, "type": "user_changed_number",
                "user_id": user_id, "previous_user_id": "IN.1111"
            }
        }]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_number_moves_the_one_patient_who_had_it_with_an_audit_row_and_a_note() {
    let s = Served::start(Env::new()).await;
    reminded(&s.env, &[&row("A1", "P1", "98200 12345", "en", 2, "10:00")]);

    let body = changed_number("wamid.sys1", "919820012345", "919876500001", "IN.2222");
    assert_eq!(s.post_signed(&body).await, 200);
    assert_eq!(
        s.one("SELECT phone FROM patients WHERE external_id = 'P1'"),
        "+919876500001",
        "the patient's number is the new one"
    );
    assert_eq!(
        s.one("SELECT wa_user_id FROM patients WHERE external_id = 'P1'"),
        "IN.2222"
    );
    assert_eq!(
        s.one(
            "SELECT actor || ' ' || action || ' ' || old_value || ' -> ' || new_value FROM audit_log WHERE action = 'number_changed'"
        ),
        "patient number_changed +91******2345 -> +91******0001",
        "audited, with the numbers masked"
    );
    let note =
        s.one("SELECT reason FROM replies WHERE kind = 'system' AND outcome = 'needs_staff'");
    assert!(
        note.contains("Update it in the practice system too"),
        "staff are told the schedule still has the old number: {note}"
    );
    assert!(
        !note.contains("9820012345"),
        "no whole number in the note: {note}"
    );

    // Meta retries: the same message changes nothing twice.
    assert_eq!(s.post_signed(&body).await, 200);
    assert_eq!(
        s.count("SELECT count(*) FROM replies WHERE kind = 'system'"),
        1
    );
    assert_eq!(
        s.count("SELECT count(*) FROM audit_log WHERE action = 'number_changed'"),
        1
    );

    // A reply from the new number now finds the patient's appointment.
    let text = value(
        Some(json!([{"profile": {"name": "P"}, "wa_id": "919876500001"}])),
        json!([{"from": "919876500001", "id": "wamid.t1", "timestamp": "1764500100", "type": "text", "text": {"body": "yes"}}]),
    );
    assert_eq!(s.post_signed(&text).await, 200);
    assert_eq!(
        s.one("SELECT response FROM appointments WHERE external_id = 'A1'"),
        "confirmed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_number_two_patients_share_goes_to_staff_and_changes_nobody() {
    let s = Served::start(Env::new()).await;
    reminded(
        &s.env,
        &[
            &row("A1", "P1", "98200 12345", "en", 2, "10:00"),
            &row("A2", "P2", "98200 12345", "en", 2, "11:00"),
        ],
    );
    let body = changed_number("wamid.sys2", "919820012345", "919876500001", "IN.3333");
    assert_eq!(s.post_signed(&body).await, 200);
    assert_eq!(
        s.count("SELECT count(*) FROM patients WHERE phone = '+919820012345'"),
        2,
        "neither patient was changed"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM audit_log WHERE action = 'number_changed'"),
        0
    );
    let note =
        s.one("SELECT reason FROM replies WHERE kind = 'system' AND outcome = 'needs_staff'");
    assert!(
        note.contains("2 patients have the old number, so none was changed"),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_username_only_sender_is_matched_by_the_user_id_an_earlier_message_carried() {
    let s = Served::start(Env::new()).await;
    reminded(&s.env, &[&row("A1", "P1", "98200 12345", "en", 2, "10:00")]);
    // An earlier message carries both the number and the user id (in contacts, as Meta sends
    // it since 2026): the user id is kept with the patient.
    let first = value(
        Some(json!([{"profile": {"name": "P"}, "wa_id": "919820012345", "user_id": "IN.4444"}])),
        json!([{"from": "919820012345", "id": "wamid.u1", "timestamp": "1764500000", "type": "text", "text": {"body": "hello"}}]),
    );
    assert_eq!(s.post_signed(&first).await, 200);
    assert_eq!(
        s.one("SELECT wa_user_id FROM patients WHERE external_id = 'P1'"),
        "IN.4444"
    );

    // Then the patient adopts a username: no `from`, no `wa_id`, only the user id.
    let later = value(
        Some(json!([{"profile": {"name": "P", "username": "@patient"}, "user_id": "IN.4444"}])),
        json!([{"from_user_id": "IN.4444", "id": "wamid.u2", "timestamp": "1764500100", "type": "text", "text": {"body": "cancel"}}]),
    );
    assert_eq!(s.post_signed(&later).await, 200);
    assert_eq!(
        s.one("SELECT status FROM appointments WHERE external_id = 'A1'"),
        "cancelled",
        "the username-only sender was recognised by their user id"
    );
    assert_eq!(
        s.one("SELECT from_phone FROM replies WHERE message_id = 'wamid.u2'"),
        "+919820012345"
    );

    // An unknown user id is a stranger: staff decide, nothing changes.
    let stranger = value(
        Some(json!([{"profile": {"name": "X"}, "user_id": "IN.9999"}])),
        json!([{"from_user_id": "IN.9999", "id": "wamid.u3", "timestamp": "1764500200", "type": "text", "text": {"body": "yes"}}]),
    );
    assert_eq!(s.post_signed(&stranger).await, 200);
    assert_eq!(
        s.one("SELECT outcome FROM replies WHERE message_id = 'wamid.u3'"),
        "needs_staff"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_older_shape_customer_changed_number_with_new_wa_id_moves_the_patient() {
    let s = Served::start(Env::new()).await;
    reminded(&s.env, &[&row("A1", "P1", "98200 12345", "en", 2, "10:00")]);
    let body = value(
        None,
        json!([{
            "from": "919820012345", "id": "wamid.old1", "timestamp": "1764500000", "type": "system",
            "system": {
                "body": "User A changed from 919820012345 to 919876500002",
                "new_wa_id": "919876500002", "type": "customer_changed_number"
            }
        }]),
    );
    assert_eq!(s.post_signed(&body).await, 200);
    assert_eq!(
        s.one("SELECT phone FROM patients WHERE external_id = 'P1'"),
        "+919876500002",
        "the older API's names are read the same way"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_number_without_the_new_number_still_leaves_a_note_for_staff_once() {
    let s = Served::start(Env::new()).await;
    reminded(&s.env, &[&row("A1", "P1", "98200 12345", "en", 2, "10:00")]);
    let body = value(
        None,
        json!([{
            "from": "919820012345", "id": "wamid.sys9", "timestamp": "1764500000", "type": "system",
            "system": {"body": "User A changed their number", "type": "user_changed_number"}
        }]),
    );
    assert_eq!(s.post_signed(&body).await, 200);
    assert_eq!(s.post_signed(&body).await, 200, "Meta retries");
    assert_eq!(
        s.one("SELECT phone FROM patients WHERE external_id = 'P1'"),
        "+919820012345",
        "nothing to move the patient to"
    );
    assert_eq!(
        s.count(
            "SELECT count(*) FROM replies WHERE kind = 'system' AND outcome = 'needs_staff' AND message_id = 'wamid.sys9'"
        ),
        1,
        "one note for staff, however often it comes"
    );
    let note = s.one(
        "SELECT reason || ' / ' || coalesce((SELECT external_id FROM patients WHERE id = replies.patient_id), '-') FROM replies WHERE message_id = 'wamid.sys9'",
    );
    assert!(
        note.contains("gave no new number") && note.ends_with("/ P1"),
        "staff see whose number changed and why nothing was: {note}"
    );
}
