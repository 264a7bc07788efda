//! Channels at the desk over HTTP, as a receptionist meets them (issue 14, "staff see it"): the
//! call list leaves out a patient a text reached and lists the others with the reason (both
//! failures, no automated messages, opted out of texts); the day board and the patient page
//! say which way the last message went, what the number taught us and who the caregiver is;
//! stats per channel, each appointment once; and the same facts in `reminderd follow-ups`,
//! `outbox` and `stats`. Rows are written with SQL as dispatch leaves them.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::desk_harness::{Browser, Desk};

const USER: &str = "asha";
const PASSWORD: &str = "front desk password";
const NEW_YORK: Tz = chrono_tz::America::New_York;
const MUMBAI: Tz = chrono_tz::Asia::Kolkata;
/// What dispatch writes on a text that failed after WhatsApp did.
const BOTH_FAILED: &str = "WhatsApp failed ((131026) Message undeliverable) and the text failed too (the carrier blocked the text): call them";

async fn start_with(edit: impl FnOnce(String) -> String + 'static) -> Desk {
    Desk::options()
        .edit(edit)
        .user(USER, PASSWORD)
        .var("WHATSAPP_APP_SECRET", "app-secret-for-tests")
        .var("WHATSAPP_VERIFY_TOKEN", "verify-token-for-tests")
        // The shipped config's clinics send texts: the server needs the providers' secrets.
        .var("TWILIO_AUTH_TOKEN", "twilio-token-for-tests")
        .var("MSG91_AUTH_KEY", "msg91-key-for-tests")
        .var("MSG91_WEBHOOK_TOKEN", "msg91-webhook-token-for-tests")
        .start()
        .await
}

async fn signed_in(d: &Desk) -> Browser {
    d.signed_in_via(USER, PASSWORD, "/desk/upload").await
}

fn now() -> DateTime<Utc> {
    reminderd::time::Clock::System.now()
}

/// The clinic's local date `days` from its today, as the schedule writes it.
fn local_day(zone: Tz, days: u64) -> String {
    (now().with_timezone(&zone).date_naive() + chrono::Days::new(days))
        .format("%Y-%m-%d")
        .to_string()
}

impl Desk {
    /// Appends an outbox row for appointment `external` (a reminder of `rule`, planned for its
    /// start), then `set` on it; its id.
    fn message(&self, external: &str, rule: &str, channel: &str, set: &str) -> i64 {
        let at = now().timestamp() - 3600 + self.count("SELECT count(*) FROM outbox");
        self.sql(&format!(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, channel,
                                 request_at, created_at, updated_at)
               SELECT id, 'reminder', '{rule}', starts_at, {at}, starts_at, 'sent', '{channel}', {at}, {at}, {at}
               FROM appointments WHERE external_id = '{external}';
             UPDATE outbox SET {set} WHERE id = (SELECT max(id) FROM outbox);"
        ));
        self.id("SELECT max(id) FROM outbox")
    }
}

/// Four New York patients tomorrow, each with a WhatsApp failure or a channel: James's text
/// reached him, Emily's failed too, Lucia gets no messages by the schedule, David's number
/// opted out of texts and his text was skipped.
fn new_york_tomorrow(d: &Desk) {
    let n = local_day(NEW_YORK, 1);
    d.import(&[
        &format!("NYC-1,N-1,James Wilson,212-867-5309,en,{n},09:00,30,Dr. Chen,nyc,booked"),
        &format!("NYC-2,N-2,Emily Johnson,(718) 555-0145,en,{n},10:00,30,Dr. Chen,nyc,booked"),
        &format!("NYC-3,N-3,Lucia Hernandez,+1 347 555 0123,es,{n},11:00,30,Dr. Okafor,nyc,booked"),
        &format!("NYC-4,N-4,David Kim,917.555.0167,en,{n},12:00,30,Dr. Okafor,nyc,booked"),
    ]);
    let failed =
        "state = 'failed', last_error_code = 131026, last_error = '(131026) Message undeliverable'";
    let wa = d.message("NYC-1", "day_before", "whatsapp", failed);
    d.message(
        "NYC-1",
        "day_before",
        "sms",
        &format!("state = 'delivered', fallback_of = {wa}"),
    );
    let wa = d.message("NYC-2", "day_before", "whatsapp", failed);
    d.message(
        "NYC-2",
        "day_before",
        "sms",
        &format!("state = 'failed', fallback_of = {wa}, needs_staff = '{BOTH_FAILED}'"),
    );
    let at = now().timestamp() - 7200;
    d.sql(&format!(
        "UPDATE patients SET channel = 'none' WHERE external_id = 'N-3';
         INSERT INTO numbers (phone, sms_opted_out_at, sms_opt_out_source, updated_at)
           SELECT phone, {at}, 'reply', {at} FROM patients WHERE external_id = 'N-4';
         UPDATE patients SET channel = 'sms' WHERE external_id = 'N-4';"
    ));
    d.message(
        "NYC-4",
        "day_before",
        "sms",
        "state = 'skipped', request_at = NULL, reason = 'the number opted out of text messages (STOP)'",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_call_list_leaves_out_whom_a_text_reached_and_says_why_to_call_the_others() {
    let d = start_with(|c| c).await;
    new_york_tomorrow(&d);
    let b = signed_in(&d).await;
    let page = b.get("/desk/follow-ups").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let t = page.text();
    assert!(
        !t.contains("James Wilson"),
        "WhatsApp failed, the text was delivered: nobody needs to call: {t}"
    );
    for (name, why) in [
        ("Emily Johnson", BOTH_FAILED),
        (
            "Lucia Hernandez",
            "no automated messages (the schedule says: call them)",
        ),
        ("David Kim", "opted out of text messages: remind by phone"),
    ] {
        assert!(t.contains(name), "{name} is on the list: {t}");
        assert!(t.contains(why), "{name}: {why}: {t}");
    }
    assert!(t.contains("Follow-ups (3)"), "{t}");

    let out = d
        .env
        .run(&[
            "follow-ups",
            "--clinic",
            "nyc",
            "--date",
            &local_day(NEW_YORK, 1),
        ])
        .expect(0)
        .stdout;
    assert!(!out.contains("James Wilson"), "{out}");
    for why in [
        BOTH_FAILED,
        "no automated messages (the schedule says: call them)",
        "opted out of text messages",
    ] {
        assert!(out.contains(why), "{why}: {out}");
    }

    // Reaching Emily takes her off; the others stay.
    let emily = d.row("NYC-2");
    let done = b
        .post(
            "/desk/follow-ups/call",
            &[
                ("csrf", b.csrf.as_str()),
                ("appointment", &emily.to_string()),
                ("outcome", "reached"),
                ("note", ""),
                ("list_clinic", ""),
                ("list_date", ""),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text());
    let t = b.get("/desk/follow-ups").await.text();
    assert!(
        !t.contains("Emily Johnson") && t.contains("Follow-ups (2)"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn texts_only_at_a_clinic_without_a_text_service_is_a_call() {
    let d = start_with(|c| c.replacen("sms_provider = \"twilio\"\n", "", 1)).await;
    let n = local_day(NEW_YORK, 1);
    d.import(&[&format!(
        "NYC-9,N-9,Maria Gonzalez,(646) 555-0199,es,{n},08:30,30,Dr. Chen,nyc,booked"
    )]);
    d.sql("UPDATE patients SET channel = 'sms' WHERE external_id = 'N-9'");
    let b = signed_in(&d).await;
    let t = b.get("/desk/follow-ups").await.text();
    assert!(
        t.contains("Maria Gonzalez")
            && t.contains(
                "no automated messages (the schedule says texts only, and this clinic sends none: call them)"
            ),
        "{t}"
    );
    let patient = b
        .get(&format!("/desk/patient?appointment={}", d.row("NYC-9")))
        .await
        .text();
    assert!(
        patient.contains(
            "How reminders go none: the schedule says texts only, and this clinic sends no texts: call them"
        ),
        "{patient}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_board_and_the_patient_page_say_which_way_the_last_message_went() {
    let d = start_with(|c| c).await;
    let m = local_day(MUMBAI, 1);
    d.import(&[
        &format!("MUM-1,P-1,Aarav Sharma,98200 12345,en,{m},09:00,15,Dr. Mehta,mumbai,booked"),
        &format!("MUM-2,P-2,Priya Patil,+91 98765 43210,mr,{m},09:30,15,Dr. Mehta,mumbai,booked"),
        &format!("MUM-3,P-3,Rohan Gupta,091234 56789,hi,{m},10:00,30,Dr. Iyer,mumbai,booked"),
    ]);
    let until = now() + chrono::Duration::days(90);
    d.sql(&format!(
        "UPDATE patients SET contact_name = 'Meera Sharma', contact_relation = 'mother',
                contact_phone = '+919820099999', remind = 'both' WHERE external_id = 'P-1';
         INSERT INTO numbers (phone, sms_only_since, sms_only_until, sms_only_reason, updated_at)
           VALUES ('+919820012345', {t}, {u}, '(131026) Message undeliverable', {t});",
        t = now().timestamp(),
        u = until.timestamp()
    ));
    // Aarav: WhatsApp failed (not on WhatsApp), the text was delivered; his mother's text too.
    let failed =
        "state = 'failed', last_error_code = 131026, last_error = '(131026) Message undeliverable'";
    let wa = d.message("MUM-1", "day-before", "whatsapp", failed);
    d.message(
        "MUM-1",
        "day-before",
        "sms",
        "state = 'delivered', recipient = 'contact'",
    );
    d.message(
        "MUM-1",
        "day-before",
        "sms",
        &format!("state = 'delivered', fallback_of = {wa}"),
    );
    // Priya: WhatsApp, read. Rohan: WhatsApp failed, the text waits for the morning.
    d.message("MUM-2", "day-before", "whatsapp", "state = 'read'");
    let wa = d.message("MUM-3", "day-before", "whatsapp", failed);
    d.message(
        "MUM-3",
        "day-before",
        "sms",
        &format!("state = 'pending', request_at = NULL, fallback_of = {wa}"),
    );

    let b = signed_in(&d).await;
    let board = b.get(&format!("/desk/day?clinic=mumbai&date={m}")).await;
    let row = |id: &str| {
        let start = board
            .body
            .find(&format!("id=\"a-{}\"", d.row(id)))
            .expect("row");
        let end = start + board.body[start..].find("</tr>").expect("row end");
        crate::desk_harness::text(&board.body[start..end])
    };
    let expected_until = format!(
        "texts only (not on WhatsApp) until {}",
        until.with_timezone(&MUMBAI).format("%-d %b %Y")
    );
    let aarav = row("MUM-1");
    assert!(aarav.contains("Reminder: Text delivered"), "{aarav}");
    assert!(aarav.contains(&expected_until), "{aarav}");
    let priya = row("MUM-2");
    assert!(priya.contains("Reminder: WhatsApp read"), "{priya}");
    assert!(!priya.contains("texts only"), "{priya}");
    let rohan = row("MUM-3");
    assert!(
        rohan.contains("Reminder: WhatsApp not delivered")
            && rohan.contains("a text message goes instead")
            && !rohan.contains("call"),
        "a text on its way is no reason to call: {rohan}"
    );

    let page = b
        .get(&format!("/desk/patient?appointment={}", d.row("MUM-1")))
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let t = page.text();
    let masked = reminderd::phone::mask("+919820099999");
    for want in [
        format!("Caregiver Meera Sharma (mother) · {masked}"),
        "Reminders go to both (patient and caregiver)".to_string(),
        format!("How reminders go by text message: {expected_until}"),
        "Last message Text delivered".to_string(),
        "Clinic, by text".to_string(),
        "· Text to the caregiver · delivered to the phone".to_string(),
    ] {
        assert!(t.contains(&want), "{want}: {t}");
    }
    assert!(
        !t.contains("+919820099999"),
        "the caregiver's number is masked"
    );

    let out = d.env.run(&["outbox"]).expect(0).stdout;
    for via in ["WhatsApp", "SMS → caregiver"] {
        assert!(out.contains(via), "{via}: {out}");
    }
    assert!(out.contains("via"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_each_appointment_once_under_the_way_its_last_reminder_went() {
    let d = start_with(|c| c).await;
    // A past day, so that no-shows can be set.
    let day = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
    let dd = day.format("%Y-%m-%d").to_string();
    d.import(&[
        &format!("NYC-1,N-1,James Wilson,212-867-5309,en,{dd},09:00,30,Dr. Chen,nyc,booked"),
        &format!("NYC-2,N-2,Emily Johnson,(718) 555-0145,en,{dd},10:00,30,Dr. Chen,nyc,booked"),
        &format!(
            "NYC-3,N-3,Lucia Hernandez,+1 347 555 0123,es,{dd},11:00,30,Dr. Okafor,nyc,booked"
        ),
    ]);
    // James: WhatsApp read, confirmed. Emily: WhatsApp failed, a text delivered, no-show.
    // Lucia: no reminder.
    d.message("NYC-1", "day_before", "whatsapp", "state = 'read'");
    let wa = d.message("NYC-2", "day_before", "whatsapp", "state = 'failed'");
    d.message(
        "NYC-2",
        "day_before",
        "sms",
        &format!("state = 'delivered', fallback_of = {wa}"),
    );
    d.sql(
        "UPDATE appointments SET response = 'confirmed' WHERE external_id = 'NYC-1';
         UPDATE appointments SET status = 'no_show' WHERE external_id = 'NYC-2';",
    );
    let b = signed_in(&d).await;
    let page = b
        .get(&format!("/desk/stats?clinic=nyc&from={dd}&to={dd}"))
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let t = page.text();
    for want in [
        "By the way the last reminder went",
        "WhatsApp 1 1 (100%) 0 (0%) 1 1 (100%)",
        "Text message 1 0 (0%) 1 (100%) 1 1 (100%)",
        "No reminder sent 1 0 (0%) 0 (0%) 0 0 (–)",
        "All appointments 3 1 (33%) 1 (33%) 2 2 (100%)",
    ] {
        assert!(t.contains(want), "{want}: {t}");
    }

    let out = d
        .env
        .run(&["stats", "--clinic", "nyc", "--from", &dd, "--to", &dd])
        .expect(0)
        .stdout;
    for want in [
        "last reminder by WhatsApp: 1 appointments, 100% confirmed, 0% no-shows; 1 reminders sent, 1 delivered",
        "last reminder by SMS: 1 appointments, 0% confirmed, 100% no-shows; 1 reminders sent, 1 delivered",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}
