//! Unit tests of reading SIU messages and of their ACKs.
use chrono::{DateTime, Utc};

use super::ack::{self, Code, ErrCode};
use super::*;
use crate::feeds::Reading;
use crate::import::{ImportRow, RowStatus};
use crate::time::parse_instant;

fn utc(s: &str) -> DateTime<Utc> {
    parse_instant(s).expect("instant")
}

const FEED: &str = r#"
[feeds.ehr]
kind = "hl7"
clinic = "mumbai"
listen = "127.0.0.1:2575"
[feeds.ehr.locations]
"NYC-MAIN" = "nyc"
"#;

fn config(extra: &str) -> Config {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/reminders.toml"))
        .expect("shipped config");
    Config::from_toml_at(
        &format!("{base}\n{extra}"),
        std::path::Path::new("/etc/reminderd/reminders.toml"),
        utc("2026-11-25T00:00:00Z"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// An S12 in v2.3 shape: SCH-11 carries the time, no TQ1.
fn v23(event: &str, sch11: &str, pid13: &str, extra: &str) -> String {
    [
        format!(
            "MSH|^~\\&|EPIC|SUNRISE|REMINDERD|CLINIC|20261125083000||SIU^{event}|MSG0001|P|2.3"
        ),
        format!("SCH|P77|A1001|||||CHECKUP^Checkup||||{sch11}||||||||||||||Booked"),
        format!("PID|1||MRN42^^^HOSP^MR||Sharma^Asha||19800101|F|||||{pid13}||hin"),
        "RGS|1".to_string(),
        "AIP|1||D7^Rao^Vikram^^^Dr|D".to_string(),
        extra.to_string(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join("\r")
}

fn row(c: &Config, body: &str) -> ImportRow {
    let feed = &c.feeds["ehr"];
    match read(c, feed, body) {
        Ok((_, Action::Apply(reading))) => match *reading {
            Reading::Appointment(r) | Reading::PatientCancelled(r) => r,
            Reading::Slot(s) => panic!("a slot: {s:?}"),
        },
        other => panic!("not an appointment: {other:?}"),
    }
}

fn refusal(c: &Config, body: &str) -> String {
    match read(c, &c.feeds["ehr"], body) {
        Err(r) => r.to_string(),
        Ok(other) => panic!("read: {other:?}"),
    }
}

const MOBILE: &str = "^PRN^CP^^^^^^^^^9876543210";

#[test]
fn a_v23_s12_reads_sch11_start_and_duration_pid_identity_and_the_provider() {
    let c = config(FEED);
    let r = row(
        &c,
        &v23("S12", "^^^20261201093000^20261201100000", MOBILE, ""),
    );
    assert_eq!(r.appointment_id, "A1001");
    assert_eq!(r.patient_id, "MRN42");
    assert_eq!(r.patient_name, "Asha Sharma");
    assert_eq!(r.phone.as_str(), "+919876543210");
    assert_eq!(r.language, "hi");
    assert_eq!(r.clinic, "mumbai");
    // 09:30 in Kolkata (no offset: the clinic's zone) is 04:00 UTC; end − start = 30 min.
    assert_eq!(r.starts_at, utc("2026-12-01T04:00:00Z"));
    assert_eq!(r.duration_min, 30);
    assert_eq!(r.local_date.to_string(), "2026-12-01");
    assert_eq!(r.provider.as_deref(), Some("Dr Vikram Rao"));
    assert_eq!(r.status, RowStatus::Booked);
}

#[test]
fn a_v251_s12_reads_tq1_and_sch9_sch10_with_an_explicit_offset() {
    let c = config(FEED);
    let body = [
        "MSH|^~\\&|OPENEMR|CLINIC|RD|RD|20261125083000+0530||SIU^S12^SIU_S12|X-9|P|2.5.1",
        "SCH||F-55|||||||1^HR",
        "TQ1|1||||||20261201093000+0000",
        "PID|1||P9^^^^MR||Doe^John||||||||^PRN^CP^^1^212^5550188||EN",
        "PID|2||ignored",
        "AIG|1||ROOM4^Dental chair 4",
    ]
    .join("\n");
    let r = row(&c, &body);
    assert_eq!(r.appointment_id, "F-55");
    assert_eq!(r.starts_at, utc("2026-12-01T09:30:00Z"));
    assert_eq!(r.duration_min, 60, "SCH-9 written 1^HR");
    assert_eq!(r.provider.as_deref(), Some("Dental chair 4"));
    assert_eq!(r.language, "en");
    assert_eq!(
        r.phone.as_str(),
        "+12125550188",
        "a country code in XTN.5 wins over the region"
    );
}

#[test]
fn durations_read_sch9_units_and_the_resource_segments_in_that_order() {
    let c = config(FEED);
    let with = |sch: &str, extra: &str| {
        let body = v23("S12", "^^^202612010930", MOBILE, extra).replace(
            "CHECKUP^Checkup||||^^^202612010930",
            &format!("CHECKUP^Checkup||{sch}|^^^202612010930"),
        );
        row(&c, &body).duration_min
    };
    assert_eq!(with("15|MIN", ""), 15);
    assert_eq!(with("2|H", ""), 120);
    assert_eq!(with("45|min", ""), 45);
    assert_eq!(with("20|", ""), 20, "no unit: minutes");
    assert_eq!(with("|", "AIS|1||X-RAY|202612010930|||25|MIN"), 25);
    assert_eq!(with("|", "AIL|1||ROOM1|||202612010930|||2|HR"), 120);
    assert_eq!(with("|", "AIP|2||D8^Iyer^Meena|D||202612010930|||40"), 40);
    let c2 = c.clone();
    let body = v23("S12", "^^^202612010930", MOBILE, "")
        .replace("CHECKUP^Checkup||||", "CHECKUP^Checkup||15|FORTNIGHT|");
    assert!(
        refusal(&c2, &body).contains("SCH-10 (duration units) \"FORTNIGHT\" is not a unit"),
        "{}",
        refusal(&c2, &body)
    );
    let none = v23("S12", "^^^202612010930", MOBILE, "");
    assert!(refusal(&c, &none).starts_with("no length: SCH-9 (duration)"));
}

#[test]
fn the_start_falls_back_to_ais4_ail6_aip6_and_none_is_refused_naming_the_fields() {
    let c = config(FEED);
    let body = v23("S12", "", MOBILE, "AIL|1||ROOM1|||202612011015|||30|MIN");
    assert_eq!(row(&c, &body).starts_at, utc("2026-12-01T04:45:00Z"));
    let body = v23("S12", "", MOBILE, "AIS|1||CONS|202612011100|||30");
    assert_eq!(row(&c, &body).starts_at, utc("2026-12-01T05:30:00Z"));
    let body = v23(
        "S12",
        "",
        MOBILE,
        "AIP|2||D9^Kumar^Anil|D||202612011200|||30",
    );
    assert_eq!(row(&c, &body).starts_at, utc("2026-12-01T06:30:00Z"));
    let body = v23("S12", "", MOBILE, "");
    let r = refusal(&c, &body);
    assert!(
        r.starts_with("SCH-11.4 and TQ1-7 are both empty (and so are AIS-4, AIL-6 and AIP-6): no start time; send the start in TQ1-7"),
        "{r}"
    );
    let body = v23("S12", "^^^20261201", MOBILE, "");
    assert!(
        refusal(&c, &body)
            .contains("SCH-11.4 \"20261201\" is not a date and time with a time of day")
    );
}

#[test]
fn times_without_an_offset_follow_the_csv_dst_rule_in_the_clinics_zone() {
    let c = config(FEED);
    let ny = |t: &str| {
        v23(
            "S12",
            &format!("^^^{t}^^"),
            "^PRN^CP^^^^^^^^^2125550123",
            "AIL|1||NYC-MAIN",
        )
        .replace("CHECKUP^Checkup||||", "CHECKUP^Checkup||30|MIN|")
    };
    // 2026-03-08 02:30 does not exist in New York (clocks jump 02:00 → 03:00).
    let r = refusal(&c, &ny("202603080230"));
    assert!(
        r.contains(
            "SCH-11.4 \"202603080230\": 02:30:00 does not exist on 2026-03-08 in America/New_York"
        ),
        "{r}"
    );
    // 2026-11-01 01:30 happens twice: the first (EDT, −4) is taken, as the CSV does.
    let row = row(&c, &ny("202611010130"));
    assert_eq!(row.clinic, "nyc");
    assert_eq!(row.starts_at, utc("2026-11-01T05:30:00Z"));
    assert_eq!(row.phone.as_str(), "+12125550123");
}

#[test]
fn pid13_takes_the_cell_phone_in_a_later_repetition_then_prn_then_any_then_pid14() {
    let c = config(FEED);
    let read = |pid13: &str, pid14: &str| {
        let body = v23("S12", "^^^202612010930^202612011000", pid13, "")
            .replace(&format!("{pid13}||hin"), &format!("{pid13}|{pid14}|hin"));
        row(&c, &body).phone.as_str().to_string()
    };
    assert_eq!(
        read(
            "022 2345 6789^PRN^PH~^NET^Internet^asha@example.org~(98765) 43210^ORN^CP",
            ""
        ),
        "+919876543210",
        "CP in the third repetition wins over the PRN landline"
    );
    assert_eq!(
        read("^WPN^FX^^^^^^^^^02223456780~^PRN^PH^^^^^^^^^9876500001", ""),
        "+919876500001",
        "no CP: the PRN; a fax is never taken"
    );
    assert_eq!(
        read("^PRN^CP^^91^98765^43211", ""),
        "+919876543211",
        "components only: +country area local"
    );
    assert_eq!(read("9876543212", ""), "+919876543212", "v2.3: XTN.1 alone");
    assert_eq!(
        read("", "^WPN^CP^^^^^^^^^9876543213"),
        "+919876543213",
        "PID-14"
    );
    let body = v23("S12", "^^^202612010930^202612011000", "98765", "");
    let r = refusal(&c, &body);
    assert!(
        r.starts_with(
            "PID-13 (patient's phone) is not a valid Indian mobile number: it has 5 digits"
        ),
        "{r}"
    );
    assert!(r.ends_with("correct the patient's mobile number in the practice system"));
    assert!(
        !r.contains("98765"),
        "the number itself is not repeated: {r}"
    );
    let body = v23("S12", "^^^202612010930^202612011000", "", "");
    assert!(refusal(&c, &body).starts_with("PID-13 and PID-14 hold no phone number"));
}

#[test]
fn triggers_and_filler_statuses_map_to_row_statuses() {
    let c = config(FEED);
    let status = |event: &str, sch25: &str| {
        let body = v23(event, "^^^202612010930^202612011000", MOBILE, "")
            .replace("||Booked", &format!("||{sch25}"));
        row(&c, &body).status
    };
    assert_eq!(status("S12", "Booked"), RowStatus::Booked);
    assert_eq!(status("S12", "Pending"), RowStatus::Booked);
    assert_eq!(status("S14", ""), RowStatus::Booked);
    assert_eq!(status("S14", "Complete"), RowStatus::Completed);
    assert_eq!(status("S14", "Noshow"), RowStatus::NoShow);
    assert_eq!(status("S14", "Cancelled"), RowStatus::Cancelled);
    assert_eq!(status("S14", "Deleted"), RowStatus::Deleted);
    assert_eq!(status("S15", "Booked"), RowStatus::Cancelled);
    assert_eq!(status("S16", ""), RowStatus::Cancelled);
    assert_eq!(status("S17", "Booked"), RowStatus::Deleted);
    assert_eq!(status("S26", ""), RowStatus::NoShow);
    let body =
        v23("S12", "^^^202612010930^202612011000", MOBILE, "").replace("||Booked", "||Waitlist");
    assert!(
        refusal(&c, &body)
            .contains("SCH-25 (filler status) is Waitlist: a waitlist entry is not an appointment")
    );
}

#[test]
fn s23_and_s24_are_slots_and_s18_to_s22_are_ignored() {
    let c = config(FEED);
    let body = v23(
        "S24",
        "^^^202612010930^202612011000",
        MOBILE,
        "AIL|1||NYC-MAIN",
    );
    match read(&c, &c.feeds["ehr"], &body) {
        Ok((h, Action::Apply(reading))) => {
            let Reading::Slot(s) = *reading else {
                panic!("not a slot: {reading:?}")
            };
            assert_eq!(h.trigger, "SIU^S24");
            assert!(s.opened);
            assert_eq!(s.clinic, "nyc");
            assert_eq!(s.duration_min, 30);
            assert_eq!(s.location.as_deref(), Some("NYC-MAIN"));
            assert_eq!(s.provider.as_deref(), Some("Dr Vikram Rao"));
        }
        other => panic!("{other:?}"),
    }
    let body = v23("S19", "", "", "");
    match read(&c, &c.feeds["ehr"], &body) {
        Ok((_, Action::Ignore(why))) => assert!(why.starts_with("ignored: SIU S19"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_key_is_sch2_then_sch1_and_ids_and_locations_are_named_when_missing() {
    let c = config(FEED);
    let body = v23("S12", "^^^202612010930^202612011000", MOBILE, "")
        .replace("SCH|P77|A1001|", "SCH|P77||");
    assert_eq!(row(&c, &body).appointment_id, "P77");
    let body = body.replace("SCH|P77||", "SCH|||");
    assert!(refusal(&c, &body).starts_with(
        "SCH-2 (filler appointment id) and SCH-1 (placer appointment id) are both empty"
    ));

    let strict = config(
        "[feeds.ehr]\nkind = \"hl7\"\nlisten = \"127.0.0.1:2575\"\n[feeds.ehr.locations]\n\"NYC-MAIN\" = \"nyc\"\n",
    );
    let body = v23(
        "S12",
        "^^^202612010930^202612011000",
        MOBILE,
        "AIL|1||PUNE-2",
    );
    let r = refusal(&strict, &body);
    assert_eq!(
        r,
        "AIL-3.1 \"PUNE-2\", MSH-4 \"SUNRISE\": not a location of feed ehr; add it to the config under [feeds.ehr.locations], e.g. \"PUNE-2\" = \"CLINIC_KEY\", or give the feed a clinic"
    );
    match read(&strict, &strict.feeds["ehr"], &body) {
        Err(Refusal::Error { external_id, .. }) => {
            assert_eq!(external_id.as_deref(), Some("A1001"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_siu_and_non_hl7_messages_are_rejected_and_escapes_are_decoded() {
    let c = config(FEED);
    let adt = "MSH|^~\\&|A|B|C|D|20261125||ADT^A01|9|P|2.3\rPID|1||X";
    match read(&c, &c.feeds["ehr"], adt) {
        Err(Refusal::Rejected(why)) => assert!(
            why.starts_with("MSH-9 is ADT A01: not a scheduling message (SIU)"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read(&c, &c.feeds["ehr"], "hello"),
        Err(Refusal::Rejected(w)) if w.starts_with("not an HL7 v2 message")
    ));
    let body = v23("S12", "^^^202612010930^202612011000", MOBILE, "")
        .replace("Sharma^Asha", "D\\T\\Souza^Zoë");
    assert_eq!(row(&c, &body).patient_name, "Zoë D&Souza");
}

#[test]
fn acks_swap_sender_and_receiver_and_carry_the_reason_escaped() {
    let h = header(&v23("S12", "", "", "")).expect("header");
    let now = utc("2026-11-25T10:00:00Z");
    let aa = ack::ack(Some(&h), Code::Accept, None, "R1", now);
    assert_eq!(
        aa,
        "MSH|^~\\&|REMINDERD|CLINIC|EPIC|SUNRISE|20261125100000||ACK^S12^ACK|R1|P|2.3\rMSA|AA|MSG0001\r"
    );
    let ae = ack::ack(
        Some(&h),
        Code::Error,
        Some((ErrCode::Application, "PID-13 is bad | fix ^ it")),
        "R2",
        now,
    );
    assert!(
        ae.contains("\rMSA|AE|MSG0001|PID-13 is bad \\F\\ fix \\S\\ it\r"),
        "{ae}"
    );
    assert!(
        ae.ends_with(
            "ERR|||207^Application internal error^HL70357|E||||PID-13 is bad \\F\\ fix \\S\\ it\r"
        ),
        "{ae}"
    );
    let ar = ack::ack(
        None,
        Code::Reject,
        Some((ErrCode::Sequence, "not HL7")),
        "R3",
        now,
    );
    assert!(ar.contains("\rMSA|AR||not HL7\r"), "{ar}");
}

#[test]
fn no_input_panics_the_reader() {
    let c = config(FEED);
    let feed = &c.feeds["ehr"];
    let base = v23(
        "S13",
        "^^^20261201093000+0530^20261201100000+0530",
        MOBILE,
        "AIL|1||NYC-MAIN|||x|||y|z",
    );
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut bytes = base.clone().into_bytes();
        let at = usize::try_from(seed % bytes.len() as u64).unwrap_or(0);
        let junk = ["|", "^", "~", "\\", "&", "\r", "é", "\"\"", "+99", "-", ""][i % 11];
        bytes.truncate(at.max(3) + (i % 7));
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        s.push_str(junk);
        s.push_str(&base[at.min(base.len())..].chars().rev().collect::<String>());
        let _ = read(&c, feed, &s);
        let _ = header(&s);
    }
}

#[test]
fn the_readme_example_feed_parses_and_reads_a_message() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = &readme[readme
        .find("### Schedule from an HL7 v2 SIU feed")
        .expect("the HL7 section")..];
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block");
    let c = config(block);
    let feed = &c.feeds["front-desk-ehr"];
    let body = v23(
        "S12",
        "^^^202612010930^202612011000",
        "^PRN^CP^^^^^^^^^2125550123",
        "AIL|1||NYC-MAIN",
    );
    match read(&c, feed, &body) {
        Ok((_, Action::Apply(reading))) => {
            assert!(matches!(*reading, Reading::Appointment(ref r) if r.clinic == "nyc"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_msh_without_usable_separators_is_not_hl7_and_its_ack_stays_whole() {
    // MSH-2 missing: the parser would take "\rSCH" as the encoding characters.
    let body = "MSH|\rSCH|OPENEMR|MUMBAI-OPD|REMINDERD|CLINIC|20261126103000||SIU^S12|M1|P|2.5.1";
    assert!(header(body).is_none());
    let out = super::ack::ack(
        header(body).as_ref(),
        super::ack::Code::Reject,
        Some((super::ack::ErrCode::Sequence, "why")),
        "A1",
        parse_instant("2026-11-26T10:30:00Z").expect("instant"),
    );
    let segments: Vec<&str> = out.split('\r').filter(|s| !s.is_empty()).collect();
    assert_eq!(segments.len(), 3, "{segments:?}");
    assert!(segments[0].starts_with("MSH|^~\\&|"), "{segments:?}");
    assert!(segments[1].starts_with("MSA|AR||"), "{segments:?}");
}

#[test]
fn an_s15_whose_event_reason_is_the_patients_is_a_patient_cancellation() {
    let reading = |c: &Config, event: &str, reason: &str| {
        let body = v23(event, "^^^202612010930^202612011000", MOBILE, "")
            .replace("|||||CHECKUP", &format!("||||{reason}|CHECKUP"));
        match read(c, &c.feeds["ehr"], &body) {
            Ok((_, Action::Apply(r))) => *r,
            other => panic!("not applied: {other:?}"),
        }
    };
    let by_patient = |r: Reading| matches!(r, Reading::PatientCancelled(_));
    // The documented default: PAT, in any case.
    let c = config(FEED);
    assert!(by_patient(reading(&c, "S15", "PAT^Patient request")));
    assert!(by_patient(reading(&c, "S15", "pat")));
    assert!(!by_patient(reading(&c, "S15", "CLI^Clinic closed")));
    assert!(!by_patient(reading(&c, "S15", "")));
    // A deletion or another trigger with PAT is not a patient's cancellation.
    assert!(!by_patient(reading(&c, "S17", "PAT")));
    assert!(!by_patient(reading(&c, "S12", "PAT")));
    // A feed that names its own codes.
    let own = config(&FEED.replace(
        "listen =",
        "patient_cancel_reasons = [\"PT\", \"NOSHOWREQ\"]\nlisten =",
    ));
    assert!(by_patient(reading(&own, "S15", "PT")));
    assert!(!by_patient(reading(&own, "S15", "PAT")));
}
