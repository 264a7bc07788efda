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
