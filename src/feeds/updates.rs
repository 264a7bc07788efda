//! Telling the practice system of patients' answers (`source_updates`, queued in the answer's
//! own transaction). A FHIR feed with `write_back` on, on a server whose CapabilityStatement
//! allows it: a confirmation becomes an `AppointmentResponse` (accepted), a cancellation a
//! `PUT` of the appointment with `status = cancelled`, `cancelationReason` `pat-crs` and the
//! patient `declined`, under `If-Match` (a 412 re-reads and retries once; a PUT repeated after
//! a crash is refused by the version or finds the appointment already cancelled). Everything
//! else a cancellation meets (an HL7 feed, write-back off, a read-only server such as
//! OpenEMR, a refusal) becomes a follow-up for staff; a server that does not answer is tried
//! again later, then left to staff too.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::config::Config;
use crate::feeds::fhir::types::{CANCELLATION_REASONS, Reference};
use crate::feeds::fhir::{Client, FhirClients, FhirError};
use crate::store::{Db, SourceUpdate, StoreError};
use crate::time::Clock;

/// What staff read on a cancellation the practice system was not told of.
pub const CANCEL_BY_HAND: &str =
    "cancelled by the patient in reminderd; cancel it in the practice system";

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
        let end = one(config, clients, &u).await;
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

async fn one(config: &Config, clients: &FhirClients, u: &SourceUpdate) -> End {
    let feed = config
        .feeds
        .get(&u.feed)
        .filter(|f| f.source == u.feed)
        .or_else(|| config.feeds.values().find(|f| f.source == u.feed));
    let writable = feed.filter(|f| f.fhir().is_some_and(|h| h.write_back));
    let Some(feed) = writable else {
        // An HL7 feed, write-back off, or a feed no longer configured: staff are the only way.
        return if u.action == "cancel" {
            End::Staff(CANCEL_BY_HAND.into())
        } else {
            End::Skipped
        };
    };
    let client = match clients.client(feed) {
        Ok(c) => c,
        Err(e) => return staff_or_retry(u, &e),
    };
    let result = match u.action.as_str() {
        "cancel" => cancel(&client, &u.external_id).await,
        "confirm" => confirm(&client, &u.external_id).await,
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
    fn retries_back_off_to_an_hour() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(retry_at(now, 0) - now, Duration::minutes(1));
        assert_eq!(retry_at(now, 3) - now, Duration::minutes(8));
        assert_eq!(retry_at(now, 30) - now, Duration::hours(1));
    }
}
