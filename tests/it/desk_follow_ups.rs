//! Follow-ups and Replies over HTTP, as a receptionist meets them: one "to call now" list
//! across clinics and the coming days, call outcomes, counts on the navigation, the banner
//! when reminders are held, and reveals and ambiguous answers on Replies. `reminderd serve`
//! runs as a child process; what the pages say is checked against what is stored.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::desk_harness::{Browser, Desk, Page, field, fields, text};

const USER: &str = "asha";
const PASSWORD: &str = "front desk password";
const MUMBAI: Tz = chrono_tz::Asia::Kolkata;
const NEW_YORK: Tz = chrono_tz::America::New_York;

/// The server on the shipped config with the user `asha`.
async fn start() -> Desk {
    Desk::options()
        .user(USER, PASSWORD)
        .var("WHATSAPP_APP_SECRET", "app-secret-for-tests")
        .var("WHATSAPP_VERIFY_TOKEN", "verify-token-for-tests")
        .start()
        .await
}

/// A browser signed in as `asha`, holding its session's CSRF token (read on the upload page,
/// so the day board is not opened).
async fn signed_in(d: &Desk) -> Browser {
    d.signed_in_via(USER, PASSWORD, "/desk/upload").await
}

fn now() -> DateTime<Utc> {
    reminderd::time::Clock::System.now()
}

/// The clinic's local date `days` from its today.
fn local_day(zone: Tz, days: u64) -> NaiveDate {
    now().with_timezone(&zone).date_naive() + chrono::Days::new(days)
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Four people wait for a call about tomorrow's appointments, two at each clinic, each for
/// another reason; a fifth patient tomorrow and one today need nothing.
fn four_waiting_tomorrow(d: &Desk) {
    let (m, n) = (ymd(local_day(MUMBAI, 1)), ymd(local_day(NEW_YORK, 1)));
    let today = ymd(local_day(MUMBAI, 0));
    d.import(&[
        &format!("MUM-1,P-1,Priya Patil,+91 98765 43210,mr,{m},10:30,15,Dr. Mehta,mumbai,booked"),
        &format!("MUM-2,P-2,Rohan Gupta,091234 56789,hi,{m},11:00,30,Dr. Iyer,mumbai,booked"),
        &format!("MUM-3,P-3,Aarav Sharma,98200 12345,en,{m},12:00,15,Dr. Mehta,mumbai,booked"),
        &format!(
            "MUM-4,P-4,Sneha Kulkarni,99876 54321,mr,{today},23:30,15,Dr. Mehta,mumbai,booked"
        ),
        &format!("NYC-1,N-1,James Wilson,212-867-5309,en,{n},09:00,30,Dr. Chen,nyc,booked"),
        &format!("NYC-2,N-2,Emily Johnson,(718) 555-0145,en,{n},14:00,30,Dr. Okafor,nyc,booked"),
    ]);
    let at = now().timestamp() - 3600;
    d.sql(&format!(
        "UPDATE appointments SET response = 'reschedule_requested', response_at = {at} WHERE external_id = 'MUM-1';
         INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, needs_staff, created_at, updated_at)
           SELECT id, 'reminder', 'day_before', starts_at, {at}, starts_at, 'failed',
                  'this patient cannot be reached on WhatsApp: call them', {at}, {at}
           FROM appointments WHERE external_id = 'MUM-2';
         UPDATE patients SET opted_out_at = {at} WHERE external_id = 'N-1';
         INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
           SELECT 'wamid.emily', p.phone, p.id, a.id, 'text', 'Can I bring my son along?', 'unknown', 'needs_staff',
                  'the patient wrote something reminderd does not understand', {at}
           FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.external_id = 'NYC-2';"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_ups_opens_on_everyone_to_call_across_clinics_and_days() {
    let d = start().await;
    four_waiting_tomorrow(&d);
    let b = signed_in(&d).await;

    // Without choosing a clinic or a day.
    let page = b.get("/desk/follow-ups").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let t = page.text();
    assert!(!t.contains("Nobody to call"), "4 people wait: {t}");
    for name in [
        "Priya Patil",
        "Rohan Gupta",
        "James Wilson",
        "Emily Johnson",
    ] {
        assert!(t.contains(name), "{name} is on the list: {t}");
    }
    for name in ["Aarav Sharma", "Sneha Kulkarni"] {
        assert!(!t.contains(name), "{name} needs no call: {t}");
    }
}

/// The navigation link's visible text and accessible name, e.g. ("Follow-ups (4)",
/// "Follow-ups, 4 waiting").
fn nav_link(page: &Page, label: &str) -> (String, Option<String>) {
    let body = &page.body;
    let start = body
        .find(&format!("href=\"/desk/{}\"", label.to_lowercase()))
        .unwrap_or_else(|| panic!("no {label} link in {}", page.text()));
    let open = body[..start].rfind("<a ").expect("link start");
    let end = open + body[open..].find("</a>").expect("link end");
    let tag = &body[open..end];
    let name = tag
        .split_once("aria-label=\"")
        .map(|(_, rest)| rest[..rest.find('"').expect("closing quote")].to_string());
    let text = text(&format!("{tag}</a>"));
    (text, name)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_navigation_counts_who_waits_and_a_day_or_clinic_can_be_chosen() {
    let d = start().await;
    four_waiting_tomorrow(&d);
    let b = signed_in(&d).await;
    for path in ["/desk/day", "/desk/upload", "/desk/stats", "/desk/replies"] {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(
            nav_link(&page, "Follow-ups"),
            (
                "Follow-ups (4)".into(),
                Some("Follow-ups, 4 waiting".into())
            ),
            "{path}"
        );
        assert_eq!(
            nav_link(&page, "Replies"),
            ("Replies (1)".into(), Some("Replies, 1 waiting".into())),
            "{path}"
        );
        assert_eq!(nav_link(&page, "Stats"), ("Stats".into(), None));
    }

    let tomorrow_ny = ymd(local_day(NEW_YORK, 1));
    let nyc = b
        .get(&format!("/desk/follow-ups?clinic=nyc&date={tomorrow_ny}"))
        .await
        .text();
    assert!(nyc.contains("2 people to call on"), "{nyc}");
    assert!(
        nyc.contains("James Wilson") && nyc.contains("Emily Johnson"),
        "{nyc}"
    );
    assert!(!nyc.contains("Priya Patil"), "{nyc}");
    assert!(nyc.contains("Hudson Street Medical, New York"), "{nyc}");
    assert!(
        nyc.contains("9:00 AM · James Wilson"),
        "the clinic's 12-hour clock: {nyc}"
    );
    let today = ymd(local_day(MUMBAI, 0));
    let empty = b
        .get(&format!("/desk/follow-ups?clinic=mumbai&date={today}"))
        .await
        .text();
    assert!(
        empty.contains("Nobody to call on") && empty.contains("at Sunrise Family Clinic, Andheri."),
        "{empty}"
    );
    let all = b.get("/desk/follow-ups?clinic=&date=").await.text();
    assert!(
        all.contains("4 people to call today, tomorrow or the day after, at every clinic."),
        "{all}"
    );
    assert!(all.contains("Tomorrow, "), "grouped by day: {all}");
    assert!(
        all.contains("with Dr. Mehta · Sunrise Family Clinic, Andheri"),
        "{all}"
    );
    assert!(!all.contains("(s)"), "{all}");
    assert_eq!(
        b.get("/desk/follow-ups?date=yesterday").await.status,
        400,
        "an unreadable day is refused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_are_recorded_with_who_and_when_and_a_reached_patient_leaves_the_list() {
    let d = start().await;
    four_waiting_tomorrow(&d);
    let b = signed_in(&d).await;
    let priya = d.row("MUM-1").to_string();
    let call = |outcome: &'static str, note: &'static str| {
        let (b, priya) = (&b, priya.clone());
        async move {
            b.post(
                "/desk/follow-ups/call",
                &[
                    ("csrf", b.csrf.as_str()),
                    ("appointment", &priya),
                    ("outcome", outcome),
                    ("note", note),
                    ("list_clinic", ""),
                    ("list_date", ""),
                ],
            )
            .await
        }
    };

    let res = call("no_answer", "  ").await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        res.location(),
        format!("/desk/follow-ups?clinic=&date=&done=call_no_answer#f-{priya}")
    );
    let page = b.get(res.location()).await;
    let t = page.text();
    assert!(
        t.contains("Saved: call saved: no answer. The patient stays on the list."),
        "{t}"
    );
    assert!(t.contains("Priya Patil"), "{t}");
    let local_time = now().with_timezone(&MUMBAI).format("%H:%M").to_string();
    assert!(t.contains("Calls no answer — asha, "), "{t}");
    assert!(
        t.contains(&local_time),
        "the call's time at the clinic ({local_time}): {t}"
    );
    assert_eq!(nav_link(&page, "Follow-ups").0, "Follow-ups (4)");
    assert_eq!(
        d.one("SELECT actor || ' ' || action || ' ' || new_value || ' ' || coalesce(reason, '-') FROM audit_log WHERE action = 'called'"),
        "staff:asha called no_answer -"
    );

    let res = call("reached", "will come on Friday instead").await;
    assert_eq!(res.status, 303, "{}", res.text());
    let page = b.get(res.location()).await;
    let t = page.text();
    assert!(
        !t.contains("Priya Patil"),
        "a reached patient leaves the list: {t}"
    );
    assert!(t.contains("3 people to call"), "{t}");
    assert_eq!(nav_link(&page, "Follow-ups").0, "Follow-ups (3)");
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'called' AND new_value = 'reached' AND reason = 'will come on Friday instead'"),
        1
    );

    // An unknown outcome or appointment is refused and writes nothing.
    let audit = d.count("SELECT count(*) FROM audit_log");
    let odd = b
        .post(
            "/desk/follow-ups/call",
            &[
                ("csrf", &b.csrf),
                ("appointment", &priya),
                ("outcome", "hung_up"),
            ],
        )
        .await;
    assert_eq!(odd.status, 400, "{}", odd.text());
    assert!(
        odd.text()
            .contains("Press Reached, No answer or Left a message")
    );
    let missing = b
        .post(
            "/desk/follow-ups/call",
            &[
                ("csrf", &b.csrf),
                ("appointment", "999999"),
                ("outcome", "reached"),
            ],
        )
        .await;
    assert_eq!(missing.status, 404);
    let forged = b
        .post(
            "/desk/follow-ups/call",
            &[
                ("csrf", &"0".repeat(64)),
                ("appointment", &priya),
                ("outcome", "reached"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(d.count("SELECT count(*) FROM audit_log"), audit);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_action_clears_a_patients_reply_from_follow_ups_and_replies() {
    let d = start().await;
    four_waiting_tomorrow(&d);
    let b = signed_in(&d).await;
    let emily = d.row("NYC-2").to_string();

    // Reached on Follow-ups: the reply is handled on Replies too.
    let res = b
        .post(
            "/desk/follow-ups/call",
            &[
                ("csrf", &b.csrf),
                ("appointment", &emily),
                ("outcome", "reached"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let replies = b.get("/desk/replies").await;
    assert!(
        replies.text().contains("No replies are waiting."),
        "{}",
        replies.text()
    );
    assert_eq!(nav_link(&replies, "Replies"), ("Replies".into(), None));
    assert_eq!(
        d.one("SELECT handled_by FROM replies WHERE message_id = 'wamid.emily'"),
        "staff:asha"
    );
    assert_eq!(
        d.one("SELECT actor || ' ' || reason FROM audit_log WHERE action = 'reply_handled'"),
        "staff:asha the patient was reached by phone"
    );

    // Handled on Replies: the patient leaves Follow-ups (her only reason was the reply).
    let rohan = d.row("MUM-2");
    d.sql(&format!(
        "INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
         SELECT 'wamid.sneha', p.phone, p.id, a.id, 'text', 'Is there parking?', 'unknown', 'needs_staff', 'why', {}
         FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.external_id = 'MUM-3'",
        now().timestamp()
    ));
    let list = b.get("/desk/follow-ups").await.text();
    assert!(list.contains("Aarav Sharma"), "{list}");
    let reply = d.one("SELECT CAST(id AS TEXT) FROM replies WHERE message_id = 'wamid.sneha'");
    let res = b
        .post(
            "/desk/replies/handled",
            &[("csrf", &b.csrf), ("reply", &reply)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let list = b.get("/desk/follow-ups").await.text();
    assert!(!list.contains("Aarav Sharma"), "{list}");

    // A status set from a card answers what the patient wrote as well.
    d.sql(&format!(
        "INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
         SELECT 'wamid.rohan', p.phone, p.id, a.id, 'text', 'I may be late', 'unknown', 'needs_staff', 'why', {}
         FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.id = {rohan}",
        now().timestamp()
    ));
    let res = b
        .post(
            "/desk/follow-ups/action",
            &[
                ("csrf", b.csrf.as_str()),
                ("clinic", "mumbai"),
                ("appointment", "MUM-2"),
                ("date", &ymd(local_day(MUMBAI, 1))),
                ("action", "confirmed"),
                ("note", "confirmed by phone"),
                ("list_clinic", ""),
                ("list_date", ""),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        res.location(),
        "/desk/follow-ups?clinic=&date=&done=confirmed"
    );
    assert_eq!(
        d.one("SELECT handled_by FROM replies WHERE message_id = 'wamid.rohan'"),
        "staff:asha"
    );

    // And so does a status set on the day board (here: cancelled, after its question).
    let sneha = d.row("MUM-3");
    d.sql(&format!(
        "INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
         SELECT 'wamid.sneha2', p.phone, p.id, a.id, 'text', 'I cannot come, sorry', 'unknown', 'needs_staff', 'why', {}
         FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.id = {sneha}",
        now().timestamp()
    ));
    let res = b
        .post(
            "/desk/day/status",
            &[
                ("csrf", b.csrf.as_str()),
                ("row", &sneha.to_string()),
                ("action", "cancelled"),
                ("note", "she called to cancel"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        d.one("SELECT handled_by FROM replies WHERE message_id = 'wamid.sneha2'"),
        "staff:asha"
    );
    let replies = b.get("/desk/replies").await;
    assert!(
        !replies.text().contains("I cannot come"),
        "{}",
        replies.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_show_local_times_and_appointments_in_words_and_reveal_a_number_once_audited() {
    let d = start().await;
    four_waiting_tomorrow(&d);
    d.sql(&format!(
        "INSERT INTO replies (message_id, from_phone, kind, text, intent, outcome, reason, received_at)
         VALUES ('wamid.stranger', '+919988776655', 'text', 'Who is this?', 'unknown', 'needs_staff',
                 'the number is not a patient''s', {})",
        now().timestamp()
    ));
    let b = signed_in(&d).await;
    let page = b.get("/desk/replies").await;
    let t = page.text();
    assert_eq!(nav_link(&page, "Replies").0, "Replies (2)");
    // Emily's reply, in New York's time and words.
    let received =
        d.one("SELECT CAST(received_at AS TEXT) FROM replies WHERE message_id = 'wamid.emily'");
    let received = chrono::DateTime::from_timestamp(received.parse().expect("seconds"), 0)
        .expect("instant")
        .with_timezone(&NEW_YORK);
    let expected = format!("Received {}", received.format("%A, %B %-d, %-I:%M %p"));
    assert!(t.contains(&expected), "{expected}: {t}");
    let utc = received
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(!t.contains(&utc), "no raw UTC ({utc}): {t}");
    assert!(
        t.contains("About the appointment on")
            && t.contains("2:00 PM with Dr. Okafor at Hudson Street Medical, New York."),
        "{t}"
    );
    assert!(!t.contains("nyc/NYC-2"), "{t}");
    assert!(!t.contains("reminderd does not understand"), "{t}");
    assert!(
        t.contains("Unknown number") && t.contains("+91******6655"),
        "{t}"
    );
    assert!(
        !page.body.contains("+919988776655"),
        "masked until revealed"
    );

    let stranger =
        d.one("SELECT CAST(id AS TEXT) FROM replies WHERE message_id = 'wamid.stranger'");
    let res = b
        .post(
            "/desk/replies/reveal",
            &[("csrf", &b.csrf), ("reply", &stranger)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        res.location(),
        format!("/desk/replies?shown={stranger}#r-{stranger}")
    );
    let shown = b.get(res.location()).await;
    assert!(
        shown.body.contains("href=\"tel:+919988776655\""),
        "{}",
        shown.text()
    );
    assert_eq!(shown.body.matches("tel:").count(), 1, "only that number");
    assert_eq!(
        d.one("SELECT actor || ' ' || reason FROM audit_log WHERE action = 'reveal_phone'"),
        format!("staff:asha reply {stranger}")
    );
    // A refresh shows it again without another audit row; a made-up link shows nothing.
    assert!(
        b.get(res.location())
            .await
            .body
            .contains("tel:+919988776655")
    );
    let emily = d.one("SELECT CAST(id AS TEXT) FROM replies WHERE message_id = 'wamid.emily'");
    let guessed = b.get(&format!("/desk/replies?shown={emily}")).await;
    assert!(
        !guessed.body.contains("tel:"),
        "no reveal without its audit row"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reveal_phone'"),
        1
    );
    let missing = b
        .post(
            "/desk/replies/reveal",
            &[("csrf", &b.csrf), ("reply", "999999")],
        )
        .await;
    assert_eq!(missing.status, 404);
    let forged = b
        .post(
            "/desk/replies/reveal",
            &[("csrf", &"0".repeat(64)), ("reply", &emily)],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reveal_phone'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ambiguous_ok_is_applied_to_the_appointment_staff_choose() {
    let d = start().await;
    let (m1, m2) = (ymd(local_day(MUMBAI, 1)), ymd(local_day(MUMBAI, 3)));
    d.import(&[
        &format!("MUM-1,P-1,Priya Patil,+91 98765 43210,en,{m1},10:30,15,Dr. Mehta,mumbai,booked"),
        &format!("MUM-2,P-1,Priya Patil,+91 98765 43210,en,{m2},16:00,15,Dr. Iyer,mumbai,booked"),
        &format!("MUM-3,P-3,Aarav Sharma,98200 12345,en,{m1},12:00,15,Dr. Mehta,mumbai,booked"),
    ]);
    d.sql(&format!(
        "INSERT INTO replies (message_id, from_phone, patient_id, kind, text, intent, outcome, reason, received_at)
         VALUES ('wamid.ok', '+919876543210', (SELECT id FROM patients WHERE external_id = 'P-1'), 'text', 'ok', 'confirm',
                 'needs_staff', 'the patient has several upcoming appointments; which one is meant?', {})",
        now().timestamp() - 600
    ));
    let b = signed_in(&d).await;
    let page = b.get("/desk/replies").await;
    let t = page.text();
    assert!(t.contains("choose the one this answer is for"), "{t}");
    assert!(t.contains("Which appointment is this answer for?"), "{t}");
    let when =
        |day: NaiveDate, time: &str| format!("Confirm {}, {time} with", day.format("%A %-d %B"));
    assert!(t.contains(&when(local_day(MUMBAI, 1), "10:30")), "{t}");
    assert!(t.contains(&when(local_day(MUMBAI, 3), "16:00")), "{t}");
    assert!(
        !t.contains("Aarav Sharma"),
        "only the sender's appointments: {t}"
    );
    let choices = fields(&page.body, "appointment");
    let (first, second) = (d.row("MUM-1").to_string(), d.row("MUM-2").to_string());
    assert_eq!(choices, [first.clone(), second.clone()]);
    let reply = field(&page.body, "reply");

    // Another patient's appointment is refused and nothing changes.
    let other = d.row("MUM-3").to_string();
    let refused = b
        .post(
            "/desk/replies/apply",
            &[
                ("csrf", &b.csrf),
                ("reply", &reply),
                ("appointment", &other),
            ],
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("no longer one this patient has coming"),
        "{}",
        refused.text()
    );

    let res = b
        .post(
            "/desk/replies/apply",
            &[
                ("csrf", &b.csrf),
                ("reply", &reply),
                ("appointment", &second),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let after = b.get(res.location()).await.text();
    assert!(
        after.contains("The answer was applied to the appointment and the reply marked handled."),
        "{after}"
    );
    assert!(after.contains("No replies are waiting."), "{after}");
    assert_eq!(
        d.one("SELECT group_concat(external_id || ' ' || response, ', ') FROM (SELECT * FROM appointments ORDER BY external_id) AS s"),
        "MUM-1 none, MUM-2 confirmed, MUM-3 none"
    );
    assert_eq!(
        d.one("SELECT actor || ' ' || action || ' ' || old_value || '→' || new_value FROM audit_log WHERE action = 'response'"),
        "staff:asha response none→confirmed"
    );
    assert_eq!(
        d.one("SELECT handled_by || ' ' || a.external_id FROM replies r JOIN appointments a ON a.id = r.appointment_id WHERE message_id = 'wamid.ok'"),
        "staff:asha MUM-2"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM outbox WHERE kind = 'reply_ack' AND state = 'pending'"),
        1,
        "the patient hears back as if the reply had been matched"
    );
    let again = b
        .post(
            "/desk/replies/apply",
            &[
                ("csrf", &b.csrf),
                ("reply", &reply),
                ("appointment", &first),
            ],
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(
        again.text().contains("Already handled by asha"),
        "{}",
        again.text()
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'response'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_says_when_reminders_are_held_and_what_to_do() {
    let d = start().await;
    four_waiting_tomorrow(&d);
    let b = signed_in(&d).await;
    assert!(
        !b.get("/desk/day")
            .await
            .text()
            .contains("Reminders are held"),
        "a fresh schedule holds nothing"
    );
    let three_days_ago = now().timestamp() - 3 * 86_400 - 60;
    d.sql(&format!(
        "UPDATE imports SET imported_at = {three_days_ago};
         INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, reason, created_at, updated_at)
           SELECT id, 'reminder', 'same-day', starts_at, {t}, starts_at, 'reminder', 'pending',
                  'not sent: (190) Error validating access token: Session has expired', {t}, {t}
           FROM appointments WHERE external_id = 'MUM-3';
         INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, last_error_code, last_error, created_at, updated_at)
           SELECT id, 'booking_confirmation', 'booking', starts_at, {t}, starts_at, 'booked', 'failed', 132001,
                  '(132001) Template name does not exist in the translation', {t}, {t}
           FROM appointments WHERE external_id = 'NYC-1';",
        t = now().timestamp() - 7200
    ));
    for path in [
        "/desk/day",
        "/desk/follow-ups",
        "/desk/replies",
        "/desk/upload",
        "/desk/stats",
    ] {
        let t = b.get(path).await.text();
        assert!(t.contains("Reminders are held"), "{path}: {t}");
        for clinic in [
            "Sunrise Family Clinic, Andheri",
            "Hudson Street Medical, New York",
        ] {
            assert!(
                t.contains(&format!("Reminders for {clinic} are on hold: the schedule was last uploaded 3 days ago. Upload today's schedule to send them.")),
                "{path}: {t}"
            );
        }
        assert!(
            t.contains("No reminders are going out: WhatsApp refused the clinic's account 2 hours ago, and 1 message is waiting. Tell the administrator"),
            "{path}: {t}"
        );
        assert!(
            t.contains("The “booked” message is not going out: WhatsApp refused its template 2 hours ago (1 message)."),
            "{path}: {t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_number_revealed_on_follow_ups_shows_on_its_card_after_an_audit_row() {
    let d = start().await;
    four_waiting_tomorrow(&d);
    let b = signed_in(&d).await;
    let rohan = d.row("MUM-2").to_string();
    let list = b.get("/desk/follow-ups").await;
    assert!(
        !list.body.contains("+919123456789"),
        "masked until revealed"
    );
    assert!(list.text().contains("+91******6789"), "{}", list.text());
    let reveal = |id: String| {
        let b = &b;
        async move {
            b.post(
                "/desk/reveal",
                &[
                    ("csrf", b.csrf.as_str()),
                    ("appointment", &id),
                    ("clinic", ""),
                    ("date", ""),
                    ("back", "follow-ups"),
                ],
            )
            .await
        }
    };
    let res = reveal(rohan.clone()).await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        res.location(),
        format!("/desk/follow-ups?clinic=&date=&shown={rohan}#f-{rohan}")
    );
    let shown = b.get(res.location()).await;
    assert!(
        shown.body.contains("href=\"tel:+919123456789\""),
        "{}",
        shown.text()
    );
    assert_eq!(shown.body.matches("tel:").count(), 1);
    assert_eq!(
        d.one("SELECT actor || ' ' || appointment_id FROM audit_log WHERE action = 'reveal_phone'"),
        format!("staff:asha {rohan}")
    );
    // Someone not on the list reveals nothing and audits nothing.
    let aarav = d.row("MUM-3").to_string();
    assert_eq!(reveal(aarav.clone()).await.status, 404);
    let guessed = b.get(&format!("/desk/follow-ups?shown={aarav}")).await;
    assert!(!guessed.body.contains("tel:"));
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reveal_phone'"),
        1
    );
}
