//! The freshness guard, tested on its own: which clinics a silent or failing feed holds.
use super::*;
use crate::time::parse_instant;

fn utc(s: &str) -> DateTime<Utc> {
    parse_instant(s).expect("instant")
}

fn config(feeds: &str) -> Config {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/reminders.toml"))
        .expect("shipped config");
    Config::from_toml_at(
        &format!("{base}\n{feeds}"),
        std::path::Path::new("/etc/reminderd/reminders.toml"),
        utc("2026-11-25T00:00:00Z"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

const FEEDS: &str = r#"
[feeds.front-desk-ehr]
kind = "hl7"
clinic = "mumbai"
listen = "127.0.0.1:2575"
max_silence = "2h"

[feeds.cloud-ehr]
kind = "fhir"
base_url = "https://ehr.example.org/fhir"
max_import_age = "1d"
[feeds.cloud-ehr.locations]
"loc-nyc" = "nyc"
"#;

fn status(feed: &str) -> FeedStatus {
    FeedStatus {
        feed: feed.into(),
        ..FeedStatus::default()
    }
}

#[test]
fn a_silent_hl7_feed_and_a_failing_fhir_feed_hold_their_own_clinics_only() {
    let c = config(FEEDS);
    let now = utc("2026-11-26T10:00:00Z");
    let mut hl7 = status("front-desk-ehr");
    hl7.last_message_at = Some(utc("2026-11-26T09:00:00Z"));
    let mut fhir = status("cloud-ehr");
    fhir.last_success_at = Some(utc("2026-11-26T08:00:00Z"));
    assert!(holds(&c, &[hl7.clone(), fhir.clone()], now).is_empty());

    hl7.last_message_at = Some(utc("2026-11-26T07:30:00Z"));
    let h = holds(&c, &[hl7.clone(), fhir.clone()], now);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].clinics, vec!["mumbai".to_string()]);
    assert!(
        h[0].reason.contains(
            "HL7 feed front-desk-ehr has sent nothing for 2h 30m, longer than its max_silence (2h)"
        ),
        "{}",
        h[0].reason
    );

    fhir.last_success_at = Some(utc("2026-11-25T08:00:00Z"));
    fhir.last_error = Some((now, "the server answered 503".into()));
    let held = held_clinics(&holds(&c, &[hl7, fhir], now));
    assert_eq!(held.len(), 2);
    assert!(
        held["nyc"].contains("FHIR feed cloud-ehr last synced 1d 2h ago"),
        "{}",
        held["nyc"]
    );
    assert!(held["nyc"].contains("last error: the server answered 503"));
}

#[test]
fn a_feed_never_heard_from_holds_and_says_so() {
    let c = config(FEEDS);
    let h = holds(&c, &[], utc("2026-11-26T10:00:00Z"));
    assert_eq!(h.len(), 2);
    assert!(
        h.iter()
            .any(|h| h.reason.contains("has not sent a message yet"))
    );
    assert!(h.iter().any(|h| h.reason.contains("has not synced yet")));
    assert!(is_fed(&c, "mumbai") && is_fed(&c, "nyc"));
}

#[test]
fn feed_settings_are_checked_with_their_keys() {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/reminders.toml"))
        .expect("shipped config");
    let bad = r#"
[feeds.ehr]
kind = "hl7"
clinic = "nowhere"
base_url = "https://x.example/fhir"
read_free_slots = true
patient_cancel_reasons = ["PAT", " ", "P|T"]

[feeds.fhir]
kind = "fhir"
clinic = "mumbai"
base_url = "https://x.example/fhir"
patient_cancel_reasons = ["PAT"]

[feeds.other]
kind = "smoke-signals"
clinic = "mumbai"
"#;
    let err = Config::from_toml_at(
        &format!("{base}\n{bad}"),
        std::path::Path::new("/etc/reminderd/reminders.toml"),
        utc("2026-11-25T00:00:00Z"),
    )
    .expect_err("bad feeds")
    .to_string();
    for needle in [
        "feeds.ehr.clinic: \"nowhere\" is not a clinic",
        "feeds.ehr.base_url: is a setting of a FHIR feed",
        "feeds.ehr.listen: an HL7 feed needs its own address",
        "feeds.other.kind: \"smoke-signals\" is not a kind of feed",
        "feeds.ehr.read_free_slots: is a setting of a FHIR feed",
        "feeds.ehr.patient_cancel_reasons: each is an SCH-6 identifier",
        "feeds.fhir.patient_cancel_reasons: is a setting of an HL7 feed",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}
