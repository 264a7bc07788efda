//! Telling the practice system of patients' answers (`source_updates`, queued in the answer's
//! own transaction). A FHIR feed with `write_back` on, on a server whose CapabilityStatement
//! allows it: a confirmation becomes an `AppointmentResponse` (accepted), a cancellation a
//! `PUT` of the appointment with `status = cancelled`, `cancelationReason` `pat-crs` and the
//! patient `declined`, under `If-Match` (a 412 re-reads and retries once; a PUT repeated after
//! a crash is refused by the version or finds the appointment already cancelled). Everything
//! else a cancellation meets (an HL7 feed, write-back off, a read-only server such as
//! OpenEMR, a refusal) becomes a follow-up for staff; a server that does not answer is tried
//! again later, then left to staff too. A held waitlist opening at a `confirm = "fhir"`
//! clinic is a `book`: the patient's appointment is moved there by a `PUT` under `If-Match`
//! (start, end and length; everything else kept), and the feed's next sync lands the move as
//! any import does; what it cannot book is the staff's follow-up card.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::config::Config;
use crate::feeds::fhir::types::{CANCELLATION_REASONS, Reference};
use crate::feeds::fhir::{Client, FhirClients, FhirError};
use crate::store::{BookFacts, Db, SourceUpdate, StoreError};
use crate::time::Clock;

/// What staff read on a cancellation the practice system was not told of.
pub const CANCEL_BY_HAND: &str =
    "cancelled by the patient in reminderd; cancel it in the practice system";

/// What staff read on a held opening the write-back could not book.
pub const BOOK_BY_HAND: &str =
    "reminderd could not book it through the practice system's FHIR server; book it there by hand";

/// Attempts at a server that does not answer before the update is left to staff.
pub const MAX_ATTEMPTS: i64 = 5;

/// Updates looked at per run.
const BATCH: usize = 50;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdatesReport {
    /// Told to the practice system.
    pub done: usize,
    /// Left to staff, with why.
    pub staff: usize,
    /// Nothing to tell (a confirmation without write-back).
    pub skipped: usize,
    /// To be tried again later.
    pub retrying: usize,
}

/// How one update ended.
enum End {
    Done,
    Staff(String),
    Skipped,
    Retry(String),
}

/// Works through the practice-system updates due at the clock's now.
pub async fn run_due(
    db: &Db,
    config: &Arc<Config>,
    clients: &FhirClients,
    clock: Clock,
) -> Result<UpdatesReport, StoreError> {
    let now = clock.now();
    let due = db.run(move |s| s.due_source_updates(now, BATCH)).await??;
    let mut report = UpdatesReport::default();
    for u in due {
        let facts = if u.action == "book" {
            let id = u.id;
            db.run(move |s| s.book_facts(id)).await??
        } else {
            None
        };
        let end = one(config, clients, &u, facts.as_ref()).await;
        let now = clock.now();
        let (state, error, retry_at) = match end {
            End::Done => {
                report.done += 1;
                ("done", None, None)
            }
            End::Skipped => {
                report.skipped += 1;
                ("skipped", None, None)
            }
            End::Staff(why) => {
                report.staff += 1;
                ("staff", Some(why), None)
            }
            End::Retry(why) if u.attempts + 1 >= MAX_ATTEMPTS => {
                report.staff += 1;
                let tries = format!(
                    "the FHIR server did not take it after {} tries: {why}",
                    u.attempts + 1
                );
                ("staff", Some(words(&u, &tries)), None)
            }
            End::Retry(why) => {
                report.retrying += 1;
                ("pending", Some(why), Some(retry_at(now, u.attempts)))
            }
        };
        if state == "staff" || state == "pending" {
            tracing::warn!(
                update = u.id,
                feed = %u.feed,
                action = %u.action,
                state,
                error = error.as_deref().unwrap_or(""),
                "practice-system update not made"
            );
        }
        let id = u.id;
        db.run(move |s| s.finish_source_update(id, state, error.as_deref(), retry_at, now))
            .await??;
    }
    Ok(report)
}

/// The next try after `attempts` failed ones: 1, 2, 4, 8 … minutes, at most an hour
/// (dispatch's backoff, without jitter: there is one update per answer, no herd to spread).
pub fn retry_at(now: DateTime<Utc>, attempts: i64) -> DateTime<Utc> {
    let delay = crate::dispatch::backoff(
        u32::try_from(attempts.max(0))
            .unwrap_or(u32::MAX)
            .saturating_add(1),
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(3600),
        1.0,
    );
    now + Duration::from_std(delay).unwrap_or(Duration::hours(1))
}

async fn one(
    config: &Config,
    clients: &FhirClients,
    u: &SourceUpdate,
    facts: Option<&BookFacts>,
) -> End {
    let feed = config
        .feeds
        .get(&u.feed)
        .filter(|f| f.source == u.feed)
        .or_else(|| config.feeds.values().find(|f| f.source == u.feed));
    let writable = feed.filter(|f| f.fhir().is_some_and(|h| h.write_back));
    let Some(feed) = writable else {
        // An HL7 feed, write-back off, or a feed no longer configured: staff are the only way.
        return match u.action.as_str() {
            "cancel" => End::Staff(CANCEL_BY_HAND.into()),
            "book" => End::Staff(words(u, "the feed no longer writes back")),
            _ => End::Skipped,
        };
    };
    let client = match clients.client(feed) {
        Ok(c) => c,
        Err(e) => return staff_or_retry(u, &e),
    };
    let result = match u.action.as_str() {
        "cancel" => cancel(&client, &u.external_id).await,
        "confirm" => confirm(&client, &u.external_id).await,
        "book" => match facts {
            Some(f) if !f.held => return End::Skipped,
            Some(f) => book(&client, &feed.source, f).await,
            None => return End::Staff(words(u, "the offer it books is gone")),
        },
        other => return End::Staff(format!("unknown practice-system update {other:?}")),
    };
    match result {
        Ok(None) => End::Done,
        Ok(Some(why)) => End::Staff(words(u, &why)),
        Err(e) => staff_or_retry(u, &e),
    }
}

fn words(u: &SourceUpdate, why: &str) -> String {
    if u.action == "cancel" {
        format!("{CANCEL_BY_HAND} ({why})")
    } else if u.action == "book" {
        format!("{BOOK_BY_HAND} ({why})")
    } else {
        format!("confirmed by the patient in reminderd; the practice system was not told ({why})")
    }
}

fn staff_or_retry(u: &SourceUpdate, e: &FhirError) -> End {
    if e.is_transient() {
        End::Retry(e.to_string())
    } else {
        End::Staff(words(u, &e.to_string()))
    }
}

/// Whether the server says it allows `interaction` on `kind`; `Some(why)` when it does not.
async fn refuses(
    client: &Client,
    kind: &str,
    interaction: &str,
) -> Result<Option<String>, FhirError> {
    let cap = client.capability().await?;
    Ok((!cap.allows(kind, interaction)).then(|| {
        format!(
            "the FHIR server is read-only for {kind}: its CapabilityStatement has no {interaction:?}"
        )
    }))
}

/// `Ok(None)` done, `Ok(Some(why))` for staff.
async fn cancel(client: &Client, id: &str) -> Result<Option<String>, FhirError> {
    if let Some(why) = refuses(client, "Appointment", "update").await? {
        return Ok(Some(why));
    }
    for attempt in 0..2 {
        let Some(current) = client.read("Appointment", id).await? else {
            return Ok(Some(format!(
                "Appointment/{id} is no longer on the FHIR server"
            )));
        };
        if !current.resource.is_object() {
            return Ok(Some(format!(
                "the FHIR server answered Appointment/{id} with something that is not a resource"
            )));
        }
        if current.resource["status"] == "cancelled" {
            // Cancelled already (by staff, or by our own PUT before a crash).
            return Ok(None);
        }
        let body = cancelled(current.resource);
        match client
            .update("Appointment", id, &body, current.version.as_deref())
            .await
        {
            Ok(()) => return Ok(None),
            Err(e) if e.status() == Some(412) && attempt == 0 => {}
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => return Ok(Some(e.to_string())),
        }
    }
    Ok(Some(format!(
        "Appointment/{id} kept changing on the FHIR server while reminderd cancelled it"
    )))
}

/// Moves the patient's appointment to the held opening: `Ok(None)` done, `Ok(Some(why))` for
/// staff. A PUT repeated after a crash finds the appointment already there.
async fn book(client: &Client, source: &str, f: &BookFacts) -> Result<Option<String>, FhirError> {
    let Some((id, from, provider)) = f.moves.as_ref() else {
        return Ok(Some(
            "the patient has no booked appointment to move into the opening".into(),
        ));
    };
    if from != source {
        return Ok(Some(
            "the patient's appointment did not come from this FHIR server".into(),
        ));
    }
    if let (Some(want), Some(has)) = (&f.provider, provider)
        && want != has
    {
        return Ok(Some(format!(
            "the opening is with {want}, the patient's appointment with {has}"
        )));
    }
    if let Some(why) = refuses(client, "Appointment", "update").await? {
        return Ok(Some(why));
    }
    let end = f.starts_at + Duration::minutes(f.duration_min);
    for attempt in 0..2 {
        let Some(current) = client.read("Appointment", id).await? else {
            return Ok(Some(format!(
                "Appointment/{id} is no longer on the FHIR server"
            )));
        };
        let status = current.resource["status"].as_str().unwrap_or("");
        if !matches!(status, "booked" | "pending" | "proposed") {
            return Ok(Some(format!(
                "Appointment/{id} is {status:?} on the FHIR server"
            )));
        }
        let at = current.resource["start"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        if at.is_some_and(|a| a == f.starts_at) {
            // Moved already (by our own PUT before a crash, or by staff).
            return Ok(None);
        }
        let body = moved(current.resource, f.starts_at, end, f.duration_min);
        match client
            .update("Appointment", id, &body, current.version.as_deref())
            .await
        {
            Ok(()) => return Ok(None),
            Err(e) if e.status() == Some(412) && attempt == 0 => {}
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => return Ok(Some(e.to_string())),
        }
    }
    Ok(Some(format!(
        "Appointment/{id} kept changing on the FHIR server while reminderd moved it"
    )))
}

/// The appointment as the server has it, at the opening's time: every other field kept, a
/// `slot` reference of the old time dropped (it names the slot it no longer fills).
fn moved(mut appt: Value, start: DateTime<Utc>, end: DateTime<Utc>, minutes: i64) -> Value {
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    appt["start"] = json!(stamp(start));
    appt["end"] = json!(stamp(end));
    appt["minutesDuration"] = json!(minutes);
    if let Some(o) = appt.as_object_mut() {
        o.remove("slot");
    }
    appt
}

/// The appointment as the server has it, cancelled by the patient: every other field kept.
fn cancelled(mut appt: Value) -> Value {
    appt["status"] = json!("cancelled");
    appt["cancelationReason"] = json!({
        "coding": [{
            "system": CANCELLATION_REASONS,
            "code": "pat-crs",
            "display": "Patient: Canceled via automated reminder system"
        }]
    });
    if let Some(parts) = appt["participant"].as_array_mut() {
        for p in parts {
            let is_patient = serde_json::from_value::<Reference>(p["actor"].clone())
                .ok()
                .and_then(|r| r.target().map(|(k, _)| k == "Patient"))
                .unwrap_or(false);
            if is_patient {
                p["status"] = json!("declined");
            }
        }
    }
    appt
}

async fn confirm(client: &Client, id: &str) -> Result<Option<String>, FhirError> {
    if let Some(why) = refuses(client, "AppointmentResponse", "create").await? {
        return Ok(Some(why));
    }
    let Some(current) = client.read("Appointment", id).await? else {
        return Ok(Some(format!(
            "Appointment/{id} is no longer on the FHIR server"
        )));
    };
    let patient = current.resource["participant"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| serde_json::from_value::<Reference>(p["actor"].clone()).ok())
        .find_map(|r| {
            r.target()
                .filter(|(k, _)| *k == "Patient")
                .map(|(_, p)| p.to_string())
        });
    let Some(patient) = patient else {
        return Ok(Some(format!("Appointment/{id} has no Patient participant")));
    };
    let response = json!({
        "resourceType": "AppointmentResponse",
        "appointment": {"reference": format!("Appointment/{id}")},
        "actor": {"reference": format!("Patient/{patient}")},
        "participantStatus": "accepted",
        "comment": "Confirmed by the patient in reply to a reminder (reminderd)"
    });
    let query =
        format!("appointment=Appointment/{id}&actor=Patient/{patient}&part-status=accepted");
    match client
        .create("AppointmentResponse", &response, Some(&query))
        .await
    {
        Ok(()) => Ok(None),
        Err(e) if e.is_transient() => Err(e),
        Err(e) => Ok(Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancellation_keeps_every_field_and_declines_only_the_patient() {
        let appt = json!({
            "resourceType": "Appointment", "id": "7", "status": "booked",
            "meta": {"versionId": "3"}, "comment": "bring reports",
            "participant": [
                {"actor": {"reference": "Patient/9"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/2", "display": "Dr Rao"}, "status": "accepted"}
            ]
        });
        let c = cancelled(appt);
        assert_eq!(c["status"], "cancelled");
        assert_eq!(c["comment"], "bring reports");
        assert_eq!(c["cancelationReason"]["coding"][0]["code"], "pat-crs");
        assert_eq!(
            c["cancelationReason"]["coding"][0]["system"],
            CANCELLATION_REASONS
        );
        assert_eq!(c["participant"][0]["status"], "declined");
        assert_eq!(c["participant"][1]["status"], "accepted");
    }

    #[test]
    fn a_move_changes_only_the_time() {
        let appt = json!({
            "resourceType": "Appointment", "id": "7", "status": "booked",
            "start": "2026-12-01T04:00:00Z", "end": "2026-12-01T04:15:00Z",
            "slot": [{"reference": "Slot/9"}], "comment": "bring reports",
            "participant": [{"actor": {"reference": "Patient/9"}, "status": "accepted"}]
        });
        let start = DateTime::parse_from_rfc3339("2026-11-30T05:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let m = moved(appt, start, start + Duration::minutes(20), 20);
        assert_eq!(m["start"], "2026-11-30T05:00:00Z");
        assert_eq!(m["end"], "2026-11-30T05:20:00Z");
        assert_eq!(m["minutesDuration"], 20);
        assert_eq!(m["status"], "booked");
        assert_eq!(m["comment"], "bring reports");
        assert!(m.get("slot").is_none());
        assert_eq!(m["participant"][0]["status"], "accepted");
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(retry_at(now, 0) - now, Duration::minutes(1));
        assert_eq!(retry_at(now, 3) - now, Duration::minutes(8));
        assert_eq!(retry_at(now, 30) - now, Duration::hours(1));
    }
}
