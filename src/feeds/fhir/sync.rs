//! One sync of a FHIR feed: a full one reads every appointment of the horizon (no status
//! filter, so cancellations come back) and then looks up what the server no longer lists; an
//! incremental one reads what changed since the last successful sync. Each appointment is
//! stored raw with its patient before it is applied ([`Store::receive_feed_message`]), keyed
//! by the resources' versions, so one seen again unchanged is a replay and is not applied
//! twice. A resource that cannot be read or applied is refused on its own; only the server
//! failing fails the sync, which keeps every appointment already applied.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::client::{Client, FhirClients, FhirError};
use super::map::{Related, read_appointment};
use super::types::{Appointment, Location, Patient};
use crate::config::{Config, Feed};
use crate::feeds::{Reading, Refusal, apply_or_refuse};
use crate::import::RowStatus;
use crate::store::{Db, MessageState, Store, StoreError, SyncEnd};
use crate::time::Clock;

/// The most pages one sync follows: a server whose `next` links never end cannot hold a sync.
pub const MAX_PAGES: usize = 500;

/// How far an incremental sync reaches back before its cursor: an update the server committed
/// just before the cursor's instant is read again (a replay, harmless) rather than missed.
const OVERLAP: i64 = 60;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// It read the whole horizon.
    pub full: bool,
    /// Pages read.
    pub pages: usize,
    /// Appointments the server listed.
    pub listed: usize,
    /// Appointments applied (new, changed, cancelled or unchanged by the apply rules).
    pub applied: usize,
    /// Appointments seen before at the same versions: not applied again.
    pub replays: usize,
    /// Appointments refused (each with why, on the feed's messages).
    pub refused: usize,
    /// Booked appointments the server no longer has: cancelled as deleted by the source.
    pub gone: usize,
    /// Free slots read (`read_free_slots`), each kept once per version for the waitlist.
    pub slots: usize,
}

/// Syncs `feed` once (`full`, or incrementally from the last cursor; a feed never synced is
/// synced in full), records how it ended, and returns what it did or why it failed.
pub async fn sync(
    db: &Db,
    config: &Arc<Config>,
    feed: &Feed,
    clients: &FhirClients,
    full: bool,
    clock: Clock,
) -> Result<SyncReport, FhirError> {
    let started = clock.now();
    let name = feed.name.clone();
    let cursor = {
        let name = name.clone();
        db.run(move |s| s.feed_cursor(&name)).await??
    };
    let full = full || cursor.is_none();
    let run = Run {
        db,
        config,
        feed: Arc::new(feed.clone()),
        clock,
    };
    let result = match clients.client(feed) {
        Ok(client) => run.pages(&client, full, cursor.as_deref(), started).await,
        Err(e) => Err(e),
    };
    let end = match &result {
        Ok((_, server_time)) => SyncEnd {
            ok: true,
            full,
            cursor: Some(
                server_time
                    .clone()
                    .unwrap_or_else(|| started.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ),
            error: None,
        },
        Err(e) => SyncEnd {
            ok: false,
            full,
            cursor: None,
            error: Some(e.to_string()),
        },
    };
    let now = clock.now();
    db.run(move |s| s.record_sync(&name, &end, now)).await??;
    result.map(|(report, _)| report)
}

/// `[from, to)`: from the start of the earliest of the feed's clinics' today to the end of
/// the latest one's last horizon day.
pub fn horizon(config: &Config, feed: &Feed, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let days = feed.fhir().map_or(1, |f| f.horizon_days);
    let bounds: Vec<(DateTime<Utc>, DateTime<Utc>)> = feed
        .clinics()
        .into_iter()
        .filter_map(|k| config.clinics.get(k))
        .map(|c| {
            let today = now.with_timezone(&c.time_zone).date_naive();
            let last = today + Duration::days(i64::from(days.max(1)) - 1);
            (
                crate::time::local_day_bounds(c.time_zone, today).0,
                crate::time::local_day_bounds(c.time_zone, last).1,
            )
        })
        .collect();
    let from = bounds.iter().map(|b| b.0).min().unwrap_or(now);
    let to = bounds
        .iter()
        .map(|b| b.1)
        .max()
        .unwrap_or(now + Duration::days(i64::from(days)));
    (from, to)
}

fn fhir_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One appointment (or free slot), read and ready to store and apply.
struct Prepared {
    kind: &'static str,
    message_id: String,
    body: String,
    origin: String,
    reading: Result<Reading, Refusal>,
}

/// What happened to one appointment.
enum Done {
    Applied,
    Replay,
    Refused,
}

struct Run<'a> {
    db: &'a Db,
    config: &'a Arc<Config>,
    feed: Arc<Feed>,
    clock: Clock,
}

impl Run<'_> {
    async fn pages(
        &self,
        client: &Client,
        full: bool,
        cursor: Option<&str>,
        started: DateTime<Utc>,
    ) -> Result<(SyncReport, Option<String>), FhirError> {
        let page_size = client.settings().page_size;
        let includes = "_include=Appointment:patient&_include=Appointment:location";
        let range = horizon(self.config, &self.feed, started);
        let query = if full {
            format!(
                "Appointment?date=ge{}&date=lt{}&{includes}&_count={page_size}",
                enc(&fhir_instant(range.0)),
                enc(&fhir_instant(range.1))
            )
        } else {
            let since = cursor
                .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
                .map_or_else(
                    || cursor.unwrap_or_default().to_string(),
                    |c| fhir_instant(c.with_timezone(&Utc) - Duration::seconds(OVERLAP)),
                );
            format!(
                "Appointment?_lastUpdated=gt{}&{includes}&_count={page_size}",
                enc(&since)
            )
        };
        let mut report = SyncReport {
            full,
            ..SyncReport::default()
        };
        let mut server_time = None;
        let mut lookup: HashMap<String, Value> = HashMap::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut url = client.url(&query)?;
        loop {
            if report.pages == MAX_PAGES {
                return Err(FhirError::Invalid(format!(
                    "the search went on for more than {MAX_PAGES} pages; raise page_size"
                )));
            }
            let bundle = client.search(url).await?;
            report.pages += 1;
            if report.pages == 1 {
                server_time = bundle.meta.as_ref().and_then(|m| m.last_updated.clone());
            }
            let mut matched = Vec::new();
            for entry in &bundle.entry {
                let Some(resource) = &entry.resource else {
                    continue;
                };
                let kind = resource["resourceType"].as_str().unwrap_or_default();
                let mode = entry.search.as_ref().and_then(|s| s.mode.as_deref());
                if kind == "Appointment" && mode != Some("include") {
                    matched.push(resource.clone());
                } else if let Some(id) = resource["id"].as_str() {
                    lookup.insert(format!("{kind}/{id}"), resource.clone());
                }
            }
            let mut prepared = Vec::with_capacity(matched.len());
            for appt in matched {
                if let Some(id) = appt["id"].as_str() {
                    seen.insert(id.to_string());
                }
                prepared.push(self.prepare(client, appt, &mut lookup).await?);
            }
            report.listed += prepared.len();
            self.apply(prepared, &mut report).await?;
            match bundle.next() {
                Some(next) => url = client.follow(next)?,
                None => break,
            }
        }
        if full {
            self.gone(client, range, &seen, &mut lookup, &mut report)
                .await?;
            // The appointments are in: a server that cannot list its free slots must not
            // fail the sync (and hold the clinic's reminders), only go without offers.
            if self.feed.fhir().is_some_and(|f| f.read_free_slots)
                && let Err(e) = self.free_slots(client, range, &mut report).await
            {
                tracing::warn!(feed = %self.feed.name, error = %e, "free slots not read");
            }
        }
        Ok((report, server_time))
    }

    /// The horizon's free slots (`Slot?status=free` with their schedules), each stored as
    /// received and kept as a slot the practice system opened; the waitlist job makes each
    /// an opening once (source `practice`).
    async fn free_slots(
        &self,
        client: &Client,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        report: &mut SyncReport,
    ) -> Result<(), FhirError> {
        let query = format!(
            "Slot?status=free&start=ge{}&start=lt{}&_include=Slot:schedule&_count={}",
            enc(&fhir_instant(from)),
            enc(&fhir_instant(to)),
            client.settings().page_size
        );
        let mut url = client.url(&query)?;
        for _ in 0..MAX_PAGES {
            let bundle = client.search(url).await?;
            let mut schedules: HashMap<String, Value> = HashMap::new();
            let mut slots = Vec::new();
            for entry in &bundle.entry {
                let Some(r) = &entry.resource else { continue };
                match r["resourceType"].as_str() {
                    Some("Slot") if r["status"] == "free" => slots.push(r.clone()),
                    Some("Schedule") => {
                        if let Some(id) = r["id"].as_str() {
                            schedules.insert(format!("Schedule/{id}"), r.clone());
                        }
                    }
                    _ => {}
                }
            }
            let mut prepared = Vec::with_capacity(slots.len());
            for slot in slots {
                let id = slot["id"].as_str().unwrap_or("?").to_string();
                let version = version_of(&slot);
                let schedule = slot["schedule"]["reference"]
                    .as_str()
                    .and_then(|r| {
                        // "Schedule/S1", or an absolute URL ending in it.
                        let mut parts = r.rsplit('/');
                        let (id, kind) = (parts.next()?, parts.next()?);
                        schedules.get(&format!("{kind}/{id}"))
                    })
                    .cloned();
                let reading =
                    super::map::read_slot(self.config, &self.feed, &slot, schedule.as_ref());
                prepared.push(Prepared {
                    kind: "Slot",
                    message_id: format!("Slot/{id}/_history/{version}"),
                    body: bundle_of(
                        &[Some(&slot), schedule.as_ref()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>(),
                    ),
                    origin: format!("FHIR Slot/{id}/_history/{version}"),
                    reading,
                });
            }
            report.slots += prepared.len();
            let mut counted = SyncReport::default();
            self.apply(prepared, &mut counted).await?;
            report.refused += counted.refused;
            match bundle.next() {
                Some(next) => url = client.follow(next)?,
                None => return Ok(()),
            }
        }
        Err(FhirError::Invalid(format!(
            "the search for free slots went on for more than {MAX_PAGES} pages; raise page_size"
        )))
    }

    /// Reads one appointment with its patient and location (the includes, else read alone).
    async fn prepare(
        &self,
        client: &Client,
        appt: Value,
        lookup: &mut HashMap<String, Value>,
    ) -> Result<Prepared, FhirError> {
        let id = appt["id"].as_str().unwrap_or("?").to_string();
        let version = version_of(&appt);
        let mut message_id = format!("Appointment/{id}/_history/{version}");
        let origin = format!("FHIR Appointment/{id}/_history/{version}");
        let parsed: Result<Appointment, _> = serde_json::from_value(appt.clone());
        let Ok(typed) = parsed else {
            let e = parsed.err().map(|e| e.to_string()).unwrap_or_default();
            return Ok(Prepared {
                kind: "Appointment",
                body: bundle_of(&[&appt]),
                message_id,
                origin,
                reading: Err(Refusal::Error {
                    reason: format!("Appointment/{id} cannot be read: {e}"),
                    external_id: Some(id),
                }),
            });
        };
        let patient_ref = typed
            .actor(&["Patient"])
            .and_then(super::types::Reference::target)
            .map(|(_, p)| p.to_string());
        let patient = match &patient_ref {
            Some(p) => self.related(client, "Patient", p, lookup).await?,
            None => None,
        };
        let location = match typed
            .actor(&["Location"])
            .and_then(super::types::Reference::target)
        {
            Some((_, l)) => lookup.get(&format!("Location/{l}")).cloned(),
            None => None,
        };
        if let (Some(p), Some(pid)) = (&patient, &patient_ref) {
            let _ = write!(message_id, " Patient/{pid}/_history/{}", version_of(p));
        }
        let body = bundle_of(
            &[Some(&appt), patient.as_ref(), location.as_ref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        );
        let typed_patient = match patient.map(serde_json::from_value::<Patient>) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                return Ok(Prepared {
                    kind: "Appointment",
                    message_id,
                    body,
                    origin,
                    reading: Err(Refusal::Error {
                        reason: format!(
                            "Patient/{} of Appointment/{id} cannot be read: {e}",
                            patient_ref.unwrap_or_default()
                        ),
                        external_id: Some(id),
                    }),
                });
            }
            None => None,
        };
        let typed_location: Option<Location> =
            location.and_then(|l| serde_json::from_value(l).ok());
        let reading = read_appointment(
            self.config,
            &self.feed,
            &typed,
            Related {
                patient: typed_patient.as_ref(),
                location: typed_location.as_ref(),
            },
        );
        Ok(Prepared {
            kind: "Appointment",
            message_id,
            body,
            origin,
            reading,
        })
    }

    /// A resource an appointment points at: from the includes, else read (and kept).
    async fn related(
        &self,
        client: &Client,
        kind: &str,
        id: &str,
        lookup: &mut HashMap<String, Value>,
    ) -> Result<Option<Value>, FhirError> {
        let key = format!("{kind}/{id}");
        if let Some(v) = lookup.get(&key) {
            return Ok(Some(v.clone()));
        }
        let read = client.read(kind, id).await?.map(|v| v.resource);
        if let Some(v) = &read {
            lookup.insert(key, v.clone());
        }
        Ok(read)
    }

    /// Stores and applies a page's appointments, one transaction each, on the store's thread.
    async fn apply(
        &self,
        prepared: Vec<Prepared>,
        report: &mut SyncReport,
    ) -> Result<(), FhirError> {
        if prepared.is_empty() {
            return Ok(());
        }
        let (config, feed, clock) = (Arc::clone(self.config), Arc::clone(&self.feed), self.clock);
        let done = self
            .db
            .run(move |s| {
                prepared
                    .iter()
                    .map(|p| store_and_apply(s, &config, &feed, p, clock.now()))
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await??;
        for d in done {
            match d {
                Done::Applied => report.applied += 1,
                Done::Replay => report.replays += 1,
                Done::Refused => report.refused += 1,
            }
        }
        Ok(())
    }

    /// After a full sync: each booked appointment of this source in the range that the server
    /// did not list is read alone; gone (404/410) it is cancelled as deleted by the source,
    /// still there (moved out of the range, say) it is applied as it now is.
    async fn gone(
        &self,
        client: &Client,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        seen: &BTreeSet<String>,
        lookup: &mut HashMap<String, Value>,
        report: &mut SyncReport,
    ) -> Result<(), FhirError> {
        let (feed, source) = (Arc::clone(&self.feed), self.feed.source.clone());
        let expected = self
            .db
            .run(move |s| {
                let mut out = Vec::new();
                for clinic in feed.clinics() {
                    let ids = s.booked_from_source(clinic, &source, from, to)?;
                    if ids.is_empty() {
                        continue;
                    }
                    let views = s.appointments(&crate::store::AppointmentFilter {
                        from,
                        to,
                        clinic: Some(clinic.to_string()),
                        status: Some(crate::model::Status::Booked),
                    })?;
                    for id in ids {
                        let matching: Vec<_> =
                            views.iter().filter(|v| v.id == id).cloned().collect();
                        out.push((id, matching));
                    }
                }
                Ok::<_, StoreError>(out)
            })
            .await??;
        let mut prepared = Vec::new();
        for (id, views) in expected {
            if seen.contains(&id) {
                continue;
            }
            if let Some(now) = client.read("Appointment", &id).await? {
                if now.resource["resourceType"] == "Appointment" {
                    prepared.push(self.prepare(client, now.resource, lookup).await?);
                }
                continue;
            }
            // Two appointments of one clinic with this id (an upload's and this feed's) are
            // not told apart here: left alone rather than guessed.
            let [view] = views.as_slice() else { continue };
            let row = crate::import::ImportRow {
                row: 1,
                clinic: view.clinic.clone(),
                appointment_id: view.id.clone(),
                patient_id: view.patient_id.clone(),
                patient_name: view.patient_name.clone(),
                phone: view.phone.clone(),
                language: view.language.clone(),
                starts_at: view.starts_at,
                local_date: self
                    .config
                    .clinics
                    .get(&view.clinic)
                    .map_or(view.starts_at.date_naive(), |c| {
                        view.starts_at.with_timezone(&c.time_zone).date_naive()
                    }),
                duration_min: view.duration_min,
                provider: view.provider.clone(),
                status: RowStatus::Deleted,
                reach: crate::import::Reach::default(),
            };
            let stamp = self.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true);
            prepared.push(Prepared {
                kind: "Appointment",
                message_id: format!("Appointment/{id} gone {stamp}"),
                body: json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "not-found",
                    "diagnostics": format!("Appointment/{id} is no longer on the server (full sync at {stamp})")}]}).to_string(),
                origin: format!("FHIR Appointment/{id} gone from the server"),
                reading: Ok(Reading::Appointment(row)),
            });
            report.gone += 1;
        }
        self.apply(prepared, report).await
    }
}

/// Stores one appointment as received, then applies it or records why not. A replay of one
/// already applied or refused changes nothing.
fn store_and_apply(
    s: &mut Store,
    config: &Config,
    feed: &Feed,
    p: &Prepared,
    now: DateTime<Utc>,
) -> Result<Done, StoreError> {
    let got = s.receive_feed_message(&feed.name, &p.message_id, p.kind, &p.body, now)?;
    if got.replay && got.state != MessageState::Received {
        return Ok(Done::Replay);
    }
    let read = p.reading.as_ref().map_err(Clone::clone);
    Ok(
        match apply_or_refuse(s, config, feed, got.id, &p.origin, read, now)? {
            Ok(_) => Done::Applied,
            Err(_) => Done::Refused,
        },
    )
}

/// A resource's version: `meta.versionId`, else `meta.lastUpdated`, else `0`.
fn version_of(v: &Value) -> String {
    v["meta"]["versionId"]
        .as_str()
        .or(v["meta"]["lastUpdated"].as_str())
        .unwrap_or("0")
        .to_string()
}

/// The resources of one appointment as stored: a collection Bundle.
fn bundle_of(resources: &[&Value]) -> String {
    let entry: Vec<Value> = resources.iter().map(|r| json!({"resource": r})).collect();
    json!({"resourceType": "Bundle", "type": "collection", "entry": entry}).to_string()
}

/// A query value, percent-encoded (`+` in an offset would read as a space).
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
