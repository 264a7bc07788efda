//! The Feeds page as a receptionist uses it: the "reminders are held" banner says the
//! practice system's feed went quiet and links to Feeds; there the refused message is opened
//! (its phone number masked) and applied again, and the page says what happened.

use super::*;
use crate::desk_feeds::{PASSWORD as ASHA_PASSWORD, USER as ASHA, feed_messages, start};

#[tokio::test(flavor = "multi_thread")]
async fn a_receptionist_follows_the_held_banner_to_feeds_views_and_applies_a_refused_message() {
    if !browser_available() {
        return;
    }
    let d = start().await;
    let fed = feed_messages(&d);
    let (driver, client, chromedriver) = start_browser(&d.env).await;
    let b = Browser {
        client,
        base: d.url.clone(),
        shots: screenshot_dir(),
        chromedriver,
    };

    // The day board, after signing in, says why reminders are held and where to look.
    b.goto("/desk/day").await;
    b.heading("Sign in").await;
    sign_in_as(&b, ASHA, ASHA_PASSWORD).await;
    let banner = b
        .find("//section[contains(@class, 'held')]")
        .await
        .text()
        .await
        .expect("banner text");
    assert!(
        banner
            .contains("the schedule feed “front-desk-ehr” from the practice system has gone quiet"),
        "{banner}"
    );
    b.find("//section[contains(@class, 'held')]//a[normalize-space() = 'See the feeds']")
        .await
        .click()
        .await
        .expect("open Feeds");
    b.heading("Feeds").await;
    let text = b.body_text().await;
    for expected in [
        "Practice system feed (HL7)",
        "are on hold: HL7 feed front-desk-ehr has sent nothing for 3h",
        "Refused messages",
        "MSG-9",
        "Never heard from",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    b.shot("feeds-01-page.png").await;

    // View: the message as received, the number masked.
    b.find("//a[normalize-space() = 'View']")
        .await
        .click()
        .await
        .expect("view");
    b.heading("Message MSG-9").await;
    let text = b.body_text().await;
    assert!(text.contains("******3210"), "{text}");
    assert!(!text.contains("9876543210"), "{text}");
    b.shot("feeds-02-message.png").await;

    // Apply again: back on Feeds, the page says what happened.
    b.button("Apply again")
        .await
        .click()
        .await
        .expect("apply again");
    b.find("//p[@role = 'status'][contains(., 'Message MSG-9 still refused: ')]")
        .await;
    assert!(
        b.path_and_query()
            .await
            .starts_with("/desk/feeds?done=refused")
    );
    b.shot("feeds-03-applied-again.png").await;
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'reapply_feed_message' AND reason = 'message {}'",
            fed.refused
        )),
        1
    );
    if let Some(errors) = b.console_errors().await {
        assert!(errors.is_empty(), "console errors: {errors:?}");
    }
    b.client.close().await.expect("end the browser session");
    drop(driver);
}
