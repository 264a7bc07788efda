//! The schedule as stored: the import transaction, appointments and their audit trail.

use std::collections::HashMap;

use crate::store::sql::{Transaction, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::model::{CancelledBy, ChannelChoice, RemindWhom, Response, Status};
use crate::phone::E164;

/// SQLite page cache for an import, in KiB.
const IMPORT_CACHE_KIB: i64 = 64 * 1024;

impl Store {
    /// Starts the single transaction an import runs in.
    pub fn begin_import(&mut self) -> Result<ImportTx<'_>, StoreError> {
        // A large import touches every page of several indexes; SQLite's default 2 MiB cache
        // makes it re-read pages from the OS and grow superlinearly (measured in bench/).
        // 64 MiB holds the hot index pages of a million appointments and keeps the import's
        // peak memory bounded (a 256 MiB cache was most of a 1M-row import's peak).
        if let Some(sqlite) = self.conn.as_sqlite() {
            sqlite.pragma_update(None, "cache_size", -IMPORT_CACHE_KIB)?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let mut clinic_ids = HashMap::new();
        {
            let mut stmt = tx.prepare("SELECT key, id FROM clinics")?;
            let rows = stmt.query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (k, id) = row?;
                clinic_ids.insert(k, id);
            }
        }
        Ok(ImportTx { tx, clinic_ids })
    }

    /// Appointments matching `filter`, in start order, with their patient and clinic.
    pub fn appointments(
        &self,
        filter: &AppointmentFilter,
    ) -> Result<Vec<AppointmentView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.external_id, c.key, p.external_id, p.name, p.phone, p.language, a.provider,
                    a.starts_at, a.duration_min, a.status, a.cancelled_by, a.response, a.response_at
             FROM appointments a
             JOIN patients p ON p.id = a.patient_id
             JOIN clinics c ON c.id = a.clinic_id
             WHERE a.starts_at >= ?1 AND a.starts_at < ?2
               AND (CAST(?3 AS TEXT) IS NULL OR c.key = ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR a.status = ?4)
             ORDER BY a.starts_at, c.key, a.external_id",
        )?;
        let rows = stmt.query_map(
            params![
                filter.from.timestamp(),
                filter.to.timestamp(),
                filter.clinic,
                filter.status.map(Status::as_str)
            ],
            |r| {
                Ok(RawView {
                    id: r.get(0)?,
                    clinic: r.get(1)?,
                    patient_id: r.get(2)?,
                    patient_name: r.get(3)?,
                    phone: r.get(4)?,
                    language: r.get(5)?,
                    provider: r.get(6)?,
                    starts_at: r.get(7)?,
                    duration_min: r.get(8)?,
                    status: r.get(9)?,
                    cancelled_by: r.get(10)?,
                    response: r.get(11)?,
                    response_at: r.get(12)?,
                })
            },
        )?;
        rows.map(|r| r.map_err(StoreError::from).and_then(RawView::into_view))
            .collect()
    }

    /// Audit rows for one appointment (by clinic and external id), oldest first.
    pub fn audit_for(
        &self,
        clinic: &str,
        appointment_id: &str,
    ) -> Result<Vec<AuditView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.at, l.actor, l.action, l.old_value, l.new_value, l.reason
             FROM audit_log l JOIN appointments a ON a.id = l.appointment_id
             JOIN clinics c ON c.id = a.clinic_id
             WHERE c.key = ?1 AND a.external_id = ?2 ORDER BY l.id",
        )?;
        let rows = stmt.query_map(params![clinic, appointment_id], |r| {
            Ok(AuditView {
                at: crate::time::from_unix(r.get(0)?),
                actor: r.get(1)?,
                action: r.get(2)?,
                old_value: r.get(3)?,
                new_value: r.get(4)?,
                reason: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// What `Store::appointments` returns: the instants in UTC; callers localise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentView {
    /// The clinic system's appointment id.
    pub id: String,
    /// Clinic key.
    pub clinic: String,
    /// The clinic system's patient id.
    pub patient_id: String,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number.
    pub phone: E164,
    /// Patient's language.
    pub language: String,
    /// Who the appointment is with.
    pub provider: Option<String>,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// How long it lasts.
    pub duration_min: u32,
    /// What the schedule says.
    pub status: Status,
    /// Who cancelled it, when cancelled.
    pub cancelled_by: Option<CancelledBy>,
    /// What the patient said.
    pub response: Response,
    /// When the patient said it.
    pub response_at: Option<DateTime<Utc>>,
}

struct RawView {
    id: String,
    clinic: String,
    patient_id: String,
    patient_name: String,
    phone: String,
    language: String,
    provider: Option<String>,
    starts_at: i64,
    duration_min: u32,
    status: String,
    cancelled_by: Option<String>,
    response: String,
    response_at: Option<i64>,
}

impl RawView {
    fn into_view(self) -> Result<AppointmentView, StoreError> {
        Ok(AppointmentView {
            id: self.id,
            clinic: self.clinic,
            patient_id: self.patient_id,
            patient_name: self.patient_name,
            phone: E164::from_stored(self.phone),
            language: self.language,
            provider: self.provider,
            starts_at: crate::time::from_unix(self.starts_at),
            duration_min: self.duration_min,
            status: Status::parse(&self.status)?,
            cancelled_by: self
                .cancelled_by
                .as_deref()
                .map(CancelledBy::parse)
                .transpose()?,
            response: Response::parse(&self.response)?,
            response_at: self.response_at.map(crate::time::from_unix),
        })
    }
}

/// One audit row, as shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct AuditView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
}

/// Which appointments to list.
#[derive(Debug, Clone)]
pub struct AppointmentFilter {
    /// Starts at or after this instant.
    pub from: DateTime<Utc>,
    /// Starts before this instant.
    pub to: DateTime<Utc>,
    /// Only this clinic.
    pub clinic: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
}

/// A patient as stored, for comparing with an imported row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPatient {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Number.
    pub phone: E164,
    /// Language.
    pub language: String,
    /// Who is reminded and how.
    pub reach: PatientReach,
}

/// Who is reminded and how, as stored on a patient (schema 7's `channel`, `contact_*` and
/// `remind`); the default is a new patient's: WhatsApp, the patient alone, no caregiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientReach {
    /// How; `None` is WhatsApp with the clinic's SMS fallback.
    pub channel: Option<ChannelChoice>,
    /// Whom.
    pub remind: RemindWhom,
    /// The caregiver's name.
    pub contact_name: Option<String>,
    /// The caregiver's number.
    pub contact_phone: Option<E164>,
    /// Who the caregiver is to the patient, as the schedule wrote it.
    pub contact_relation: Option<String>,
}

impl Default for PatientReach {
    fn default() -> Self {
        Self {
            channel: None,
            remind: RemindWhom::Patient,
            contact_name: None,
            contact_phone: None,
            contact_relation: None,
        }
    }
}

/// An appointment as stored, for comparing with an imported row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAppointment {
    /// Row id.
    pub id: i64,
    /// Patient row id.
    pub patient_id: i64,
    /// Who it is with.
    pub provider: Option<String>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration_min: u32,
    /// Schedule status.
    pub status: Status,
    /// Who cancelled it.
    pub cancelled_by: Option<CancelledBy>,
    /// Patient's answer.
    pub response: Response,
}

/// The schedule facts an import writes for one appointment.
#[derive(Debug, Clone)]
pub struct AppointmentWrite<'a> {
    /// Patient row id.
    pub patient_id: i64,
    /// Who it is with.
    pub provider: Option<&'a str>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration_min: u32,
    /// Schedule status.
    pub status: Status,
    /// Who cancelled it (with `Status::Cancelled`).
    pub cancelled_by: Option<CancelledBy>,
}

/// One audit row to write.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// The appointment concerned.
    pub appointment_id: Option<i64>,
    /// The patient concerned.
    pub patient_id: Option<i64>,
    /// Who did it: `import:<file>`, `patient`, `staff:<name>`.
    pub actor: &'a str,
    /// What was done.
    pub action: &'a str,
    /// The value before.
    pub old_value: Option<String>,
    /// The value after.
    pub new_value: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

/// The counts an import records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    /// Data rows read.
    pub rows: usize,
    /// Appointments created.
    pub new: usize,
    /// Appointments changed (moved, reinstated, other details).
    pub updated: usize,
    /// Appointments cancelled (by a status column or by `--complete`).
    pub cancelled: usize,
    /// Rows that changed nothing.
    pub unchanged: usize,
}

/// The single transaction of one import. Dropping it without [`ImportTx::commit`] writes
/// nothing, which is how dry-runs and failed imports leave the database untouched.
pub struct ImportTx<'c> {
    pub(super) tx: Transaction<'c>,
    clinic_ids: HashMap<String, i64>,
}

impl ImportTx<'_> {
    /// The row id of a configured clinic.
    pub fn clinic_id(&self, key: &str) -> Result<i64, StoreError> {
        self.clinic_ids.get(key).copied().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "clinic {key:?} is not in the database; was the config synced?"
            ))
        })
    }

    /// Every stored patient of a clinic, by external id. One scan is far cheaper than a
    /// lookup per row for the large files, and cheap enough for the small ones.
    /// With `only`, just that patient (a feed's message names one).
    pub fn patients_of(
        &self,
        clinic_id: i64,
        only: Option<&str>,
    ) -> Result<HashMap<String, StoredPatient>, StoreError> {
        const COLUMNS: &str = "SELECT external_id, id, name, phone, language,
                    channel, remind, contact_name, contact_phone, contact_relation
             FROM patients WHERE clinic_id = ?1";
        let mut stmt = match only {
            None => self.tx.prepare_cached(COLUMNS)?,
            Some(_) => self
                .tx
                .prepare_cached(&format!("{COLUMNS} AND external_id = ?2"))?,
        };
        let mut rows = match only {
            None => stmt.query(params![clinic_id])?,
            Some(id) => stmt.query(params![clinic_id, id])?,
        };
        let mut out = HashMap::new();
        while let Some(r) = rows.next()? {
            let (key, p) = patient_row(&r)?;
            out.insert(key, p);
        }
        Ok(out)
    }

    /// The stored patients of a clinic with these external ids, into `out` (one indexed
    /// look-up each: an import streams its rows and never holds a clinic's whole list).
    pub fn patients_into<'k>(
        &self,
        clinic_id: i64,
        keys: impl IntoIterator<Item = &'k str>,
        out: &mut HashMap<String, StoredPatient>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT external_id, id, name, phone, language,
                    channel, remind, contact_name, contact_phone, contact_relation
             FROM patients WHERE clinic_id = ?1 AND external_id = ?2",
        )?;
        for key in keys {
            if out.contains_key(key) {
                continue;
            }
            let mut rows = stmt.query(params![clinic_id, key])?;
            if let Some(r) = rows.next()? {
                let (k, p) = patient_row(&r)?;
                out.insert(k, p);
            }
        }
        Ok(())
    }

    /// The stored appointments of a clinic from one source with these external ids, into
    /// `out` (one indexed look-up each, as [`ImportTx::patients_into`]).
    pub fn appointments_into<'k>(
        &self,
        clinic_id: i64,
        source: &str,
        keys: impl IntoIterator<Item = &'k str>,
        out: &mut HashMap<String, StoredAppointment>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT external_id, id, patient_id, provider, starts_at, duration_min, status, cancelled_by, response
             FROM appointments WHERE clinic_id = ?1 AND source = ?2 AND external_id = ?3",
        )?;
        for key in keys {
            let mut rows = stmt.query(params![clinic_id, source, key])?;
            if let Some(r) = rows.next()? {
                let (k, a) = appointment_row(&r)?;
                out.insert(k, a);
            }
        }
        Ok(())
    }

    /// Booked appointments of a clinic from one source starting in `[from, to)`, with their
    /// patient's name: what a `--complete` file may cancel on one of its days.
    pub fn booked_between(
        &self,
        clinic_id: i64,
        source: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, StoredAppointment, String)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT a.external_id, a.id, a.patient_id, a.provider, a.starts_at, a.duration_min, a.status,
                    a.cancelled_by, a.response, p.name
             FROM appointments a JOIN patients p ON p.id = a.patient_id
             WHERE a.clinic_id = ?1 AND a.source = ?2 AND a.status = 'booked'
               AND a.starts_at >= ?3 AND a.starts_at < ?4",
        )?;
        let mut rows = stmt.query(params![clinic_id, source, from.timestamp(), to.timestamp()])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (k, a) = appointment_row(&r)?;
            out.push((k, a, r.get(9)?));
        }
        Ok(out)
    }

    /// Names the clinics an import touched (known once a streamed file is read).
    pub fn add_import_clinics(&self, import_id: i64, clinic_ids: &[i64]) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO import_clinics (import_id, clinic_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?;
        for c in clinic_ids {
            stmt.execute(params![import_id, c])?;
        }
        Ok(())
    }

    /// Records the checksum of a streamed file's bytes once they are read.
    pub fn set_import_checksum(&self, import_id: i64, checksum: &str) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE imports SET checksum = ?2 WHERE id = ?1",
            params![import_id, checksum],
        )?;
        Ok(())
    }

    /// Every stored appointment of a clinic from one source (`csv`, or a feed's), by
    /// external id; with `only`, just that appointment.
    pub fn appointments_of(
        &self,
        clinic_id: i64,
        source: &str,
        only: Option<&str>,
    ) -> Result<HashMap<String, StoredAppointment>, StoreError> {
        const COLUMNS: &str = "SELECT external_id, id, patient_id, provider, starts_at, duration_min, status, cancelled_by, response
             FROM appointments WHERE clinic_id = ?1 AND source = ?2";
        let mut stmt = match only {
            None => self.tx.prepare_cached(COLUMNS)?,
            Some(_) => self
                .tx
                .prepare_cached(&format!("{COLUMNS} AND external_id = ?3"))?,
        };
        let mut rows = match only {
            None => stmt.query(params![clinic_id, source])?,
            Some(id) => stmt.query(params![clinic_id, source, id])?,
        };
        let mut out = HashMap::new();
        while let Some(r) = rows.next()? {
            let (k, a) = appointment_row(&r)?;
            out.insert(k, a);
        }
        Ok(out)
    }

    /// Records the import itself; counts are filled in by [`ImportTx::finish_import`].
    pub fn start_import(
        &self,
        file_name: &str,
        checksum: &str,
        complete: bool,
        imported_by: &str,
        clinic_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let id = self.tx.insert(
            "INSERT INTO imports (file_name, checksum, rows, new, updated, cancelled, unchanged, complete, imported_by, imported_at)
             VALUES (?1, ?2, 0, 0, 0, 0, 0, ?3, ?4, ?5)",
            params![file_name, checksum, complete, imported_by, now.timestamp()],
        )?;
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO import_clinics (import_id, clinic_id) VALUES (?1, ?2)")?;
        for c in clinic_ids {
            stmt.execute(params![id, c])?;
        }
        Ok(id)
    }

    /// Writes the final counts of an import.
    pub fn finish_import(&self, import_id: i64, counts: &ImportCounts) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE imports SET rows = ?2, new = ?3, updated = ?4, cancelled = ?5, unchanged = ?6 WHERE id = ?1",
            params![
                import_id,
                counts.rows as i64,
                counts.new as i64,
                counts.updated as i64,
                counts.cancelled as i64,
                counts.unchanged as i64
            ],
        )?;
        Ok(())
    }

    /// Adds a patient and returns its row id.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_patient(
        &self,
        clinic_id: i64,
        external_id: &str,
        name: &str,
        phone: &E164,
        language: &str,
        reach: &PatientReach,
        consent_source: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO patients (clinic_id, external_id, name, phone, language, consent_source, created_at, updated_at,
                channel, remind, contact_name, contact_phone, contact_relation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
        )?;
        let id: i64 = stmt.query_row(
            params![
                clinic_id,
                external_id,
                name,
                phone.as_str(),
                language,
                consent_source,
                now.timestamp(),
                reach.channel.map(ChannelChoice::as_str),
                reach.remind.as_str(),
                reach.contact_name,
                reach.contact_phone.as_ref().map(E164::as_str),
                reach.contact_relation
            ],
            |r| r.get(0),
        )?;
        // The consent the schedule stands for, on the channel it says the patient is reached
        // by, starts the patient's consent history (STOP, START and staff add to it).
        let channel = match reach.channel {
            None | Some(ChannelChoice::WhatsApp) => Some("whatsapp"),
            Some(ChannelChoice::Sms) => Some("sms"),
            Some(ChannelChoice::None) => None,
        };
        if let Some(channel) = channel {
            super::privacy::consent_row(
                &self.tx,
                id,
                channel,
                true,
                consent_source,
                now.timestamp(),
            )?;
        }
        // A number whose earlier patient was erased keeps that patient's opt-out.
        super::privacy::apply_kept_opt_outs(&self.tx, id, phone.as_str(), now.timestamp())?;
        Ok(id)
    }

    /// Replaces a patient's details and who is reminded how.
    pub fn update_patient(
        &self,
        id: i64,
        name: &str,
        phone: &E164,
        language: &str,
        reach: &PatientReach,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE patients SET name = ?2, phone = ?3, language = ?4, updated_at = ?5,
                channel = ?6, remind = ?7, contact_name = ?8, contact_phone = ?9, contact_relation = ?10
             WHERE id = ?1",
        )?;
        stmt.execute(params![
            id,
            name,
            phone.as_str(),
            language,
            now.timestamp(),
            reach.channel.map(ChannelChoice::as_str),
            reach.remind.as_str(),
            reach.contact_name,
            reach.contact_phone.as_ref().map(E164::as_str),
            reach.contact_relation
        ])?;
        Ok(())
    }

    /// Adds an appointment and returns its row id.
    #[allow(clippy::too_many_arguments)] // the row's facts and what wrote it
    pub fn insert_appointment(
        &self,
        clinic_id: i64,
        source: &str,
        external_id: &str,
        a: &AppointmentWrite<'_>,
        import_id: Option<i64>,
        digest: Option<&super::RowDigest>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO appointments (clinic_id, external_id, patient_id, provider, starts_at, duration_min,
                status, cancelled_by, status_at, source_import_id, created_at, updated_at, source,
                import_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?9, ?11, ?12) RETURNING id",
        )?;
        let id: i64 = stmt.query_row(
            params![
                clinic_id,
                external_id,
                a.patient_id,
                a.provider,
                a.starts_at.timestamp(),
                a.duration_min,
                a.status.as_str(),
                a.cancelled_by.map(CancelledBy::as_str),
                now.timestamp(),
                import_id,
                source,
                digest.map(|d| &d[..])
            ],
            |r| r.get(0),
        )?;
        Ok(id)
    }

    /// Rewrites an appointment's schedule facts. `status_changed` stamps `status_at`;
    /// `reset_response` clears the patient's answer, which only a move justifies.
    pub fn update_appointment(
        &self,
        id: i64,
        a: &AppointmentWrite<'_>,
        status_changed: bool,
        reset_response: bool,
        import_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE appointments SET patient_id = ?2, provider = ?3, starts_at = ?4, duration_min = ?5,
                status = ?6, cancelled_by = ?7,
                status_at = CASE WHEN ?8 THEN ?10 ELSE status_at END,
                response = CASE WHEN ?9 THEN 'none' ELSE response END,
                response_at = CASE WHEN ?9 THEN NULL ELSE response_at END,
                response_text = CASE WHEN ?9 THEN NULL ELSE response_text END,
                source_import_id = coalesce(?11, source_import_id), updated_at = ?10
             WHERE id = ?1",
        )?;
        stmt.execute(params![
            id,
            a.patient_id,
            a.provider,
            a.starts_at.timestamp(),
            a.duration_min,
            a.status.as_str(),
            a.cancelled_by.map(CancelledBy::as_str),
            status_changed,
            reset_response,
            now.timestamp(),
            import_id
        ])?;
        Ok(())
    }

    /// Appends an audit row.
    pub fn audit(&self, e: &AuditEntry<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, old_value, new_value, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        stmt.execute(params![
            now.timestamp(),
            e.appointment_id,
            e.patient_id,
            e.actor,
            e.action,
            e.old_value,
            e.new_value,
            e.reason
        ])?;
        Ok(())
    }

    /// Makes every change of the import permanent.
    pub fn commit(self) -> Result<(), StoreError> {
        // A held opening's move the file shows lands with it (issue 17).
        super::offers::land_moves(&self.tx)?;
        self.tx.commit()?;
        Ok(())
    }
}

/// A patient row as the import's queries select it (external id first).
fn patient_row(r: &crate::store::sql::Row<'_>) -> Result<(String, StoredPatient), StoreError> {
    let channel: Option<String> = r.get(5)?;
    let remind: String = r.get(6)?;
    let contact_phone: Option<String> = r.get(8)?;
    Ok((
        r.get::<_, String>(0)?,
        StoredPatient {
            id: r.get(1)?,
            name: r.get(2)?,
            phone: E164::from_stored(r.get(3)?),
            language: r.get(4)?,
            reach: PatientReach {
                channel: channel.as_deref().map(ChannelChoice::parse).transpose()?,
                remind: RemindWhom::parse(&remind)?,
                contact_name: r.get(7)?,
                contact_phone: contact_phone.map(E164::from_stored),
                contact_relation: r.get(9)?,
            },
        },
    ))
}

/// An appointment row as the import's queries select it (external id first).
fn appointment_row(
    r: &crate::store::sql::Row<'_>,
) -> Result<(String, StoredAppointment), StoreError> {
    let status: String = r.get(6)?;
    let cancelled_by: Option<String> = r.get(7)?;
    let response: String = r.get(8)?;
    Ok((
        r.get::<_, String>(0)?,
        StoredAppointment {
            id: r.get(1)?,
            patient_id: r.get(2)?,
            provider: r.get(3)?,
            starts_at: crate::time::from_unix(r.get(4)?),
            duration_min: r.get(5)?,
            status: Status::parse(&status)?,
            cancelled_by: cancelled_by
                .as_deref()
                .map(CancelledBy::parse)
                .transpose()?,
            response: Response::parse(&response)?,
        },
    ))
}
