//! The Waitlist page over HTTP, as a receptionist meets it: add a patient who wants an earlier
//! slot and open a freed slot by hand (each needs the form token, is audited and ends in
//! post/redirect/get; a mistake is explained with what was typed kept), then see both listed
//! in the clinic's local time.

use chrono::Duration;

use crate::desk_harness::{Desk, field, text};

const USER: &str = "asha";
const PASSWORD: &str = "front desk password";

#[tokio::test(flavor = "multi_thread")]
async fn staff_add_a_waiting_patient_and_open_a_slot_and_see_both_listed() {
    let d = Desk::options()
        .edit(|c| format!("{c}\n[waitlist]\nenabled = true\noffer_template = \"waitlist_offer\"\n"))
        .user(USER, PASSWORD)
        .start()
        .await;
    let now = reminderd::time::Clock::System.now();
    let later = (now + Duration::days(12))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .format("%Y-%m-%d")
        .to_string();
    d.import(&[&format!(
        "B1,W1,Meera Joshi,98200 30001,en,{later},09:00,15,Dr. Mehta,mumbai,booked"
    )]);
    let b = d.signed_in(USER, PASSWORD).await;
    let page = b.get("/desk/waitlist?clinic=mumbai").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let t = text(&page.body);
    assert!(t.contains("Nobody is on the waitlist."), "{t}");
    assert!(t.contains("0 offers sent"), "{t}");

    // Without the form token nothing is added.
    let forged = b
        .post(
            "/desk/waitlist/add",
            &[("clinic", "mumbai"), ("patient", "W1")],
        )
        .await;
    assert_eq!(forged.status, 403);
    // A mistake is explained on the page, with what was typed still there.
    let wrong = b
        .post(
            "/desk/waitlist/add",
            &[
                ("csrf", &b.csrf),
                ("clinic", "mumbai"),
                ("patient", "W1"),
                ("days", "weekdays"),
                ("time_band", "09:00-12:00"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(
        text(&wrong.body).contains("is not a set of weekdays; write e.g. Mon-Fri"),
        "{}",
        text(&wrong.body)
    );
    assert_eq!(field(&wrong.body, "time_band"), "09:00-12:00");
    assert_eq!(d.count("SELECT count(*) FROM waitlist_entries"), 0);

    let res = b
        .post(
            "/desk/waitlist/add",
            &[
                ("csrf", &b.csrf),
                ("clinic", "mumbai"),
                ("patient", "W1"),
                ("provider", "Dr. Mehta"),
                ("days", "Mon-Fri"),
                ("time_band", "09:00-12:00"),
                ("max_offers", "2"),
            ],
        )
        .await;
    let page = b
        .follow(res, "/desk/waitlist?clinic=mumbai&done=added")
        .await;
    let t = text(&page.body);
    assert!(t.contains("The patient is on the waitlist."), "{t}");
    assert!(t.contains("Meera Joshi (W1)"), "{t}");
    assert!(t.contains("Mon–Fri, 09:00–12:00"), "{t}");
    assert!(t.contains("0 of 2"), "{t}");
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'waitlist_add' AND actor = 'staff:asha'"
        ),
        1
    );

    // A slot in the past is refused; one still to come is opened and listed in local time.
    let past = b
        .post(
            "/desk/waitlist/open",
            &[
                ("csrf", &b.csrf),
                ("clinic", "mumbai"),
                ("date", "2020-01-06"),
                ("time", "10:30"),
            ],
        )
        .await;
    assert_eq!(past.status, 400);
    assert!(text(&past.body).contains("That time has passed"));
    let tomorrow = (now + Duration::days(1)).with_timezone(&chrono_tz::Asia::Kolkata);
    let res = b
        .post(
            "/desk/waitlist/open",
            &[
                ("csrf", &b.csrf),
                ("clinic", "mumbai"),
                ("date", &tomorrow.format("%Y-%m-%d").to_string()),
                ("time", "10:30"),
                ("duration", "15"),
                ("provider", "Dr. Mehta"),
            ],
        )
        .await;
    let page = b
        .follow(res, "/desk/waitlist?clinic=mumbai&done=opened")
        .await;
    let t = text(&page.body);
    assert!(t.contains("The slot is open"), "{t}");
    let slot = format!("{}, 10:30 with Dr. Mehta", tomorrow.format("%a %-d %b"));
    assert!(t.contains(&slot), "{slot} in {t}");
    assert!(t.contains("opened by asha"), "{t}");
    assert_eq!(
        d.count("SELECT count(*) FROM openings WHERE source = 'staff' AND opened_by = 'staff:asha' AND state = 'open'"),
        1
    );
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'open_slot' AND actor = 'staff:asha'"
        ),
        1
    );
    // Refreshing the page opens nothing more.
    b.get("/desk/waitlist?clinic=mumbai&done=opened").await;
    assert_eq!(d.count("SELECT count(*) FROM openings"), 1);
}
