//! The receptionist uploads the schedule and presses Refresh on the preview, confirms, then
//! presses Refresh and Back on the result: each time the browser shows the page again (no
//! "resubmit form" question), and the schedule is uploaded and imported once.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn refresh_and_back_show_the_preview_and_the_result_again_and_import_once() {
    if !browser_available() {
        return;
    }
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
    let counts = "//ul[contains(@class, 'counts')]/li";

    // She uploads this week's schedule and sees its preview.
    b.goto("/desk/upload").await;
    b.heading("Sign in").await;
    sign_in_as(&b, USER, PASSWORD).await;
    b.heading("Upload the schedule").await;
    let csv = repo_file("examples/schedule.csv");
    b.field("Schedule file (CSV or spreadsheet)")
        .await
        .send_keys(csv.to_str().expect("utf-8 path"))
        .await
        .expect("attach the file");
    b.button("Preview").await.click().await.expect("preview");
    b.heading("Preview of schedule.csv").await;
    let preview_at = b.path_and_query().await;
    assert!(
        preview_at.starts_with("/desk/upload/preview?token="),
        "the preview has an address of its own: {preview_at}"
    );
    let shown = b.texts(counts).await;
    assert_eq!(shown, ["14 new", "0 updated", "0 cancelled", "0 unchanged"]);

    // Refresh: the same preview, the file not sent again.
    b.client.refresh().await.expect("refresh the preview");
    b.heading("Preview of schedule.csv").await;
    assert_eq!(b.path_and_query().await, preview_at);
    assert_eq!(
        b.texts(counts).await,
        shown,
        "the same preview after Refresh"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM import_previews"),
        1,
        "Refresh did not upload the file again"
    );
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 0);
    b.shot("refresh-01-preview.png").await;

    // Confirm, then Refresh the result: still the result, nothing imported twice.
    b.button("Confirm import")
        .await
        .click()
        .await
        .expect("confirm");
    b.heading("Schedule imported").await;
    let done_at = b.path_and_query().await;
    assert!(
        done_at.starts_with("/desk/upload/done?token="),
        "the result has an address of its own: {done_at}"
    );
    assert_eq!(b.texts(counts).await[0], "14 new");
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 14);
    b.client.refresh().await.expect("refresh the result");
    b.heading("Schedule imported").await;
    assert_eq!(b.path_and_query().await, done_at);
    assert_eq!(b.texts(counts).await[0], "14 new");
    let text = b.body_text().await;
    assert!(
        !text.contains("already confirmed"),
        "Refresh only shows the page again: {text}"
    );
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 14);
    assert_eq!(env.count("SELECT count(*) FROM imports"), 1);
    b.shot("refresh-02-imported.png").await;

    // Back: the browser may show the preview from its memory (Chromium keeps pages for Back
    // even when they are not to be stored) or ask the desk, which leads to the result. Either
    // way no form is sent, and confirming that old preview again imports nothing more.
    b.client.back().await.expect("back");
    b.find("//main/h1[contains(normalize-space(), 'Preview of schedule.csv') or contains(normalize-space(), 'Schedule imported')]")
        .await;
    if b.body_text().await.contains("Confirm import") {
        b.button("Confirm import")
            .await
            .click()
            .await
            .expect("confirm again");
        b.heading("Schedule imported").await;
        let text = b.body_text().await;
        assert!(
            text.contains("This upload was already confirmed; nothing more was imported."),
            "{text}"
        );
    }
    assert!(
        b.path_and_query().await.starts_with("/desk/upload/"),
        "{}",
        b.path_and_query().await
    );
    assert_eq!(env.count("SELECT count(*) FROM imports"), 1);
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 14);

    b.client.close().await.expect("end the browser session");
    drop(driver);
}
