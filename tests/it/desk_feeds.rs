//! The Feeds page and the practice-system follow-ups over HTTP, as a receptionist meets them:
//! each feed's state and why it holds reminders, a refused message viewed with its numbers
//! masked (audited) and applied again (CSRF, audited, post/redirect/get), and a patient's
//! cancellation the practice system must be told of by hand, settled from Follow-ups.
//! Messages are put in the store through the library, as the listeners do.

use chrono::{DateTime, Duration, Utc};

use reminderd::config::Config;
use reminderd::import::{ImportRow, Reach, RowStatus};
use reminderd::phone::E164;
use reminderd::store::Store;

use crate::desk_harness::{Browser, Desk, field, text};

pub const USER: &str = "asha";
pub const PASSWORD: &str = "front desk password";

/// An HL7 feed for Mumbai that maps one location (so a message from another is refused), and
/// a FHIR feed for New York that has never synced.
pub const FEEDS: &str = r#"
[feeds.front-desk-ehr]
kind = "hl7"
listen = '127.0.0.1:0'
max_silence = "2h"
[feeds.front-desk-ehr.locations]
"ANDHERI" = "mumbai"

[feeds.cloud-ehr]
kind = "fhir"
base_url = "http://127.0.0.1:9/fhir"
max_import_age = "1d"
[feeds.cloud-ehr.locations]
"loc-nyc" = "nyc"
"#;

/// The refused message: a location the feed does not map, the patient's mobile in PID-13.
pub const REFUSED_BODY: &str = "MSH|^~\\&|EHR|BANDRA|REMINDERD|X|20261126103000||SIU^S12|MSG-9|P|2.5.1\rSCH|APT-9||||||||15|min\rPID|1||P-9^^^EHR||Patil^Priya||19800101|F|||||^PRN^CP^^91^9876543210\rAIL|1||BANDRA";

/// The reason the refused message was stored with.
pub const REASON: &str = "location \"BANDRA\" is not one of this feed's locations; the administrator can map it to a clinic";

/// What the store holds for the test: the refused message's row, the applied appointment's row
/// and the practice-system update's row.
pub struct Fed {
    pub refused: i64,
    pub appointment: i64,
    pub update: i64,
}

/// The desk on the shipped config with [`FEEDS`] and the user `asha`.
pub async fn start() -> Desk {
    Desk::options()
        .edit(|c| format!("{c}\n{FEEDS}"))
        .user(USER, PASSWORD)
        .start()
        .await
}

fn now() -> DateTime<Utc> {
    reminderd::time::Clock::System.now()
}

/// The HL7 feed's last messages came three hours ago (so it is silent past its two hours):
/// one refused, one applied as a new appointment for tomorrow; the patient cancelled that one
/// in reminderd, and the practice system must be told by hand.
pub fn feed_messages(d: &Desk) -> Fed {
    let config = Config::load(&d.env.path("reminders.toml")).expect("config");
    let mut store = Store::open_configured(&config).expect("store");
    let at = now() - Duration::hours(3);
    let refused = store
        .receive_feed_message("front-desk-ehr", "MSG-9", "SIU^S12", REFUSED_BODY, at)
        .expect("receive")
        .id;
    store
        .refuse_feed_message(refused, REASON, Some("APT-9"), at)
        .expect("refuse");

    let feed = &config.feeds["front-desk-ehr"];
    let applied = store
        .receive_feed_message(
            "front-desk-ehr",
            "MSG-8",
            "SIU^S12",
            "MSH|^~\\&|EHR|ANDHERI|REMINDERD|X|20261126100000||SIU^S12|MSG-8|P|2.5.1",
            at,
        )
        .expect("receive")
        .id;
    let zone = chrono_tz::Asia::Kolkata;
    let day = now().with_timezone(&zone).date_naive() + chrono::Days::new(1);
    let starts_at = day
        .and_hms_opt(10, 30, 0)
        .expect("time")
        .and_local_timezone(zone)
        .single()
        .expect("one instant")
        .with_timezone(&Utc);
    let row = ImportRow {
        row: 1,
        clinic: "mumbai".into(),
        appointment_id: "APT-8".into(),
        patient_id: "P-8".into(),
        patient_name: "Rohan Gupta".into(),
        phone: E164::from_wa_id("919123456789").expect("number"),
        language: "en".into(),
        starts_at,
        local_date: day,
        duration_min: 15,
        provider: Some("Dr. Iyer".into()),
        status: RowStatus::Booked,
        reach: Reach::default(),
    };
    let outcome = reminderd::feeds::apply_reading(
        &mut store,
        &config,
        feed,
        applied,
        "SIU^S12 MSG-8",
        &reminderd::feeds::Reading::Appointment(row),
        at,
    )
    .expect("apply");
    assert_eq!(outcome, "new");
    let appointment = d.id("SELECT id FROM appointments WHERE external_id = 'APT-8'");
    d.sql(&format!(
        "INSERT INTO source_updates (appointment_id, feed, action, state, attempts, error, created_at, updated_at)
         VALUES ({appointment}, 'front-desk-ehr', 'cancel', 'staff', 1, 'the practice system does not take changes from reminderd', {t}, {t})",
        t = now().timestamp()
    ));
    let update = d.id("SELECT id FROM source_updates");
    Fed {
        refused,
        appointment,
        update,
    }
}

async fn signed_in(d: &Desk) -> Browser {
    d.signed_in_via(USER, PASSWORD, "/desk/feeds").await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feeds_page_shows_each_feed_its_hold_and_its_refused_messages() {
    let d = start().await;
    let fed = feed_messages(&d);
    let b = signed_in(&d).await;
    let page = b.get("/desk/feeds").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let t = text(&page.body);
    for expected in [
        "front-desk-ehr",
        "Practice system feed (HL7) · Sunrise Family Clinic, Andheri",
        "Last message: ",
        "(3 hours ago)",
        "Reminders for Sunrise Family Clinic, Andheri are on hold: HL7 feed front-desk-ehr has sent nothing for 3h",
        "Applied: 1",
        "Refused: 1",
        "Waiting: 0",
        "Last error, ",
        "cloud-ehr",
        "Practice system (FHIR) · Hudson Street Medical, New York",
        "Never heard from: reminderd has not read the schedule from this practice system yet.",
        "FHIR feed cloud-ehr has not synced yet",
        "Refused messages",
        "MSG-9 SIU^S12",
        "APT-9",
        REASON,
    ] {
        assert!(t.contains(expected), "{expected:?} in:\n{t}");
    }
    // Local clinic time, never a UTC instant.
    assert!(t.contains(" IST (3 hours ago)"), "{t}");
    assert!(!t.contains("(s)"));
    // The link on every page, with the refused count.
    assert!(
        page.body.contains("aria-label=\"Feeds, 1 waiting\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("/desk/feeds/message?id={}", fed.refused))
    );
    // The banner on other pages points here.
    let day = b.get("/desk/day").await;
    assert!(
        text(&day.body)
            .contains("the schedule feed “front-desk-ehr” from the practice system has gone quiet")
    );
    assert!(day.body.contains("href=\"/desk/feeds\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_feeds_there_is_no_feeds_link() {
    let d = Desk::options().user(USER, PASSWORD).start().await;
    let b = d.signed_in_via(USER, PASSWORD, "/desk/upload").await;
    let page = b.get("/desk/upload").await;
    assert!(!page.body.contains("href=\"/desk/feeds\""), "{}", page.body);
    let feeds = b.get("/desk/feeds").await;
    assert!(text(&feeds.body).contains("No schedule feeds are set up"));
}

#[tokio::test(flavor = "multi_thread")]
async fn viewing_a_refused_message_masks_the_number_and_is_audited() {
    let d = start().await;
    let fed = feed_messages(&d);
    let b = signed_in(&d).await;
    let page = b
        .get(&format!("/desk/feeds/message?id={}", fed.refused))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let t = text(&page.body);
    assert!(t.contains("Message MSG-9"), "{t}");
    assert!(t.contains(REASON));
    assert!(t.contains("Patil^Priya"), "names stay: {t}");
    assert!(t.contains("^PRN^CP^^**^******3210"), "{t}");
    assert!(!page.body.contains("9876543210"), "number masked");
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'view_feed_message' AND actor = 'staff:asha' AND new_value = 'front-desk-ehr MSG-9'"),
        1
    );
    let missing = b.get("/desk/feeds/message?id=999999").await;
    assert_eq!(missing.status, 404);
    assert!(text(&missing.body).contains("No such message"));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_again_needs_the_form_token_is_audited_and_says_what_happened() {
    let d = start().await;
    let fed = feed_messages(&d);
    let b = signed_in(&d).await;
    let id = fed.refused.to_string();

    let forged = b.post("/desk/feeds/reapply", &[("id", &id)]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reapply_feed_message'"),
        0
    );

    let res = b
        .post("/desk/feeds/reapply", &[("csrf", &b.csrf), ("id", &id)])
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let to = res.location().to_string();
    assert!(to.starts_with("/desk/feeds?done="), "{to}");
    let page = b.get(&to).await;
    let t = text(&page.body);
    // The message is still refused with today's configuration (BANDRA is not mapped): the
    // notice says so with the reason stored now.
    let state = d.one(&format!(
        "SELECT state FROM feed_messages WHERE id = {}",
        fed.refused
    ));
    assert_eq!(state, "refused");
    let reason = d.one(&format!(
        "SELECT error FROM feed_messages WHERE id = {}",
        fed.refused
    ));
    assert!(
        t.contains(&format!("Message MSG-9 still refused: {reason}")),
        "{reason:?} in:\n{t}"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reapply_feed_message' AND actor = 'staff:asha' AND new_value LIKE 'still refused: %'"),
        1
    );
    // Refresh shows the page again without applying again.
    let again = b.get(&to).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reapply_feed_message'"),
        1
    );

    // The applied message, pressed again (an old tab), is left alone.
    let applied = d.id("SELECT id FROM feed_messages WHERE message_id = 'MSG-8'");
    let res = b
        .post(
            "/desk/feeds/reapply",
            &[("csrf", &b.csrf), ("id", &applied.to_string())],
        )
        .await;
    assert_eq!(res.status, 303);
    let page = b.get(res.location()).await;
    assert!(
        text(&page.body).contains("Message MSG-8 was already applied: nothing was done again."),
        "{}",
        text(&page.body)
    );
    assert_eq!(fed.appointment, d.row("APT-8"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancellation_for_the_practice_system_is_a_follow_up_until_done() {
    let d = start().await;
    let fed = feed_messages(&d);
    let b = signed_in(&d).await;
    let page = b.get("/desk/follow-ups").await;
    let t = text(&page.body);
    for expected in [
        "To change in the practice system",
        "Cancelled by the patient in reminderd — cancel it in the practice system too",
        "Rohan Gupta",
        "at 10:30 with Dr. Iyer · Sunrise Family Clinic, Andheri · appointment APT-8 in the practice system",
        "Why reminderd could not do it: the practice system does not take changes from reminderd",
    ] {
        assert!(t.contains(expected), "{expected:?} in:\n{t}");
    }
    assert!(
        page.body.contains("aria-label=\"Follow-ups, 1 waiting\""),
        "{}",
        page.body
    );
    assert_eq!(field(&page.body, "update"), fed.update.to_string());

    let res = b
        .post(
            "/desk/follow-ups/practice-done",
            &[
                ("csrf", &b.csrf),
                ("update", &fed.update.to_string()),
                ("list_clinic", ""),
                ("list_date", ""),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let page = b.get(res.location()).await;
    let t = text(&page.body);
    assert!(
        t.contains("Saved: marked as done in the practice system."),
        "{t}"
    );
    assert!(!t.contains("cancel it in the practice system too"), "{t}");
    assert!(!page.body.contains("Follow-ups, 1 waiting"));
    assert_eq!(
        d.one(&format!(
            "SELECT state || ' ' || settled_by FROM source_updates WHERE id = {}",
            fed.update
        )),
        "settled staff:asha"
    );
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'practice_system_updated' AND actor = 'staff:asha' AND appointment_id = {}",
            fed.appointment
        )),
        1
    );
    // A second press (another tab) changes nothing and says so.
    let res = b
        .post(
            "/desk/follow-ups/practice-done",
            &[("csrf", &b.csrf), ("update", &fed.update.to_string())],
        )
        .await;
    let page = b.get(res.location()).await;
    assert!(text(&page.body).contains("already marked as done in the practice system"));
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'practice_system_updated'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_each_feeds_age_messages_and_hold() {
    let d = Desk::options()
        .edit(|c| crate::common::fast_daemon(&format!("{c}\n{FEEDS}")))
        .user(USER, PASSWORD)
        .daemon()
        .start()
        .await;
    feed_messages(&d);
    let url = format!("{}/metrics", d.url);
    let mut last = String::new();
    crate::common::Wait::new("the feed gauges", std::time::Duration::from_secs(20))
        .context(|| d.log())
        .until_async(async || {
            last = reqwest::get(&url)
                .await
                .expect("metrics")
                .text()
                .await
                .unwrap_or_default();
            last.contains("reminderd_feed_messages{feed=\"front-desk-ehr\",state=\"refused\"} 1")
        })
        .await;
    for expected in [
        "reminderd_feed_held{feed=\"front-desk-ehr\"} 1",
        "reminderd_feed_held{feed=\"cloud-ehr\"} 1",
        "reminderd_feed_messages{feed=\"front-desk-ehr\",state=\"applied\"} 1",
        "reminderd_feed_messages{feed=\"cloud-ehr\",state=\"refused\"} 0",
    ] {
        assert!(last.contains(expected), "{expected:?} in:\n{last}");
    }
    let age = last
        .lines()
        .find_map(|l| {
            l.strip_prefix("reminderd_feed_last_message_age_seconds{feed=\"front-desk-ehr\"} ")
        })
        .and_then(|v| v.parse::<f64>().ok())
        .expect("the HL7 feed's age");
    assert!((3.0 * 3600.0..4.0 * 3600.0).contains(&age), "{age}");
    assert!(
        !last.contains("reminderd_feed_last_sync_age_seconds{feed=\"cloud-ehr\"}"),
        "never synced: no age"
    );
}
