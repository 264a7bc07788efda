//! The receptionist's morning calls: the navigation counts who waits, Follow-ups lists
//! tomorrow's patients of both clinics without choosing a day, a call that got no answer
//! stays with its attempt shown, a patient reached leaves the list; then on Replies an unknown
//! number is revealed to call it back, and the reveal is in the audit log.

use super::*;

use chrono::NaiveDate;
use chrono_tz::Tz;

/// A clinic's local date `days` after its today.
fn local_day(zone: Tz, days: u64) -> String {
    let day: NaiveDate = reminderd::time::Clock::System
        .now()
        .with_timezone(&zone)
        .date_naive()
        + chrono::Days::new(days);
    day.format("%Y-%m-%d").to_string()
}

/// Tomorrow at both clinics: four patients to call, each for a reason of their own, one who
/// needs nothing; and a message from a number that is no patient's.
fn tomorrows_calls(env: &Env) {
    let (m, n) = (
        local_day(chrono_tz::Asia::Kolkata, 1),
        local_day(chrono_tz::America::New_York, 1),
    );
    let csv = format!(
        "{}\nMUM-1,P-1,Priya Patil,+91 98765 43210,mr,{m},10:30,15,Dr. Mehta,mumbai,booked\n\
         MUM-2,P-2,Rohan Gupta,091234 56789,hi,{m},11:00,30,Dr. Iyer,mumbai,booked\n\
         MUM-3,P-3,Aarav Sharma,98200 12345,en,{m},12:00,15,Dr. Mehta,mumbai,booked\n\
         NYC-1,N-1,James Wilson,212-867-5309,en,{n},09:00,30,Dr. Chen,nyc,booked\n\
         NYC-2,N-2,Emily Johnson,(718) 555-0145,en,{n},14:00,30,Dr. Okafor,nyc,booked\n",
        crate::common::HEADER
    );
    env.import("tomorrow.csv", &csv, &[]).expect(0);
    let at = reminderd::time::Clock::System.now().timestamp() - 3600;
    env.sql()
        .execute_batch(&format!(
            "UPDATE appointments SET response = 'reschedule_requested', response_at = {at} WHERE external_id = 'MUM-1';
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, needs_staff, created_at, updated_at)
               SELECT id, 'reminder', 'day-before', starts_at, {at}, starts_at, 'failed',
                      'this patient cannot be reached on WhatsApp: call them', {at}, {at}
               FROM appointments WHERE external_id = 'MUM-2';
             UPDATE patients SET opted_out_at = {at} WHERE external_id = 'N-1';
             INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
               SELECT 'wamid.emily', p.phone, p.id, a.id, 'text', 'Can I bring my son along?', 'unknown', 'needs_staff',
                      'the patient wrote something reminderd does not understand', {at}
               FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.external_id = 'NYC-2';
             INSERT INTO replies (message_id, from_phone, kind, text, intent, outcome, reason, received_at)
               VALUES ('wamid.stranger', '+919988776655', 'text', 'Please call me back', 'unknown', 'needs_staff',
                       'the number is not a patient''s', {at});"
        ))
        .expect("tomorrow's reasons to call");
}

impl Browser {
    /// The navigation link whose text starts with `label`: its text and accessible name.
    async fn nav_link(&self, label: &str) -> (String, Option<String>) {
        let link = self
            .find(&format!(
                "//nav//a[starts-with(normalize-space(), {})]",
                lit(label)
            ))
            .await;
        let text = link.text().await.expect("link text");
        let name = link.attr("aria-label").await.expect("aria-label");
        (text.split_whitespace().collect::<Vec<_>>().join(" "), name)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receptionist_calls_tomorrows_patients_and_calls_back_an_unknown_number() {
    if !browser_available() {
        return;
    }
    let env = Env::new();
    add_user(&env);
    tomorrows_calls(&env);
    let (_server, base) = start_server(&env).await;
    let (driver, client, chromedriver) = start_browser(&env).await;
    let b = Browser {
        client,
        base,
        shots: screenshot_dir(),
        chromedriver,
    };

    b.goto("/desk/day").await;
    b.heading("Sign in").await;
    sign_in_as(&b, USER, PASSWORD).await;

    // The navigation says who waits, on whatever page she lands.
    assert_eq!(
        b.nav_link("Follow-ups").await,
        (
            "Follow-ups (4)".to_string(),
            Some("Follow-ups, 4 waiting".to_string())
        )
    );
    assert_eq!(b.nav_link("Replies").await.0, "Replies (2)");

    // Follow-ups opens on everyone to call, both clinics, without choosing a day.
    b.find("//nav//a[starts-with(normalize-space(), 'Follow-ups')]")
        .await
        .click()
        .await
        .expect("open Follow-ups");
    b.heading("Follow-ups").await;
    let cards = b.texts("//section[contains(@class, 'follow-up')]/h3").await;
    assert_eq!(cards.len(), 4, "{cards:#?}");
    for name in [
        "Priya Patil",
        "Rohan Gupta",
        "James Wilson",
        "Emily Johnson",
    ] {
        assert!(
            cards.iter().any(|c| c.ends_with(name)),
            "{name}: {cards:#?}"
        );
    }
    let text = b.body_text().await;
    assert!(
        text.contains("Sunrise Family Clinic, Andheri")
            && text.contains("Hudson Street Medical, New York"),
        "each card names its clinic:\n{text}"
    );
    assert!(text.contains("Tomorrow, "), "grouped by day:\n{text}");
    assert!(!text.contains("Nobody to call"), "{text}");
    b.shot("fu-01-follow-ups.png").await;

    // Priya does not answer; the attempt is shown and she stays on the list.
    let card = "//section[contains(@class, 'follow-up')][h3[contains(., 'Priya Patil')]]";
    b.find(&format!("{card}//button[normalize-space() = 'No answer']"))
        .await
        .click()
        .await
        .expect("press No answer");
    b.find("//p[@role = 'status'][contains(., 'no answer')]")
        .await;
    let calls = b
        .texts(&format!("{card}//div[contains(@class, 'calls')]//li"))
        .await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert!(calls[0].starts_with("no answer — asha, "), "{calls:#?}");
    assert_eq!(b.nav_link("Follow-ups").await.0, "Follow-ups (4)");
    b.shot("fu-02-no-answer.png").await;

    // The second try reaches her: she leaves the list and the count drops.
    b.find(&format!(
        "{card}//form[contains(@class, 'call')]//input[@name = 'note']"
    ))
    .await
    .send_keys("moved to Friday")
    .await
    .expect("type the note");
    b.find(&format!("{card}//button[normalize-space() = 'Reached']"))
        .await
        .click()
        .await
        .expect("press Reached");
    b.find("//p[@role = 'status'][contains(., 'reached')]")
        .await;
    let cards = b.texts("//section[contains(@class, 'follow-up')]/h3").await;
    assert_eq!(cards.len(), 3, "{cards:#?}");
    assert!(
        !cards.iter().any(|c| c.contains("Priya Patil")),
        "{cards:#?}"
    );
    assert_eq!(
        b.nav_link("Follow-ups").await,
        (
            "Follow-ups (3)".to_string(),
            Some("Follow-ups, 3 waiting".to_string())
        )
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM audit_log WHERE actor = 'staff:asha' AND action = 'called' AND new_value = 'reached' AND reason = 'moved to Friday'"
        ),
        1
    );
    b.shot("fu-03-reached.png").await;

    // Replies: a number that is no patient's is revealed to call it back.
    b.find("//nav//a[starts-with(normalize-space(), 'Replies')]")
        .await
        .click()
        .await
        .expect("open Replies");
    b.heading("Replies that need a person").await;
    let stranger = "//section[contains(@class, 'reply')][h2[normalize-space() = 'Unknown number']]";
    let masked = b
        .find(&format!("{stranger}//span[contains(@class, 'phone')]"))
        .await;
    assert_eq!(masked.text().await.expect("masked"), "+91******6655");
    assert!(!b.body_text().await.contains("9988776655"));
    b.shot("fu-04-replies.png").await;
    b.find(&format!("{stranger}//button[normalize-space() = 'Show']"))
        .await
        .click()
        .await
        .expect("press Show");
    let phone = b
        .find(&format!("{stranger}//a[@href = 'tel:+919988776655']"))
        .await;
    assert_eq!(phone.text().await.expect("phone"), "+919988776655");
    assert!(
        b.path_and_query().await.starts_with("/desk/replies?shown="),
        "back on Replies after the reveal (no form to resend)"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM audit_log WHERE actor = 'staff:asha' AND action = 'reveal_phone'
               AND reason = 'reply ' || (SELECT id FROM replies WHERE message_id = 'wamid.stranger')"
        ),
        1,
        "the reveal names the reply in the audit log"
    );
    b.shot("fu-05-number-shown.png").await;

    // A schedule not uploaded for three days holds reminders: every page says so.
    env.sql()
        .execute(
            "UPDATE imports SET imported_at = imported_at - 3 * 86400 - 60",
            (),
        )
        .expect("an old schedule");
    b.goto("/desk/day").await;
    let banner = b
        .find("//section[contains(@class, 'held')]")
        .await
        .text()
        .await
        .expect("banner text");
    assert!(
        banner.contains(
            "Reminders for Sunrise Family Clinic, Andheri are on hold: the schedule was last uploaded 3 days ago."
        ),
        "{banner}"
    );
    b.shot("fu-06-held.png").await;

    match b.console_errors().await {
        Some(errors) => assert!(errors.is_empty(), "console errors: {errors:#?}"),
        None => println!("chromedriver gave no browser log; console not checked"),
    }
    b.client.close().await.expect("end the browser session");
    drop(driver);
}
