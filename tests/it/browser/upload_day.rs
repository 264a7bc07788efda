//! Sign-in, upload with preview, confirm, and the day board with a phone reveal.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn desk_sign_in_upload_and_day_board_in_chromium() {
    if !browser_available() {
        return;
    }
    let started = Instant::now();
    let env = Env::new();
    add_user(&env);
    let (_server, base) = start_server(&env).await;
    let (driver, client, chromedriver) = start_browser(&env).await;
    let b = Browser {
        client,
        base,
        shots: screenshot_dir(),
        chromedriver,
    };

    // A page that needs a session leads to the sign-in form, which comes back to it.
    b.goto("/desk/day").await;
    b.heading("Sign in").await;
    assert_eq!(b.path_and_query().await, "/desk/login?next=/desk/day");
    b.shot("01-login.png").await;
    sign_in_as(&b, USER, PASSWORD).await;
    assert!(
        b.path_and_query().await.starts_with("/desk/day"),
        "after sign-in the desk shows the page first asked for"
    );

    // Upload: the preview shows what the file would do and saves nothing.
    b.find("//nav//a[normalize-space() = 'Upload']")
        .await
        .click()
        .await
        .expect("open Upload");
    b.heading("Upload the schedule").await;
    let csv = repo_file("examples/schedule.csv");
    b.field("Schedule file (CSV or spreadsheet)")
        .await
        .send_keys(csv.to_str().expect("utf-8 path"))
        .await
        .expect("attach the file");
    b.button("Preview").await.click().await.expect("preview");
    b.heading("Preview of schedule.csv").await;
    let counts = b.texts("//ul[contains(@class, 'counts')]/li").await;
    assert_eq!(
        counts,
        ["14 new", "0 updated", "0 cancelled", "0 unchanged"],
        "preview counts"
    );
    let rows = b.texts("//table/tbody/tr").await;
    assert_eq!(rows.len(), 14, "one preview row per CSV row: {rows:#?}");
    for (patient, masked) in [
        ("Aarav Sharma", "+91******2345"),
        ("Carlos Ramirez", "+52******5678"),
    ] {
        assert!(
            rows.iter()
                .any(|r| r.contains(patient) && r.contains(masked)),
            "a preview row for {patient} with {masked}: {rows:#?}"
        );
    }
    assert!(
        !b.body_text().await.contains("9820012345"),
        "the preview shows no whole phone number"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM appointments"),
        0,
        "nothing saved before the confirm"
    );
    b.shot("02-preview.png").await;

    b.button("Confirm import")
        .await
        .click()
        .await
        .expect("confirm");
    b.heading("Schedule imported").await;
    let status = b.find("//p[@role = 'status']").await;
    assert_eq!(
        status.text().await.expect("status text"),
        "schedule.csv was imported."
    );
    assert_eq!(
        b.texts("//ul[contains(@class, 'counts')]/li").await[0],
        "14 new"
    );
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 14);
    b.shot("03-imported.png").await;

    // The day board: Mumbai's eight appointments with masked numbers.
    b.goto("/desk/day?clinic=mumbai&date=2026-11-26").await;
    let title = b.heading("26 November 2026").await;
    assert_eq!(
        title,
        "Sunrise Family Clinic, Andheri — Thursday 26 November 2026"
    );
    let rows = b.texts("//table/tbody/tr").await;
    assert_eq!(rows.len(), 8, "Mumbai's appointments that day: {rows:#?}");
    assert!(
        rows[0].starts_with("09:00 Aarav Sharma (MUM-1001) no answer yet +91******2345"),
        "first row: {}",
        rows[0]
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("Priya Patil") && r.contains("+91******3210")),
        "{rows:#?}"
    );
    assert!(
        !rows.iter().any(|r| r.contains("Maria Gonzalez")),
        "only Mumbai's appointments: {rows:#?}"
    );
    let text = b.body_text().await;
    assert!(text.contains("8 appointments"), "summary line in:\n{text}");
    assert!(!text.contains("9820012345"), "no whole number before Show");
    b.shot("04-day.png").await;

    // Show reveals one whole number (and is audited); the others stay masked.
    b.find("//tr[td[contains(., 'MUM-1001')]]//button[normalize-space() = 'Show']")
        .await
        .click()
        .await
        .expect("press Show");
    let phone = b.find("//a[@href = 'tel:+919820012345']").await;
    assert_eq!(phone.text().await.expect("phone text"), "+919820012345");
    let rows = b.texts("//table/tbody/tr").await;
    assert_eq!(rows.len(), 8, "{rows:#?}");
    assert!(
        rows[7].starts_with("17:30 Aarav Sharma (MUM-1008) no answer yet +91******2345"),
        "the same patient's other appointment stays masked: {}",
        rows[7]
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("Priya Patil") && r.contains("+91******3210")),
        "the other numbers stay masked: {rows:#?}"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM audit_log WHERE actor = 'staff:asha' AND action = 'reveal_phone'"
        ),
        1
    );
    b.shot("05-phone-shown.png").await;

    // 200% zoom on a 1280-pixel screen lays the page out 640 CSS pixels wide (a tablet held
    // upright is about as narrow): the page itself must not scroll sideways; only the
    // table's own box may.
    b.client
        .set_window_size(640, 1000)
        .await
        .expect("narrow the window");
    b.goto("/desk/day?clinic=mumbai&date=2026-11-26").await;
    b.heading("Sunrise Family Clinic, Andheri").await;
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
        "the page is wider than a 640-pixel window by {overflow} px"
    );
    b.shot("06-narrow.png").await;

    // The pages use no inline styles or scripts, so the CSP refuses nothing.
    match b.console_errors().await {
        Some(errors) => assert!(
            errors.is_empty(),
            "console errors in the browser: {errors:#?}"
        ),
        None => println!("chromedriver gave no browser log; console not checked"),
    }

    b.client.close().await.expect("end the browser session");
    drop(driver);
    println!(
        "browser test took {:.1?}; screenshots in {}",
        started.elapsed(),
        b.shots.display()
    );
}
