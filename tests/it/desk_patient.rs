//! Finding a patient, the patient's page, the week view and the stats page over HTTP: what a
//! receptionist would notice (the page's words, masked numbers, local times, the order of
//! events, numbers that agree), checked against what is stored (the audit log).

use chrono::{Days, TimeZone as _};
use reminderd::store::sql::params;

use crate::common::{csv, repo_file};
use crate::desk_harness::{Browser, Desk, text};

const USER: &str = "asha";
const PASSWORD: &str = "front-desk-password";

/// `reminderd serve` with its desk on a free port, a user `asha`, and a browser signed in as
/// her.
async fn start() -> (Desk, Browser) {
    let d = Desk::options().user(USER, PASSWORD).start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    (d, b)
}

/// The rows of the table with this class, as text, one string per `<tr>` of its body.
fn rows(html: &str, class: &str) -> Vec<String> {
    let start = html
        .find(&format!("<table class=\"{class}\""))
        .unwrap_or_else(|| panic!("no table {class} in:\n{html}"));
    let table = &html[start..start + html[start..].find("</table>").expect("table end")];
    let body = &table[table.find("<tbody>").expect("tbody")..table.find("</tbody>").expect("end")];
    body.split("<tr")
        .skip(1)
        .map(|r| text(&format!("<tr{r}")))
        .collect()
}

/// A day in Mumbai `days` from today, as the schedule writes it.
fn mumbai_day(days: u64) -> String {
    let now = reminderd::time::Clock::System.now();
    let today = now.with_timezone(&chrono_tz::Asia::Kolkata).date_naive();
    (today + Days::new(days)).format("%Y-%m-%d").to_string()
}

/// Unix seconds of a Mumbai wall time on the example schedule's days.
fn ist(day: u32, hour: u32, minute: u32) -> i64 {
    chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
        .single()
        .expect("a Mumbai time")
        .timestamp()
}

// ---- search --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn search_finds_patients_by_part_of_a_name_the_last_digits_or_an_appointment_id() {
    let (d, b) = start().await;
    let day = mumbai_day(2);
    let file = d.env.file(
        "week.csv",
        csv(&[
            &format!(
                "A-1,P-1,Priya Patil,+91 98765 43210,mr,{day},10:00,15,Dr. Mehta,mumbai,booked"
            ),
            &format!("A-2,P-2,Priya Patel,99876 54321,en,{day},10:30,15,Dr. Iyer,mumbai,booked"),
            &format!("A-3,P-3,Aarav Sharma,98200 12345,en,{day},11:00,15,Dr. Mehta,mumbai,booked"),
            &format!(
                "NYC-9,N-1,Lucía Hernández,+1 347 555 0123,es,{day},09:00,30,Dr. Chen,nyc,booked"
            ),
        ]),
    );
    d.import_file(&file);

    let page = b.get("/desk/patients?q=priya+pat").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let found = rows(&page.body, "results");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(page.text().contains("2 patients match"), "{}", page.text());
    assert!(
        found[1].starts_with("Priya Patil +91******3210 Sunrise Family Clinic, Andheri"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("10:00 with Dr. Mehta"),
        "next appointment: {found:#?}"
    );
    assert!(
        !page.body.contains("9876543210"),
        "no whole number in the results"
    );

    let patil = b.get("/desk/patients?q=PATIL").await;
    assert_eq!(rows(&patil.body, "results").len(), 1, "{}", patil.text());
    let accents = b.get("/desk/patients?q=lucia+hernandez").await;
    assert!(
        rows(&accents.body, "results")[0].starts_with("Lucía Hernández +1******0123"),
        "{}",
        accents.text()
    );

    for typed in [
        "12345",
        "2345",
        "98200+12345",
        "098200+12345",
        "%2B91+98200+12345",
    ] {
        let page = b.get(&format!("/desk/patients?q={typed}")).await;
        let found = rows(&page.body, "results");
        assert_eq!(found.len(), 1, "{typed}: {found:#?}");
        assert!(
            found[0].starts_with("Aarav Sharma +91******2345")
                && found[0].ends_with("phone number"),
            "{typed}: {found:#?}"
        );
    }

    let by_id = b.get("/desk/patients?q=a-1").await;
    let found = rows(&by_id.body, "results");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].ends_with("appointment A-1"), "{found:#?}");
    // The result leads to the patient's page.
    let patient = d.id("SELECT id FROM patients WHERE external_id = 'P-1'");
    assert!(
        by_id
            .body
            .contains(&format!("href=\"/desk/patient?id={patient}\""))
    );
    let page = b.get(&format!("/desk/patient?id={patient}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1>Priya Patil</h1>"), "{}", page.body);

    let nobody = b.get("/desk/patients?q=zzz").await;
    assert!(
        nobody.text().contains("Nobody matches “zzz”"),
        "{}",
        nobody.text()
    );
    // Every page has the search box.
    assert!(nobody.body.contains("action=\"/desk/patients\""));
    let board = b.get("/desk/day").await;
    assert!(
        board.body.contains("<form class=\"search\""),
        "{}",
        board.body
    );
}

// ---- the patient's page --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_patient_page_tells_messages_replies_and_notes_in_time_order_in_local_time() {
    let (d, b) = start().await;
    d.import_file(&repo_file("examples/schedule.csv"));
    let appointment = d.id("SELECT id FROM appointments WHERE external_id = 'MUM-1002'");
    let patient = d.id("SELECT patient_id FROM appointments WHERE external_id = 'MUM-1002'");
    let sql = d.env.sql();
    // The day-before reminder at 09:30 on the 25th, read; her "yes" at 09:41; a call at
    // 09:35 in between; the same-day reminder skipped once she had confirmed; and a booking
    // confirmation that failed on the 20th.
    sql.execute(
        "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, request_at, sent_at, delivered_at, read_at, created_at, updated_at)
         VALUES (?1, 'reminder', 'day-before', ?2, ?3, ?3, 'read', ?3, ?3, CAST(?3 AS BIGINT) + 60, CAST(?3 AS BIGINT) + 120, 0, 0)",
        params![appointment, ist(26, 9, 30), ist(25, 9, 30)],
    )
    .expect("reminder");
    sql.execute(
        "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, reason, created_at, updated_at)
         VALUES (?1, 'reminder', 'same-day', ?2, ?3, ?3, 'skipped', 'the patient confirmed', 0, ?4)",
        params![appointment, ist(26, 9, 30), ist(26, 7, 30), ist(25, 9, 42)],
    )
    .expect("skipped");
    sql.execute(
        "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, request_at, failed_at, last_error_code, created_at, updated_at)
         VALUES (?1, 'booking_confirmation', 'booking', ?2, ?3, ?3, 'failed', ?3, ?3, 131047, 0, 0)",
        params![appointment, ist(26, 9, 30), ist(20, 18, 0)],
    )
    .expect("booking");
    sql.execute(
        "INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, received_at)
         VALUES ('wamid.yes', '+919876543210', ?1, ?2, 'text', 'yes', 'confirm', 'applied', ?3)",
        params![patient, appointment, ist(25, 9, 41)],
    )
    .expect("reply");
    sql.execute(
        "INSERT INTO audit_log (at, appointment_id, actor, action, reason) VALUES (?1, ?2, 'staff:ravi', 'called', 'asked her to bring reports')",
        params![ist(25, 9, 35), appointment],
    )
    .expect("note");

    let page = b.get(&format!("/desk/patient?id={patient}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let t = page.text();
    assert!(t.contains("Phone +91******3210 Show"), "{t}");
    assert!(t.contains("Language Marathi (mr)"), "{t}");
    assert!(t.contains("WhatsApp messages receives reminders"), "{t}");
    let appointments = rows(&page.body, "appointments");
    assert_eq!(
        appointments,
        ["Thu 26 Nov 2026, 09:30 (past) Dr. Mehta booked no answer yet MUM-1002"],
        "{appointments:#?}"
    );
    let timeline = rows(&page.body, "timeline");
    assert_eq!(timeline.len(), 5, "{timeline:#?}");
    let want = [
        "Fri 20 Nov 2026, 18:00 Clinic, by WhatsApp Booking confirmation for Thu 26 Nov 2026, 09:30 with Dr. Mehta · WhatsApp · failed: more than 24 hours passed",
        "Wed 25 Nov 2026, 09:30 Clinic, by WhatsApp Reminder “Day before” for Thu 26 Nov 2026, 09:30 with Dr. Mehta · WhatsApp · read by the patient (delivered Wed 25 Nov 2026, 09:31, read Wed 25 Nov 2026, 09:32)",
        "Wed 25 Nov 2026, 09:35 ravi called the patient · Thu 26 Nov 2026, 09:30 with Dr. Mehta · asked her to bring reports",
        "Wed 25 Nov 2026, 09:41 Priya Patil Wrote yes · understood as: will come (confirmed) (for Thu 26 Nov 2026, 09:30 with Dr. Mehta)",
        "Wed 25 Nov 2026, 09:42 Clinic, by WhatsApp Reminder “2 hours before” for Thu 26 Nov 2026, 09:30 with Dr. Mehta · WhatsApp · not sent: the patient confirmed",
    ];
    for (row, want) in timeline.iter().zip(want) {
        assert!(
            row.starts_with(want),
            "\n{row}\ndoes not start with\n{want}"
        );
    }
    assert!(!t.contains("(s)") && !t.contains("day-before"), "{t}");

    // The day board's rows can link by appointment; both lead to the same page.
    let via = b
        .get(&format!("/desk/patient?appointment={appointment}"))
        .await;
    assert_eq!(rows(&via.body, "timeline"), timeline);
    for bad in ["id=999999", "id=abc", "appointment=999999", ""] {
        let page = b.get(&format!("/desk/patient?{bad}")).await;
        assert_eq!(page.status, 404, "{bad}");
        assert!(
            page.text().contains("No such patient"),
            "{bad}: {}",
            page.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reveal_on_the_patient_page_is_audited_and_shows_the_number_only_to_who_asked() {
    let (d, mut b) = start().await;
    d.import_file(&repo_file("examples/schedule.csv"));
    let patient = d.id("SELECT patient_id FROM appointments WHERE external_id = 'MUM-1002'");
    let reveals = "SELECT count(*) FROM audit_log WHERE action = 'reveal_phone'";
    let id = patient.to_string();

    let wrong = b
        .post(
            "/desk/patient/reveal",
            &[("csrf", "0".repeat(64).as_str()), ("patient", &id)],
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let missing = b
        .post(
            "/desk/patient/reveal",
            &[("csrf", b.csrf.as_str()), ("patient", "999999")],
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(d.count(reveals), 0, "nothing shown, nothing audited");

    let res = b
        .post(
            "/desk/patient/reveal",
            &[("csrf", b.csrf.as_str()), ("patient", &id)],
        )
        .await;
    assert_eq!(res.status, 303, "post/redirect/get: {}", res.body);
    let back = res.location().to_string();
    assert!(
        back.starts_with(&format!("/desk/patient?id={patient}&shown=")),
        "{back}"
    );
    assert!(back.ends_with("#phone"), "{back}");
    let shown = b.get(back.trim_end_matches("#phone")).await;
    assert!(
        shown.body.contains("href=\"tel:+919876543210\""),
        "{}",
        shown.body
    );
    let (actor, who, at_appointment): (String, i64, Option<i64>) = d
        .env
        .sql()
        .query_row(
            "SELECT actor, patient_id, appointment_id FROM audit_log WHERE action = 'reveal_phone'",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one reveal row");
    assert_eq!(
        (actor.as_str(), who, at_appointment),
        ("staff:asha", patient, None)
    );
    // Reloading shows it again without a second audit row; the page lists the reveal.
    let again = b.get(back.trim_end_matches("#phone")).await;
    assert!(again.body.contains("tel:+919876543210"));
    assert!(
        again.text().contains("asha showed the whole phone number"),
        "{}",
        again.text()
    );
    assert_eq!(d.count(reveals), 1);

    // The same link in someone else's session shows the masked number.
    d.env
        .run_with_input(&["user", "add", "ravi"], "another-password\n")
        .expect(0);
    b = d.signed_in("ravi", "another-password").await;
    let other = b.get(back.trim_end_matches("#phone")).await;
    assert_eq!(other.status, 200);
    assert!(!other.body.contains("+919876543210"), "{}", other.body);
    assert!(
        other.text().contains("+91******3210 Show"),
        "{}",
        other.text()
    );
}

// ---- the week ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_week_counts_booked_confirmed_unanswered_and_cancelled_per_day_and_doctor() {
    let (d, b) = start().await;
    d.import_file(&repo_file("examples/schedule.csv"));
    d.env
        .sql()
        .execute_batch(
            "UPDATE appointments SET response = 'confirmed' WHERE external_id IN ('MUM-1001', 'MUM-1003');
             UPDATE appointments SET response = 'reschedule_requested' WHERE external_id = 'MUM-1004';",
        )
        .expect("answers");
    let page = b.get("/desk/week?clinic=mumbai&week=2026-11-27").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let t = page.text();
    assert!(
        t.contains("Week of 23 November 2026 — Sunrise Family Clinic, Andheri"),
        "{t}"
    );
    assert!(
        t.contains("Monday 23 Nov to Sunday 29 Nov 2026: 7 appointments booked, 2 confirmed, 4 with no answer yet, 1 cancelled."),
        "{t}"
    );
    let days = rows(&page.body, "week");
    assert_eq!(days.len(), 7, "{days:#?}");
    assert_eq!(days[0], "Monday 23 Nov 0 0 0 0");
    assert_eq!(days[3], "Thursday 26 Nov 7 2 4 1");
    assert!(
        page.body
            .contains("href=\"/desk/day?clinic=mumbai&amp;date=2026-11-26\"")
    );
    let doctors_at = page.body.find("By doctor").expect("doctor table");
    let table_at = page.body[..doctors_at].rfind("<table").expect("its table");
    let doctors = rows(&page.body[table_at..], "week");
    assert_eq!(
        doctors,
        [
            "Dr. Iyer 3 1 2 0",
            "Dr. Mehta 3 1 1 1",
            "Physiotherapy 1 0 1 0"
        ],
        "{doctors:#?}"
    );
    let bad = b.get("/desk/week?clinic=mumbai&week=soon").await;
    assert_eq!(bad.status, 400);
}

// ---- stats ---------------------------------------------------------------------------------

/// The numbers in a chart's bar titles for one series: (value, of) per bar.
fn chart_bars(html: &str, series: &str) -> Vec<(i64, i64)> {
    html.split(&format!("<title>{series}: "))
        .skip(1)
        .map(|rest| {
            let reading = &rest[..rest.find("</title>").expect("title end")];
            let counts = reading.rsplit('(').next().expect("counts");
            let (value, of) = counts
                .trim_end_matches(')')
                .split_once(" of ")
                .expect("value of total");
            (value.parse().expect("value"), of.parse().expect("of"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_no_shows_the_same_way_in_the_headline_the_chart_and_the_table() {
    let (d, b) = start().await;
    d.import_file(&repo_file("examples/schedule.csv"));
    // Day-before reminders out for 1001, 1002, 1005, 1007; a same-day one after it for 1002;
    // 1003's only reminder failed. 1001 and 1005 confirmed. No-shows: 1001 (had confirmed),
    // 1002 (reminded), 1003 (unreachable), 1004 (never reminded).
    let sql = d.env.sql();
    for (id, rule, state, hours) in [
        ("MUM-1001", "day-before", "delivered", 24),
        ("MUM-1002", "day-before", "delivered", 24),
        ("MUM-1002", "same-day", "read", 2),
        ("MUM-1005", "day-before", "read", 24),
        ("MUM-1007", "day-before", "read", 24),
        ("MUM-1003", "day-before", "failed", 24),
    ] {
        sql.execute(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, request_at, created_at, updated_at)
             SELECT id, 'reminder', ?2, starts_at, starts_at - ?4 * 3600, starts_at, ?3, starts_at - ?4 * 3600, 0, 0
             FROM appointments WHERE external_id = ?1",
            params![id, rule, state, hours],
        )
        .expect("reminder");
    }
    sql.execute_batch(
        "UPDATE appointments SET response = 'confirmed' WHERE external_id IN ('MUM-1001', 'MUM-1005');
         UPDATE appointments SET status = 'no_show' WHERE external_id IN ('MUM-1001', 'MUM-1002', 'MUM-1003', 'MUM-1004');
         UPDATE appointments SET status = 'completed' WHERE external_id = 'MUM-1005';",
    )
    .expect("outcomes");
    let page = b
        .get("/desk/stats?clinic=mumbai&from=2026-11-01&to=2026-11-30")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let t = page.text();
    for said in [
        "8 appointments from 1 Nov to 30 Nov 2026",
        "reminded: 4 of 8 appointments (50%)",
        "confirmed: 2 of 4 reminded appointments (50%)",
        "no-shows: 4 of 8 appointments (50%)",
        "cancelled: 1 of 8 appointments (13%)",
        "Of the 4 no-shows: 1 had confirmed, 1 had been reminded without confirming, 1 could not be reached on WhatsApp, 1 had been sent no reminder.",
    ] {
        assert!(t.contains(said), "{said:?} not in:\n{t}");
    }
    assert!(!t.contains("(s)") && !t.contains("day-before"), "{t}");

    // The table: the groups, then their total.
    let table = rows(&page.body, "per-rule");
    assert_eq!(
        table,
        [
            "Day before 3 2 (67%) 0 (0%) 1 (33%)",
            "2 hours before 1 0 (0%) 0 (0%) 1 (100%)",
            "No reminder sent 4 0 (0%) 1 (25%) 2 (50%)",
        ],
        "{table:#?}"
    );
    let no_show_cells: i64 = table
        .iter()
        .map(|r| {
            let cells: Vec<&str> = r.rsplitn(3, ' ').collect();
            cells[1].parse::<i64>().expect("no-show count")
        })
        .sum();
    let foot = text(&page.body[page.body.find("<tfoot>").expect("tfoot")..]);
    assert!(
        foot.starts_with("All appointments 8 2 (25%) 1 (13%) 4 (50%)"),
        "{foot}"
    );

    // The chart: the same groups, the same no-shows.
    let chart = chart_bars(&page.body, "No-show");
    assert_eq!(chart, [(1, 3), (1, 1), (2, 4)], "{}", page.body);
    let chart_no_shows: i64 = chart.iter().map(|(v, _)| v).sum();
    assert_eq!(
        (no_show_cells, chart_no_shows),
        (4, 4),
        "headline, table and chart agree"
    );

    // The weekly trend: Monday-to-Sunday weeks of the range, adding up to the headline.
    let trend = rows(&page.body, "trend");
    assert_eq!(trend.len(), 6, "{trend:#?}");
    assert_eq!(trend[0], "Sun 1 Nov 0 0 0 (–) 0");
    assert_eq!(trend[4], "23 Nov – 29 Nov 8 4 2 (50%) 4");
    assert_eq!(trend[5], "Mon 30 Nov 0 0 0 (–) 0");
    assert!(page.body.contains(
        "<th scope=\"row\">Whole range</th><td>8</td><td>4</td><td>2 (50%)</td><td>4</td>"
    ));
}
