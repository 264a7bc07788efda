//! Conversations at the desk over HTTP: `reminderd run` (so answers are really sent) against
//! the Cloud API simulator, which posts the patient's message as a signed webhook. What staff
//! would notice is checked against what the simulator received and what is stored.

use std::time::Duration;

use reminderd::sim::{Reply, SimConfig, SimTemplate};

use crate::common::Wait;
use crate::desk_harness::{Browser, Page, field};
use crate::desk_remind::{PASSWORD, RemindDesk, USER, tomorrow};

/// Aarav's number as WhatsApp writes a sender, and as the API is asked to send to it.
const FROM: &str = "919820010001";
const TO: &str = "+919820010001";

/// The "please call us" template the shipped config shows in a comment.
const CALL_US_BODY: &str = "Hello {{1}}, {{2}} would like to speak with you. Please call us, or reply to this message, when you can.";

/// The config with the "please call us" template configured, as the shipped config's comment
/// shows it (the shipped config leaves it out: the account must have it approved first).
pub fn with_call_us(config: &str) -> String {
    let on = config.replace(
        "# call_us_template = \"call_us\"",
        "call_us_template = \"call_us\"",
    );
    assert_ne!(on, config, "the shipped config documents call_us_template");
    format!(
        "{on}\n[templates.call_us]\nname = \"please_call_us\"\nparams = [\"patient.first_name\", \"clinic.name\"]\n\n[templates.call_us.languages.en]\nbody = \"{CALL_US_BODY}\"\n"
    )
}

/// The simulator with the "please call us" template approved too.
pub fn call_us_approved(s: SimConfig) -> SimConfig {
    let mut templates = s.templates;
    templates.push(SimTemplate::approved(
        "please_call_us",
        "en",
        CALL_US_BODY,
        &[],
    ));
    SimConfig { templates, ..s }
}

/// A desk and daemon (one patient's messages 2 s apart) with Aarav's appointment tomorrow,
/// Aarav's message waiting on the Replies page, and a signed-in receptionist.
async fn started() -> (RemindDesk, Browser, i64) {
    let d = RemindDesk::start(call_us_approved, |c| {
        with_call_us(&c).replace("recipient_spacing = \"0s\"", "recipient_spacing = \"2s\"")
    })
    .await;
    let day = tomorrow(chrono_tz::Asia::Kolkata);
    d.import(&[&format!(
        "A1,P1,Aarav Sharma,98200 10001,en,{day},10:00,15,Dr. Mehta,mumbai,booked"
    )]);
    d.sim
        .reply(Reply::Text {
            from: FROM.into(),
            body: "Can I come at 5 instead?".into(),
            context_id: None,
        })
        .await
        .expect("webhook delivered");
    Wait::new(
        "the patient's message to be stored",
        Duration::from_secs(20),
    )
    .context(|| d.log())
    .until(|| d.count("SELECT count(*) FROM replies WHERE outcome = 'needs_staff'") == 1)
    .await;
    let b = d.signed_in(USER, PASSWORD).await;
    let patient = d.id("SELECT id FROM patients WHERE external_id = 'P1'");
    (d, b, patient)
}

/// Sends the conversation page's form with `fields` (besides its csrf and nonce).
async fn send(b: &Browser, page: &Page, patient: i64, fields: &[(&str, &str)]) -> Page {
    let nonce = field(&page.body, "nonce");
    let mut form = vec![("csrf", b.csrf.as_str()), ("nonce", nonce.as_str())];
    form.extend_from_slice(fields);
    b.post(&format!("/desk/patients/{patient}/conversation"), &form)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_answer_inside_the_window_once_and_outside_it_only_with_the_template() {
    let (d, b, patient) = started().await;
    let path = format!("/desk/patients/{patient}/conversation");

    // The Replies page opens the conversation.
    let replies = b.get("/desk/replies").await;
    assert!(
        replies.text().contains("Open conversation"),
        "{}",
        replies.text()
    );
    let reply = d.id("SELECT id FROM replies");
    let open = b.get(&format!("/desk/conversation?reply={reply}")).await;
    assert_eq!((open.status, open.location()), (303, path.as_str()));
    let page = b.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = page.text();
    for expected in [
        "Conversation with Aarav Sharma",
        "Can I come at 5 instead?",
        "waiting for an answer",
        "WhatsApp allows free text for 23 hours",
        "messaging guidelines",
    ] {
        assert!(text.contains(expected), "{expected:?} in: {text}");
    }
    assert!(
        !page.body.contains("Send a document"),
        "no document library is configured here"
    );

    // A staff answer goes even when the appointment it is tied to was cancelled.
    d.sql("UPDATE appointments SET status = 'cancelled', cancelled_by = 'clinic'");
    // A double click: the same form twice at once is one message.
    let answer = [
        ("action", "send"),
        ("text", "Yes, 17:00 is fine. See you then!"),
    ];
    let (one, two) = tokio::join!(
        send(&b, &page, patient, &answer),
        send(&b, &page, patient, &answer)
    );
    assert_eq!((one.status, two.status), (303, 303), "{}", one.body);
    assert_eq!(
        d.count(
            "SELECT count(*) FROM outbox WHERE kind = 'staff_message' AND sent_by = 'staff:alice'"
        ),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM replies WHERE handled_by = 'staff:alice'"),
        1,
        "answering handles the patient's waiting message"
    );
    // Whichever of the two posts committed first says it is queued; the other says it was
    // already received (the two race, so either may be first).
    let pages = [
        b.get(one.location()).await.text(),
        b.get(two.location()).await.text(),
    ];
    assert!(
        pages.iter().any(|p| p.contains("Your message is queued"))
            && pages
                .iter()
                .any(|p| p.contains("had already been received: it was not sent twice")),
        "{pages:?}"
    );

    // The sensitive phrase warns; going back keeps the text; sending anyway is recorded.
    let page = b.get(&path).await;
    let result = "Your HbA1c test result is 6.1, all fine.";
    let warned = send(&b, &page, patient, &[("action", "send"), ("text", result)]).await;
    assert_eq!(warned.status, 200);
    let text = warned.text();
    assert!(text.contains("Check this message before sending"), "{text}");
    assert!(text.contains("Share these in person"), "{text}");
    assert_eq!(
        d.count("SELECT count(*) FROM outbox WHERE kind = 'staff_message'"),
        1
    );
    let back = send(
        &b,
        &warned,
        patient,
        &[("action", "edit"), ("text", result)],
    )
    .await;
    assert!(back.body.contains(result), "the text is kept to edit");
    let pattern = field(&warned.body, "override");
    let anyway = send(
        &b,
        &warned,
        patient,
        &[("action", "send"), ("text", result), ("override", &pattern)],
    )
    .await;
    assert_eq!(anyway.status, 303, "{}", anyway.body);
    assert_eq!(
        d.one("SELECT actor || ' ' || new_value FROM audit_log WHERE action = 'sensitive_warning_overridden'"),
        format!("staff:alice {pattern}")
    );

    // The simulator is the witness: each answer once, as text, spaced for the one patient,
    // and the page shows how far they got.
    Wait::new("both answers to reach the API", Duration::from_secs(20))
        .context(|| d.log())
        .until(|| d.sim.messages().len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = d.sim.messages();
    assert_eq!(got.len(), 2, "{got:#?}");
    // Both may go in one batch, in either order.
    let mut bodies: Vec<&str> = got
        .iter()
        .map(|m| {
            assert_eq!(
                (&m.body["to"], &m.body["type"]),
                (&TO.into(), &"text".into())
            );
            m.body["text"]["body"].as_str().unwrap_or_default()
        })
        .collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["Yes, 17:00 is fine. See you then!", result]);
    assert!(
        (got[1].received_at - got[0].received_at).abs() >= chrono::Duration::milliseconds(1900),
        "one patient's messages are spaced"
    );
    Wait::new(
        "the page to say the answers were read",
        Duration::from_secs(20),
    )
    .until_async(async || {
        b.get(&path)
            .await
            .text()
            .matches("read by the patient")
            .count()
            == 2
    })
    .await;
    assert!(b.get(&path).await.text().contains("alice"));

    // A day later the window is closed: only the template, with the reason.
    d.sql("UPDATE replies SET received_at = received_at - 90000");
    let late = b.get(&path).await;
    let text = late.text();
    assert!(
        text.contains(
            "WhatsApp only allows free text within 24 hours of the patient's last message"
        ),
        "{text}"
    );
    assert!(
        !late.body.contains("<textarea"),
        "no free-text box outside the window"
    );
    assert!(text.contains("Send the “please call us” message"), "{text}");
    let refused = send(
        &b,
        &late,
        patient,
        &[("action", "send"), ("text", "hello?")],
    )
    .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused.text().contains("Nothing was sent"),
        "{}",
        refused.text()
    );
    let call_us = send(&b, &late, patient, &[("action", "call_us")]).await;
    assert_eq!(call_us.status, 303, "{}", call_us.body);
    Wait::new("the template to reach the API", Duration::from_secs(20))
        .until(|| d.sim.messages().len() >= 3)
        .await;
    let template = &d.sim.messages()[2];
    assert_eq!(template.body["template"]["name"], "please_call_us");
    assert_eq!(
        template.body["template"]["components"][0]["parameters"][0]["text"],
        "Aarav"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE actor = 'staff:alice' AND action IN ('staff_message', 'staff_template')"),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guidelines_page_and_the_reply_command() {
    let (d, b, _patient) = started().await;
    let page = b.get("/desk/guidelines").await;
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains("Messaging guidelines"), "{text}");
    assert!(
        text.contains("Never send test results, diagnoses or prescriptions by WhatsApp"),
        "the configured text: {text}"
    );
    assert!(
        page.body.contains("href=\"/desk/guidelines\""),
        "in the navigation"
    );

    // The same answer from the command line, audited with the administrator's name.
    let r = d
        .env
        .run(&["reply", "P1", "We have moved you to 17:00.", "--as", "ravi"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("queued"), "{}", r.stdout);
    assert_eq!(
        d.count(
            "SELECT count(*) FROM outbox WHERE kind = 'staff_message' AND sent_by = 'admin:ravi'"
        ),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM replies WHERE handled_by = 'admin:ravi'"),
        1
    );
    let unknown = d.env.run(&["reply", "NOPE", "hello"]);
    assert_eq!(unknown.code, 66, "{}", unknown.stderr);
    d.sql("UPDATE replies SET received_at = received_at - 90000");
    let late = d.env.run(&["reply", "P1", "hello again"]);
    assert_eq!(late.code, 65, "{}", late.stderr);
    assert!(late.stderr.contains("--call-us"), "{}", late.stderr);
    let r = d
        .env
        .run(&["reply", "P1", "--call-us", "--clinic", "mumbai"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A template name that is not configured is an error naming the key.
    let config = std::fs::read_to_string(d.env.path("reminders.toml")).expect("config");
    let bad = d.env.file(
        "bad.toml",
        config.replace(
            "call_us_template = \"call_us\"",
            "call_us_template = \"ring_us\"",
        ),
    );
    let r = d
        .env
        .run(&["--config", bad.to_str().expect("utf-8"), "check-config"]);
    assert_eq!(r.code, 78, "{}", r.stderr);
    assert!(
        r.stderr.contains("conversations.call_us_template") && r.stderr.contains("\"ring_us\""),
        "{}",
        r.stderr
    );
    assert_eq!(
        d.count(
            "SELECT count(*) FROM outbox WHERE kind = 'staff_template' AND template = 'call_us'"
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_text_comes_back_when_too_long_or_when_the_window_closed_while_typing() {
    let (d, b, patient) = started().await;
    let path = format!("/desk/patients/{patient}/conversation");
    let page = b.get(&path).await;

    let long = format!("Dear Aarav, about your reports: {}", "x".repeat(4100));
    let too_long = send(&b, &page, patient, &[("action", "send"), ("text", &long)]).await;
    assert_eq!(too_long.status, 400);
    assert!(too_long.text().contains("WhatsApp takes at most 4096"));
    assert!(
        too_long.body.contains(&long),
        "the long text is back in the box to shorten"
    );

    // The patient's window closes while the receptionist types.
    d.sql("UPDATE replies SET received_at = received_at - 90000");
    let typed = "Please bring your reports at 17:00.";
    let refused = send(&b, &page, patient, &[("action", "send"), ("text", typed)]).await;
    assert_eq!(refused.status, 409);
    let text = refused.text();
    assert!(text.contains("Nothing was sent"), "{text}");
    assert!(text.contains(typed), "the typed text is kept: {text}");
    assert_eq!(
        d.count("SELECT count(*) FROM outbox WHERE kind = 'staff_message'"),
        0
    );
}
