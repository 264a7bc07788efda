//! The receptionist re-uploads last week's export by mistake: the preview warns that it moves
//! appointments into the past and looks old, names the confirmations it would clear, and she
//! keeps the statuses set at the desk; after confirming, the no-show asha set is still there.

use super::*;
use crate::desk_upload::old_export_morning;

#[tokio::test(flavor = "multi_thread")]
async fn an_old_export_warns_names_what_it_undoes_and_keeps_the_no_show() {
    if !browser_available() {
        return;
    }
    let env = Env::new();
    old_export_morning(&env);
    add_user(&env);
    let (_server, base) = start_server(&env).await;
    let (driver, client, chromedriver) = start_browser(&env).await;
    let b = Browser {
        client,
        base,
        shots: screenshot_dir(),
        chromedriver,
    };

    // Sign in on the way to Upload.
    b.goto("/desk/upload").await;
    b.heading("Sign in").await;
    sign_in_as(&b, USER, PASSWORD).await;
    b.heading("Upload the schedule").await;
    let last = b.texts("//section//li").await;
    assert!(
        last.iter()
            .any(|l| l.starts_with("Sunrise Family Clinic, Andheri:")
                && l.contains("by the administrator (")
                && l.contains("current.csv")),
        "the page says when and by whom the schedule was last uploaded: {last:#?}"
    );

    // She picks last week's file instead of this week's.
    let old = env.path("old.csv");
    b.field("Schedule file (CSV or spreadsheet)")
        .await
        .send_keys(old.to_str().expect("utf-8 path"))
        .await
        .expect("attach the file");
    b.button("Preview").await.click().await.expect("preview");
    b.heading("Preview of old.csv").await;

    // A loud warning at the top: past dates, an old export.
    let banner = b.texts("//main/div[@role = 'alert']//li").await.join("\n");
    assert!(
        banner
            .contains("This file moves 5 appointments to earlier times that have already passed."),
        "{banner}"
    );
    assert!(
        banner.contains("This file looks older than the schedule already saved"),
        "{banner}"
    );
    // What confirming would undo, by patient.
    let undoes = b.texts("//ul[contains(@class, 'undoes')]/li").await;
    for (patient, what) in [
        ("Asha Rao", "had confirmed: will be asked again"),
        ("Ravi Iyer", "had confirmed: will be asked again"),
        ("Meena Das", "had cancelled it themselves: books them again"),
        (
            "Dev Patel",
            "set to no-show at the desk by asha: reverses it",
        ),
        (
            "Kiran Shah",
            "set to cancelled at the desk by ravi: reverses it",
        ),
    ] {
        assert!(
            undoes
                .iter()
                .any(|u| u.starts_with(patient) && u.ends_with(what)),
            "{patient}: {what} in {undoes:#?}"
        );
    }
    b.shot("undo-01-preview.png").await;

    // Keep what the desk set, then confirm.
    b.field("Keep statuses set at the desk (no-show, cancelled, completed)")
        .await
        .click()
        .await
        .expect("tick keep");
    b.button("Confirm import")
        .await
        .click()
        .await
        .expect("confirm");
    b.heading("Schedule imported").await;
    let kept = b.texts("//ul[contains(@class, 'kept')]/li").await;
    assert_eq!(
        kept,
        [
            "Dev Patel: no-show, set at the desk by asha",
            "Kiran Shah: cancelled, set at the desk by ravi"
        ]
    );
    b.shot("undo-02-imported.png").await;

    // The day board still shows Dev Patel's no-show (on the day the old file put him).
    let day = env
        .sql()
        .query_row(
            "SELECT date(starts_at, 'unixepoch', '+5 hours', '+30 minutes') FROM appointments WHERE external_id = 'A4'",
            (),
            |r| r.get::<_, String>(0),
        )
        .expect("A4's day");
    b.goto(&format!("/desk/day?clinic=mumbai&date={day}")).await;
    b.heading("Sunrise Family Clinic, Andheri").await;
    let rows = b.texts("//table/tbody/tr").await;
    assert!(
        rows.iter()
            .any(|r| r.contains("Dev Patel") && r.contains("no-show")),
        "Dev Patel is still a no-show: {rows:#?}"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM appointments WHERE external_id = 'A4' AND status = 'no_show'"
        ),
        1
    );
    b.shot("undo-03-day.png").await;

    b.client.close().await.expect("end the browser session");
    drop(driver);
}
