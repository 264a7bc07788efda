//! The day board as a receptionist works it: a confirmed patient did not come, so after the
//! appointment's time she presses No-show, confirms on the second page, reads that the
//! practice system must be changed too, and undoes it; she cancels another appointment with a
//! note and sees it on the row with her name and the time; and No-show before an
//! appointment's time is refused. Screenshots: `target/desk-screenshots/day-board-*.png`.

use super::*;

/// The example schedule's Mumbai day (in the past: the server runs on the real clock).
const DAY: &str = "2026-11-26";

/// Signs in as the test's receptionist on the sign-in page `b` shows.
async fn sign_in(b: &Browser) {
    b.heading("Sign in").await;
    sign_in_as(b, USER, PASSWORD).await;
}

/// The board row of an appointment, by the clinic system's id.
fn row_of(env: &Env, external_id: &str) -> i64 {
    env.sql()
        .query_row(
            "SELECT id FROM appointments WHERE external_id = ?1",
            [external_id],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no appointment {external_id}: {e}"))
}

/// Presses the control with this text in row `id` and waits for the page it leads to.
async fn press(b: &Browser, id: i64, text: &str) {
    b.find(&format!(
        "//tr[@id = 'a-{id}']//*[(self::a or self::button) and normalize-space() = {}]",
        lit(text)
    ))
    .await
    .click()
    .await
    .unwrap_or_else(|e| panic!("press {text} in row {id}: {e}"));
}

/// The text of row `id` once it contains `expected`.
async fn row_saying(b: &Browser, id: i64, expected: &str) -> String {
    b.find(&format!(
        "//tr[@id = 'a-{id}' and contains(normalize-space(), {})]",
        lit(expected)
    ))
    .await;
    b.texts(&format!("//tr[@id = 'a-{id}']")).await.join(" ")
}

/// The fragment of the page's address (the row it came back to).
async fn fragment(b: &Browser) -> String {
    let url = b.client.current_url().await.expect("current url");
    url.fragment().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receptionist_sets_a_no_show_undoes_it_and_cancels_with_a_note_in_chromium() {
    if !browser_available() {
        return;
    }
    let env = Env::new();
    add_user(&env);
    let example = repo_file("examples/schedule.csv");
    env.run(&["import", example.to_str().expect("utf-8 path")])
        .expect(0);
    // Tomorrow at the clinic, so its time has not come.
    let tomorrow = (reminderd::time::Clock::System
        .now()
        .with_timezone(&chrono_tz::Asia::Kolkata)
        + chrono::Duration::days(1))
    .format("%Y-%m-%d")
    .to_string();
    env.import(
        "tomorrow.csv",
        &crate::common::csv(&[&format!(
            "MUM-2001,P-2101,Meera Nair,98200 11111,en,{tomorrow},10:00,15,Dr. Mehta,mumbai,booked"
        )]),
        &[],
    )
    .expect(0);
    // Aarav confirmed on WhatsApp, then did not come.
    env.sql()
        .execute(
            "UPDATE appointments SET response = 'confirmed' WHERE external_id = 'MUM-1001'",
            (),
        )
        .expect("Aarav confirmed");
    let (aarav, rohan, meera) = (
        row_of(&env, "MUM-1001"),
        row_of(&env, "MUM-1003"),
        row_of(&env, "MUM-2001"),
    );
    let (_server, base) = start_server(&env).await;
    let (driver, client, chromedriver) = start_browser(&env).await;
    let b = Browser {
        client,
        base,
        shots: screenshot_dir(),
        chromedriver,
    };
    b.goto(&format!("/desk/day?clinic=mumbai&date={DAY}")).await;
    sign_in(&b).await;
    b.heading("Thursday 26 November 2026").await;
    let row = row_saying(&b, aarav, "confirmed").await;
    assert!(row.starts_with("09:00 Aarav Sharma"), "{row}");
    b.shot("day-board-01-day.png").await;

    // No-show, after the appointment's time: a second page asks first.
    press(&b, aarav, "No-show").await;
    b.heading("Set a no-show?").await;
    let text = b.body_text().await;
    assert!(
        text.contains("Aarav Sharma, Thursday 26 November at 09:00 with Dr. Mehta"),
        "{text}"
    );
    b.shot("day-board-02-confirm-no-show.png").await;
    b.button("Set no-show")
        .await
        .click()
        .await
        .expect("confirm");
    let row = row_saying(&b, aarav, "No-show set at the desk by asha").await;
    assert!(
        row.contains("Mark it as a no-show in the practice system too"),
        "{row}"
    );
    assert_eq!(fragment(&b).await, format!("a-{aarav}"), "back at the row");
    assert!(
        b.body_text()
            .await
            .contains("Saved: Aarav Sharma at 09:00 — set to no-show."),
        "a notice says what was saved"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM appointments WHERE external_id = 'MUM-1001' AND status = 'no_show'"
        ),
        1
    );
    b.shot("day-board-03-no-show-set.png").await;

    // Undo: booked and confirmed again.
    press(&b, aarav, "Undo").await;
    let row = row_saying(&b, aarav, "No-show undone at the desk by asha").await;
    assert!(row.contains("booked") && row.contains("confirmed"), "{row}");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM appointments WHERE external_id = 'MUM-1001' AND status = 'booked' AND response = 'confirmed'"
        ),
        1
    );
    b.shot("day-board-04-undone.png").await;

    // Cancel another with a note: the row shows it with her name and the time.
    press(&b, rohan, "Cancel").await;
    b.heading("Cancel this appointment?").await;
    b.field("Note (optional)")
        .await
        .send_keys("moving to Pune, will call to rebook")
        .await
        .expect("type the note");
    b.button("Cancel the appointment")
        .await
        .click()
        .await
        .expect("confirm the cancellation");
    let row = row_saying(&b, rohan, "asha: set cancelled — moving to Pune").await;
    let at: i64 = env
        .sql()
        .query_row(
            "SELECT at FROM audit_log WHERE action = 'status' ORDER BY id DESC LIMIT 1",
            (),
            |r| r.get(0),
        )
        .expect("the cancellation's audit row");
    let local = chrono::DateTime::from_timestamp(at, 0)
        .expect("instant")
        .with_timezone(&chrono_tz::Asia::Kolkata);
    // The board of another day gives the date too.
    let when = if local.format("%Y-%m-%d").to_string() == DAY {
        local.format("%H:%M").to_string()
    } else {
        local.format("%-d %b %H:%M").to_string()
    };
    assert!(
        row.contains(&format!(
            "{when} asha: set cancelled — moving to Pune, will call to rebook"
        )),
        "who and when on the row: {row}"
    );
    assert!(
        row.contains("Cancel it in the practice system too, or the next upload will book it again"),
        "{row}"
    );
    b.shot("day-board-05-cancelled-with-note.png").await;

    // Tomorrow's appointment cannot be a no-show yet.
    b.goto(&format!("/desk/day?clinic=mumbai&date={tomorrow}"))
        .await;
    press(&b, meera, "No-show").await;
    b.heading("Too early for a no-show").await;
    let text = b.body_text().await;
    assert!(text.contains("has not started yet"), "{text}");
    assert!(
        b.texts("//button[normalize-space() = 'Set no-show']")
            .await
            .is_empty(),
        "nothing to confirm"
    );
    b.shot("day-board-06-too-early.png").await;
    b.find("//a[normalize-space() = 'Back to the day board']")
        .await
        .click()
        .await
        .expect("back");
    row_saying(&b, meera, "booked").await;
    assert_eq!(
        env.count(
            "SELECT count(*) FROM appointments WHERE external_id = 'MUM-2001' AND status = 'booked'"
        ),
        1
    );

    match b.console_errors().await {
        Some(errors) => assert!(
            errors.is_empty(),
            "console errors in the browser: {errors:#?}"
        ),
        None => println!("chromedriver gave no browser log; console not checked"),
    }
    b.client.close().await.expect("end the browser session");
    drop(driver);
}
