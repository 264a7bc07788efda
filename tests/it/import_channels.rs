//! `reminderd import` with the optional who-and-how columns (issue 14): `channel`, `remind` and
//! the caregiver's `contact_name`, `contact_phone` and `contact_relation`, stored on the patient.

use std::fmt::Write as _;

use crate::common::{Env, HEADER, csv, repo_file};

const REACH: &str = "channel,remind,contact_name,contact_phone,contact_relation";

/// Aarav (a child) is reminded through his mother by SMS; Priya by WhatsApp herself.
const AARAV: &str = "A1,P1,Aarav Sharma,98200 12345,en,2027-01-15,09:00,15,Dr. Mehta,mumbai,booked";
const PRIYA: &str = "A2,P2,Priya Patil,+91 98765 43210,mr,2027-01-15,09:30,15,Dr. Mehta,mumbai,";

/// A file under the default header plus the reach columns; each row is (row, reach cells).
fn with_reach(rows: &[(&str, &str)]) -> String {
    rows.iter()
        .fold(format!("{HEADER},{REACH}\n"), |mut s, (row, reach)| {
            writeln!(s, "{row},{reach}").expect("writing to a String");
            s
        })
}

/// (channel, remind, contact_name, contact_phone, contact_relation) as stored.
type Stored = (
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn stored(env: &Env, patient: &str) -> Stored {
    env.sql()
        .query_row(
            "SELECT channel, remind, contact_name, contact_phone, contact_relation
             FROM patients WHERE external_id = ?1",
            [patient],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("patient stored")
}

fn mother_by_sms() -> Stored {
    (
        Some("sms".into()),
        "contact".into(),
        Some("Sunita Sharma".into()),
        Some("+919820054321".into()),
        Some("mother".into()),
    )
}

fn nothing_said() -> Stored {
    (None, "patient".into(), None, None, None)
}

/// Imports the caregiver file and checks it was stored.
fn import_caregiver(env: &Env) {
    let file = with_reach(&[
        (AARAV, "SMS,caregiver,Sunita Sharma,98200 54321,mother"),
        (PRIYA, ",,,,"),
    ]);
    let r = env.import("rich.csv", &file, &[]).expect(0);
    assert_eq!(r.json()["new"], 2, "{}", r.stdout);
    assert_eq!(stored(env, "P1"), mother_by_sms());
}

#[test]
fn a_file_with_the_columns_stores_who_is_reminded_and_how() {
    let env = Env::new();
    // A dry run sees the same file and writes nothing.
    let file = with_reach(&[
        (AARAV, "SMS,caregiver,Sunita Sharma,98200 54321,mother"),
        (PRIYA, "WhatsApp,,,,"),
    ]);
    let dry = env.import("rich.csv", &file, &["--dry-run"]).expect(0);
    assert_eq!(dry.json()["new"], 2);
    assert_eq!(env.count("SELECT count(*) FROM patients"), 0);

    env.import("rich.csv", &file, &[]).expect(0);
    assert_eq!(stored(&env, "P1"), mother_by_sms());
    assert_eq!(
        stored(&env, "P2"),
        (Some("whatsapp".into()), "patient".into(), None, None, None)
    );
}

#[test]
fn a_later_file_without_the_columns_keeps_what_an_earlier_one_said() {
    let env = Env::new();
    import_caregiver(&env);
    // The plain export, with Aarav moved half an hour: his appointment changes, his
    // caregiver does not.
    let moved = AARAV.replace("09:00", "09:30");
    let r = env
        .import("plain.csv", &csv(&[&moved, PRIYA]), &[])
        .expect(0);
    let report = r.json();
    assert_eq!(report["updated"], 1, "{report}");
    assert_eq!(report["unchanged"], 1, "{report}");
    assert_eq!(stored(&env, "P1"), mother_by_sms());
    assert_eq!(stored(&env, "P2"), nothing_said());

    // A format with only some of the columns keeps the others.
    let header = format!("{HEADER},channel");
    let only_channel = format!("{header}\n{moved},none\n");
    env.import("channel.csv", &only_channel, &[]).expect(0);
    let mut expected = mother_by_sms();
    expected.0 = Some("none".into());
    assert_eq!(stored(&env, "P1"), expected);
}

#[test]
fn empty_cells_clear_the_stored_values_and_the_change_is_audited() {
    let env = Env::new();
    import_caregiver(&env);
    let r = env
        .import(
            "cleared.csv",
            &with_reach(&[(AARAV, ",,,,"), (PRIYA, ",,,,")]),
            &[],
        )
        .expect(0);
    let report = r.json();
    assert_eq!(
        report["updated"], 1,
        "Aarav's row changes his patient: {report}"
    );
    assert_eq!(report["unchanged"], 1);
    assert_eq!(stored(&env, "P1"), nothing_said());

    let audited = |action: &str, old: &str| {
        env.count(&format!(
            "SELECT count(*) FROM audit_log l JOIN patients p ON p.id = l.patient_id
             WHERE p.external_id = 'P1' AND l.action = '{action}' AND l.old_value = '{old}'
               AND l.new_value IS DISTINCT FROM '{old}' AND l.reason = 'row 2'"
        ))
    };
    assert_eq!(audited("channel_changed", "sms"), 1);
    assert_eq!(audited("contact_changed", "+919820054321"), 1);
    assert_eq!(audited("remind_changed", "contact"), 1);
}

#[test]
fn a_bad_channel_is_refused_naming_row_and_column_and_nothing_is_imported() {
    let env = Env::new();
    let file = with_reach(&[(PRIYA, ",,,,"), (AARAV, "email,,,,")]);
    let r = env.import("bad.csv", &file, &[]).expect(65);
    let errors = r.json()["errors"].as_array().expect("errors").clone();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["row"], 3);
    assert_eq!(errors[0]["column"], "channel");
    assert_eq!(errors[0]["value"], "email");
    assert_eq!(errors[0]["patient"], "Aarav Sharma");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("write whatsapp, sms (or text) or none (or no messages)"),
        "{message}"
    );
    assert_eq!(env.count("SELECT count(*) FROM patients"), 0);
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 0);
    assert_eq!(env.count("SELECT count(*) FROM imports"), 0);

    // The human report says the same, with the row, column and value.
    let f = env.file("bad2.csv", &file);
    let human = env.run(&["import", f.to_str().expect("path")]).expect(65);
    assert!(
        human
            .stdout
            .contains("row 3, column \"channel\" (\"email\")"),
        "{}",
        human.stdout
    );
}

#[test]
fn reminding_the_caregiver_without_their_number_is_refused() {
    let env = Env::new();
    let file = with_reach(&[
        (AARAV, "sms,contact,Sunita Sharma,,mother"),
        (PRIYA, ",,,,"),
    ]);
    let r = env.import("nocontact.csv", &file, &[]).expect(65);
    let errors = r.json()["errors"].as_array().expect("errors").clone();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["row"], 2);
    assert_eq!(errors[0]["column"], "remind");
    assert_eq!(errors[0]["value"], "contact");
    assert_eq!(
        errors[0]["message"],
        "says to remind the contact, but contact_phone is empty; add the caregiver's mobile number, or set remind to patient"
    );
    assert_eq!(env.count("SELECT count(*) FROM patients"), 0);
}

#[test]
fn the_caregivers_example_imports_as_the_readme_says() {
    let env = Env::new();
    let sample = repo_file("examples/schedule-caregivers.csv");
    let r = env
        .run(&["import", sample.to_str().expect("path"), "--json"])
        .expect(0);
    assert_eq!(r.json()["new"], 5, "{}", r.stdout);
    assert_eq!(
        stored(&env, "P-3001"),
        (
            None,
            "contact".into(),
            Some("Sunita Sharma".into()),
            Some("+919820054321".into()),
            Some("mother".into())
        )
    );
    assert_eq!(stored(&env, "P-3002").0.as_deref(), Some("sms"));
    assert_eq!(stored(&env, "P-3002").1, "both");
    assert_eq!(stored(&env, "P-3003"), {
        let mut none = nothing_said();
        none.0 = Some("none".into());
        none
    });
    assert_eq!(
        stored(&env, "N-401").0.as_deref(),
        Some("sms"),
        "text is SMS"
    );
    assert_eq!(
        stored(&env, "N-402").3.as_deref(),
        Some("+19175550133"),
        "a US caregiver's number in the clinic's region"
    );
}
