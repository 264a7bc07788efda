//! What the messages cost: a month of simulated traffic (reminders at two clinics, the
//! patients' taps, the acknowledgement) with the simulator's status webhooks carrying
//! `pricing`; `reminderd stats` and the desk's Stats page then show the billable messages per
//! clinic, month and category and the estimated cost. A clinic with `acks = "off"` gets no
//! acknowledgement rows while the other clinic does.

use reminderd::sim::Reply;
use serde_json::{Value, json};

use crate::desk_harness::text;
use crate::documents::{PATIENT, Served};

const ROWS: [&str; 3] = [
    "M1,P1,Aarav Sharma,98200 12345,en,2030-12-02,09:00,15,Dr. Mehta,mumbai,booked",
    "M2,P2,Kavya Iyer,98200 54321,en,2030-12-03,09:00,15,Dr. Mehta,mumbai,booked",
    "N1,P3,James Wilson,212-867-5309,en,2030-12-02,10:00,30,Dr. Chen,nyc,booked",
];

const COSTS: &str = r#"
[costs]
currency = "INR"
utility = 0.115
service = 0.1
"#;

/// New York turns acknowledgements off.
const NYC_ACKS_OFF: (&str, &str) = (
    "phone = \"(212) 555-0142\"",
    "phone = \"(212) 555-0142\"\nacks = \"off\"",
);

/// The patient at `phone` taps Confirm on the reminder of appointment `external`.
async fn tap_confirm(s: &Served, external: &str, from: &str) {
    let (id, wamid): (i64, String) = s
        .env
        .sql()
        .query_row(
            "SELECT o.id, o.wamid FROM outbox o JOIN appointments a ON a.id = o.appointment_id
             WHERE a.external_id = ?1 AND o.kind = 'reminder' AND o.wamid IS NOT NULL",
            [external],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("no sent reminder for {external}: {e}"));
    s.sim
        .reply(Reply::Button {
            from: from.into(),
            payload: format!("confirm:{id}"),
            text: "Confirm".into(),
            context_id: Some(wamid),
        })
        .await
        .expect("webhook delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_of_traffic_shows_billable_messages_and_their_cost_and_acks_follow_the_clinic() {
    let s = Served::start(&ROWS, &[], COSTS, &[NYC_ACKS_OFF]).await;
    // The day-before reminders: Mumbai's two, New York's one.
    for now in [
        "2030-12-01T04:00:00Z",
        "2030-12-01T15:30:00Z",
        "2030-12-02T04:00:00Z",
    ] {
        s.cli(&["plan", "--now", now]).expect(0);
        s.cli(&["send", "--once", "--now", now]).expect(0);
    }
    s.until_count(
        "the reminders' pricing",
        "SELECT count(*) FROM outbox WHERE kind = 'reminder' AND billable = 1 AND pricing_category = 'utility'",
        3,
    )
    .await;

    // Both clinics' patients confirm; only Mumbai acknowledges.
    tap_confirm(&s, "M1", PATIENT).await;
    tap_confirm(&s, "N1", "12128675309").await;
    s.until_count(
        "both answers applied",
        "SELECT count(*) FROM replies WHERE outcome = 'applied'",
        2,
    )
    .await;
    let acks = |clinic: &str| {
        s.count(&format!(
            "SELECT count(*) FROM outbox o JOIN appointments a ON a.id = o.appointment_id
             JOIN clinics c ON c.id = a.clinic_id WHERE o.kind = 'reply_ack' AND c.key = '{clinic}'"
        ))
    };
    assert_eq!(acks("mumbai"), 1, "Mumbai acknowledges");
    assert_eq!(acks("nyc"), 0, "New York turned acknowledgements off");
    assert_eq!(
        s.count("SELECT count(*) FROM appointments WHERE response = 'confirmed'"),
        2,
        "the answer is applied either way"
    );

    // The acknowledgement goes now: a billed service message.
    s.cli(&["send", "--once"]).expect(0);
    s.until_count(
        "the acknowledgement's pricing",
        "SELECT count(*) FROM outbox WHERE kind = 'reply_ack' AND billable = 1 AND pricing_category = 'service'",
        1,
    )
    .await;

    // The acknowledgement went at the real time: its month in Mumbai.
    let this_month = chrono::DateTime::from_timestamp(
        s.id("SELECT sent_at FROM outbox WHERE kind = 'reply_ack'"),
        0,
    )
    .expect("instant")
    .with_timezone(&chrono_tz::Asia::Kolkata)
    .format("%Y-%m")
    .to_string();
    let out = s
        .cli(&[
            "stats",
            "--from",
            "2026-01-01",
            "--to",
            "2030-12-31",
            "--json",
        ])
        .expect(0)
        .json();
    let costs: Vec<Value> = out["costs"].as_array().expect("costs").clone();
    let find = |clinic: &str, month: &str, category: &str| -> Value {
        costs
            .iter()
            .find(|c| c["clinic"] == clinic && c["month"] == month && c["category"] == category)
            .cloned()
            .unwrap_or_else(|| panic!("no {clinic} {month} {category} in {costs:?}"))
    };
    let mumbai = find("mumbai", "2030-12", "utility");
    assert_eq!(mumbai["messages"], 2);
    assert!(
        (mumbai["cost"].as_f64().expect("cost") - 0.23).abs() < 1e-9,
        "{mumbai}"
    );
    assert_eq!(mumbai["currency"], "INR");
    assert_eq!(find("nyc", "2030-12", "utility")["messages"], 1);
    let service = find("mumbai", &this_month, "service");
    assert_eq!(
        (service["messages"].clone(), service["cost"].clone()),
        (json!(1), json!(0.1))
    );
    assert!(
        !costs
            .iter()
            .any(|c| c["clinic"] == "nyc" && c["category"] == "service"),
        "{costs:?}"
    );
    let human = s
        .cli(&["stats", "--from", "2026-01-01", "--to", "2030-12-31"])
        .expect(0)
        .stdout;
    assert!(
        human.contains("mumbai 2030-12 utility: 2 billable, estimated INR 0.23"),
        "{human}"
    );

    // The desk's Stats page says the same in words.
    let b = s.signed_in().await;
    let page = b
        .get("/desk/stats?clinic=mumbai&from=2026-01-01&to=2030-12-31")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let words = text(&page.body);
    assert!(
        words.contains("WhatsApp messages Meta bills for"),
        "{words}"
    );
    assert!(words.contains("December 2030"), "{words}");
    assert!(
        words.contains("Reminders and other approved messages (utility) 2 INR 0.23"),
        "{words}"
    );
    assert!(
        words.contains("Replies and acknowledgements (service) 1 INR 0.10"),
        "{words}"
    );
    assert!(words.contains("Estimated total INR 0.33"), "{words}");
}
