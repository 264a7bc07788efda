//! Arbitrary bytes as what an interface engine sends an HL7 feed: MLLP framing, then each
//! frame read as an SIU message and acknowledged, with the shipped configuration.

use std::collections::BTreeMap;

use reminderd::config::{Feed, FeedKind, Hl7Feed};
use reminderd::feeds::hl7::{Action, ack, header, mllp, read};
use reminderd::feeds::{Reading, Refusal};

/// A feed for the shipped clinics: Mumbai by default, New York by location.
fn feed() -> Feed {
    Feed {
        name: "fuzz".into(),
        source: "fuzz".into(),
        clinic: Some("mumbai".into()),
        locations: BTreeMap::from([("NYC-MAIN".to_string(), "nyc".to_string())]),
        kind: FeedKind::Hl7(Hl7Feed {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            max_silence: None,
            max_message_bytes: 4096,
            patient_cancel_reasons: vec!["PAT".into()],
        }),
    }
}

/// The first byte says whether the rest is a byte stream to deframe (odd) or one message
/// (even). Panics unless framing never yields a frame over its limit, every message reads to
/// a record that could be stored (an id, a length, a start) or a refusal with words, and
/// every ACK is one HL7 message: an MSH, then an MSA with a code, nothing else but an ERR.
pub fn check(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let frames: Vec<Vec<u8>> = if mode & 1 == 1 {
        let mut d = mllp::Deframer::new(4096);
        d.push(rest)
            .into_iter()
            .filter_map(|e| match e {
                mllp::Event::Frame(f) => {
                    assert!(f.len() <= 4096, "a frame of {} bytes", f.len());
                    Some(f)
                }
                mllp::Event::TooLong(_) => None,
            })
            .collect()
    } else {
        vec![rest.to_vec()]
    };
    let config = super::shipped_config();
    let feed = feed();
    for f in frames {
        let body = String::from_utf8_lossy(&f);
        let head = header(&body);
        let code = match read(config, &feed, &body) {
            Ok((_, Action::Apply(reading))) => {
                match *reading {
                    Reading::Appointment(row) | Reading::PatientCancelled(row) => {
                        assert!(!row.appointment_id.trim().is_empty(), "no id: {row:?}");
                        assert!(row.duration_min > 0, "no length: {row:?}");
                        assert!(config.clinic(&row.clinic).is_some(), "clinic: {row:?}");
                    }
                    Reading::Slot(s) => assert!(s.duration_min > 0, "slot: {s:?}"),
                }
                ack::Code::Accept
            }
            Ok((_, Action::Ignore(why))) => {
                assert!(!why.is_empty());
                ack::Code::Accept
            }
            Err(Refusal::Rejected(why)) => {
                assert!(!why.trim().is_empty(), "a rejection without words");
                ack::Code::Reject
            }
            Err(Refusal::Error { reason, .. }) => {
                assert!(!reason.trim().is_empty(), "an error without words");
                ack::Code::Error
            }
        };
        let reason = (code != ack::Code::Accept).then_some((ack::ErrCode::Application, "why"));
        let out = ack::ack(head.as_ref(), code, reason, "ACK1", super::now());
        assert!(out.starts_with("MSH"), "ACK: {out:?}");
        let segments: Vec<&str> = out.split('\r').filter(|s| !s.is_empty()).collect();
        assert!(
            segments.len() >= 2 && segments[1].starts_with("MSA"),
            "ACK segments: {segments:?}"
        );
        assert!(
            segments[2..].iter().all(|s| s.starts_with("ERR")),
            "ACK segments: {segments:?}"
        );
    }
}
