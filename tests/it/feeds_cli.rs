//! `reminderd feeds` as an administrator uses it: the feeds with their holds and last errors
//! (a table, or JSON), a feed's messages, one message with its numbers masked (whole only with
//! `--unmasked`, audited), and re-applying one; an unknown id or feed gets its exit code.

use chrono::Duration;

use crate::common::Env;
use crate::desk_feeds::{FEEDS, REASON, REFUSED_BODY};

/// A folder whose config has [`FEEDS`] and whose HL7 feed last sent, three hours ago, one
/// message that was refused; returns its row.
fn fed() -> (Env, i64) {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    env.write_config(format!("{config}\n{FEEDS}"));
    let at = reminderd::time::Clock::System.now() - Duration::hours(3);
    let mut store = env.store().expect("store");
    let id = store
        .receive_feed_message("front-desk-ehr", "MSG-9", "SIU^S12", REFUSED_BODY, at)
        .expect("receive")
        .id;
    store
        .refuse_feed_message(id, REASON, Some("APT-9"), at)
        .expect("refuse");
    (env, id)
}

#[test]
fn feeds_lists_each_feed_with_its_hold_and_last_error() {
    let (env, _) = fed();
    // Held feeds are news, not a failure: the command succeeds and says why.
    let r = env.run(&["feeds"]).expect(0);
    for expected in [
        "front-desk-ehr",
        "cloud-ehr",
        "HELD",
        "never",
        "front-desk-ehr: held: HL7 feed front-desk-ehr has sent nothing for 3h",
        "cloud-ehr: held: FHIR feed cloud-ehr has not synced yet",
        "front-desk-ehr: last error at ",
        REASON,
    ] {
        assert!(
            r.stdout.contains(expected),
            "{expected:?} in:\n{}",
            r.stdout
        );
    }

    let json = env.run(&["feeds", "--json"]).expect(0).json();
    let feeds = json.as_array().expect("an array");
    assert_eq!(feeds.len(), 2);
    let hl7 = feeds
        .iter()
        .find(|f| f["name"] == "front-desk-ehr")
        .expect("the HL7 feed");
    assert_eq!(hl7["kind"], "hl7");
    assert_eq!(hl7["clinics"], serde_json::json!(["mumbai"]));
    assert_eq!(hl7["refused"], 1);
    assert_eq!(hl7["applied"], 0);
    assert_eq!(hl7["held"], true);
    assert_eq!(hl7["last_error"], REASON);
    assert!(hl7["last_message_at"].is_string());
    let fhir = feeds
        .iter()
        .find(|f| f["name"] == "cloud-ehr")
        .expect("FHIR");
    assert_eq!(fhir["last_success_at"], serde_json::Value::Null);
    assert!(
        fhir["hold_reason"]
            .as_str()
            .is_some_and(|r| r.contains("has not synced yet"))
    );
}

#[test]
fn messages_show_and_reapply_name_a_message_and_mask_numbers() {
    let (env, id) = fed();
    let list = env
        .run(&["feeds", "messages", "front-desk-ehr", "--refused"])
        .expect(0);
    assert!(list.stdout.contains("MSG-9"), "{}", list.stdout);
    assert!(list.stdout.contains("APT-9"));
    let unknown = env.run(&["feeds", "messages", "no-such-feed"]).expect(64);
    assert!(
        unknown.stderr.contains("front-desk-ehr"),
        "{}",
        unknown.stderr
    );

    let shown = env.run(&["feeds", "show", &id.to_string()]).expect(0);
    assert!(
        shown.stdout.contains("^PRN^CP^^**^******3210"),
        "{}",
        shown.stdout
    );
    assert!(!shown.stdout.contains("9876543210"));
    assert!(shown.stdout.contains(REASON));
    assert_eq!(
        env.count("SELECT count(*) FROM audit_log WHERE action = 'view_feed_message_unmasked'"),
        0
    );
    let whole = env
        .run(&["feeds", "show", &id.to_string(), "--unmasked", "--json"])
        .expect(0)
        .json();
    assert!(
        whole["body"]
            .as_str()
            .is_some_and(|b| b.contains("9876543210"))
    );
    assert_eq!(whole["masked"], false);
    assert_eq!(
        env.count("SELECT count(*) FROM audit_log WHERE action = 'view_feed_message_unmasked'"),
        1
    );

    env.run(&["feeds", "show", "999999"]).expect(66);
    let missing = env.run(&["feeds", "reapply", "999999"]).expect(66);
    assert!(
        missing.stderr.contains("no feed message 999999"),
        "{}",
        missing.stderr
    );
    // Still refused with today's configuration: bad data, said on standard output, audited.
    let again = env.run(&["feeds", "reapply", &id.to_string()]).expect(65);
    assert!(again.stdout.contains("still refused: "), "{}", again.stdout);
    assert_eq!(
        env.count("SELECT count(*) FROM audit_log WHERE action = 'reapply_feed_message'"),
        1
    );
}

#[test]
fn a_message_refused_for_an_unmapped_location_applies_once_the_location_is_mapped() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    env.write_config(format!("{config}\n{FEEDS}"));
    let start = (reminderd::time::Clock::System.now() + Duration::days(2))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .format("%Y%m%d%H%M00");
    let body = format!(
        "MSH|^~\\&|EHR|BANDRA|REMINDERD|X|20261126103000||SIU^S12|MSG-10|P|2.5.1\rSCH||APT-10|||||||15|min\rTQ1|1||||||{start}\rPID|1||P-10^^^EHR||Patil^Priya||19800101|F|||||^PRN^CP^^91^98765^43210\rAIL|1||BANDRA"
    );
    let id = env
        .store()
        .expect("store")
        .receive_feed_message(
            "front-desk-ehr",
            "MSG-10",
            "SIU^S12",
            &body,
            reminderd::time::Clock::System.now(),
        )
        .expect("receive")
        .id;
    let refused = env.run(&["feeds", "reapply", &id.to_string()]).expect(65);
    assert!(
        refused.stdout.contains("\"BANDRA\""),
        "the reason names the location: {}",
        refused.stdout
    );

    // The administrator maps the location; the stored message now applies, once.
    let fixed = format!("{config}\n{FEEDS}").replace(
        "\"ANDHERI\" = \"mumbai\"",
        "\"ANDHERI\" = \"mumbai\"\n\"BANDRA\" = \"mumbai\"",
    );
    env.write_config(fixed);
    let applied = env.run(&["feeds", "reapply", &id.to_string()]).expect(0);
    assert!(applied.stdout.contains("new"), "{}", applied.stdout);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM appointments WHERE source = 'front-desk-ehr' AND external_id = 'APT-10' AND status = 'booked'"
        ),
        1
    );
    let again = env.run(&["feeds", "reapply", &id.to_string()]).expect(0);
    assert!(again.stdout.contains("already applied"), "{}", again.stdout);
}

#[test]
fn a_refused_message_whose_text_the_purge_removed_says_so_instead_of_failing_to_parse() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    env.write_config(format!("{config}\n{FEEDS}"));
    let body = "MSH|^~\\&|EHR|BANDRA|REMINDERD|X|20261126103000||SIU^S12|MSG-11|P|2.5.1\rSCH||APT-11|||||||15|min\rAIL|1||BANDRA";
    let id = env
        .store()
        .expect("store")
        .receive_feed_message(
            "front-desk-ehr",
            "MSG-11",
            "SIU^S12",
            body,
            reminderd::time::Clock::System.now(),
        )
        .expect("receive")
        .id;
    env.run(&["feeds", "reapply", &id.to_string()]).expect(65);
    // Its text is past `[privacy] raw_payloads`: the purge empties it, the row stays.
    env.sql()
        .execute(
            "UPDATE feed_messages SET received_at = received_at - 40 * 86400 WHERE id = ?1",
            [id],
        )
        .expect("age it");
    env.run(&["purge"]).expect(0);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM feed_messages WHERE id = {id} AND body = '' AND purged_at IS NOT NULL"
        )),
        1
    );
    let gone = env.run(&["feeds", "reapply", &id.to_string()]).expect(65);
    let said = format!("{}{}", gone.stdout, gone.stderr);
    assert!(
        said.contains("its text was removed by the retention purge")
            && said.contains("send it again"),
        "{said}"
    );
    assert!(!said.contains("parse"), "{said}");
}
