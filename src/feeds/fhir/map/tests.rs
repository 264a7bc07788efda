//! The mapping from FHIR resources to records, resource by resource.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::config::{FeedKind, FhirAuth, FhirFeed};
use crate::feeds::fhir::types::CANCELLATION_REASONS;

fn feed(locations: &[(&str, &str)], clinic: Option<&str>) -> Feed {
    Feed {
        name: "ehr".into(),
        source: "ehr".into(),
        clinic: clinic.map(str::to_string),
        locations: locations
            .iter()
            .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
            .collect::<BTreeMap<_, _>>(),
        kind: FeedKind::Fhir(FhirFeed {
            base_url: "http://127.0.0.1:1/fhir".into(),
            auth: FhirAuth::None,
            full_sync: "0 0 * * * *".into(),
            incremental_sync: "0 */5 * * * *".into(),
            horizon_days: 8,
            page_size: 100,
            max_import_age: None,
            write_back: false,
            read_free_slots: false,
            connect_timeout: std::time::Duration::from_secs(5),
            request_timeout: std::time::Duration::from_secs(30),
        }),
    }
}

fn config() -> Config {
    Config::example().expect("example config")
}

fn appt(status: &str) -> Appointment {
    serde_json::from_value(json!({
        "resourceType": "Appointment", "id": "A1", "status": status,
        "start": "2026-12-01T10:00:00+05:30", "end": "2026-12-01T10:20:00+05:30",
        "participant": [
            {"actor": {"reference": "Patient/P1"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/D1", "display": "Dr Mehta"}, "status": "accepted"},
            {"actor": {"reference": "Location/L9"}, "status": "accepted"}
        ]
    }))
    .expect("appointment")
}

fn patient(telecom: &serde_json::Value) -> Patient {
    serde_json::from_value(json!({
        "resourceType": "Patient", "id": "P1",
        "name": [{"use": "official", "given": ["Asha"], "family": "Kulkarni"}],
        "telecom": telecom,
        "communication": [{"language": {"coding": [{"code": "en"}]}},
                          {"language": {"coding": [{"code": "mr"}]}, "preferred": true}]
    }))
    .expect("patient")
}

fn mobile_telecom() -> serde_json::Value {
    json!([
        {"system": "phone", "value": "022 2345 6789", "use": "home"},
        {"system": "phone", "value": "98200 11111", "use": "mobile", "rank": 2},
        {"system": "sms", "value": "98200 22222", "use": "mobile", "rank": 1},
        {"system": "email", "value": "a@example.org"}
    ])
}

fn read(status: &str, p: &Patient, f: &Feed) -> Result<ImportRow, Refusal> {
    let c = config();
    read_appointment(
        &c,
        f,
        &appt(status),
        Related {
            patient: Some(p),
            location: None,
        },
    )
    .map(|r| match r {
        Reading::Appointment(row) | Reading::PatientCancelled(row) => row,
        Reading::Slot(_) => panic!("a slot"),
    })
}

#[test]
fn a_booked_appointment_becomes_the_uploads_record() {
    let f = feed(&[("L9", "mumbai")], None);
    let row = read("booked", &patient(&mobile_telecom()), &f).expect("row");
    assert_eq!(row.clinic, "mumbai");
    assert_eq!(row.appointment_id, "A1");
    assert_eq!(row.patient_id, "P1");
    assert_eq!(row.patient_name, "Asha Kulkarni");
    assert_eq!(
        row.phone.as_str(),
        "+919820022222",
        "sms mobile with the lowest rank"
    );
    assert_eq!(row.language, "mr", "the preferred language");
    assert_eq!(row.duration_min, 20);
    assert_eq!(row.provider.as_deref(), Some("Dr Mehta"));
    assert_eq!(row.starts_at.to_rfc3339(), "2026-12-01T04:30:00+00:00");
    assert_eq!(row.status, RowStatus::Booked);
}

#[test]
fn statuses_map_as_the_shared_notes_say() {
    let f = feed(&[], Some("mumbai"));
    let p = patient(&mobile_telecom());
    for (s, want) in [
        ("pending", RowStatus::Booked),
        ("arrived", RowStatus::Booked),
        ("checked-in", RowStatus::Booked),
        ("cancelled", RowStatus::Cancelled),
        ("entered-in-error", RowStatus::Deleted),
        ("noshow", RowStatus::NoShow),
        ("fulfilled", RowStatus::Completed),
    ] {
        assert_eq!(read(s, &p, &f).expect(s).status, want, "{s}");
    }
    for s in ["proposed", "waitlist"] {
        let err = read(s, &p, &f).expect_err(s).to_string();
        assert!(err.contains("not booked"), "{s}: {err}");
    }
}

#[test]
fn a_patient_without_a_mobile_is_refused_by_name_and_field() {
    let f = feed(&[], Some("mumbai"));
    let p = patient(&json!([{"system": "phone", "value": "022 2345 6789", "use": "home"}]));
    let err = read("booked", &p, &f).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("Asha Kulkarni")
            && text.contains("Patient.telecom")
            && text.contains("mobile"),
        "{text}"
    );
    assert!(matches!(err, Refusal::Error { external_id: Some(ref id), .. } if id == "A1"));
}

#[test]
fn a_bad_number_is_explained_and_a_deceased_patient_never_reminded() {
    let f = feed(&[], Some("mumbai"));
    let p = patient(&json!([{"system": "phone", "value": "12345", "use": "mobile"}]));
    let text = read("booked", &p, &f).expect_err("bad").to_string();
    assert!(
        text.contains("Asha Kulkarni") && text.contains("\"12345\""),
        "{text}"
    );
    let mut dead = patient(&mobile_telecom());
    dead.deceased_boolean = Some(true);
    // Cancelled by the source, so a booking made before stops its reminders.
    let row = read("booked", &dead, &f).expect("deceased");
    assert_eq!(row.status, RowStatus::Cancelled);
}

#[test]
fn an_unknown_location_without_a_feed_clinic_is_refused() {
    let f = feed(&[("L1", "mumbai")], None);
    let text = read("booked", &patient(&mobile_telecom()), &f)
        .expect_err("refused")
        .to_string();
    assert!(
        text.contains("Location/L9") && text.contains("[feeds.ehr.locations]"),
        "{text}"
    );
}

#[test]
fn only_a_cancellation_coded_pat_is_the_patients() {
    let c = config();
    let f = feed(&[("L9", "mumbai")], None);
    let p = patient(&mobile_telecom());
    let reading = |status: &str, reason: Option<serde_json::Value>| {
        let mut a = appt(status);
        a.cancelation_reason = reason.map(|r| serde_json::from_value(r).expect("reason"));
        read_appointment(
            &c,
            &f,
            &a,
            Related {
                patient: Some(&p),
                location: None,
            },
        )
        .expect("reading")
    };
    let coded =
        |system: &str, code: &str| Some(json!({"coding": [{"system": system, "code": code}]}));
    let by_patient = |r: Reading| matches!(r, Reading::PatientCancelled(ref row) if row.status == RowStatus::Cancelled);
    assert!(by_patient(reading(
        "cancelled",
        coded(CANCELLATION_REASONS, "pat")
    )));
    assert!(by_patient(reading(
        "cancelled",
        coded(CANCELLATION_REASONS, "pat-mv")
    )));
    assert!(by_patient(reading(
        "cancelled",
        Some(json!({"coding": [{"code": "pat"}]}))
    )));
    // The clinic's reasons, another system's "pat", no reason, or a booked one: not the patient's.
    assert!(!by_patient(reading(
        "cancelled",
        coded(CANCELLATION_REASONS, "prov")
    )));
    assert!(!by_patient(reading(
        "cancelled",
        coded("http://example.org/reasons", "pat")
    )));
    assert!(!by_patient(reading("cancelled", None)));
    assert!(!by_patient(reading(
        "booked",
        coded(CANCELLATION_REASONS, "pat")
    )));
}
