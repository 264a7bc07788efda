//! The schedule upload at the desk over HTTP: a re-uploaded old export says what it undoes,
//! per patient, and warns; staff can keep the statuses set at the desk; the upload page says
//! when the schedule was last uploaded and by whom; the preview counts booking messages.

use chrono::{DateTime, Duration as Span, NaiveDate, Utc};
use reqwest::multipart;

use crate::common::{Env, csv};
use crate::desk_harness::{Browser, Desk, Page, csv_part, field, text};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";

/// Mumbai's date `days` from the real today (the desk runs on the system clock).
fn mumbai_day(now: DateTime<Utc>, days: i64) -> NaiveDate {
    (now + Span::days(days))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive()
}

/// Five Mumbai appointments on `day`, as the clinic system exports them.
fn schedule(day: NaiveDate) -> String {
    let d = day.format("%Y-%m-%d");
    csv(&[
        &format!("A1,P1,Asha Rao,98200 11111,en,{d},09:00,15,Dr. Mehta,mumbai,booked"),
        &format!("A2,P2,Ravi Iyer,98200 22222,en,{d},09:30,15,Dr. Mehta,mumbai,booked"),
        &format!("A3,P3,Meena Das,98200 33333,en,{d},10:00,15,Dr. Mehta,mumbai,booked"),
        &format!("A4,P4,Dev Patel,98200 44444,en,{d},10:30,15,Dr. Mehta,mumbai,booked"),
        &format!("A5,P5,Kiran Shah,98200 55555,en,{d},11:00,15,Dr. Mehta,mumbai,booked"),
    ])
}

/// The morning the issue describes, up to the re-upload: last week's export was imported,
/// then this week's moved the appointments to three days from now; two patients confirmed,
/// one cancelled by replying, asha set a no-show and ravi a cancellation at the desk.
/// Returns last week's export, the file to re-upload.
pub(crate) fn old_export_morning(env: &Env) -> String {
    let now = reminderd::time::Clock::System.now();
    let old = schedule(mumbai_day(now, -7));
    env.import("old.csv", &old, &[]).expect(0);
    env.import("current.csv", &schedule(mumbai_day(now, 3)), &[])
        .expect(0);
    let t = now.timestamp();
    env.sql()
        .execute_batch(&format!(
            "UPDATE appointments SET response = 'confirmed', response_at = {t} WHERE external_id IN ('A1', 'A2');
             UPDATE appointments SET response = 'declined', response_at = {t}, status = 'cancelled',
                 cancelled_by = 'patient', status_at = {t} WHERE external_id = 'A3';
             INSERT INTO audit_log (at, appointment_id, actor, action, old_value, new_value)
                 SELECT {t}, id, 'patient', 'cancel', 'booked', 'cancelled' FROM appointments WHERE external_id = 'A3';"
        ))
        .expect("patients answer");
    // A no-show can only be set once the appointment's time has passed (the desk refuses it
    // before), so asha's is written as the desk writes it, as if set then; ravi's
    // cancellation goes through the command line.
    env.sql()
        .execute_batch(&format!(
            "UPDATE appointments SET status = 'no_show', status_at = {t}, updated_at = {t} WHERE external_id = 'A4';
             INSERT INTO audit_log (at, appointment_id, actor, action, old_value, new_value)
                 SELECT {t}, id, 'staff:asha', 'status', 'booked', 'no_show' FROM appointments WHERE external_id = 'A4';"
        ))
        .expect("asha sets a no-show");
    env.run_with_env(
        &["set-status", "A5", "cancelled", "--clinic", "mumbai"],
        &[("USER", "ravi")],
    )
    .expect(0);
    old
}

/// `reminderd serve` in `env` with a staff account, and a browser signed in on the upload page.
async fn start(env: Env) -> (Desk, Browser) {
    let d = Desk::options_on(env).user(USER, PASSWORD).start().await;
    let b = d.signed_in_via(USER, PASSWORD, "/desk/upload").await;
    (d, b)
}

fn assert_has(t: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(t.contains(w), "{w:?} in:\n{t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_export_names_what_it_undoes_and_desk_statuses_can_be_kept() {
    let env = Env::new();
    let old = old_export_morning(&env);
    let (d, b) = start(env).await;

    let Page {
        status,
        body: preview,
        ..
    } = b
        .upload(&b.csrf, "", "old.csv", old.clone().into_bytes())
        .await;
    assert_eq!(status, 200, "{preview}");
    let t = text(&preview);
    assert_has(
        &t,
        &[
            "Check this file before you confirm.",
            "This file moves 5 appointments to earlier times that have already passed.",
            "This file looks older than the schedule already saved: 5 of the 5 appointments it moves or books again go back to what a later upload had changed.",
            "This is the same file as",
            "by the administrator; 1 upload since then changed the schedule.",
            "What this undoes",
            "Asha Rao (",
            "): had confirmed: will be asked again",
            "Meena Das (",
            "): had cancelled it themselves: books them again",
            "): set to no-show at the desk by asha: reverses it",
            "): set to cancelled at the desk by ravi: reverses it",
            "Keep statuses set at the desk (no-show, cancelled, completed)",
        ],
    );
    // Each undo is named by its patient: the no-show is Dev Patel's, the confirmations are
    // Asha's and Ravi's.
    for (patient, undo) in [
        ("Dev Patel", "set to no-show at the desk by asha"),
        ("Ravi Iyer", "had confirmed: will be asked again"),
        ("Kiran Shah", "set to cancelled at the desk by ravi"),
    ] {
        let line = preview
            .split("<li>")
            .map(text)
            .find(|l| l.starts_with(patient) && l.contains(undo));
        assert!(line.is_some(), "{patient}: {undo} in:\n{t}");
    }
    assert!(
        preview.contains("role=\"alert\""),
        "the warnings are an alert"
    );

    // Keep the desk's statuses: confirm with the box ticked.
    let token = field(&preview, "token");
    let Page { body: done, .. } = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token), ("keep", "1")],
            "/desk/upload/done?token=",
        )
        .await;
    let t = text(&done);
    assert_has(
        &t,
        &[
            "Schedule imported",
            "2 statuses set at the desk were kept as they were:",
            "Dev Patel : no-show, set at the desk by asha",
            "Kiran Shah : cancelled, set at the desk by ravi",
        ],
    );
    let state = |id: &str| {
        d.one(&format!(
            "SELECT status || ' ' || response FROM appointments WHERE external_id = '{id}'"
        ))
    };
    assert_eq!(
        state("A4"),
        "no_show none",
        "the no-show set at the desk stays"
    );
    assert_eq!(
        state("A5"),
        "cancelled none",
        "the desk's cancellation stays"
    );
    assert_eq!(
        state("A1"),
        "booked none",
        "moved: the patient is asked again"
    );
    assert_eq!(state("A3"), "booked none", "moved: booked again");
    assert_eq!(
        d.one("SELECT count(*) || '' FROM audit_log WHERE action = 'status_kept'"),
        "2"
    );
    assert!(
        d.one("SELECT reason FROM audit_log WHERE action = 'upload_confirmed'")
            .ends_with(", 2 desk statuses kept"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_box_the_desk_statuses_are_reversed_as_the_preview_said() {
    let env = Env::new();
    let old = old_export_morning(&env);
    let (d, b) = start(env).await;
    let Page { body: preview, .. } = b.upload(&b.csrf, "", "old.csv", old.into_bytes()).await;
    let token = field(&preview, "token");
    let Page { body: done, .. } = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token)],
            "/desk/upload/done?token=",
        )
        .await;
    assert!(!text(&done).contains("kept"), "{}", text(&done));
    let status_of = |id: &str| {
        d.one(&format!(
            "SELECT status FROM appointments WHERE external_id = '{id}'"
        ))
    };
    assert_eq!(status_of("A4"), "booked");
    assert_eq!(status_of("A5"), "booked");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upload_page_says_who_uploaded_last_and_the_preview_counts_booking_messages() {
    let env = Env::new();
    let (_d, b) = start(env).await;
    let page = b.get("/desk/upload").await.body;
    let t = text(&page);
    assert_has(
        &t,
        &[
            "Last upload",
            "Sunrise Family Clinic, Andheri : never uploaded",
            "Schedule file (CSV or spreadsheet)",
        ],
    );
    assert!(page.contains("accept=\".csv,.xlsx,.ods"), "{page}");

    // Two new patients in the future (one with two appointments), and one appointment that
    // is already over: two booking messages.
    let now = reminderd::time::Clock::System.now();
    let (soon, past) = (
        mumbai_day(now, 4).format("%Y-%m-%d").to_string(),
        mumbai_day(now, -2).format("%Y-%m-%d").to_string(),
    );
    let file = csv(&[
        &format!("B1,Q1,Asha Rao,98200 11111,en,{soon},09:00,15,Dr. Mehta,mumbai,booked"),
        &format!("B2,Q1,Asha Rao,98200 11111,en,{soon},12:00,15,Dr. Mehta,mumbai,booked"),
        &format!("B3,Q2,Ravi Iyer,98200 22222,en,{soon},09:30,15,Dr. Mehta,mumbai,booked"),
        &format!("B4,Q3,Meena Das,98200 33333,en,{past},09:30,15,Dr. Mehta,mumbai,booked"),
    ]);
    let Page {
        status,
        body: preview,
        ..
    } = b.upload(&b.csrf, "", "week.csv", file.into_bytes()).await;
    assert_eq!(status, 200, "{preview}");
    let t = text(&preview);
    assert_has(&t, &["2 patients get a booking message when you confirm."]);
    assert!(
        !t.contains("Check this file"),
        "no warning for a fresh file: {t}"
    );
    let token = field(&preview, "token");
    b.post(
        "/desk/upload/confirm",
        &[("csrf", &b.csrf), ("token", &token)],
    )
    .await;

    let page = b.get("/desk/upload").await.body;
    let t = text(&page);
    assert_has(
        &t,
        &[
            "Sunrise Family Clinic, Andheri : ",
            " by alice (week.csv: 4 new, 0 updated, 0 cancelled)",
            "Hudson Street Medical, New York : never uploaded",
        ],
    );
}

#[test]
fn the_command_line_import_prints_the_same_warnings_and_undoes() {
    let env = Env::new();
    old_export_morning(&env);
    let old = env.path("old.csv");
    let r = env
        .run(&["import", old.to_str().expect("utf-8 path"), "--dry-run"])
        .expect(0);
    assert_has(
        &r.stdout,
        &[
            "WARNING: This file moves 5 appointments to earlier times that have already passed.",
            "WARNING: This file looks older than the schedule already saved",
            "WARNING: This is the same file as old.csv, uploaded on ",
            "Confirming this import undoes what people did:",
            "had confirmed: will be asked again",
            "Meena Das (",
            "mumbai/A3): had cancelled it themselves: books them again",
            "mumbai/A4): set to no-show at the desk by asha: reverses it",
        ],
    );
    assert!(
        r.stdout.contains("Asha Rao (") && r.stdout.contains("mumbai/A1): had confirmed"),
        "{}",
        r.stdout
    );
}

/// Adds `lines` to the `[clinics.KEY]` table of the test folder's config.
fn clinic_setting(env: &Env, clinic: &str, lines: &str) {
    let path = env.path("reminders.toml");
    let table = format!("[clinics.{clinic}]\n");
    let text = std::fs::read_to_string(&path)
        .expect("read config")
        .replacen(&table, &format!("{table}{lines}\n"), 1);
    std::fs::write(path, text).expect("write config");
}

/// One spreadsheet row: appointment id, patient's name, phone, (year, month, day), (hour,
/// minute).
type SheetRow<'a> = (&'a str, &'a str, &'a str, (u16, u8, u8), (u16, u8));

/// An .xlsx of the default header and these rows, dates and times as real cells.
fn xlsx(rows: &[SheetRow<'_>]) -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let (date, time) = (
        Format::new().set_num_format("dd/mm/yyyy"),
        Format::new().set_num_format("h:mm AM/PM"),
    );
    let header = crate::common::HEADER.split(',');
    for (c, h) in header.enumerate() {
        sheet.write_string(0, c as u16, h).expect("header");
    }
    for (r, (id, name, phone, (y, m, d), (h, mi))) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        sheet.write_string(r, 0, *id).expect("id");
        sheet
            .write_string(r, 1, format!("P-{id}"))
            .expect("patient");
        sheet.write_string(r, 2, *name).expect("name");
        // Spreadsheets often hold a phone number as a number.
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        sheet
            .write_number(r, 3, digits.parse::<f64>().expect("digits"))
            .expect("phone");
        sheet.write_string(r, 4, "en").expect("language");
        let day = ExcelDateTime::from_ymd(*y, *m, *d).expect("date");
        sheet
            .write_datetime_with_format(r, 5, &day, &date)
            .expect("date");
        let at = ExcelDateTime::from_hms(*h, *mi, 0).expect("time");
        sheet
            .write_datetime_with_format(r, 6, &at, &time)
            .expect("time");
        sheet.write_number(r, 7, 15).expect("duration");
        sheet.write_string(r, 8, "Dr. Mehta").expect("provider");
        sheet.write_string(r, 9, "mumbai").expect("clinic");
    }
    book.save_to_buffer().expect("xlsx")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spreadsheet_and_the_clinics_own_dates_upload_as_they_are() {
    let env = Env::new();
    clinic_setting(&env, "mumbai", "date_order = \"dmy\"");
    let (_d, b) = start(env).await;

    let book = xlsx(&[
        ("X1", "Asha Rao", "98200 11111", (2026, 11, 26), (9, 30)),
        ("X2", "Ravi Iyer", "98200 22222", (2026, 11, 26), (14, 0)),
    ]);
    let Page {
        status,
        body: preview,
        ..
    } = b.upload(&b.csrf, "", "week.xlsx", book).await;
    assert_eq!(status, 200, "{}", text(&preview));
    let t = text(&preview);
    assert_has(
        &t,
        &[
            "Preview of week.xlsx",
            "2 new",
            "Asha Rao Thu 26 Nov 09:30 +91******1111",
            "Ravi Iyer Thu 26 Nov 14:00",
        ],
    );

    // Mumbai writes day first; New York has no date order, so an ambiguous date is refused
    // with both readings and no advice a receptionist cannot follow.
    let file = csv(&[
        "M1,P1,Asha Rao,98200 11111,en,26/11/2026,09:30,15,Dr. Mehta,mumbai,booked",
        "N1,Q1,Ann Lee,212-867-5309,en,03/04/2027,10:00,15,Dr. Kim,nyc,booked",
        "M2,P2,Dev Rao,98200 1234,en,2026-11-26,10:00,15,Dr. Mehta,mumbai,booked",
    ]);
    let Page {
        status, body: page, ..
    } = b.upload(&b.csrf, "", "dates.csv", file.into_bytes()).await;
    assert_eq!(status, 422, "{}", text(&page));
    let t = text(&page);
    assert_has(
        &t,
        &[
            "Nothing was imported: 2 problems in dates.csv.",
            "3 Ann Lee date 03/04/2027 03/04/2027 could be 3 April or 4 March: ask the administrator to set the clinic's date order",
            "4 Dev Rao phone 98200 1234 not a valid Indian mobile number: it has 9 digits, mobile numbers have 10",
        ],
    );
    for advice in ["reminders.toml", "--clinic", "date_order"] {
        assert!(!t.contains(advice), "no {advice} on the page: {t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clinic_that_allows_it_imports_the_good_rows_and_says_which_are_left_out() {
    let env = Env::new();
    clinic_setting(&env, "mumbai", "import_partial = true");
    let file = csv(&[
        "M1,P1,Asha Rao,98200 11111,en,2026-11-26,09:30,15,Dr. Mehta,mumbai,booked",
        "M2,P2,Dev Rao,98200 1234,en,2026-11-26,10:00,15,Dr. Mehta,mumbai,booked",
        "M3,P3,Meena Das,98200 33333,en,2026-11-26,10:30,15,Dr. Mehta,mumbai,booked",
    ]);
    // The command line imports the good rows too, lists the one left out, and exits 65.
    let cli = env.file("part.csv", &file);
    let r = env
        .run(&["import", cli.to_str().expect("utf-8 path"), "--dry-run"])
        .expect(65);
    assert_has(
        &r.stdout,
        &[
            "2 row(s): 2 new",
            "1 row with a problem left out (their appointments are unchanged)",
            "row 3 (Dev Rao), column \"phone\": not a valid Indian mobile number: it has 9 digits",
        ],
    );
    let (d, b) = start(env).await;

    let Page {
        status,
        body: preview,
        ..
    } = b
        .upload(&b.csrf, "", "part.csv", file.clone().into_bytes())
        .await;
    assert_eq!(status, 200, "{}", text(&preview));
    let t = text(&preview);
    assert_has(
        &t,
        &[
            "2 new",
            "Rows left out",
            "1 row of part.csv has a problem and will not be imported; the other rows will.",
            "3 Dev Rao phone 98200 1234 not a valid Indian mobile number",
        ],
    );
    let token = field(&preview, "token");
    let Page { body: done, .. } = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token)],
            "/desk/upload/done?token=",
        )
        .await;
    assert_has(&text(&done), &["1 row with a problem was left out"]);
    assert_eq!(
        d.one("SELECT group_concat(external_id, ' ') FROM (SELECT external_id FROM appointments ORDER BY 1) AS s"),
        "M1 M3"
    );
    assert!(
        d.one("SELECT reason FROM audit_log WHERE action = 'upload_confirmed'")
            .ends_with(", 1 row left out")
    );

    // A whole-schedule file is never imported in part: a left-out row would be cancelled.
    let form = multipart::Form::new()
        .text("csrf", b.csrf.clone())
        .text("clinic", "")
        .text("complete", "1")
        .part("file", csv_part("part.csv", file.into_bytes()));
    let r = b.send_upload(form).await;
    assert_eq!(r.status, 422);
    assert_has(&r.text(), &["Nothing was imported"]);
}
