//! "Remind now" as a receptionist does it: press it for a patient, the patient gets exactly
//! one reminder; the same form sent again sends nothing more; the reloaded page says when the
//! last reminder went; at night the page says it will go at 08:00.

use super::*;
use crate::desk_remind::{PASSWORD as ALICE_PASSWORD, RemindDesk, USER as ALICE, tomorrow};

/// Posts a form with these fields from the page, as the browser sends a form again (its
/// "resubmit", a late second click, a retry after a timeout).
const SEND_AGAIN: &str = "const f = document.createElement('form');
f.method = 'post';
f.action = '/desk/remind';
for (const [name, value] of Object.entries(arguments[0])) {
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = name;
  input.value = value;
  f.appendChild(input);
}
document.body.appendChild(f);
f.submit();";

#[tokio::test(flavor = "multi_thread")]
async fn a_receptionist_reminds_a_patient_now_once_and_at_night_sees_when_it_will_go() {
    if !browser_available() {
        return;
    }
    let d = RemindDesk::start(|s| s, |c| c).await;
    let day = tomorrow(chrono_tz::Asia::Kolkata);
    let night_day = tomorrow(d.night);
    d.import(&[
        &format!(
            "MUM-1001,P-2001,Aarav Sharma,98200 12345,en,{day},09:00,15,Dr. Mehta,mumbai,booked"
        ),
        &format!(
            "N-1,Q-1,Priya Patil,+91 98765 43210,mr,{night_day},10:00,15,Dr. Iyer,night,booked"
        ),
    ]);
    let (driver, client, chromedriver) = start_browser(&d.env).await;
    let b = Browser {
        client,
        base: d.url.clone(),
        shots: screenshot_dir(),
        chromedriver,
    };

    // The patient's page asks for a sign-in first, then opens.
    let page = "/desk/remind?clinic=mumbai&appointment=MUM-1001";
    b.goto(page).await;
    b.heading("Sign in").await;
    sign_in_as(&b, ALICE, ALICE_PASSWORD).await;
    b.heading("Remind Aarav Sharma now").await;
    let text = b.body_text().await;
    for expected in [
        "09:00 IST with Dr. Mehta",
        "No reminder has been sent from the desk for this appointment yet.",
        "It goes out within a minute.",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    b.shot("remind-01-patient.png").await;

    // The form as the browser holds it, to send it again later.
    let mut form = serde_json::Map::new();
    for name in ["csrf", "clinic", "appointment", "nonce"] {
        let input = b
            .find(&format!(
                "//form[@action = '/desk/remind']//input[@name = {}]",
                lit(name)
            ))
            .await;
        let value = input
            .attr("value")
            .await
            .expect("read the field")
            .expect("a value");
        form.insert(name.into(), Value::String(value));
    }

    // Remind now: the patient gets exactly one reminder.
    b.button("Remind now").await.click().await.expect("press");
    b.find("//p[@role = 'status'][contains(., '1 reminder asked for by alice. It goes out within a minute.')]")
        .await;
    Wait::new("the reminder to reach the patient", WAIT)
        .until(|| !d.sim.messages().is_empty())
        .await;
    assert_eq!(
        d.sim.messages()[0].body["to"],
        "+919820012345",
        "to Aarav's number"
    );

    // The same form sent again: nothing more is sent, and the page says so.
    b.client
        .execute(SEND_AGAIN, vec![Value::Object(form)])
        .await
        .expect("send the form again");
    b.find("//p[@role = 'status'][contains(., 'This press had already been received: no second reminder was sent.')]")
        .await;
    b.shot("remind-02-sent-again.png").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(d.sim.messages().len(), 1, "still one reminder");
    assert_eq!(
        d.count("SELECT count(*) FROM outbox WHERE kind = 'manual_reminder'"),
        1
    );

    // Reloaded, the page says when the last reminder went and that it was read.
    Wait::new("the page to say the reminder was read", WAIT)
        .until_async(async || {
            b.goto(page).await;
            b.body_text().await.contains("; read by the patient.")
        })
        .await;
    let text = b.body_text().await;
    assert!(
        text.contains("Last reminder from the desk: asked for by alice on"),
        "{text}"
    );
    b.shot("remind-03-delivered.png").await;

    // At the clinic where it is night, the reminder waits for the end of quiet hours.
    let zone = reminderd::time::Clock::System
        .now()
        .with_timezone(&d.night)
        .format("%Z")
        .to_string();
    b.goto("/desk/remind?clinic=night&appointment=N-1").await;
    b.heading("Remind Priya Patil now").await;
    let text = b.body_text().await;
    assert!(
        text.contains(&format!(
            "It is quiet hours at the clinic: it will go at 08:00 {zone}, when they end."
        )),
        "{text}"
    );
    b.button("Remind now").await.click().await.expect("press");
    b.find(&format!(
        "//p[@role = 'status'][contains(., {})]",
        lit(&format!(
            "1 reminder asked for by alice. It is quiet hours at the clinic: it goes at 08:00 {zone}."
        ))
    ))
    .await;
    b.shot("remind-04-quiet-hours.png").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(d.sim.messages().len(), 1, "nothing goes in quiet hours");

    b.client.close().await.expect("end the browser session");
    drop(driver);
}
