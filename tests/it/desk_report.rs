//! The Report page at the desk: the seeded history of `report.rs` gives the hand-counted
//! figures on the page and in its CSV download; the named no-shows behind a month are for
//! admins only, and each view of them is audited.

use reqwest::header::{CONTENT_TYPE, HeaderName};

use crate::common::Env;
use crate::desk_harness::Desk;
use crate::report::{EVIL, ROWS, seed};

const STAFF: (&str, &str) = ("alice", "correct horse battery");
const ADMIN: (&str, &str) = ("boss", "staple battery horse");
const RANGE: &str = "clinic=mumbai&from=2026-09-01&to=2026-10-31";

async fn desk() -> Desk {
    let desk = Desk::options_on(Env::new())
        .edit(|c| format!("{c}\n[report]\nmin_count = 3\n"))
        .user(STAFF.0, STAFF.1)
        .start()
        .await;
    let r = desk.env.run_with_input(
        &["user", "add", ADMIN.0, "--role", "admin"],
        &format!("{}\n", ADMIN.1),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    desk.import(&ROWS);
    seed(&desk.env.sql());
    desk
}

fn audits(desk: &Desk) -> i64 {
    desk.count("SELECT count(*) FROM audit_log WHERE action = 'report_no_shows_viewed'")
}

#[tokio::test]
async fn the_report_shows_before_and_with_reminderd_and_its_csv_is_safe() {
    let desk = desk().await;
    let b = desk.signed_in(STAFF.0, STAFF.1).await;
    let page = b.get(&format!("/desk/report?{RANGE}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = page.text();
    assert!(text.contains("Report"), "nav link: {text}");
    assert!(text.contains("Before reminderd 6 33% (2 of 6)"), "{text}");
    assert!(
        text.contains("With reminderd 7 17% (1 of 6) 50% (3 of 6) 14% (1 of 7)"),
        "{text}"
    );
    assert!(text.contains("1 to 3 days too few (1 of 1)"), "{text}");
    assert!(text.contains("20 minutes (3 answered)"), "{text}");
    assert!(text.contains("4.0 of 5 (3 scored"), "{text}");
    assert!(
        text.contains("The first reminder went out on 4 Oct 2026 at 10:00"),
        "local time: {text}"
    );
    assert!(page.body.contains("<svg") && !page.body.contains("style="));
    // The chart leaves out the rate from too few (no reminded appointment before reminderd).
    assert!(
        page.body
            .contains("Confirmed, of reminded: With reminderd 50% (3 of 6)."),
        "{}",
        page.body
    );
    assert!(
        !text.contains("Who did not come"),
        "staff see no names link"
    );
    assert!(!text.contains("Aarav Sharma"));

    let csv = b.get(&format!("/desk/report.csv?{RANGE}")).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header(&CONTENT_TYPE), "text/csv; charset=utf-8");
    let disposition = HeaderName::from_static("content-disposition");
    assert!(csv.header(&disposition).starts_with("attachment"));
    assert!(csv.bytes.starts_with(b"\xef\xbb\xbfSection,"), "BOM");
    let escaped = format!("\"'{}\"", EVIL.replace('"', "\"\""));
    assert!(csv.body.contains(&escaped), "{}", csv.body);
    let before = "Before reminderd,\"Sunrise Family Clinic, Andheri\",mumbai,\"No-show, of known outcomes\",2,6,33%";
    assert!(csv.body.contains(before), "{}", csv.body);
}

#[tokio::test]
async fn only_an_admin_sees_the_named_no_shows_and_each_view_is_audited() {
    let desk = desk().await;
    let month = "/desk/report/no-shows?clinic=mumbai&month=2026-09";
    let staff = desk.signed_in(STAFF.0, STAFF.1).await;
    let refused = staff.get(month).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.text().contains("Only an administrator"));
    assert!(!refused.text().contains("Aarav Sharma"));
    assert_eq!(audits(&desk), 0);

    let admin = desk.signed_in(ADMIN.0, ADMIN.1).await;
    let page = admin.get(&format!("/desk/report?{RANGE}")).await;
    assert!(
        page.body
            .contains("href=\"/desk/report/no-shows?clinic=mumbai&amp;month=2026-09\""),
        "{}",
        page.body
    );
    let list = admin.get(month).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let text = list.text();
    assert!(text.contains("No-shows in September 2026"), "{text}");
    assert!(
        text.contains("Mon 7 Sep 2026, 10:00 Aarav Sharma"),
        "local time: {text}"
    );
    assert!(
        text.contains("Priya Patil") && !text.contains("Rohan Iyer"),
        "{text}"
    );
    assert_eq!(audits(&desk), 1);
    assert_eq!(
        desk.one("SELECT actor || ' ' || new_value FROM audit_log WHERE action = 'report_no_shows_viewed'"),
        "staff:boss mumbai 2026-09: 2 patients"
    );
    // A patient whose data was erased stays counted, without a name.
    desk.sql("UPDATE patients SET erased_at = 1, name = 'Priya Patil' WHERE external_id = 'P2'");
    let text = admin.get(month).await.text();
    assert!(
        text.contains("(data erased at the patient's request)") && !text.contains("Priya Patil"),
        "{text}"
    );
    let bad = admin
        .get("/desk/report/no-shows?clinic=mumbai&month=2026-13")
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(audits(&desk), 2, "each view audited, a refused month not");
}
