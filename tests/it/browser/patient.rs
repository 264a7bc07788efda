//! A patient calls the desk: the receptionist types part of her name in the search box, opens
//! her page, sees yesterday's reminder and her reply "yes", and shows her number to call back.

use chrono::Days;
use reminderd::store::sql::params;

use super::*;
use crate::common::csv;

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_calls_and_the_receptionist_finds_her_page_by_part_of_her_name() {
    if !browser_available() {
        return;
    }
    let env = Env::new();
    add_user(&env);
    // Priya Patil comes tomorrow at 10:00 (Mumbai); another Priya at the other clinic.
    let now = reminderd::time::Clock::System.now();
    let tomorrow = now.with_timezone(&chrono_tz::Asia::Kolkata).date_naive() + Days::new(1);
    let day = tomorrow.format("%Y-%m-%d");
    let schedule = env.file(
        "tomorrow.csv",
        csv(&[
            &format!("MUM-7001,P-2002,Priya Patil,+91 98765 43210,mr,{day},10:00,15,Dr. Mehta,mumbai,booked"),
            &format!("MUM-7002,P-2001,Aarav Sharma,98200 12345,en,{day},10:30,15,Dr. Mehta,mumbai,booked"),
            &format!("NYC-7003,N-301,Priya Shah,(646) 555-0199,en,{day},09:00,30,Dr. Chen,nyc,booked"),
        ]),
    );
    env.run(&["import", schedule.to_str().expect("utf-8 path")])
        .expect(0);
    // The day-before reminder went out yesterday at 10:00 and was read; she answered "yes" at
    // 10:11. A fixed local hour keeps both on yesterday whatever the hour the test runs.
    let sent = (tomorrow - Days::new(2))
        .and_hms_opt(10, 0, 0)
        .expect("10:00")
        .and_local_timezone(chrono_tz::Asia::Kolkata)
        .single()
        .expect("Kolkata has no DST")
        .timestamp();
    let sql = env.sql();
    sql.execute(
        "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, request_at, sent_at, delivered_at, read_at, created_at, updated_at)
         SELECT id, 'reminder', 'day-before', starts_at, ?1, starts_at, 'read', ?1, ?1, ?1 + 30, ?1 + 600, ?1, ?1
         FROM appointments WHERE external_id = 'MUM-7001'",
        params![sent],
    )
    .expect("reminder");
    sql.execute(
        "INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, received_at)
         SELECT 'wamid.browser-yes', '+919876543210', patient_id, id, 'text', 'yes', 'confirm', 'applied', ?1
         FROM appointments WHERE external_id = 'MUM-7001'",
        params![sent + 660],
    )
    .expect("reply");
    sql.execute(
        "UPDATE appointments SET response = 'confirmed', response_at = ?1, response_text = 'yes' WHERE external_id = 'MUM-7001'",
        params![sent + 660],
    )
    .expect("confirmed");

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

    // The phone rings: "This is Priya, about my appointment tomorrow."
    b.field("Find a patient")
        .await
        .send_keys("priya")
        .await
        .expect("type in the search box");
    b.button("Find").await.click().await.expect("search");
    b.heading("Find a patient").await;
    let found = b
        .texts("//table[contains(@class, 'results')]/tbody/tr")
        .await;
    assert_eq!(found.len(), 2, "both Priyas, in both clinics: {found:#?}");
    let patil = found
        .iter()
        .find(|r| r.starts_with("Priya Patil"))
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert!(
        patil.contains("+91******3210") && patil.contains("Tomorrow, 10:00 with Dr. Mehta"),
        "masked number and next appointment: {patil}"
    );
    assert!(
        !b.body_text().await.contains("9876543210"),
        "no whole number"
    );
    b.shot("patient-01-search.png").await;

    b.find("//table[contains(@class, 'results')]//a[normalize-space() = 'Priya Patil']")
        .await
        .click()
        .await
        .expect("open her page");
    b.heading("Priya Patil").await;
    let appointments = b
        .texts("//table[contains(@class, 'appointments')]/tbody/tr")
        .await;
    assert_eq!(
        appointments,
        ["Tomorrow, 10:00 Dr. Mehta booked confirmed MUM-7001"],
        "{appointments:#?}"
    );
    // Quotation marks around her words are the browser's (`<q>`), drawn or not.
    let timeline: Vec<String> = b
        .texts("//table[contains(@class, 'timeline')]/tbody/tr")
        .await
        .into_iter()
        .map(|r| r.replace(['“', '”'], ""))
        .collect();
    assert_eq!(timeline.len(), 2, "{timeline:#?}");
    assert!(
        timeline[0].starts_with("Yesterday, ")
            && timeline[0].contains(&format!(
                "Clinic, by WhatsApp Reminder Day before for {}, 10:00 with Dr. Mehta · WhatsApp · read by the patient",
                tomorrow.format("%a %-d %b %Y")
            )),
        "the reminder sent yesterday: {}",
        timeline[0]
    );
    assert!(
        timeline[1].starts_with("Yesterday, ")
            && timeline[1].contains("Priya Patil Wrote yes · understood as: will come (confirmed)"),
        "her reply: {}",
        timeline[1]
    );
    b.shot("patient-02-page.png").await;

    // She asks to be called back on her number: Show it (audited).
    b.find("//dd//button[normalize-space() = 'Show']")
        .await
        .click()
        .await
        .expect("press Show");
    let phone = b.find("//a[@href = 'tel:+919876543210']").await;
    assert_eq!(phone.text().await.expect("phone text"), "+919876543210");
    assert!(
        b.path_and_query().await.contains("&shown="),
        "the page after the reveal is a GET (no resubmit on refresh)"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM audit_log WHERE actor = 'staff:asha' AND action = 'reveal_phone' AND appointment_id IS NULL"
        ),
        1
    );
    b.client.refresh().await.expect("refresh");
    b.find("//a[@href = 'tel:+919876543210']").await;
    b.shot("patient-03-number-shown.png").await;

    // On a tablet held upright (or at 200% zoom) the page itself does not scroll sideways.
    b.client
        .set_window_size(640, 1000)
        .await
        .expect("narrow the window");
    b.goto(&b.path_and_query().await).await;
    b.heading("Priya Patil").await;
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .expect("measure the page");
    assert_eq!(
        overflow.as_i64(),
        Some(0),
        "wider than 640 px by {overflow}"
    );
    b.shot("patient-04-narrow.png").await;
    b.client
        .set_window_size(1280, 1000)
        .await
        .expect("widen the window");

    // The week around tomorrow, and the stats, for the README's screenshots.
    b.goto(&format!("/desk/week?clinic=mumbai&week={day}"))
        .await;
    b.heading("Week of").await;
    let days = b
        .texts("//table[contains(@class, 'week')][1]/tbody/tr")
        .await;
    assert!(
        days.iter()
            .any(|r| r.starts_with(&tomorrow.format("%A %-d %b").to_string())
                && r.ends_with(" 2 1 1 0")),
        "tomorrow: 2 booked, 1 confirmed, 1 with no answer: {days:#?}"
    );
    b.shot("week.png").await;
    b.goto(&format!("/desk/stats?clinic=mumbai&to={day}")).await;
    b.heading("Stats").await;
    b.shot("stats.png").await;

    match b.console_errors().await {
        Some(errors) => assert!(errors.is_empty(), "console errors: {errors:#?}"),
        None => println!("chromedriver gave no browser log; console not checked"),
    }
    b.client.close().await.expect("end the browser session");
    drop(driver);
}
