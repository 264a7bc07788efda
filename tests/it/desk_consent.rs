//! Consent recorded by staff on the patient's page: what the patient said by phone or in
//! person, per channel. Withdrawn stops messages as a STOP reply does, agreed lets them be
//! planned again; the page says both in words with the clinic's local date; audited; a form
//! without the session's token changes nothing.

use crate::common::csv;
use crate::desk_harness::{Browser, Desk};

const STAFF: (&str, &str) = ("asha", "front-desk-password");

/// The desk with Priya (visits on 15 January and 15 February 2099) and Aarav, and asha
/// signed in (staff, not an administrator).
async fn start() -> (Desk, Browser, i64) {
    let d = Desk::options().user(STAFF.0, STAFF.1).start().await;
    d.env
        .import(
            "s.csv",
            &csv(&[
                "A-1,P-1,Priya Patil,+91 98765 43210,mr,2099-01-15,10:00,15,Dr. Mehta,mumbai,booked",
                "A-2,P-2,Aarav Sharma,98200 12345,en,2099-01-15,10:30,15,Dr. Mehta,mumbai,booked",
                "A-3,P-1,Priya Patil,+91 98765 43210,mr,2099-02-15,10:00,15,Dr. Mehta,mumbai,booked",
            ]),
            &[],
        )
        .expect(0);
    let id = d.id("SELECT id FROM patients WHERE external_id = 'P-1'");
    let b = d.signed_in(STAFF.0, STAFF.1).await;
    (d, b, id)
}

/// Plans what is due at `now` (the daemon's plan job, run by hand).
fn plan(d: &Desk, now: &str) {
    d.env.run(&["plan", "--now", now]).expect(0);
}

/// The planned messages of appointment `external_id`, as "state: reason".
fn outbox_of(d: &Desk, external_id: &str) -> Vec<String> {
    let conn = d.env.sql();
    let mut stmt = conn
        .prepare(
            "SELECT o.state || ': ' || coalesce(o.reason, '') FROM outbox o
             JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = ?1 ORDER BY o.id",
        )
        .expect("prepare");
    stmt.query_map([external_id], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

async fn record(b: &Browser, id: i64, channel: &str, answer: &str) -> crate::desk_harness::Page {
    let patient = id.to_string();
    b.post_then_get(
        "/desk/patient/consent",
        &[
            ("csrf", &b.csrf),
            ("patient", &patient),
            ("channel", channel),
            ("answer", answer),
        ],
        &format!("/desk/patient?id={id}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_record_withdrawn_then_agreed_and_messages_stop_then_plan_again() {
    let (d, b, id) = start().await;
    // The schedule upload stands for the patient's consent on WhatsApp, recorded at 01:30 on
    // 3 November in Mumbai (still 2 November in UTC).
    d.sql("UPDATE consents SET recorded_at = 1793649600");
    let page = b.get(&format!("/desk/patient?id={id}")).await;
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(
        text.contains("WhatsApp: agreed — from the schedule upload s.csv, 3 Nov 2026"),
        "{text}"
    );
    assert!(text.contains("SMS: not recorded"), "{text}");

    plan(&d, "2099-01-14T04:30:00Z");
    let before = outbox_of(&d, "A-1");
    assert!(
        !before.is_empty() && before.iter().all(|o| o.starts_with("pending")),
        "{before:?}"
    );

    let page = record(&b, id, "whatsapp", "withdrawn").await;
    assert_eq!(page.status, 200);
    // The planned reminder is not sent: skipped for the same reason a STOP gives.
    let after = outbox_of(&d, "A-1");
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|o| o == "skipped: the patient opted out"),
        "{after:?}"
    );
    assert!(
        outbox_of(&d, "A-2")
            .iter()
            .all(|o| o.starts_with("pending")),
        "Aarav is not concerned"
    );
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM patients WHERE id = {id} AND opted_out_at IS NOT NULL"
        )),
        1
    );
    assert_eq!(
        d.one(&format!(
            "SELECT channel || ' ' || given || ' ' || source FROM consents WHERE patient_id = {id} ORDER BY id DESC LIMIT 1"
        )),
        "whatsapp 0 staff:asha"
    );
    assert_eq!(
        d.one(&format!(
            "SELECT action || ' ' || old_value || ' ' || new_value FROM audit_log
             WHERE patient_id = {id} AND actor = 'staff:asha'"
        )),
        "opt_out opted_in opted_out"
    );
    // Nothing is planned for February's visit while consent is withdrawn.
    plan(&d, "2099-02-14T04:30:00Z");
    assert!(
        outbox_of(&d, "A-3").is_empty(),
        "{:?}",
        outbox_of(&d, "A-3")
    );
    // The withdrawal was told on 21 November in Mumbai (still 20 November in UTC).
    d.sql(&format!(
        "UPDATE consents SET recorded_at = 1795201200 WHERE source = 'staff:asha' AND patient_id = {id}"
    ));
    let text = b.get(&format!("/desk/patient?id={id}")).await.text();
    assert!(
        text.contains("WhatsApp: withdrawn — the patient told asha at the desk, 21 Nov 2026"),
        "{text}"
    );

    // Agreed again: the opt-out is lifted and February's visit is planned.
    let page = record(&b, id, "whatsapp", "agreed").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM patients WHERE id = {id} AND opted_out_at IS NULL"
        )),
        1
    );
    plan(&d, "2099-02-14T04:30:00Z");
    let planned = outbox_of(&d, "A-3");
    assert!(
        !planned.is_empty() && planned.iter().all(|o| o.starts_with("pending")),
        "{planned:?}"
    );
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM audit_log WHERE patient_id = {id} AND actor = 'staff:asha' AND action = 'opt_in'"
        )),
        1
    );
    let text = b.get(&format!("/desk/patient?id={id}")).await.text();
    assert!(
        text.contains("WhatsApp: agreed — the patient told asha at the desk, "),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sms_withdrawn_is_the_numbers_text_opt_out_and_shown_in_words() {
    let (d, b, id) = start().await;
    let page = record(&b, id, "sms", "withdrawn").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        d.one("SELECT sms_opt_out_source FROM numbers WHERE phone = '+919876543210' AND sms_opted_out_at IS NOT NULL"),
        "staff"
    );
    assert!(
        page.text()
            .contains("SMS: withdrawn — the patient told asha at the desk, "),
        "{}",
        page.text()
    );
    record(&b, id, "sms", "agreed").await;
    assert_eq!(
        d.count("SELECT count(*) FROM numbers WHERE phone = '+919876543210' AND sms_opted_out_at IS NULL"),
        1
    );
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM audit_log WHERE patient_id = {id} AND actor = 'staff:asha' AND action IN ('sms_opt_out', 'sms_opt_in')"
        )),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_token_or_with_a_wrong_answer_nothing_is_recorded() {
    let (d, b, id) = start().await;
    let patient = id.to_string();
    let consents = "SELECT count(*) FROM consents";
    let before = d.count(consents);
    let forged = b
        .post(
            "/desk/patient/consent",
            &[
                ("patient", &patient),
                ("channel", "whatsapp"),
                ("answer", "withdrawn"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    let wrong = b
        .post(
            "/desk/patient/consent",
            &[
                ("csrf", &b.csrf),
                ("patient", &patient),
                ("channel", "telegram"),
                ("answer", "withdrawn"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.text().contains("Nothing was recorded"),
        "{}",
        wrong.text()
    );
    assert_eq!(d.count(consents), before);
    assert_eq!(
        d.count("SELECT count(*) FROM patients WHERE opted_out_at IS NOT NULL"),
        0
    );
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE actor = 'staff:asha' AND action LIKE '%opt%'"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_patient_has_no_consent_form_and_a_post_records_nothing() {
    let (d, b, id) = start().await;
    d.sql(&format!(
        "UPDATE patients SET erased_at = 1795201200 WHERE id = {id}"
    ));
    let text = b.get(&format!("/desk/patient?id={id}")).await.text();
    assert!(!text.contains("Consent to messages"), "{text}");
    let patient = id.to_string();
    let before = d.count("SELECT count(*) FROM consents");
    let refused = b
        .post(
            "/desk/patient/consent",
            &[
                ("csrf", &b.csrf),
                ("patient", &patient),
                ("channel", "whatsapp"),
                ("answer", "withdrawn"),
            ],
        )
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(d.count("SELECT count(*) FROM consents"), before);
    assert_eq!(
        d.count("SELECT count(*) FROM patients WHERE opted_out_at IS NOT NULL"),
        0
    );
}
