//! The day board over HTTP, as a receptionist uses it: every staff note on its row with who
//! and when, the row actions (arrived, completed, no-show and cancel behind a confirm page,
//! undo) with post/redirect/get back to the row, the desk-set status and what to change in
//! the practice system, no-show refused before the appointment's time, and the board's words
//! (answered or not, the last message, plural counts, filters, 12-hour clinics).
//!
//! `reminderd serve` runs on the real clock, so "before its time" uses appointments a few
//! days after today and "after its time" the example schedule's past day.

use chrono::{TimeZone, Utc};
use reminderd::store::sql::params;

use crate::common::{Env, csv, repo_file};
use crate::desk_harness::{Browser, Desk, Page, text};

const USER: &str = "asha";
const PASSWORD: &str = "front-desk-password";
/// The example schedule's Mumbai day (in the past).
const DAY: &str = "2026-11-26";
const BOARD: &str = "/desk/day?clinic=mumbai&date=2026-11-26";

/// The server on the shipped config with the example schedule and the user `asha`.
async fn start() -> Desk {
    start_with(&[]).await
}

/// [`start`] with these CSV rows imported too (before the server starts).
async fn start_with(rows: &[&str]) -> Desk {
    let env = Env::new();
    if !rows.is_empty() {
        env.import("extra.csv", &csv(rows), &[]).expect(0);
    }
    let example = repo_file("examples/schedule.csv");
    env.run(&["import", example.to_str().expect("utf-8 path")])
        .expect(0);
    Desk::options_on(env)
        .user(USER, PASSWORD)
        .var("WHATSAPP_APP_SECRET", "app-secret-for-board-tests")
        .var("WHATSAPP_VERIFY_TOKEN", "verify-token-for-board-tests")
        .start()
        .await
}

impl Desk {
    /// When the newest audit row with this action was written, as the Mumbai board of `DAY`
    /// shows it: Mumbai's clock, with the date when it is another day.
    fn mumbai_time_of(&self, action: &str) -> String {
        let at: i64 = self
            .env
            .sql()
            .query_row(
                "SELECT at FROM audit_log WHERE action = ?1 ORDER BY id DESC LIMIT 1",
                params![action],
                |r| r.get(0),
            )
            .expect("an audit row");
        let local = Utc
            .timestamp_opt(at, 0)
            .single()
            .expect("instant")
            .with_timezone(&chrono_tz::Asia::Kolkata);
        if local.format("%Y-%m-%d").to_string() == DAY {
            local.format("%H:%M").to_string()
        } else {
            local.format("%-d %b %H:%M").to_string()
        }
    }
}

impl Page {
    /// The text of the table row `#a-<id>`.
    fn row_text(&self, id: i64) -> String {
        let start = self
            .body
            .find(&format!("id=\"a-{id}\""))
            .unwrap_or_else(|| panic!("no row a-{id} in:\n{}", self.text()));
        let end = self.body[start..]
            .find("</tr>")
            .map_or(self.body.len(), |e| start + e);
        text(&self.body[start..end])
    }
}

impl Browser {
    /// A board row's action (as its button posts it).
    async fn act(&self, row: i64, action: &str, note: &str) -> Page {
        self.post(
            "/desk/day/status",
            &[
                ("csrf", &self.csrf),
                ("row", &row.to_string()),
                ("action", action),
                ("note", note),
                ("date", DAY),
            ],
        )
        .await
    }
}

// ---- notes -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_note_typed_with_a_status_is_on_the_board_with_who_and_when() {
    let d = start().await;
    let c = d.signed_in(USER, PASSWORD).await;
    let rohan = d.row("MUM-1003");
    let priya = d.row("MUM-1002");
    // Set cancelled with a note, on the follow-up card's form.
    let res = c
        .post(
            "/desk/follow-ups/action",
            &[
                ("csrf", &c.csrf),
                ("clinic", "mumbai"),
                ("appointment", "MUM-1003"),
                ("date", DAY),
                ("action", "cancelled"),
                ("note", "moving to Pune, will call to rebook"),
                ("sure", "yes"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let cancelled_at = d.mumbai_time_of("status");
    for (action, note) in [("called", "no answer"), ("note", "prefers mornings")] {
        let res = c
            .post(
                "/desk/follow-ups/action",
                &[
                    ("csrf", &c.csrf),
                    ("clinic", "mumbai"),
                    ("appointment", "MUM-1002"),
                    ("date", DAY),
                    ("action", action),
                    ("note", note),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.text());
    }

    let board = c.get(BOARD).await;
    assert_eq!(board.status, 200, "{}", board.text());
    let row = board.row_text(rohan);
    assert!(
        row.contains(&format!(
            "{cancelled_at} asha: set cancelled — moving to Pune, will call to rebook"
        )),
        "the note, who and when on Rohan's row: {row}"
    );
    // Newest first.
    let row = board.row_text(priya);
    let (newer, older) = (
        row.find("asha: prefers mornings"),
        row.find("asha: called — no answer"),
    );
    assert!(
        newer.is_some() && older.is_some() && newer < older,
        "both notes on Priya's row, newest first: {row}"
    );
}

// ---- row actions -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_no_show_after_a_confirm_page_says_what_else_to_change_and_undo_reverts_it() {
    let d = start().await;
    d.env
        .sql()
        .execute(
            "UPDATE appointments SET response = 'confirmed' WHERE external_id = 'MUM-1001'",
            (),
        )
        .expect("Aarav confirmed");
    let c = d.signed_in(USER, PASSWORD).await;
    let aarav = d.row("MUM-1001");
    let board = c.get(BOARD).await;
    let confirm = format!("/desk/day/status?row={aarav}&amp;action=no_show&amp;date={DAY}");
    assert!(
        board.body.contains(&confirm),
        "a No-show link to the confirm page"
    );

    // The confirm page names the appointment and what else to do; it changes nothing.
    let page = c.get(&confirm.replace("&amp;", "&")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let t = page.text();
    assert!(t.contains("Set a no-show?"), "{t}");
    assert!(
        t.contains("Aarav Sharma, Thursday 26 November at 09:00 with Dr. Mehta"),
        "{t}"
    );
    assert!(t.contains("in the practice system too"), "{t}");
    assert_eq!(
        d.one("SELECT status FROM appointments WHERE external_id = 'MUM-1001'"),
        "booked"
    );

    let res = c.act(aarav, "no_show", "did not come, phone off").await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        res.location(),
        format!("/desk/day?clinic=mumbai&date={DAY}&done=no_show&row={aarav}#a-{aarav}")
    );
    let at = d.mumbai_time_of("status");
    let after = c.get(res.location()).await;
    assert!(
        after
            .text()
            .contains("Saved: Aarav Sharma at 09:00 — set to no-show."),
        "{}",
        after.text()
    );
    let row = after.row_text(aarav);
    assert!(row.contains("no-show"), "{row}");
    assert!(
        row.contains(&format!(
            "No-show set at the desk by asha at {at}. Mark it as a no-show in the practice system too"
        )),
        "{row}"
    );
    assert!(
        row.contains(&format!("{at} asha: set no-show — did not come, phone off")),
        "{row}"
    );
    assert_eq!(
        d.one("SELECT actor || ' ' || action || ' ' || old_value || '→' || new_value FROM audit_log WHERE action = 'status'"),
        "staff:asha status booked→no_show"
    );
    // The stats count it.
    let stats = d
        .env
        .run(&[
            "stats", "--clinic", "mumbai", "--from", DAY, "--to", DAY, "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(stats["stats"]["no_shows"], 1, "{stats}");
    assert_eq!(stats["stats"]["no_show_confirmed"], 1, "{stats}");

    // Undo: booked again, still confirmed, and audited.
    let res = c.act(aarav, "undo", "").await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(
        res.location()
            .ends_with(&format!("done=undone&row={aarav}#a-{aarav}"))
    );
    let row = c.get(res.location()).await.row_text(aarav);
    assert!(row.contains("booked") && row.contains("confirmed"), "{row}");
    assert!(row.contains("No-show undone at the desk by asha"), "{row}");
    assert_eq!(
        d.one("SELECT status || '/' || response FROM appointments WHERE external_id = 'MUM-1001'"),
        "booked/confirmed"
    );
    assert_eq!(
        d.one("SELECT actor || ' ' || old_value || '→' || new_value FROM audit_log WHERE action = 'undo'"),
        "staff:asha no_show→booked"
    );
    // Nothing is left to undo: it says so and writes nothing.
    let again = c.act(aarav, "undo", "").await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(again.text().contains("nothing to undo"), "{}", again.text());
    assert!(
        again.body.contains(&format!("#a-{aarav}")),
        "a way back to the row"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn arrived_completed_and_cancel_with_a_note_are_saved_audited_and_shown() {
    let d = start().await;
    let c = d.signed_in(USER, PASSWORD).await;
    let (priya, rohan) = (d.row("MUM-1002"), d.row("MUM-1003"));
    let res = c.act(priya, "arrived", "").await;
    assert_eq!(res.status, 303, "{}", res.text());
    let at = d.mumbai_time_of("arrived");
    let row = c.get(res.location()).await.row_text(priya);
    assert!(row.contains(&format!("arrived {at}")), "{row}");
    assert!(
        row.contains("Nothing to change in the practice system"),
        "{row}"
    );
    assert!(
        !row.contains("Arrived Completed"),
        "no second Arrived button: {row}"
    );
    assert_eq!(
        d.one(
            "SELECT status || ' ' || arrived_by FROM appointments WHERE external_id = 'MUM-1002'"
        ),
        "booked staff:asha"
    );
    let res = c.act(priya, "completed", "").await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        d.one("SELECT status FROM appointments WHERE external_id = 'MUM-1002'"),
        "completed"
    );

    let page = c
        .get(&format!(
            "/desk/day/status?row={rohan}&action=cancelled&date={DAY}"
        ))
        .await;
    assert!(
        page.text().contains("Cancel this appointment?"),
        "{}",
        page.text()
    );
    let res = c.act(rohan, "cancelled", "moving to Pune").await;
    assert_eq!(res.status, 303, "{}", res.text());
    let at = d.mumbai_time_of("status");
    let row = c.get(res.location()).await.row_text(rohan);
    assert!(
        row.contains(&format!(
            "Cancelled at the desk by asha at {at}. Cancel it in the practice system too, or the next upload will book it again."
        )),
        "{row}"
    );
    assert!(
        row.contains(&format!("{at} asha: set cancelled — moving to Pune")),
        "{row}"
    );
    assert_eq!(
        d.one(
            "SELECT status || '/' || cancelled_by FROM appointments WHERE external_id = 'MUM-1003'"
        ),
        "cancelled/clinic"
    );

    // A note on its own needs words; an unknown action is refused; neither writes.
    let audit = d.env.count("SELECT count(*) FROM audit_log");
    assert_eq!(c.act(rohan, "note", "  ").await.status, 400);
    assert_eq!(c.act(rohan, "deleted", "x").await.status, 400);
    assert_eq!(c.act(999_999, "arrived", "").await.status, 404);
    assert_eq!(d.env.count("SELECT count(*) FROM audit_log"), audit);
    let res = c.act(rohan, "note", "will call back on Monday").await;
    assert_eq!(res.status, 303, "{}", res.text());
    let row = c.get(res.location()).await.row_text(rohan);
    assert!(row.contains("asha: will call back on Monday"), "{row}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_no_show_before_the_appointments_time_is_refused_on_every_path() {
    // Two days after today at the clinic: the appointment's time has not come.
    let later = reminderd::time::Clock::System
        .now()
        .with_timezone(&chrono_tz::Asia::Kolkata)
        + chrono::Duration::days(2);
    let date = later.format("%Y-%m-%d").to_string();
    let d = start_with(&[&format!(
        "MUM-2001,P-2101,Meera Nair,98200 11111,en,{date},10:00,15,Dr. Mehta,mumbai,booked"
    )])
    .await;
    let c = d.signed_in(USER, PASSWORD).await;
    let meera = d.row("MUM-2001");
    let page = c
        .get(&format!(
            "/desk/day/status?row={meera}&action=no_show&date={date}"
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let t = page.text();
    assert!(t.contains("Too early for a no-show"), "{t}");
    assert!(t.contains("at 10:00 has not started yet"), "{t}");
    assert!(
        !page.body.contains("name=\"action\" value=\"no_show\""),
        "no form to confirm"
    );
    let res = c.act(meera, "no_show", "").await;
    assert_eq!(res.status, 409, "{}", res.text());
    assert!(
        res.text().contains("too early for a no-show"),
        "{}",
        res.text()
    );
    // The follow-up card's action list gets the same refusal.
    let res = c
        .post(
            "/desk/follow-ups/action",
            &[
                ("csrf", &c.csrf),
                ("clinic", "mumbai"),
                ("appointment", "MUM-2001"),
                ("date", &date),
                ("action", "no_show"),
                ("sure", "yes"),
            ],
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text());
    assert!(
        res.text().contains("too early for a no-show"),
        "{}",
        res.text()
    );
    // And the command line.
    let r = d.env.run(&["set-status", "MUM-2001", "no_show"]);
    assert_eq!(r.code, 65, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("too early for a no-show"), "{}", r.stderr);
    assert_eq!(
        d.one("SELECT status FROM appointments WHERE external_id = 'MUM-2001'"),
        "booked"
    );
    assert_eq!(
        d.env
            .count("SELECT count(*) FROM audit_log WHERE action = 'status'"),
        0
    );
}

// ---- the board's words -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_board_says_who_answered_what_the_last_message_did_and_filters() {
    let d = start().await;
    let (aarav, priya, rohan, sneha) = (
        d.row("MUM-1001"),
        d.row("MUM-1002"),
        d.row("MUM-1003"),
        d.row("MUM-1004"),
    );
    // 2026-11-25 12:30 UTC is 18:00 in Mumbai, the evening before.
    let failed_at = 1_795_609_800_i64;
    d.env
        .sql()
        .execute_batch(&format!(
            "UPDATE appointments SET response = 'confirmed' WHERE id = {priya};
             INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
               SELECT 'wamid.x', p.phone, p.id, a.id, 'text', 'which day was it?', 'unknown', 'needs_staff', 'not understood', 0
               FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.id = {sneha};
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, last_error_code, last_error, request_at, failed_at, created_at, updated_at)
               VALUES ({aarav}, 'reminder', 'day-before', 0, {failed_at}, 0, 'failed', 131026, '(131026) Message undeliverable', {failed_at}, {failed_at}, 0, 0);
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, request_at, delivered_at, created_at, updated_at)
               VALUES ({rohan}, 'booking_confirmation', 'booking', 0, {failed_at}, 0, 'delivered', {failed_at}, {failed_at}, 0, 0);"
        ))
        .expect("answers and messages");
    let c = d.signed_in(USER, PASSWORD).await;
    let board = c.get(BOARD).await;
    let t = board.text();
    assert!(
        t.contains(
            "8 appointments: 1 confirmed, 5 no answer yet, 1 answered, needs a person, 1 cancelled."
        ),
        "{t}"
    );
    assert!(!t.contains("(s)"), "no (s) plurals: {t}");
    assert!(board.row_text(sneha).contains("answered, needs a person"));
    assert!(board.row_text(aarav).contains("no answer yet"));
    let row = board.row_text(aarav);
    assert!(
        row.contains("Reminder: WhatsApp not delivered, 25 Nov 18:00 this patient cannot be reached on WhatsApp: call them"),
        "{row}"
    );
    assert!(
        board
            .row_text(rohan)
            .contains("Booking message: WhatsApp delivered, 25 Nov 18:00"),
        "{}",
        board.row_text(rohan)
    );
    assert!(
        board
            .body
            .contains("href=\"/desk/day?clinic=mumbai\">Today</a>"),
        "a Today button"
    );

    let rows = |p: &Page| p.body.matches("<tr id=\"a-").count();
    let iyer = c.get(&format!("{BOARD}&doctor=Dr.%20Iyer")).await;
    assert_eq!(rows(&iyer), 3, "{}", iyer.text());
    assert!(
        iyer.text().contains("Showing 3 of 8 appointments."),
        "{}",
        iyer.text()
    );
    let open = c.get(&format!("{BOARD}&unanswered=1")).await;
    assert_eq!(rows(&open), 6, "{}", open.text());
    let both = c
        .get(&format!("{BOARD}&doctor=Dr.%20Mehta&unanswered=1"))
        .await;
    assert_eq!(rows(&both), 2, "{}", both.text());
    // An action from a filtered board comes back to it.
    let res = c
        .post(
            "/desk/day/status",
            &[
                ("csrf", &c.csrf),
                ("row", &aarav.to_string()),
                ("action", "arrived"),
                ("date", DAY),
                ("doctor", "Dr. Mehta"),
                ("unanswered", "1"),
            ],
        )
        .await;
    assert_eq!(
        res.location(),
        format!(
            "/desk/day?clinic=mumbai&date={DAY}&doctor=Dr.%20Mehta&unanswered=1&done=arrived&row={aarav}#a-{aarav}"
        )
    );

    let empty = c.get("/desk/day?clinic=mumbai&date=2026-12-25").await;
    assert!(
        empty.text().contains("No appointments on this day."),
        "{}",
        empty.text()
    );
    assert!(
        empty.body.contains("href=\"/desk/upload\""),
        "a link to Upload"
    );

    // A clinic whose messages use 12-hour times gets them on its board, under its name.
    let nyc = c.get("/desk/day?clinic=nyc&date=2026-11-26").await;
    let t = nyc.text();
    assert!(
        t.contains("Hudson Street Medical, New York — Thursday 26 November 2026"),
        "{t}"
    );
    assert!(t.contains("8:30 AM Maria Gonzalez"), "{t}");
    assert!(t.contains("3:30 PM Carlos Ramirez"), "{t}");
}
