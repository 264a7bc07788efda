//! `reminderd patient export|erase`, `reminderd user role`: a patient's data handed over or
//! erased from the command line, as a clinic's administrator does on a patient's request.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::Value;

use crate::common::{Env, csv};

const NAME: &str = "Priya Patil";
const PHONE: &str = "+919876543210";
const DIGITS: &str = "919876543210";

/// Priya (P2) and Aarav (P1), each with a past visit; Priya's has a reminder with her name in
/// its words, her reply with its webhook body, a delivery status naming her number, an HL7
/// message and a staff note. `upcoming` adds a booked visit of hers next year.
fn seeded(upcoming: bool) -> Env {
    let env = Env::new();
    let mut rows = vec![
        "A1,P1,Aarav Sharma,98200 12345,en,2026-01-15,09:00,15,Dr. Mehta,mumbai,booked",
        "A2,P2,Priya Patil,+91 98765 43210,mr,2026-01-15,09:30,15,Dr. Mehta,mumbai,booked",
    ];
    if upcoming {
        rows.push(
            "A3,P2,Priya Patil,+91 98765 43210,mr,2099-01-15,09:30,15,Dr. Mehta,mumbai,booked",
        );
    }
    env.import("s.csv", &csv(&rows), &[]).expect(0);
    let db = env.sql();
    let a2: i64 = db
        .query_row(
            "SELECT id FROM appointments WHERE external_id = 'A2'",
            (),
            |r| r.get(0),
        )
        .expect("A2");
    let a1: i64 = db
        .query_row(
            "SELECT id FROM appointments WHERE external_id = 'A1'",
            (),
            |r| r.get(0),
        )
        .expect("A1");
    let t = 1_768_000_000; // January 2026
    db.execute_batch(&format!(
        "UPDATE appointments SET status = 'completed' WHERE external_id IN ('A1', 'A2');
         INSERT INTO outbox (id, appointment_id, kind, rule, slot_start, send_at, latest_at, params, state, wa_id, wamid, created_at, updated_at) VALUES
           (900, {a2}, 'reminder', 'day-before', {t}, {t}, {t}, '[\"{NAME}\",\"15 Jan\"]', 'read', '{DIGITS}', 'wamid.P2', {t}, {t}),
           (901, {a1}, 'reminder', 'day-before', {t}, {t}, {t}, '[\"Aarav Sharma\",\"15 Jan\"]', 'read', '919820012345', 'wamid.P1', {t}, {t});
         INSERT INTO inbound_events (id, received_at, body, processed_at) VALUES
           (800, {t}, '{{\"contacts\":[{{\"profile\":{{\"name\":\"{NAME}\"}},\"wa_id\":\"{DIGITS}\"}}],\"text\":\"running late, Priya\"}}', {t}),
           (801, {t}, '{{\"statuses\":[{{\"id\":\"wamid.P2\",\"recipient_id\":\"{DIGITS}\",\"status\":\"read\"}}]}}', {t}),
           (802, {t}, '{{\"statuses\":[{{\"id\":\"wamid.P1\",\"recipient_id\":\"919820012345\",\"status\":\"read\"}}]}}', {t});
         INSERT INTO replies (id, message_id, event_id, from_phone, patient_id, appointment_id, outbox_id, kind, text, intent, outcome, received_at)
           SELECT 700, 'wamid.R2', 800, '{PHONE}', patient_id, id, 900, 'text', 'running late, Priya', 'unknown', 'needs_staff', {t}
           FROM appointments WHERE id = {a2};
         INSERT INTO reply_media (reply_id, media_id, mime_type, filename) VALUES (700, 'media-1', 'image/jpeg', 'priya-report.jpg');
         INSERT INTO feed_messages (id, feed, message_id, kind, body, received_at, state, appointment_id) VALUES
           (600, 'his', 'M1', 'SIU^S12', 'MSH|^~\\&|HIS\rPID|||P2||Patil^Priya||||||{PHONE}', {t}, 'applied', {a2});
         INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value)
           SELECT {t}, id, patient_id, 'staff:asha', 'note', 'called {NAME} on {PHONE}' FROM appointments WHERE id = {a2};
         INSERT INTO consents (patient_id, channel, given, source, recorded_at)
           SELECT patient_id, 'whatsapp', 1, 'import:s.csv', {t} FROM appointments WHERE id = {a2};"
    ))
    .expect("seed");
    env
}

fn patient_row(env: &Env) -> i64 {
    env.count("SELECT id FROM patients WHERE external_id = 'P2'")
}

/// Every (table, key) whose row names patient `id`: by a patient or appointment column, or a
/// text holding the name or number.
fn rows_naming(env: &Env, id: i64) -> Vec<(String, String)> {
    let db = env.sql();
    let tables: Vec<String> = db
        .prepare(db.pick(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
        ))
        .and_then(|mut s| s.query_map((), |r| r.get(0))?.collect())
        .expect("tables");
    let appointments: Vec<i64> = db
        .prepare("SELECT id FROM appointments WHERE patient_id = ?1")
        .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
        .expect("appointments");
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = db
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let cols: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|c| (*c).to_string())
            .collect();
        let key = ["id", "reply_id", "phone", "appointment_id", "phone_sha256"]
            .into_iter()
            .find(|k| cols.iter().any(|c| c == k))
            .map(str::to_string);
        let mut rows = stmt.query(()).expect("rows");
        while let Some(r) = rows.next().expect("row") {
            let mut names = false;
            let mut key_value = String::new();
            for (i, c) in cols.iter().enumerate() {
                let v = r.get_ref(i).expect("value");
                let text = match v {
                    reminderd::store::sql::ValueRef::Integer(n) => n.to_string(),
                    reminderd::store::sql::ValueRef::Text(b)
                    | reminderd::store::sql::ValueRef::Blob(b) => {
                        String::from_utf8_lossy(b).into_owned()
                    }
                    _ => String::new(),
                };
                if Some(c) == key.as_ref() {
                    key_value.clone_from(&text);
                }
                let by_row = (c == "patient_id" && text == id.to_string())
                    || (table == "patients" && c == "id" && text == id.to_string())
                    || (c == "appointment_id"
                        && appointments.iter().any(|a| a.to_string() == text));
                if by_row || text.contains(NAME) || text.contains(DIGITS) {
                    names = true;
                }
            }
            if names {
                out.push((table.clone(), key_value));
            }
        }
    }
    out
}

fn bytes_hold(path: &std::path::Path, needle: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn export_holds_every_row_that_names_the_patient() {
    let env = seeded(false);
    let id = patient_row(&env);
    let doc = env
        .run(&["patient", "export", "P2", "--clinic", "mumbai"])
        .expect(0)
        .json();
    assert_eq!(doc["patient"]["name"], NAME);
    // The schedule's consent starts her consent history, on the channel it reaches her by.
    let consents = doc["consents"].as_array().expect("consents");
    assert!(
        consents.iter().any(|c| c["channel"] == "whatsapp"
            && c["given"] == 1
            && c["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("import:"))),
        "{consents:#?}"
    );
    let naming = rows_naming(&env, id);
    assert!(
        naming.len() >= 10,
        "the seed names her in many rows: {naming:?}"
    );
    for (table, key) in naming {
        let found = if table == "patients" {
            doc["patient"]["id"].as_i64().map(|n| n.to_string()) == Some(key.clone())
        } else {
            let rows = doc[table.as_str()]
                .as_array()
                .unwrap_or_else(|| panic!("the export has no section {table}"));
            rows.iter().any(|r| {
                ["id", "reply_id", "phone", "appointment_id"]
                    .iter()
                    .any(|k| match &r[*k] {
                        Value::Number(n) => n.to_string() == key,
                        Value::String(s) => *s == key,
                        _ => false,
                    })
            })
        };
        assert!(
            found,
            "{table} row {key} names the patient but is not in the export"
        );
    }
    // Aarav's rows are not in Priya's export.
    let text = doc.to_string();
    assert!(!text.contains("Aarav"), "another patient in the export");
    assert_eq!(
        env.count("SELECT count(*) FROM audit_log WHERE action = 'patient_exported' AND actor LIKE 'admin:%'"),
        1
    );
    // To a file, readable by its owner only.
    let out = env.path("priya.json");
    env.run(&["patient", "export", "P2", "-o", out.to_str().expect("path")])
        .expect(0);
    let mode = std::fs::metadata(&out).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn after_erasure_the_database_file_holds_neither_name_nor_number_and_stats_are_unchanged() {
    if crate::common::on_postgres() {
        return; // the SQLite file's bytes (PostgreSQL's are vacuum's)
    }
    let env = seeded(false);
    let stats = |env: &Env| {
        let mut s = env
            .run(&[
                "stats",
                "--from",
                "2025-01-01",
                "--to",
                "2026-12-31",
                "--json",
            ])
            .expect(0)
            .json();
        s["costs"] = Value::Null;
        s
    };
    let before = stats(&env);
    assert!(bytes_hold(&env.db(), NAME) || bytes_hold(&env.path("test.db-wal"), NAME));
    let r = env.run(&["patient", "erase", "P2"]).expect(0);
    assert!(
        r.stdout.contains("patient P2 (mumbai) erased"),
        "{}",
        r.stdout
    );
    assert_eq!(stats(&env), before, "the statistics count the same rows");
    for needle in [
        NAME,
        PHONE,
        DIGITS,
        "Patil^Priya",
        "running late",
        "priya-report",
    ] {
        for file in ["test.db", "test.db-wal"] {
            assert!(
                !bytes_hold(&env.path(file), needle),
                "{needle:?} is still in {file}"
            );
        }
    }
    // Aarav is untouched; Priya's rows remain, emptied, with their states.
    assert_eq!(
        env.count("SELECT count(*) FROM patients WHERE name = 'Aarav Sharma'"),
        1
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM outbox WHERE id = 900 AND state = 'read' AND params IS NULL"
        ),
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM replies WHERE id = 700 AND intent = 'unknown'"),
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM erasures WHERE forced = 0 AND erased_by LIKE 'admin:%'"),
        1
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM audit_log WHERE action = 'patient_erased' AND new_value IS NULL"
        ),
        1
    );
    // The patient id of the clinic's system is gone too: asking again names no patient.
    let again = env.run(&["patient", "export", "P2"]).expect(65);
    assert!(
        again.stderr.contains("no patient has the id \"P2\""),
        "{}",
        again.stderr
    );
}

#[test]
fn erase_refuses_an_upcoming_appointment_without_force() {
    let env = seeded(true);
    let r = env
        .run(&["patient", "erase", "P2", "--clinic", "mumbai"])
        .expect(65);
    assert!(r.stderr.contains("1 upcoming appointment"), "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(
        env.count("SELECT count(*) FROM patients WHERE name = 'Priya Patil'"),
        1
    );
    assert_eq!(env.count("SELECT count(*) FROM erasures"), 0);
    let r = env
        .run(&["patient", "erase", "P2", "--force", "--json"])
        .expect(0);
    assert_eq!(r.json()["cancelled"], 1);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM appointments WHERE external_id = 'A3' AND status = 'cancelled'"
        ),
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM erasures WHERE forced = 1"),
        1
    );
}

#[test]
fn an_opt_out_outlives_the_erasure_and_a_new_patient_with_the_number_starts_opted_out() {
    let env = seeded(false);
    env.sql()
        .execute(
            "UPDATE patients SET opted_out_at = 1768000000 WHERE external_id = 'P2'",
            (),
        )
        .expect("opt out");
    env.run(&["patient", "erase", "P2"]).expect(0);
    assert_eq!(
        env.count("SELECT count(*) FROM opt_outs WHERE channel = 'all'"),
        1
    );
    let row = "B1,P9,Priya P,+91 98765 43210,mr,2099-02-01,10:00,15,Dr. Mehta,mumbai,booked";
    env.import("again.csv", &csv(&[row]), &[]).expect(0);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM patients WHERE external_id = 'P9' AND opted_out_at IS NOT NULL"
        ),
        1
    );
}

#[test]
fn user_role_changes_the_role_and_the_list_shows_it() {
    let env = Env::new();
    env.run_with_input(&["user", "add", "asha"], "pw-asha-12345\n")
        .expect(0);
    let list = env.run(&["user", "list"]).expect(0);
    let line = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("asha  ("))
            .map(str::to_string)
    };
    assert!(
        line(&list.stdout).is_some_and(|l| l.ends_with(", staff")),
        "{}",
        list.stdout
    );
    let r = env.run(&["user", "role", "asha", "admin"]).expect(0);
    assert!(r.stdout.contains("asha is now admin"), "{}", r.stdout);
    let list = env.run(&["user", "list"]).expect(0);
    assert!(
        line(&list.stdout).is_some_and(|l| l.ends_with(", admin")),
        "{}",
        list.stdout
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM audit_log WHERE action = 'user_role' AND new_value = 'admin'"
        ),
        1
    );
    env.run(&["user", "role", "nobody", "admin"]).expect(65);
    env.run(&["user", "role", "asha", "owner"]).expect(64);
}
