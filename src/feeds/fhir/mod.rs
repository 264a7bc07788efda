//! The FHIR R4 source: resources read into records ([`map`], pure), the server's HTTP
//! ([`client`]), the scheduled sync ([`sync()`]). Write-back of patients' answers is
//! [`crate::feeds::updates`], which uses this module's client.

pub mod client;
pub mod map;
pub mod sync;
pub mod types;

pub use client::{Client, FhirClients, FhirError};
pub use sync::{SyncReport, horizon, sync};

use std::sync::Arc;

use crate::config::Config;
use crate::store::Db;
use crate::time::Clock;

/// `reminderd feeds sync NAME [--full] [--now T]`: one sync of the named FHIR feed, now, with
/// secrets from the environment (or `$CREDENTIALS_DIRECTORY`). The CLI calls this; an unknown
/// or non-FHIR feed is an error that names the feeds there are.
pub async fn sync_named(
    db: &Db,
    config: &Arc<Config>,
    name: &str,
    full: bool,
    clock: Clock,
) -> Result<SyncReport, FhirError> {
    let feed = config
        .feeds
        .get(name)
        .filter(|f| f.fhir().is_some())
        .ok_or_else(|| {
            let names: Vec<&str> = config
                .feeds
                .values()
                .filter(|f| f.fhir().is_some())
                .map(|f| f.name.as_str())
                .collect();
            FhirError::Setup(if names.is_empty() {
                format!("{name:?} is not a FHIR feed: the config has none ([feeds.NAME] kind = \"fhir\")")
            } else {
                format!(
                    "{name:?} is not a FHIR feed; the FHIR feeds are: {}",
                    names.join(", ")
                )
            })
        })?;
    sync(db, config, feed, &FhirClients::from_env(), full, clock).await
}

/// A stored appointment read again (`feeds::reapply`): the collection Bundle the sync stored
/// (the Appointment, its Patient and Location) through the same mapping, with today's
/// configuration. Its origin names the appointment's version, as the sync's did.
pub fn reread(
    config: &Config,
    feed: &crate::config::Feed,
    body: &str,
) -> Result<(String, super::Reading), super::Refusal> {
    use super::Refusal;
    let bundle: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Refusal::error(format!("the stored resources are not JSON: {e}")))?;
    let resources: Vec<&serde_json::Value> = bundle["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default();
    let of_type = |t: &str| {
        resources
            .iter()
            .find(|r| r["resourceType"].as_str() == Some(t))
            .copied()
    };
    let appt = of_type("Appointment")
        .ok_or_else(|| Refusal::error("the stored resources hold no Appointment"))?;
    let typed: types::Appointment = serde_json::from_value(appt.clone())
        .map_err(|e| Refusal::error(format!("the stored Appointment cannot be read: {e}")))?;
    let patient: Option<types::Patient> =
        of_type("Patient").and_then(|p| serde_json::from_value(p.clone()).ok());
    let location: Option<types::Location> =
        of_type("Location").and_then(|l| serde_json::from_value(l.clone()).ok());
    let version = appt["meta"]["versionId"]
        .as_str()
        .or(appt["meta"]["lastUpdated"].as_str())
        .unwrap_or("0");
    let origin = format!(
        "FHIR Appointment/{}/_history/{version}",
        typed.id.as_deref().unwrap_or("?")
    );
    let reading = map::read_appointment(
        config,
        feed,
        &typed,
        map::Related {
            patient: patient.as_ref(),
            location: location.as_ref(),
        },
    )?;
    Ok((origin, reading))
}
