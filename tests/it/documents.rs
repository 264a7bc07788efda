//! Documents from the clinic's library: a receptionist sends the consent form from the
//! patient's documents page while the patient's 24-hour window is open; `reminderd send`
//! uploads the PDF to the simulator's media endpoint and sends a document message naming the
//! uploaded media id, once whatever the form is sent again; the delivery shows on the page.
//! Outside the window the page says why and nothing is queued. Preparation notes reach the
//! reminder the simulator receives.

use std::time::Duration;

use reminderd::sim::{Reply, Sim, SimConfig};
use sha2::Digest as _;

use crate::common::{Env, Wait, csv, sim_config};
use crate::desk_harness::{Browser, Desk, field, text};

pub(crate) const TOKEN: &str = "token-for-document-tests";
const SECRET: &str = "app-secret-for-document-tests";
pub(crate) const USER: &str = "asha";
const PASSWORD: &str = "correct horse battery";
/// The Mumbai patient, as WhatsApp writes a sender.
pub(crate) const PATIENT: &str = "919820012345";

/// A small PDF: what the library's consent form holds.
fn consent_pdf() -> Vec<u8> {
    let mut b = b"%PDF-1.4\n% consent form for tests\n".to_vec();
    b.extend((0..5000u32).map(|i| b'a' + (i % 26) as u8));
    b.extend_from_slice(b"\n%%EOF\n");
    b
}

/// `reminderd serve` (webhook and desk) and a simulator that posts its webhooks to it.
pub(crate) struct Served {
    pub(crate) desk: Desk,
    pub(crate) sim: Sim,
}

impl std::ops::Deref for Served {
    type Target = Desk;

    fn deref(&self) -> &Desk {
        &self.desk
    }
}

impl Served {
    /// Starts both, with `rows` imported, `files` written beside the config and `extra`
    /// appended to it.
    pub(crate) async fn start(
        rows: &[&str],
        files: &[(&str, &[u8])],
        extra: &str,
        swaps: &[(&str, &str)],
    ) -> Self {
        let env = Env::new();
        for (name, bytes) in files {
            if let Some(dir) = std::path::Path::new(name).parent() {
                std::fs::create_dir_all(env.path(&dir.to_string_lossy())).expect("mkdir");
            }
            env.file(name, bytes);
        }
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the simulator");
        let sim_base = format!("http://{}", sim_listener.local_addr().expect("addr"));
        env.import("day.csv", &csv(rows), &[]).expect(0);
        let extra = extra.to_string();
        let swaps: Vec<(String, String)> = swaps
            .iter()
            .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
            .collect();
        let desk = Desk::options_on(env)
            .edit(move |c| {
                let text = c
                    .replace(
                        "api_base = \"https://graph.facebook.com\"",
                        &format!("api_base = \"{sim_base}\""),
                    )
                    .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
                    // The import happens at the real time; `--now` is years from it.
                    .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"");
                assert!(text.contains(&sim_base), "the config names the simulator");
                let text = swaps.iter().fold(text, |t, (a, b)| {
                    assert!(t.contains(a.as_str()), "{a} is in the config");
                    t.replacen(a.as_str(), b, 1)
                });
                format!("{text}\n{extra}\n")
            })
            .user(USER, PASSWORD)
            .var("WHATSAPP_ACCESS_TOKEN", TOKEN)
            .var("WHATSAPP_APP_SECRET", SECRET)
            .var("WHATSAPP_VERIFY_TOKEN", "verify-token-for-document-tests")
            .start()
            .await;
        let sim = Sim::start_on(
            sim_listener,
            SimConfig {
                webhook_url: Some(format!("{}/webhook", desk.webhook)),
                app_secret: Some(SECRET.into()),
                pair_limit: None,
                ..sim_config(TOKEN)
            },
        )
        .await
        .expect("start the simulator");
        Self { desk, sim }
    }

    /// A browser signed in as the receptionist.
    pub(crate) async fn signed_in(&self) -> Browser {
        let b = self.browser();
        let res = b.sign_in(USER, PASSWORD, "/desk/day").await;
        assert_eq!(res.status, 303, "sign-in refused\n{}", self.log());
        b
    }

    /// `reminderd ARGS` against the simulator (the runtime's other threads keep serving it).
    pub(crate) fn cli(&self, args: &[&str]) -> crate::common::Run {
        let base = self.sim.base_url();
        tokio::task::block_in_place(|| {
            self.env.run_with_env(
                args,
                &[
                    ("WHATSAPP_ACCESS_TOKEN", TOKEN),
                    ("REMINDERD_API_BASE", base.as_str()),
                ],
            )
        })
    }

    /// Waits until `sql` counts `n`.
    pub(crate) async fn until_count(&self, what: &str, sql: &str, n: i64) {
        Wait::new(what, Duration::from_secs(20))
            .context(|| format!("{} rows; log:\n{}", self.count(sql), self.log()))
            .until(|| self.count(sql) == n)
            .await;
    }
}

const LIBRARY: &str = r#"
[documents.consent]
file = "forms/consent.pdf"
title = "Consent form"
filename = "Consent form.pdf"
"#;

const ROW: &str = "A1,P1,Aarav Sharma,98200 12345,en,2030-12-02,09:00,15,Dr. Mehta,mumbai,booked";

async fn with_library() -> (Served, Vec<u8>) {
    let pdf = consent_pdf();
    let s = Served::start(&[ROW], &[("forms/consent.pdf", &pdf)], LIBRARY, &[]).await;
    (s, pdf)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_sent_from_the_desk_reaches_the_patient_once_with_the_uploaded_media_id() {
    let (s, pdf) = with_library().await;
    let patient = s.id("SELECT id FROM patients WHERE external_id = 'P1'");
    let page = format!("/desk/patients/{patient}/documents");
    // The patient writes: their window opens.
    s.sim
        .reply(Reply::Text {
            from: PATIENT.into(),
            body: "Please send me the consent form".into(),
            context_id: None,
        })
        .await
        .expect("webhook delivered");
    s.until_count(
        "the patient's message",
        "SELECT count(*) FROM replies WHERE patient_id IS NOT NULL",
        1,
    )
    .await;

    let b = s.signed_in().await;
    let shown = b.get(&page).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let words = text(&shown.body);
    assert!(words.contains("Send a document to Aarav Sharma"), "{words}");
    assert!(words.contains("Consent form"), "{words}");
    assert!(words.contains("left)"), "the window's time left: {words}");
    let (csrf, nonce) = (field(&shown.body, "csrf"), field(&shown.body, "nonce"));
    let form = [
        ("csrf", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("document", "consent"),
        ("caption", "Please sign and bring it on Monday"),
    ];
    // A double click: the same form twice.
    let first = b.post(&page, &form).await;
    let second = b.post(&page, &form).await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(second.status, 303, "{}", second.body);
    assert!(
        second.location().contains("again="),
        "{}",
        second.location()
    );
    let after = b.follow(second, &page).await;
    assert!(
        text(&after.body).contains("it was not sent a second time"),
        "{}",
        text(&after.body)
    );
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'staff_document'"),
        1
    );
    assert_eq!(
        s.one("SELECT sent_by FROM outbox WHERE kind = 'staff_document'"),
        format!("staff:{USER}")
    );
    assert_eq!(
        s.count(
            "SELECT count(*) FROM audit_log WHERE action = 'send_document' AND actor = 'staff:asha' AND new_value = 'consent'"
        ),
        1
    );

    s.cli(&["send", "--once"]).expect(0);
    s.cli(&["send", "--once"]).expect(0);
    let documents: Vec<_> = s
        .sim
        .messages()
        .into_iter()
        .filter(|m| m.body["type"] == "document")
        .collect();
    assert_eq!(documents.len(), 1, "one document message");
    let uploads = s.sim.uploads();
    assert_eq!(uploads.len(), 1, "one upload: {uploads:?}");
    let d = &documents[0].body;
    assert_eq!(d["to"], "+919820012345");
    assert_eq!(d["document"]["id"], uploads[0].id.as_str());
    assert_eq!(d["document"]["filename"], "Consent form.pdf");
    assert_eq!(
        d["document"]["caption"],
        "Please sign and bring it on Monday"
    );
    assert_eq!(uploads[0].mime_type, "application/pdf");
    assert_eq!(
        uploads[0].sha256_hex,
        format!("{:x}", sha2::Sha256::digest(&pdf)),
        "exactly the library's file"
    );

    // The statuses come back: the page shows the delivery, and the row what Meta bills.
    s.until_count(
        "the document's delivery",
        "SELECT count(*) FROM outbox WHERE kind = 'staff_document' AND state IN ('delivered', 'read')",
        1,
    )
    .await;
    let shown = text(&b.get(&page).await.body);
    assert!(
        shown.contains("Delivered") || shown.contains("Read"),
        "{shown}"
    );
    assert!(
        shown.contains("Please sign and bring it on Monday"),
        "{shown}"
    );
    s.until_count(
        "the document's pricing",
        "SELECT count(*) FROM outbox WHERE kind = 'staff_document' AND billable = 1 AND pricing_category = 'service' AND pricing_type = 'regular'",
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_the_patients_window_the_page_says_why_and_nothing_is_sent() {
    let (s, _) = with_library().await;
    let patient = s.id("SELECT id FROM patients WHERE external_id = 'P1'");
    let page = format!("/desk/patients/{patient}/documents");
    let b = s.signed_in().await;

    // Never wrote: no form, the reason.
    let shown = b.get(&page).await;
    let words = text(&shown.body);
    assert!(
        words.contains("has not written to the clinic on WhatsApp"),
        "{words}"
    );
    assert!(!shown.body.contains("name=\"document\""), "no form");

    // Wrote 25 hours ago: closed, with when it closed.
    s.sim
        .reply(Reply::Text {
            from: PATIENT.into(),
            body: "Thanks".into(),
            context_id: None,
        })
        .await
        .expect("webhook delivered");
    s.until_count(
        "the patient's message",
        "SELECT count(*) FROM replies WHERE patient_id IS NOT NULL",
        1,
    )
    .await;
    s.sql("UPDATE replies SET received_at = received_at - 25 * 3600");
    let shown = b.get(&page).await;
    let words = text(&shown.body);
    assert!(words.contains("more than 24 hours ago"), "{words}");
    assert!(!shown.body.contains("name=\"document\""), "no form");

    // A form from before (or a crafted one) is refused, and nothing is queued.
    let csrf = field(&shown.body, "csrf");
    let refused = b
        .post(
            &page,
            &[
                ("csrf", csrf.as_str()),
                ("nonce", &"ab".repeat(32)),
                ("document", "consent"),
                ("caption", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        text(&refused.body).contains("more than 24 hours ago"),
        "{}",
        text(&refused.body)
    );
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'staff_document'"),
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM audit_log WHERE action = 'send_document'"),
        0
    );
}

#[test]
fn the_reminder_for_dr_mehtas_appointment_carries_the_preparation_note_and_another_does_not() {
    let env = Env::new();
    env.import(
        "day.csv",
        &csv(&[
            ROW,
            "A2,P2,Kavya Iyer,98200 54321,en,2030-12-02,10:00,15,Dr. Rao,mumbai,booked",
        ]),
        &[],
    )
    .expect(0);
    // The reminder template's fifth parameter is the provider's note.
    let path = env.path("reminders.toml");
    let before = std::fs::read_to_string(&path).expect("config");
    let mut config = before.replacen(
        "params = [\"patient.first_name\", \"clinic.name\", \"appointment.date\", \"appointment.time\"]",
        "params = [\"patient.first_name\", \"clinic.name\", \"appointment.date\", \"appointment.time\", \"appointment.prep_notes\"]",
        1,
    );
    assert_ne!(config, before, "the reminder template's params were found");
    for end in [
        "Please tap a button to let us know.\"",
        "कृपया बटन दबाकर हमें बताएं।\"",
        "कृपया बटण दाबून आम्हाला कळवा.\"",
        "Toque un botón para responder.\"",
    ] {
        let with = format!("{} {{{{5}}}}\"", end.trim_end_matches('"'));
        assert!(config.contains(end), "{end}");
        config = config.replacen(end, &with, 1);
    }
    config.push_str(
        r#"
[[prep_notes]]
provider = "dr. mehta"
text = { en = "Fast for 8 hours before the blood test", hi = "रक्त जांच से पहले 8 घंटे उपवास रखें" }
"#,
    );
    std::fs::write(&path, config).expect("write config");
    let mehta = env.run(&["preview", "A1"]).expect(0).stdout;
    assert!(
        mehta.contains("Fast for 8 hours before the blood test"),
        "{mehta}"
    );
    let rao = env.run(&["preview", "A2"]).expect(0).stdout;
    assert!(!rao.contains("Fast for 8 hours"), "{rao}");
    assert!(
        rao.contains("\"-\""),
        "a dash, not an empty parameter: {rao}"
    );
}
