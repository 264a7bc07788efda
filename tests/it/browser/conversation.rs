//! Answering a patient as a receptionist does it: the patient writes on WhatsApp (a signed
//! webhook from the simulator), the receptionist opens the conversation from the Replies page,
//! answers, and sees the answer delivered; it reaches the patient exactly once. A day later the
//! free-text box is gone and only the "please call us" message can be sent.

use super::*;
use crate::desk_conversation::{call_us_approved, with_call_us};
use crate::desk_remind::{PASSWORD as ALICE_PASSWORD, RemindDesk, USER as ALICE, tomorrow};
use reminderd::sim::Reply;

#[tokio::test(flavor = "multi_thread")]
async fn a_receptionist_answers_a_patient_who_wrote_and_later_can_only_ask_them_to_call() {
    if !browser_available() {
        return;
    }
    let d = RemindDesk::start(call_us_approved, |c| with_call_us(&c)).await;
    let day = tomorrow(chrono_tz::Asia::Kolkata);
    d.import(&[&format!(
        "MUM-1001,P-2001,Aarav Sharma,98200 12345,en,{day},09:00,15,Dr. Mehta,mumbai,booked"
    )]);
    // The patient writes.
    d.sim
        .reply(Reply::Text {
            from: "919820012345".into(),
            body: "Can I come at 5 instead?".into(),
            context_id: None,
        })
        .await
        .expect("webhook delivered");
    Wait::new("the patient's message to be stored", WAIT)
        .until(|| d.count("SELECT count(*) FROM replies") == 1)
        .await;
    let (driver, client, chromedriver) = start_browser(&d.env).await;
    let b = Browser {
        client,
        base: d.url.clone(),
        shots: screenshot_dir(),
        chromedriver,
    };

    // From the Replies page to the conversation.
    b.goto("/desk/replies").await;
    b.heading("Sign in").await;
    sign_in_as(&b, ALICE, ALICE_PASSWORD).await;
    b.heading("Replies that need a person").await;
    b.find("//a[normalize-space() = 'Open conversation']")
        .await
        .click()
        .await
        .expect("open the conversation");
    b.heading("Conversation with Aarav Sharma").await;
    let text = b.body_text().await;
    for expected in [
        "Can I come at 5 instead?",
        "WhatsApp allows free text for 23 hours",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    b.shot("conversation-01-open.png").await;

    // The answer: sent once, and its delivery shows on the page.
    b.field("Your answer to Aarav Sharma")
        .await
        .send_keys("Yes, 17:00 is fine. See you then!")
        .await
        .expect("type the answer");
    b.button("Send").await.click().await.expect("send");
    b.find("//p[@role = 'status'][contains(., 'Your message is queued')]")
        .await;
    Wait::new("the page to say the answer was read", WAIT)
        .until_async(async || {
            b.goto(&format!(
                "/desk/patients/{}/conversation",
                d.id("SELECT id FROM patients")
            ))
            .await;
            b.body_text().await.contains("read by the patient")
        })
        .await;
    let row = b
        .texts("//table[contains(@class, 'conversation')]/tbody/tr[last()]")
        .await;
    assert!(
        row[0].contains("alice") && row[0].contains("Yes, 17:00 is fine."),
        "who wrote it and what: {row:?}"
    );
    b.shot("conversation-02-read.png").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = d.sim.messages();
    assert_eq!(got.len(), 1, "exactly one message: {got:#?}");
    assert_eq!(got[0].body["to"], "+919820012345");
    assert_eq!(
        got[0].body["text"]["body"],
        "Yes, 17:00 is fine. See you then!"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM replies WHERE handled_by = 'staff:alice'"),
        1,
        "the patient's message is answered"
    );

    // A day later: no free-text box, only the "please call us" message, and why.
    d.sql("UPDATE replies SET received_at = received_at - 90000");
    b.goto(&format!(
        "/desk/patients/{}/conversation",
        d.id("SELECT id FROM patients")
    ))
    .await;
    b.heading("Conversation with Aarav Sharma").await;
    let text = b.body_text().await;
    assert!(
        text.contains(
            "WhatsApp only allows free text within 24 hours of the patient's last message"
        ),
        "{text}"
    );
    assert!(
        b.client
            .find_all(Locator::XPath("//textarea"))
            .await
            .expect("look for a text box")
            .is_empty(),
        "no free-text box outside the window"
    );
    b.shot("conversation-03-closed.png").await;
    b.button("Send the \u{201c}please call us\u{201d} message")
        .await
        .click()
        .await
        .expect("send the template");
    b.find("//p[@role = 'status'][contains(., 'Your message is queued')]")
        .await;
    Wait::new("the template to reach the patient", WAIT)
        .until(|| d.sim.messages().len() == 2)
        .await;
    assert_eq!(
        d.sim.messages()[1].body["template"]["name"],
        "please_call_us"
    );

    b.client.close().await.expect("end the browser session");
    drop(driver);
}
