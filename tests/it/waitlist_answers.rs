//! Answers to offers through `reminderd serve`: signed webhooks over real HTTP, delivered at
//! the same time; exactly one taker; expired offers and late taps; the staff follow-up and
//! the import that closes it; rescheduling by reply with a list to pick from. Openings and
//! offers are written with SQL as the offering side would have.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use reminderd::sim::{Sim, SimConfig};
use serde_json::{Value, json};

use crate::common::{Env, csv, sim_config};
use crate::webhook::{Served, envelope, row};

const P1: &str = "919820012345";
const P2: &str = "919820054321";
const P3: &str = "919820099999";

fn now() -> i64 {
    reminderd::time::Clock::System.now().timestamp()
}

/// A folder whose config sends without waits, with appointments in five days for three
/// patients (T1, T2, T3), reminded.
fn setup() -> Env {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    env.write_config(
        config
            .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"")
            .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\""),
    );
    crate::webhook::reminded(
        &env,
        &[
            &row("E1", "T1", "98200 12345", "en", 5, "09:00"),
            &row("E2", "T2", "98200 54321", "en", 5, "09:15"),
            &row("E3", "T3", "98200 99999", "en", 5, "09:30"),
        ],
    );
    // The reminders went out a day ago: offers sent since are the newest messages.
    env.sql()
        .execute(
            "UPDATE outbox SET sent_at = ?1 WHERE kind = 'reminder'",
            [now() - 86_400],
        )
        .expect("reminders sent");
    env
}

/// The instant of `time` on the local day `days` from today at the Mumbai clinic.
fn mumbai_at(days: i64, time: &str) -> DateTime<Utc> {
    let day = (reminderd::time::Clock::System.now() + chrono::Duration::days(days))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive();
    let t = chrono::NaiveTime::parse_from_str(time, "%H:%M").expect("time");
    chrono_tz::Asia::Kolkata
        .from_local_datetime(&day.and_time(t))
        .single()
        .expect("local time")
        .with_timezone(&Utc)
}

/// An open opening with Dr. Mehta at Mumbai.
fn open_slot(env: &Env, starts: DateTime<Utc>) -> i64 {
    let conn = env.sql();
    conn.insert(
        "INSERT INTO openings (clinic_id, provider, starts_at, duration_min, source, opened_by, opened_at, offers_from, updated_at)
         SELECT id, 'Dr. Mehta', ?1, 15, 'patient_cancel', 'patient', ?2, ?2, ?2 FROM clinics WHERE key = 'mumbai'",
        [starts.timestamp(), now() - 600],
    )
    .expect("opening")
}

/// A waitlist offer of `opening` to the patient of appointment `appointment`, valid until
/// `expires`, its message sent a minute ago (wamid `wamid.offer<id>`).
fn offer(env: &Env, opening: i64, appointment: &str, expires: i64) -> i64 {
    let conn = env.sql();
    let id = conn
        .insert(
            "INSERT INTO offers (opening_id, patient_id, appointment_id, kind, round, created_at, expires_at)
             SELECT ?1, patient_id, id, 'waitlist', 1, ?3, ?4 FROM appointments WHERE external_id = ?2",
            reminderd::store::sql::params![opening, appointment, now() - 60, expires],
        )
        .expect("offer");
    conn.execute(
        "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, wamid, attempts,
            sent_at, created_at, updated_at)
         SELECT a.id, 'waitlist_offer', 'offer:' || ?1, a.starts_at, ?2, ?3, 'waitlist_offer', 'sent', 'wamid.offer' || ?1, 1,
                ?2, ?2, ?2 FROM appointments a WHERE a.external_id = ?4",
        reminderd::store::sql::params![id, now() - 60, expires, appointment],
    )
    .expect("offer message");
    id
}

#[allow(clippy::needless_pass_by_value)] // called with json!(..) temporaries
fn message(from: &str, id: &str, body: Value) -> Value {
    let mut m = json!({"from": from, "id": id, "timestamp": now().to_string()});
    for (k, v) in body.as_object().expect("object") {
        m[k] = v.clone();
    }
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "P"}, "wa_id": from}],
        "messages": [m]
    }))
}

fn tap(from: &str, id: &str, payload: &str) -> Value {
    message(
        from,
        id,
        json!({"type": "button", "button": {"payload": payload, "text": "Yes"}}),
    )
}

fn text(from: &str, id: &str, body: &str) -> Value {
    message(from, id, json!({"type": "text", "text": {"body": body}}))
}

fn pick(from: &str, id: &str, row_id: &str) -> Value {
    message(
        from,
        id,
        json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": row_id, "title": "A time"}}}),
    )
}

/// Runs `reminderd ARGS` against the simulator, off the async threads.
async fn run(env: &Arc<Env>, sim: &Sim, args: &[&str]) {
    let env = Arc::clone(env);
    let base = sim.base_url();
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run_with_env(
            &args,
            &[
                ("REMINDERD_API_BASE", base.as_str()),
                ("WHATSAPP_ACCESS_TOKEN", "tok"),
            ],
        )
        .expect(0)
    })
    .await
    .expect("run");
}

/// The texts the simulator received for `to` (E.164 with `+`).
fn texts_to(sim: &Sim, to: &str) -> Vec<String> {
    sim.messages()
        .into_iter()
        .filter(|m| m.body["to"] == to && m.body["type"] == "text")
        .filter_map(|m| m.body["text"]["body"].as_str().map(str::to_string))
        .collect()
}

async fn sim() -> Sim {
    Sim::start(SimConfig {
        pair_limit: None,
        ..sim_config("tok")
    })
    .await
    .expect("sim")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_accept_at_once_one_holds_the_other_hears_it_is_filled() {
    let s = Served::start(setup()).await;
    let opening = open_slot(&s.env, mumbai_at(2, "10:30"));
    let o1 = offer(&s.env, opening, "E1", now() + 1800);
    let o2 = offer(&s.env, opening, "E2", now() + 1800);
    let (b1, b2) = (
        tap(P1, "wamid.in.1", &format!("WL:{o1}:Y")),
        tap(P2, "wamid.in.2", &format!("WL:{o2}:Y")),
    );
    let (r1, r2) = tokio::join!(s.post_signed(&b1), s.post_signed(&b2));
    assert_eq!((r1, r2), (200, 200));
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM openings WHERE id = {opening} AND state = 'held'"
        )),
        1
    );
    let states = s.one(&format!(
        "SELECT group_concat(state, ',') FROM (SELECT state FROM offers WHERE id IN ({o1}, {o2}) ORDER BY state) AS s"
    ));
    assert_eq!(states, "accepted,lost");
    let winner = s.one(&format!(
        "SELECT CAST(held_by_offer AS TEXT) FROM openings WHERE id = {opening}"
    ));
    let (win_phone, lose_phone) = if winner == o1.to_string() {
        ("+919820012345", "+919820054321")
    } else {
        ("+919820054321", "+919820012345")
    };
    // A retried delivery changes nothing.
    assert_eq!(s.post_signed(&b1).await, 200);
    assert_eq!(s.count("SELECT count(*) FROM replies"), 2);

    let sim = sim().await;
    run(&s.env, &sim, &["send", "--once"]).await;
    let lost = texts_to(&sim, lose_phone);
    assert!(
        lost.iter()
            .any(|t| t.contains("this slot has just been filled")
                && t.contains("Your original appointment stays as it is")),
        "{lost:?}"
    );
    let won = texts_to(&sim, win_phone);
    assert!(
        won.iter().any(|t| t.contains("is held for you until")),
        "{won:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_offer_and_a_late_tap_are_answered() {
    let s = Served::start(setup()).await;
    let opening = open_slot(&s.env, mumbai_at(2, "11:00"));
    // T1's offer ran out a minute ago; T1 types "yes" (their one open offer).
    let o1 = offer(&s.env, opening, "E1", now() - 60);
    let o2 = offer(&s.env, opening, "E2", now() + 1800);
    let o3 = offer(&s.env, opening, "E3", now() + 1800);
    assert_eq!(s.post_signed(&text(P1, "wamid.in.1", "Yes")).await, 200);
    assert_eq!(
        s.one(&format!("SELECT state FROM offers WHERE id = {o1}")),
        "expired"
    );
    // The yes did not confirm T1's appointment: it answered the offer.
    assert_eq!(s.env.appointment("E1")["response"], "none");
    // T2 takes it; T3 taps later.
    assert_eq!(
        s.post_signed(&tap(P2, "wamid.in.2", &format!("WL:{o2}:Y")))
            .await,
        200
    );
    assert_eq!(
        s.post_signed(&tap(P3, "wamid.in.3", &format!("WL:{o3}:Y")))
            .await,
        200
    );
    assert_eq!(
        s.one(&format!("SELECT state FROM offers WHERE id = {o3}")),
        "lost"
    );
    let sim = sim().await;
    run(&s.env, &sim, &["send", "--once"]).await;
    let t1 = texts_to(&sim, "+919820012345");
    assert!(
        t1.iter().any(|t| t.contains("this offer has expired")),
        "{t1:?}"
    );
    let t3 = texts_to(&sim, "+919820099999");
    assert!(
        t3.iter()
            .any(|t| t.contains("this slot has just been filled")),
        "{t3:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_staff_follow_up_closes_when_the_import_shows_the_move() {
    let s = Served::start(setup()).await;
    let starts = mumbai_at(2, "10:30");
    let opening = open_slot(&s.env, starts);
    let o1 = offer(&s.env, opening, "E1", now() + 1800);
    // A reminder of the old appointment is still to go.
    s.env
        .sql()
        .execute(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, created_at, updated_at)
             SELECT id, 'reminder', 'same-day', starts_at, starts_at - 7200, starts_at, 'reminder', 'pending', 0, 0
             FROM appointments WHERE external_id = 'E1'",
            (),
        )
        .expect("pending reminder");
    assert_eq!(
        s.post_signed(&tap(P1, "wamid.in.1", &format!("WL:{o1}:Y")))
            .await,
        200
    );
    // Staff are asked to book it: a practice-system follow-up card, not a reply to read.
    assert_eq!(
        s.one("SELECT action || ' ' || state || ' ' || feed FROM source_updates"),
        "book staff csv"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM replies WHERE outcome = 'needs_staff'"),
        0
    );
    let task = s.one("SELECT reason FROM replies WHERE reason LIKE 'offer %'");
    assert!(
        task.contains("Book Patient T1 into")
            && task.contains("with Dr. Mehta")
            && task.contains("held until"),
        "{task}"
    );
    // Until the practice system shows the move, the card stays (a plan and another upload
    // without it change nothing).
    s.env
        .import(
            "same.csv",
            &csv(&[&row("E1", "T1", "98200 12345", "en", 5, "09:00")]),
            &[],
        )
        .expect(0);
    assert_eq!(s.one("SELECT state FROM source_updates"), "staff");

    // The practice system booked T1 at the opening's time (a new appointment id); the old one
    // is still in the file.
    s.env
        .import(
            "moved.csv",
            &csv(&[
                &row("E1", "T1", "98200 12345", "en", 5, "09:00"),
                &row("E9", "T1", "98200 12345", "en", 2, "10:30"),
            ]),
            &[],
        )
        .expect(0);
    assert_eq!(
        s.one(&format!("SELECT state FROM openings WHERE id = {opening}")),
        "filled"
    );
    // The import that shows the move closes the follow-up card.
    assert_eq!(s.one("SELECT state FROM source_updates"), "done");
    assert_eq!(
        s.one(
            "SELECT o.reason FROM outbox o JOIN appointments a ON a.id = o.appointment_id
               WHERE a.external_id = 'E1' AND o.rule = 'same-day'"
        ),
        "the patient moved to an earlier appointment"
    );
    // The next plan tells the patient the new time.
    let sim = sim().await;
    run(&s.env, &sim, &["plan"]).await;
    run(&s.env, &sim, &["send", "--once"]).await;
    let t1 = texts_to(&sim, "+919820012345");
    assert!(
        t1.iter().any(|t| t.contains("your appointment at")
            && t.contains("is now on")
            && t.contains("10:30")),
        "{t1:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reschedule_by_reply_lists_times_and_two_picks_of_one_time_find_one_taker() {
    let s = Served::start(setup()).await;
    let first = open_slot(&s.env, mumbai_at(1, "11:00"));
    for t in ["12:00", "13:00", "14:00"] {
        open_slot(&s.env, mumbai_at(1, t));
    }
    assert_eq!(
        s.post_signed(&text(P1, "wamid.in.1", "reschedule")).await,
        200
    );
    assert_eq!(
        s.post_signed(&text(P2, "wamid.in.2", "another time")).await,
        200
    );
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'reschedule_offer'"),
        2
    );
    let sim = sim().await;
    run(&s.env, &sim, &["send", "--once"]).await;
    let lists: Vec<Value> = sim
        .messages()
        .into_iter()
        .filter(|m| m.body["type"] == "interactive")
        .map(|m| m.body)
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    let rows = |to: &str| -> Vec<String> {
        lists
            .iter()
            .find(|l| l["to"] == to)
            .map(|l| {
                l["interactive"]["action"]["sections"][0]["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (r1, r2) = (rows("+919820012345"), rows("+919820054321"));
    assert_eq!(r1.len(), 4, "three times and none of these: {r1:?}");
    assert!(r1[3].starts_with("RS:none:"), "{r1:?}");
    // Both pick the first time at once.
    let (p1, p2) = (
        pick(P1, "wamid.in.3", &r1[0]),
        pick(P2, "wamid.in.4", &r2[0]),
    );
    let (a, b) = tokio::join!(s.post_signed(&p1), s.post_signed(&p2));
    assert_eq!((a, b), (200, 200));
    assert_eq!(
        s.one(&format!("SELECT state FROM openings WHERE id = {first}")),
        "held"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM source_updates WHERE action = 'book' AND state = 'staff'"),
        1
    );
    // The other is offered the next time: a second list, with the 14:00 opening.
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'reschedule_offer'"),
        3
    );
    run(&s.env, &sim, &["send", "--once"]).await;
    let again: Vec<Value> = sim
        .messages()
        .into_iter()
        .filter(|m| m.body["type"] == "interactive")
        .map(|m| m.body)
        .collect();
    assert_eq!(again.len(), 3);
    let body = again[2]["interactive"]["body"]["text"]
        .as_str()
        .unwrap_or("");
    assert!(body.contains("that time has just been taken"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_confirmed_after_the_window_closed_is_told_by_template() {
    let env = setup();
    // A template, unlike an answer, waits out quiet hours: none here, whatever the hour.
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    env.write_config(config.replace("quiet_hours = \"21:00-08:00\"", ""));
    let s = Served::start(env).await;
    let opening = open_slot(&s.env, mumbai_at(2, "10:30"));
    let o1 = offer(&s.env, opening, "E1", now() + 1800);
    assert_eq!(
        s.post_signed(&tap(P1, "wamid.in.1", &format!("WL:{o1}:Y")))
            .await,
        200
    );
    // The practice system shows the move (the same appointment, at the opening's time) only
    // 25 hours after the patient's "yes": free text can no longer reach them.
    s.env
        .sql()
        .execute(
            "UPDATE offers SET answered_at = ?1 WHERE id = ?2",
            [now() - 25 * 3600, o1],
        )
        .expect("answered a day ago");
    s.env
        .import(
            "moved.csv",
            &csv(&[&row("E1", "T1", "98200 12345", "en", 2, "10:30")]),
            &[],
        )
        .expect(0);
    assert_eq!(
        s.one(&format!("SELECT state FROM openings WHERE id = {opening}")),
        "filled"
    );
    let sim = sim().await;
    run(&s.env, &sim, &["plan"]).await;
    assert_eq!(
        s.one(&format!(
            "SELECT kind || ' ' || template FROM outbox WHERE rule = 'moved:{o1}'"
        )),
        "booking_confirmation booked"
    );
    run(&s.env, &sim, &["send", "--once"]).await;
    let sent: Vec<Value> = sim
        .messages()
        .into_iter()
        .filter(|m| m.body["to"] == "+919820012345" && m.body["type"] == "template")
        .map(|m| m.body)
        .collect();
    assert!(
        sent.iter()
            .any(|m| m["template"]["name"] == "appointment_booked"
                && m.to_string().contains("10:30")),
        "{sent:?}"
    );
    assert_eq!(
        s.one(&format!(
            "SELECT state FROM outbox WHERE rule = 'moved:{o1}'"
        )),
        "sent"
    );
    // Told once: the next plan queues nothing more.
    run(&s.env, &sim, &["plan"]).await;
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM outbox WHERE rule = 'moved:{o1}'"
        )),
        1
    );
}
