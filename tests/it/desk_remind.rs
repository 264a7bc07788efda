//! "Remind now" at the desk over HTTP: `reminderd run` (the daemon, so the reminders asked for
//! are really sent) against the Cloud API simulator, with a cookie-keeping client that does not
//! follow redirects. What staff would notice is checked against what the simulator received
//! and what is stored (outbox rows, audit rows).

use std::time::Duration;

use chrono::{NaiveDate, Timelike};
use chrono_tz::Tz;
use reminderd::sim::{Sim, SimConfig};

use crate::common::{Wait, fast_daemon, sim_config};
use crate::desk_harness::{Browser, Desk, Page, field};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "app-secret-for-remind-tests";

/// A daemon with its desk, a simulator it sends to, and a clinic ("night") where it is the
/// middle of the night now, in quiet hours that end at 08:00.
pub struct RemindDesk {
    /// The daemon and its desk.
    pub desk: Desk,
    /// The simulator the daemon sends to.
    pub sim: Sim,
    /// The night clinic's zone.
    pub night: Tz,
}

impl std::ops::Deref for RemindDesk {
    type Target = Desk;

    fn deref(&self) -> &Desk {
        &self.desk
    }
}

/// A fixed-offset zone where it is now between 03:00 and 04:00, in quiet hours "21:00-08:00".
fn night_zone() -> Tz {
    let hour = reminderd::time::Clock::System.now().hour() as i32;
    let mut ahead = (3 - hour).rem_euclid(24);
    if ahead > 14 {
        ahead -= 24;
    }
    // POSIX signs: Etc/GMT-5 is five hours ahead of UTC.
    let name = match ahead {
        0 => "Etc/GMT".to_string(),
        a if a > 0 => format!("Etc/GMT-{a}"),
        a => format!("Etc/GMT+{}", -a),
    };
    name.parse().expect("an Etc/GMT zone")
}

/// Tomorrow's date in `zone`.
pub fn tomorrow(zone: Tz) -> NaiveDate {
    reminderd::time::Clock::System
        .now()
        .with_timezone(&zone)
        .date_naive()
        .succ_opt()
        .expect("a tomorrow")
}

impl RemindDesk {
    /// Starts the simulator and `reminderd run`; `sim` adjusts the simulator and `edit` the
    /// config. The daemon never plans (its plan job runs once a year), so the only reminders
    /// sent are the ones asked for, and booking confirmations are off.
    pub async fn start(
        sim: impl FnOnce(SimConfig) -> SimConfig,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        let night = night_zone();
        // The simulator's address goes to the daemon, and the daemon's webhook address to the
        // simulator: bind first, serve after.
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the simulator");
        let sim_base = format!("http://{}", sim_listener.local_addr().expect("addr"));
        let desk = Desk::options()
            .edit(|config| {
                let config = fast_daemon(&config)
                    .replace("plan = \"*/1 * * * * *\"", "plan = \"0 0 0 1 1 *\"")
                    .replace("enabled = true", "enabled = false");
                format!(
                    "{}\n[clinics.night]\ndisplay_name = \"Night Owl Clinic\"\ntime_zone = \"{}\"\nphone_region = \"IN\"\nquiet_hours = \"21:00-08:00\"\n",
                    edit(config),
                    night.name()
                )
            })
            .daemon()
            .user(USER, PASSWORD)
            .var("WHATSAPP_ACCESS_TOKEN", "remind-token")
            .var("WHATSAPP_APP_SECRET", SECRET)
            .var("WHATSAPP_VERIFY_TOKEN", "verify")
            .var("REMINDERD_API_BASE", sim_base)
            .start()
            .await;
        let sim = Sim::start_on(
            sim_listener,
            sim(SimConfig {
                webhook_url: Some(format!("{}/webhook", desk.webhook)),
                app_secret: Some(SECRET.into()),
                pair_limit: None,
                status_delay: Duration::from_millis(20),
                ..sim_config("remind-token")
            }),
        )
        .await
        .expect("simulator");
        Self { desk, sim, night }
    }
}

impl Browser {
    /// Presses the "Remind now" form of a page: the form's own fields, as a browser sends them.
    async fn press(&self, form_page: &Page) -> Page {
        let fields: Vec<(&str, String)> = ["csrf", "clinic", "appointment", "nonce"]
            .into_iter()
            .map(|n| (n, field(&form_page.body, n)))
            .collect();
        let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post("/desk/remind", &form).await
    }
}

/// A Mumbai row for tomorrow at `time`, for patient `n` (each with a number of their own).
fn mumbai(id: &str, n: u32, name: &str, time: &str, status: &str) -> String {
    let day = tomorrow(chrono_tz::Asia::Kolkata);
    format!("{id},P{n},{name},98200 1{n:04},en,{day},{time},15,Dr. Mehta,mumbai,{status}")
}

#[tokio::test(flavor = "multi_thread")]
async fn remind_now_sends_one_reminder_per_press_however_often_the_form_is_sent() {
    let d = RemindDesk::start(
        // The Cloud API's pair limit, and the daemon spacing one patient's messages to obey it.
        |s| SimConfig {
            pair_limit: Some(Duration::from_secs(2)),
            ..s
        },
        |c| c.replace("recipient_spacing = \"0s\"", "recipient_spacing = \"2s\""),
    )
    .await;
    d.import(&[&mumbai("A1", 1, "Aarav Sharma", "10:00", "booked")]);
    let b = d.signed_in(USER, PASSWORD).await;
    let path = "/desk/remind?clinic=mumbai&appointment=A1";

    let first = b.get(path).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let text = first.text();
    for expected in [
        "Remind Aarav Sharma now",
        "10:00 IST with Dr. Mehta · Sunrise Family Clinic, Andheri",
        "No reminder has been sent from the desk for this appointment yet.",
        "It goes out within a minute.",
    ] {
        assert!(text.contains(expected), "{expected:?} in: {text}");
    }

    // The press, then the same form sent again (Back and send again, or a retry).
    let pressed = b.press(&first).await;
    assert_eq!(pressed.status, 303, "{}", pressed.body);
    let done = pressed.location().to_string();
    assert!(done.starts_with(path) && done.contains("&done="), "{done}");
    let again = b.press(&first).await;
    assert_eq!(again.status, 303, "{}", again.body);
    let again_at = again.location().to_string();
    assert!(again_at.ends_with("&again=1"), "{again_at}");
    let text = b.get(&again_at).await.text();
    assert!(
        text.contains("This press had already been received: no second reminder was sent. 1 reminder asked for by alice."),
        "{text}"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM outbox WHERE kind = 'manual_reminder'"),
        1
    );

    // A later press (from the page shown after it) is a new reminder, even double-clicked.
    let later = b.get(&done).await;
    assert!(
        later
            .text()
            .contains("Last reminder from the desk: asked for by alice on"),
        "{}",
        later.text()
    );
    let (one, two) = tokio::join!(b.press(&later), b.press(&later));
    assert_eq!((one.status, two.status), (303, 303));
    assert_eq!(
        d.count("SELECT count(*) FROM outbox WHERE kind = 'manual_reminder'"),
        2,
        "a double click is one press"
    );
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'remind_now' AND actor = 'staff:alice'"
        ),
        2
    );

    // The simulator is the witness: two reminders, the clinic's reminder template, 2 s apart.
    Wait::new("both reminders to reach the API", Duration::from_secs(20))
        .context(|| d.log())
        .until(|| d.sim.messages().len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = d.sim.messages();
    assert_eq!(got.len(), 2, "{got:#?}");
    for m in &got {
        assert_eq!(m.body["to"], "+919820010001");
        assert_eq!(m.body["template"]["name"], "appointment_reminder");
    }
    assert!(
        got[1].received_at - got[0].received_at >= chrono::Duration::milliseconds(1900),
        "one patient's messages are spaced: {:?}",
        got.iter().map(|m| m.received_at).collect::<Vec<_>>()
    );
    assert_eq!(
        d.sim.stats().pair_limited,
        0,
        "the pair limit was respected"
    );
    // The simulated phone receives and reads it; the page says what became of it.
    Wait::new(
        "the page to say the reminder was read",
        Duration::from_secs(20),
    )
    .until_async(async || b.get(path).await.text().contains("; read by the patient."))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn remind_now_refuses_cancelled_opted_out_and_past_appointments_and_waits_for_quiet_hours() {
    let d = RemindDesk::start(|s| s, |c| c).await;
    let yesterday = tomorrow(chrono_tz::Asia::Kolkata)
        .pred_opt()
        .and_then(|d| d.pred_opt())
        .expect("date");
    let night_day = tomorrow(d.night);
    d.import(&[
        &mumbai("A2", 2, "Priya Patil", "09:30", "cancelled"),
        &mumbai("A3", 3, "Rohan Gupta", "10:00", "booked"),
        &format!(
            "A4,P4,Sneha Kulkarni,98200 10004,mr,{yesterday},10:30,15,Dr. Mehta,mumbai,booked"
        ),
        &format!("N1,Q1,Vikram Singh,98200 10005,hi,{night_day},10:00,15,Dr. Iyer,night,booked"),
    ]);
    d.env
        .sql()
        .execute(
            "UPDATE patients SET opted_out_at = 1 WHERE external_id = 'P3'",
            (),
        )
        .expect("opt out");
    let b = d.signed_in(USER, PASSWORD).await;
    for (id, sentence) in [
        (
            "A2",
            "This appointment is cancelled, so no reminder can be sent.",
        ),
        (
            "A3",
            "The patient asked not to get WhatsApp messages (they replied STOP), so no reminder can be sent. Call them instead.",
        ),
        (
            "A4",
            "This appointment has already started, so no reminder can be sent.",
        ),
    ] {
        let shown = b
            .get(&format!("/desk/remind?clinic=mumbai&appointment={id}"))
            .await;
        assert_eq!(shown.status, 200);
        assert!(shown.text().contains(sentence), "{id}: {}", shown.text());
        assert!(
            !shown.body.contains("Remind now</button>"),
            "{id}: no button"
        );
        // A form from before the change is refused with the same sentence.
        let nonce = "ab".repeat(32);
        let refused = b
            .post(
                "/desk/remind",
                &[
                    ("csrf", b.csrf.as_str()),
                    ("clinic", "mumbai"),
                    ("appointment", id),
                    ("nonce", nonce.as_str()),
                ],
            )
            .await;
        assert_eq!(refused.status, 409, "{id}");
        assert!(
            refused.text().contains(sentence),
            "{id}: {}",
            refused.text()
        );
    }
    assert_eq!(
        d.count("SELECT count(*) FROM outbox"),
        0,
        "nothing was written"
    );

    // No such appointment, a forged nonce, a missing CSRF token.
    let nonce = "cd".repeat(32);
    let missing = b
        .post(
            "/desk/remind",
            &[
                ("csrf", b.csrf.as_str()),
                ("clinic", "mumbai"),
                ("appointment", "X9"),
                ("nonce", nonce.as_str()),
            ],
        )
        .await;
    assert_eq!(missing.status, 404);
    let forged = b
        .post(
            "/desk/remind",
            &[
                ("csrf", b.csrf.as_str()),
                ("clinic", "mumbai"),
                ("appointment", "A3"),
                ("nonce", "1"),
            ],
        )
        .await;
    assert_eq!(forged.status, 400);
    assert!(forged.text().contains("This form is out of date"));
    let no_csrf = b
        .post(
            "/desk/remind",
            &[
                ("clinic", "mumbai"),
                ("appointment", "A3"),
                ("nonce", nonce.as_str()),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 403);

    // In quiet hours the reminder waits for their end, and the page says when it goes.
    let path = "/desk/remind?clinic=night&appointment=N1";
    let shown = b.get(path).await;
    // It is 03:xx at the night clinic: quiet hours end at 08:00 today there.
    let local_now = reminderd::time::Clock::System.now().with_timezone(&d.night);
    let zone = local_now.format("%Z").to_string();
    let at_eight = format!("it will go at 08:00 {zone}, when they end.");
    assert!(shown.text().contains(&at_eight), "{}", shown.text());
    let pressed = b.press(&shown).await;
    let text = b.get(pressed.location()).await.text();
    assert!(
        text.contains(&format!("1 reminder asked for by alice. It is quiet hours at the clinic: it goes at 08:00 {zone}.")),
        "{text}"
    );
    let send_at = local_now
        .date_naive()
        .and_hms_opt(8, 0, 0)
        .and_then(|t| t.and_local_timezone(d.night).single())
        .expect("08:00 today at the clinic")
        .timestamp();
    assert_eq!(
        d.count("SELECT send_at FROM outbox WHERE kind = 'manual_reminder' AND state = 'pending'"),
        send_at,
        "it waits, pending, until 08:00 at the clinic"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        d.sim.messages().is_empty(),
        "nothing is sent in quiet hours"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn remind_all_counts_tomorrows_unanswered_asks_first_and_sends_once() {
    let d = RemindDesk::start(|s| s, |c| c).await;
    d.import(&[
        &mumbai("B1", 11, "Aarav Sharma", "09:00", "booked"),
        &mumbai("B2", 12, "Priya Patil", "09:30", "booked"),
        &mumbai("B3", 13, "Rohan Gupta", "10:00", "cancelled"),
        &mumbai("B4", 14, "Sneha Kulkarni", "10:30", "booked"),
        &mumbai("B5", 15, "Vikram Singh", "11:00", "booked"),
    ]);
    d.env
        .run(&["set-status", "B2", "confirmed", "--clinic", "mumbai"])
        .expect(0);
    d.env
        .sql()
        .execute(
            "UPDATE patients SET opted_out_at = 1 WHERE external_id = 'P14'",
            (),
        )
        .expect("opt out");
    let b = d.signed_in(USER, PASSWORD).await;
    let day = tomorrow(chrono_tz::Asia::Kolkata);
    let confirm = b.get("/desk/remind?clinic=mumbai").await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let text = confirm.text();
    let date = day.format("%A %-d %B %Y").to_string();
    for expected in [
        format!("Remind the unanswered — Sunrise Family Clinic, Andheri, {date}"),
        format!("2 patients have not answered yet for {date}."),
        "09:00 IST Aarav Sharma Dr. Mehta".to_string(),
        "11:00 IST Vikram Singh Dr. Mehta".to_string(),
        "Send 2 reminders".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} in: {text}");
    }
    for not_listed in ["Priya Patil", "Rohan Gupta", "Sneha Kulkarni"] {
        assert!(
            !text.contains(not_listed),
            "{not_listed} answered, is cancelled or opted out"
        );
    }
    assert_eq!(
        d.count("SELECT count(*) FROM outbox"),
        0,
        "asking writes nothing"
    );

    let form: Vec<(&str, String)> = ["csrf", "clinic", "date", "nonce"]
        .into_iter()
        .map(|n| (n, field(&confirm.body, n)))
        .collect();
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = b.post("/desk/remind/all", &form).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let after = b.get(sent.location()).await.text();
    assert!(
        after.contains("2 reminders asked for by alice. They go out within a minute."),
        "{after}"
    );
    let again = b.post("/desk/remind/all", &form).await;
    let again = b.get(again.location()).await.text();
    assert!(
        again.contains("This press had already been received: no second reminder was sent."),
        "{again}"
    );
    Wait::new(
        "the two reminders to reach the API",
        Duration::from_secs(20),
    )
    .context(|| d.log())
    .until(|| d.sim.messages().len() >= 2)
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut to: Vec<String> = d
        .sim
        .messages()
        .iter()
        .map(|m| m.body["to"].as_str().unwrap_or_default().to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["+919820010011", "+919820010015"]);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'remind_now' AND actor = 'staff:alice' AND appointment_id IS NOT NULL"),
        2
    );
}
