//! Post/redirect/get on the schedule upload: the upload, its confirm and its discard each
//! answer 303 See Other to a page read with GET, so Back and Refresh show the preview or the
//! result again (the same page, nothing imported twice) instead of asking to send the form.

use reqwest::multipart;

use crate::common::{csv, repo_file};
use crate::desk_harness::{Browser, Desk, Page, csv_part, field};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";

async fn start() -> (Desk, Browser) {
    let d = Desk::options().user(USER, PASSWORD).start().await;
    let b = d.signed_in_via(USER, PASSWORD, "/desk/upload").await;
    (d, b)
}

/// The example schedule posted on the upload form, the answer not followed.
async fn post_example(b: &Browser, file_name: &str) -> Page {
    let bytes = std::fs::read(repo_file("examples/schedule.csv")).expect("read example");
    let form = multipart::Form::new()
        .text("csrf", b.csrf.clone())
        .text("clinic", "")
        .part("file", csv_part(file_name, bytes));
    Page::from(
        b.http
            .post(format!("{}/desk/upload", b.url))
            .multipart(form)
            .send()
            .await
            .expect("POST /desk/upload"),
    )
    .await
}

/// The same GET twice, both answered with the same page (`status`, text).
async fn twice(b: &Browser, path: &str, status: u16) -> String {
    let first = b.get(path).await;
    let again = b.get(path).await;
    assert_eq!(first.status, status, "GET {path}: {}", first.text());
    assert_eq!(again.status, status, "GET {path} again: {}", again.text());
    assert_eq!(
        first.text(),
        again.text(),
        "GET {path} twice shows one page"
    );
    first.body
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preview_and_the_result_are_pages_that_reload_without_importing_twice() {
    let (d, b) = start().await;

    // The upload answers with the way to its preview, not with the preview itself.
    let res = post_example(&b, "schedule.csv").await;
    assert_eq!(res.status, 303, "{}", res.text());
    let preview_at = res.location().to_string();
    assert!(
        preview_at.starts_with("/desk/upload/preview?token="),
        "{preview_at}"
    );
    let preview = twice(&b, &preview_at, 200).await;
    let t = crate::desk_harness::text(&preview);
    for s in [
        "Preview of schedule.csv",
        "Nothing has been saved yet",
        "14 new",
    ] {
        assert!(t.contains(s), "{s} in {t}");
    }
    assert!(
        !t.contains("has changed since it was read"),
        "nothing changed: {t}"
    );
    assert_eq!(d.count("SELECT count(*) FROM appointments"), 0);
    assert_eq!(d.count("SELECT count(*) FROM import_previews"), 1);
    let token = field(&preview, "token");
    assert!(preview_at.ends_with(&token), "{preview_at}");

    // Confirm answers with the way to the result.
    let res = b
        .post(
            "/desk/upload/confirm",
            &[
                ("csrf", &b.csrf),
                ("token", &token),
                ("shown", &field_value(&preview, "shown")),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let done_at = res.location().to_string();
    assert_eq!(done_at, format!("/desk/upload/done?token={token}"));
    let done = crate::desk_harness::text(&twice(&b, &done_at, 200).await);
    for s in [
        "Schedule imported",
        "schedule.csv was imported.",
        "14 new",
        "0 updated",
        "0 cancelled",
        "0 unchanged",
        "See the day board",
    ] {
        assert!(done.contains(s), "{s} in {done}");
    }
    assert!(!done.contains("already confirmed"), "{done}");
    assert_eq!(d.count("SELECT count(*) FROM appointments"), 14);
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'upload_confirmed'"),
        1
    );

    // Back to the preview after the confirm: it leads to the result.
    let back = b.get(&preview_at).await;
    assert_eq!(back.status, 303, "{}", back.text());
    assert_eq!(back.location(), done_at);

    // A second confirm (the form sent again) imports nothing and says so.
    let again = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token)],
            "/desk/upload/done?token=",
        )
        .await;
    assert!(
        again
            .text()
            .contains("This upload was already confirmed; nothing more was imported."),
        "{}",
        again.text()
    );
    assert!(again.text().contains("14 new"), "{}", again.text());
    assert_eq!(d.count("SELECT count(*) FROM appointments"), 14);
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1);

    // A made-up or expired preview is a page that says so, with the way to upload again.
    for path in [
        format!("/desk/upload/preview?token={}", "ab".repeat(32)),
        format!("/desk/upload/done?token={}", "ab".repeat(32)),
        "/desk/upload/preview".to_string(),
    ] {
        let body = twice(&b, &path, 404).await;
        let t = crate::desk_harness::text(&body);
        assert!(t.contains("Upload not found"), "{path}: {t}");
        assert!(body.contains("href=\"/desk/upload\""), "{path}: {body}");
    }
    d.sql("UPDATE import_previews SET created_at = created_at - 2 * 86400");
    let p = b.get(&preview_at).await;
    assert_eq!(p.status, 303, "a confirmed preview does not expire");
    let body = post_example(&b, "later.csv").await;
    let later = body.location().to_string();
    d.sql("UPDATE import_previews SET created_at = created_at - 2 * 86400 WHERE decision IS NULL");
    let gone = b.get(&later).await;
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert!(
        gone.text().contains("Upload the file again"),
        "{}",
        gone.text()
    );
}

/// The value of a hidden field that need not be a token.
fn field_value(html: &str, name: &str) -> String {
    crate::desk_harness::fields(html, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no field {name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_shown_again_after_the_schedule_changed_shows_and_confirms_what_the_file_does_now()
 {
    let (d, b) = start().await;
    let first = b
        .upload(
            &b.csrf,
            "",
            "schedule.csv",
            std::fs::read(repo_file("examples/schedule.csv")).expect("read"),
        )
        .await;
    assert!(first.text().contains("14 new"), "{}", first.text());

    // Meanwhile the CLI imports another export that already has MUM-1001, at 09:15.
    d.env
        .import(
            "cli.csv",
            &csv(&["MUM-1001,P-2001,Aarav Sharma,98200 12345,en,2026-11-26,09:15,15,Dr. Mehta,mumbai,booked"]),
            &[],
        )
        .expect(0);

    // Refresh: the same preview shows what the file would do now, and says it changed.
    let token = field(&first.body, "token");
    let again = b.get(&format!("/desk/upload/preview?token={token}")).await;
    assert_eq!(again.status, 200, "{}", again.text());
    let t = again.text();
    assert!(
        t.contains("What this file would do has changed since it was read"),
        "{t}"
    );
    assert!(t.contains("13 new") && t.contains("1 updated"), "{t}");
    assert!(
        t.contains("MUM-1001 — moved from Thu 26 Nov 09:15 to Thu 26 Nov 09:00"),
        "{t}"
    );
    // Confirming the page as shown now imports what it shows.
    let done = b
        .post_then_get(
            "/desk/upload/confirm",
            &[
                ("csrf", &b.csrf),
                ("token", &token),
                ("shown", &field_value(&again.body, "shown")),
            ],
            "/desk/upload/done?token=",
        )
        .await;
    let t = done.text();
    assert!(
        t.contains("Schedule imported") && t.contains("13 new") && t.contains("1 updated"),
        "{t}"
    );
    assert_eq!(d.count("SELECT count(*) FROM appointments"), 14);
    assert_eq!(d.count("SELECT count(*) FROM imports"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_shown_before_the_schedule_changed_never_confirms_something_else() {
    let (d, b) = start().await;
    let shown_first = b
        .upload(
            &b.csrf,
            "",
            "schedule.csv",
            std::fs::read(repo_file("examples/schedule.csv")).expect("read"),
        )
        .await;
    let token = field(&shown_first.body, "token");
    d.env
        .import(
            "cli.csv",
            &csv(&["MUM-1001,P-2001,Aarav Sharma,98200 12345,en,2026-11-26,09:15,15,Dr. Mehta,mumbai,booked"]),
            &[],
        )
        .expect(0);
    // Another tab reloads the preview (which shows the new outcome) ...
    let reloaded = b.get(&format!("/desk/upload/preview?token={token}")).await;
    assert!(reloaded.text().contains("13 new"), "{}", reloaded.text());
    // ... but the page still saying "14 new" is the one confirmed: nothing is imported and
    // the fresh preview says why.
    let res = b
        .post_then_get(
            "/desk/upload/confirm",
            &[
                ("csrf", &b.csrf),
                ("token", &token),
                ("shown", &field_value(&shown_first.body, "shown")),
            ],
            "/desk/upload/preview?token=",
        )
        .await;
    let t = res.text();
    assert!(
        t.contains("The schedule changed since this file was previewed"),
        "{t}"
    );
    assert!(t.contains("13 new"), "{t}");
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1, "only the CLI's");
    assert_eq!(d.count("SELECT count(*) FROM appointments"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn discard_goes_back_to_the_upload_page_and_the_preview_then_says_it_was_discarded() {
    let (d, b) = start().await;
    let preview = b
        .upload(
            &b.csrf,
            "",
            "schedule.csv",
            std::fs::read(repo_file("examples/schedule.csv")).expect("read"),
        )
        .await;
    let token = field(&preview.body, "token");
    let res = b
        .post(
            "/desk/upload/discard",
            &[("csrf", &b.csrf), ("token", &token)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(res.location(), "/desk/upload?done=discarded");
    let page = crate::desk_harness::text(&twice(&b, "/desk/upload?done=discarded", 200).await);
    assert!(
        page.contains("The file was discarded. Nothing was imported; you can upload another file."),
        "{page}"
    );
    assert!(page.contains("Upload the schedule"), "{page}");
    // Back to the preview, or to a result it never had: it says what became of it.
    for path in [
        format!("/desk/upload/preview?token={token}"),
        format!("/desk/upload/done?token={token}"),
    ] {
        let body = twice(&b, &path, 200).await;
        let t = crate::desk_harness::text(&body);
        assert!(
            t.contains(
                "This upload of schedule.csv was already discarded: nothing was imported from it."
            ),
            "{path}: {t}"
        );
        assert!(!body.contains("Confirm import"), "{path}: {body}");
    }
    assert_eq!(d.count("SELECT count(*) FROM imports"), 0);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'upload_discarded'"),
        1
    );
}
