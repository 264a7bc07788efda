//! The write side of an import: compares parsed rows with what is stored (`decide` is the
//! pure rule) and writes the differences through one [`ImportTx`], committed last.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::review::{LooksOlder, Undo, Warning};
use super::{
    Applied, ApplyOptions, Change, ChangeKind, ImportError, ImportReport, ImportRow, ParsedFile,
    Reach, RowOutcome, RowStatus, SetBy,
};
use crate::config::{CSV_SOURCE, Config};
use crate::model::RemindWhom;
use crate::store::{
    AppointmentWrite, AuditEntry, CancelledBy, ImportCounts, ImportTx, PatientReach, Response,
    Status, Store, StoreError, StoredAppointment, StoredPatient,
};
use crate::time::local_day_bounds;

mod record;
mod stream;
pub use record::{RecordApplied, RecordFrom, apply_record};
pub use stream::import_stream;

/// Writes a parsed file into the store in one transaction (rolled back for a dry-run).
pub fn apply(
    store: &mut Store,
    config: &Config,
    parsed: &ParsedFile,
    opts: &ApplyOptions<'_>,
) -> Result<ImportReport, ImportError> {
    let applied = apply_open(store, config, parsed, opts)?;
    if opts.dry_run {
        Ok(applied.report)
    } else {
        Ok(applied.commit()?)
    }
}

/// Applies a parsed file inside one transaction and hands it back open, for a caller that
/// adds its own writes to the same transaction before committing.
pub fn apply_open<'s>(
    store: &'s mut Store,
    config: &Config,
    parsed: &ParsedFile,
    opts: &ApplyOptions<'_>,
) -> Result<Applied<'s>, ImportError> {
    apply_open_keeping(store, config, parsed, opts, false)
}

/// Whether the rows without problems may be imported on their own: every clinic the file
/// names allows it (`clinics.KEY.import_partial`), and the file is not the whole schedule (a
/// left-out row's appointment would be cancelled as missing).
fn partial_allowed(config: &Config, parsed: &ParsedFile, opts: &ApplyOptions<'_>) -> bool {
    !opts.complete
        && !parsed.sound.is_empty()
        && !parsed.clinics.is_empty()
        && parsed
            .clinics
            .iter()
            .all(|k| config.clinic(k).is_some_and(|c| c.import_partial))
}

/// As [`apply_open`]; with `keep_desk_statuses`, a status set at the desk (no-show,
/// cancelled, completed) that the file would reverse is left as it is, and reported.
pub fn apply_open_keeping<'s>(
    store: &'s mut Store,
    config: &Config,
    parsed: &ParsedFile,
    opts: &ApplyOptions<'_>,
    keep_desk_statuses: bool,
) -> Result<Applied<'s>, ImportError> {
    let (rows, left_out) = if parsed.errors.is_empty() {
        (&parsed.rows, Vec::new())
    } else if partial_allowed(config, parsed, opts) {
        (&parsed.sound, parsed.errors.clone())
    } else {
        return Ok(Applied {
            report: ImportReport::rejected(opts.file_name, parsed.rows_read, parsed.errors.clone()),
            open: None,
        });
    };
    let tx = store.begin_import()?;
    let actor = format!("import:{}", opts.file_name);
    let clinic_keys: BTreeSet<&str> = rows.iter().map(|r| r.clinic.as_str()).collect();
    let mut clinic_ids = HashMap::new();
    for k in &clinic_keys {
        clinic_ids.insert(*k, tx.clinic_id(k)?);
    }
    let ids: Vec<i64> = clinic_ids.values().copied().collect();
    let import_id = tx.start_import(
        opts.file_name,
        &parsed.checksum,
        opts.complete,
        opts.imported_by,
        &ids,
        opts.now,
    )?;

    let mut state = ApplyState {
        tx: &tx,
        actor: &actor,
        source: CSV_SOURCE,
        origin: None,
        import_id: Some(import_id),
        now: opts.now,
        keep: keep_desk_statuses,
        booking: config.booking_confirmation.is_some(),
        counts: ImportCounts {
            rows: rows.len(),
            ..ImportCounts::default()
        },
        changes: Vec::new(),
        outcomes: Vec::with_capacity(rows.len()),
        review: Review::default(),
        opted_out: HashSet::new(),
        digest: None,
    };
    for key in &clinic_keys {
        let clinic_id = clinic_ids[key];
        let mut patients = tx.patients_of(clinic_id, None)?;
        let mut appointments = tx.appointments_of(clinic_id, CSV_SOURCE, None)?;
        state.opted_out = tx.opted_out_of(clinic_id)?;
        let clinic_rows: Vec<&ImportRow> = rows.iter().filter(|r| r.clinic == *key).collect();
        for row in &clinic_rows {
            state.apply_row(clinic_id, row, &mut patients, &mut appointments)?;
        }
        if opts.complete {
            let zone = config.clinic(key).map_or(chrono_tz::UTC, |c| c.time_zone);
            state.cancel_missing(key, zone, &clinic_rows, &appointments, &patients)?;
        }
    }
    let ApplyState {
        counts,
        changes,
        outcomes,
        review,
        booking,
        ..
    } = state;
    tx.finish_import(import_id, &counts)?;
    let warnings = warnings_of(&tx, &review, &parsed.checksum, &ids, import_id)?;
    // Rows were applied clinic by clinic; staff read them in file order.
    let mut outcomes = outcomes;
    outcomes.sort_by_key(|(row, _)| *row);
    let report = ImportReport {
        file: opts.file_name.to_string(),
        rows: counts.rows,
        new: counts.new,
        updated: counts.updated,
        cancelled: counts.cancelled,
        unchanged: counts.unchanged,
        errors: Vec::new(),
        changes,
        dry_run: opts.dry_run,
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
        warnings,
        booking_messages: booking.then_some(review.booked_patients.len()),
        kept: review.kept,
        left_out,
    };
    Ok(Applied {
        report,
        open: Some((tx, import_id)),
    })
}

/// What staff should look at again after an import: rows moved into the past, rows that look
/// older than a later upload, and the same file imported before (shared by both apply paths).
fn warnings_of(
    tx: &ImportTx<'_>,
    review: &Review,
    checksum: &str,
    ids: &[i64],
    import_id: i64,
) -> Result<Vec<Warning>, ImportError> {
    let mut warnings = Vec::new();
    if review.into_the_past > 0 {
        warnings.push(Warning::IntoThePast {
            count: review.into_the_past,
        });
    }
    let older = LooksOlder {
        reverted: review.reverted,
        changed: review.changed,
    };
    if older.applies() {
        warnings.push(Warning::LooksOlder(older));
    }
    if let Some(past) = tx.same_file_before(checksum, ids, import_id)?
        && past.later > 0
    {
        warnings.push(Warning::SameFileAgain {
            at: past.at,
            by: past.imported_by,
            file_name: past.file_name,
            later: past.later,
        });
    }
    Ok(warnings)
}

struct ApplyState<'t, 'c> {
    tx: &'t ImportTx<'c>,
    actor: &'t str,
    /// Whose ids the rows carry (`appointments.source`).
    source: &'t str,
    /// What audit rows name as the change's origin instead of a spreadsheet row (a feed's
    /// message).
    origin: Option<&'t str>,
    /// The import's row; `None` for a feed's record.
    import_id: Option<i64>,
    now: DateTime<Utc>,
    /// Leave statuses set at the desk as they are.
    keep: bool,
    /// Booking messages are configured.
    booking: bool,
    counts: ImportCounts,
    changes: Vec<Change>,
    /// (spreadsheet row, outcome) per valid row.
    outcomes: Vec<(usize, RowOutcome)>,
    review: Review,
    /// The current clinic's patients who asked for no messages.
    opted_out: HashSet<i64>,
    /// The digest of the row being applied, stored with an appointment it adds (the
    /// streamed import's; `None` elsewhere).
    digest: Option<crate::store::RowDigest>,
}

/// What the preview's warnings and trust signals count while rows are applied.
#[derive(Default)]
struct Review {
    /// Rows moving an appointment to an earlier start that has passed.
    into_the_past: usize,
    /// Rows going back to a start or booking a later upload replaced ([`LooksOlder`]).
    reverted: usize,
    /// Rows moving or re-booking an appointment.
    changed: usize,
    /// Desk statuses kept.
    kept: usize,
    /// Patients of new, booked, future appointments who have not opted out.
    booked_patients: HashSet<i64>,
}

/// What one row does to a stored appointment; decided without touching the store.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    status: Status,
    cancelled_by: Option<CancelledBy>,
    moved: bool,
    kind: Option<ChangeKind>,
}

/// Who is reminded and how once a row is applied: each column the file has replaces the
/// stored value, a column it lacks keeps it. Reminding a caregiver who has no number left
/// (the file emptied the number and has no remind column) falls back to the patient, so
/// someone is still reminded; a file's own remind column cannot say so (a row error).
fn merge_reach(stored: &PatientReach, row: &Reach) -> PatientReach {
    let mut out = PatientReach {
        channel: row.channel.over(stored.channel.as_ref()),
        remind: row.remind.unwrap_or(stored.remind),
        contact_name: row.contact_name.over(stored.contact_name.as_ref()),
        contact_phone: row.contact_phone.over(stored.contact_phone.as_ref()),
        contact_relation: row.contact_relation.over(stored.contact_relation.as_ref()),
    };
    if out.contact_phone.is_none() {
        out.remind = RemindWhom::Patient;
    }
    out
}

/// The rule that keeps the schedule and the patient's answer apart: the file decides the
/// schedule, except that it cannot undo a patient's cancellation or staff's final status
/// unless the appointment moved (then it is, in effect, a new booking).
fn decide(existing: &StoredAppointment, row: &ImportRow) -> Decision {
    let moved = existing.starts_at != row.starts_at;
    let keep = Decision {
        status: existing.status,
        cancelled_by: existing.cancelled_by,
        moved,
        kind: moved.then_some(ChangeKind::Rescheduled {
            from: existing.starts_at,
            to: row.starts_at,
        }),
    };
    match (row.status, existing.status) {
        (RowStatus::Cancelled | RowStatus::Deleted, Status::Booked) => Decision {
            status: Status::Cancelled,
            cancelled_by: Some(CancelledBy::Source),
            moved,
            kind: Some(ChangeKind::Cancelled),
        },
        // The practice system's word on how a visit ended: it settles a booked appointment,
        // never one the patient cancelled (their answer stands, as above).
        (RowStatus::NoShow, Status::Booked | Status::Completed) => Decision {
            status: Status::NoShow,
            cancelled_by: None,
            moved,
            kind: keep.kind,
        },
        (RowStatus::Completed, Status::Booked | Status::NoShow) => Decision {
            status: Status::Completed,
            cancelled_by: None,
            moved,
            kind: keep.kind,
        },
        (RowStatus::Booked, Status::Cancelled)
            if moved || existing.cancelled_by != Some(CancelledBy::Patient) =>
        {
            Decision {
                status: Status::Booked,
                cancelled_by: None,
                moved,
                kind: Some(keep.kind.unwrap_or(ChangeKind::Reinstated)),
            }
        }
        (RowStatus::Booked, Status::Completed | Status::NoShow) if moved => Decision {
            status: Status::Booked,
            cancelled_by: None,
            moved,
            kind: keep.kind,
        },
        _ => keep,
    }
}

impl ApplyState<'_, '_> {
    /// Where a change came from, as audit rows say it: the spreadsheet row, or the feed's
    /// message.
    fn at(&self, row: usize) -> String {
        match self.origin {
            Some(o) => o.to_string(),
            None => format!("row {row}"),
        }
    }

    fn apply_row(
        &mut self,
        clinic_id: i64,
        row: &ImportRow,
        patients: &mut HashMap<String, StoredPatient>,
        appointments: &mut HashMap<String, StoredAppointment>,
    ) -> Result<(), StoreError> {
        let mut patient_changed = false;
        let patient_id = match patients.get_mut(&row.patient_id) {
            Some(p) => {
                let reach = merge_reach(&p.reach, &row.reach);
                if p.name != row.patient_name
                    || p.phone != row.phone
                    || p.language != row.language
                    || p.reach != reach
                {
                    if p.phone != row.phone {
                        self.patient_audit(
                            p.id,
                            "phone_changed",
                            Some(p.phone.to_string()),
                            Some(row.phone.to_string()),
                            row.row,
                        )?;
                    }
                    self.reach_audit(p.id, &p.reach, &reach, row.row)?;
                    self.tx.update_patient(
                        p.id,
                        &row.patient_name,
                        &row.phone,
                        &row.language,
                        &reach,
                        self.now,
                    )?;
                    p.name.clone_from(&row.patient_name);
                    p.phone = row.phone.clone();
                    p.language.clone_from(&row.language);
                    p.reach = reach;
                    patient_changed = true;
                }
                p.id
            }
            None => {
                let reach = merge_reach(&PatientReach::default(), &row.reach);
                let id = self.tx.insert_patient(
                    clinic_id,
                    &row.patient_id,
                    &row.patient_name,
                    &row.phone,
                    &row.language,
                    &reach,
                    self.actor,
                    self.now,
                )?;
                patients.insert(
                    row.patient_id.clone(),
                    StoredPatient {
                        id,
                        name: row.patient_name.clone(),
                        phone: row.phone.clone(),
                        language: row.language.clone(),
                        reach,
                    },
                );
                id
            }
        };

        let Some(existing) = appointments.get_mut(&row.appointment_id) else {
            let (status, cancelled_by) = match row.status {
                RowStatus::Booked => (Status::Booked, None),
                RowStatus::Cancelled | RowStatus::Deleted => {
                    (Status::Cancelled, Some(CancelledBy::Source))
                }
                RowStatus::NoShow => (Status::NoShow, None),
                RowStatus::Completed => (Status::Completed, None),
            };
            let write = AppointmentWrite {
                patient_id,
                provider: row.provider.as_deref(),
                starts_at: row.starts_at,
                duration_min: row.duration_min,
                status,
                cancelled_by,
            };
            let id = self.tx.insert_appointment(
                clinic_id,
                self.source,
                &row.appointment_id,
                &write,
                self.import_id,
                self.digest.as_ref(),
                self.now,
            )?;
            appointments.insert(
                row.appointment_id.clone(),
                StoredAppointment {
                    id,
                    patient_id,
                    provider: row.provider.clone(),
                    starts_at: row.starts_at,
                    duration_min: row.duration_min,
                    status,
                    cancelled_by,
                    response: crate::store::Response::None,
                },
            );
            self.counts.new += 1;
            self.outcomes.push((row.row, RowOutcome::New));
            if self.booking
                && status == Status::Booked
                && row.starts_at > self.now
                && !self.opted_out.contains(&patient_id)
            {
                self.review.booked_patients.insert(patient_id);
            }
            return Ok(());
        };

        let mut d = decide(existing, row);
        let (undoes, kept) = self.review_row(existing, row, &mut d)?;
        if kept.is_some() {
            self.review.kept += 1;
        }
        let status_changed = d.status != existing.status;
        let details_changed = existing.patient_id != patient_id
            || existing.provider != row.provider
            || existing.duration_min != row.duration_min;
        if !(d.moved || status_changed || details_changed) {
            if patient_changed {
                self.counts.updated += 1;
                self.outcomes.push((row.row, RowOutcome::Updated));
            } else {
                self.counts.unchanged += 1;
                self.outcomes.push((row.row, RowOutcome::Unchanged));
            }
            if let Some(k) = kept {
                self.keep_audit(existing.id, &k, row.row)?;
                self.changes.push(Change {
                    row: Some(row.row),
                    clinic: row.clinic.clone(),
                    appointment_id: row.appointment_id.clone(),
                    kind: ChangeKind::Kept,
                    patient: row.patient_name.clone(),
                    starts_at: row.starts_at,
                    response: existing.response,
                    undoes,
                    kept: Some(k),
                });
            }
            return Ok(());
        }
        let write = AppointmentWrite {
            patient_id,
            provider: row.provider.as_deref(),
            starts_at: row.starts_at,
            duration_min: row.duration_min,
            status: d.status,
            cancelled_by: d.cancelled_by,
        };
        self.tx.update_appointment(
            existing.id,
            &write,
            status_changed,
            d.moved,
            self.import_id,
            self.now,
        )?;
        if d.moved {
            self.audit(
                existing.id,
                "reschedule",
                existing.starts_at.to_rfc3339(),
                row.starts_at.to_rfc3339(),
                row.row,
            )?;
        }
        if status_changed {
            let action = match d.status {
                Status::Cancelled if row.status == RowStatus::Deleted => "delete",
                Status::Cancelled => "cancel",
                Status::NoShow => "no_show",
                Status::Completed => "complete",
                Status::Booked => "reinstate",
            };
            self.audit(
                existing.id,
                action,
                existing.status.to_string(),
                d.status.to_string(),
                row.row,
            )?;
        }
        if d.status == Status::Cancelled && status_changed {
            self.counts.cancelled += 1;
            self.outcomes.push((row.row, RowOutcome::Cancelled));
        } else {
            self.counts.updated += 1;
            self.outcomes.push((row.row, RowOutcome::Updated));
        }
        if let Some(k) = &kept {
            self.keep_audit(existing.id, k, row.row)?;
        }
        if let Some(kind) = d.kind.or_else(|| kept.as_ref().map(|_| ChangeKind::Kept)) {
            self.changes.push(Change {
                row: Some(row.row),
                clinic: row.clinic.clone(),
                appointment_id: row.appointment_id.clone(),
                kind,
                patient: row.patient_name.clone(),
                starts_at: row.starts_at,
                response: existing.response,
                undoes,
                kept,
            });
        }
        existing.starts_at = row.starts_at;
        existing.status = d.status;
        existing.cancelled_by = d.cancelled_by;
        existing.patient_id = patient_id;
        existing.provider.clone_from(&row.provider);
        existing.duration_min = row.duration_min;
        if d.moved {
            existing.response = crate::store::Response::None;
        }
        Ok(())
    }

    /// What a row undoes, and whether a desk status is kept (then `d` keeps it); counts the
    /// row toward the preview's warnings.
    fn review_row(
        &mut self,
        existing: &StoredAppointment,
        row: &ImportRow,
        d: &mut Decision,
    ) -> Result<(Vec<Undo>, Option<SetBy>), StoreError> {
        let mut undoes = Vec::new();
        let mut kept = None;
        if d.status != existing.status && existing.status != Status::Booked {
            match (existing.status, existing.cancelled_by) {
                (Status::Cancelled, Some(CancelledBy::Patient)) => {
                    undoes.push(Undo::PatientCancelled);
                }
                // A cancellation by an earlier file, booked again: the file's own business,
                // unless a later upload made it (then this file may be older).
                (Status::Cancelled, Some(CancelledBy::Source)) => self.review.reverted += 1,
                (status, _) => {
                    let by = self.tx.status_set_by(existing.id, status)?;
                    let staff = by
                        .as_deref()
                        .and_then(|a| a.strip_prefix("staff:"))
                        .map(str::to_string);
                    match staff {
                        Some(name) if self.keep => {
                            kept = Some(SetBy { status, by: name });
                            d.status = existing.status;
                            d.cancelled_by = existing.cancelled_by;
                            if matches!(d.kind, Some(ChangeKind::Reinstated)) {
                                d.kind = None;
                            }
                        }
                        by => undoes.push(Undo::Status { status, by }),
                    }
                }
            }
        }
        if d.moved && existing.response != Response::None {
            undoes.push(Undo::Answer(existing.response));
        }
        if d.moved || matches!(d.kind, Some(ChangeKind::Reinstated)) || !undoes.is_empty() {
            self.review.changed += 1;
        }
        if d.moved {
            if row.starts_at < self.now && row.starts_at < existing.starts_at {
                self.review.into_the_past += 1;
            }
            if self
                .tx
                .earlier_starts(existing.id)?
                .contains(&row.starts_at)
            {
                self.review.reverted += 1;
            }
        }
        Ok((undoes, kept))
    }

    /// An audit row about a patient (no appointment).
    fn patient_audit(
        &self,
        patient_id: i64,
        action: &str,
        old: Option<String>,
        new: Option<String>,
        row: usize,
    ) -> Result<(), StoreError> {
        self.tx.audit(
            &AuditEntry {
                appointment_id: None,
                patient_id: Some(patient_id),
                actor: self.actor,
                action,
                old_value: old,
                new_value: new,
                reason: Some(self.at(row)),
            },
            self.now,
        )
    }

    /// Audit rows for a change of who is reminded or how, as for a phone change: each decides
    /// where messages go.
    fn reach_audit(
        &self,
        patient_id: i64,
        old: &PatientReach,
        new: &PatientReach,
        row: usize,
    ) -> Result<(), StoreError> {
        if old.channel != new.channel {
            let word = |c: Option<crate::model::ChannelChoice>| c.map(|c| c.as_str().to_string());
            self.patient_audit(
                patient_id,
                "channel_changed",
                word(old.channel),
                word(new.channel),
                row,
            )?;
        }
        if old.contact_phone != new.contact_phone {
            let number = |p: &Option<crate::phone::E164>| p.as_ref().map(ToString::to_string);
            self.patient_audit(
                patient_id,
                "contact_changed",
                number(&old.contact_phone),
                number(&new.contact_phone),
                row,
            )?;
        }
        if old.remind != new.remind {
            self.patient_audit(
                patient_id,
                "remind_changed",
                Some(old.remind.to_string()),
                Some(new.remind.to_string()),
                row,
            )?;
        }
        Ok(())
    }

    fn keep_audit(&self, appointment_id: i64, k: &SetBy, row: usize) -> Result<(), StoreError> {
        self.tx.audit(
            &AuditEntry {
                appointment_id: Some(appointment_id),
                patient_id: None,
                actor: self.actor,
                action: "status_kept",
                old_value: Some(k.status.to_string()),
                new_value: Some(k.status.to_string()),
                reason: Some(format!(
                    "{}: kept as set at the desk by {} (chosen on the preview)",
                    self.at(row),
                    k.by
                )),
            },
            self.now,
        )
    }

    fn audit(
        &self,
        appointment_id: i64,
        action: &str,
        old: String,
        new: String,
        row: usize,
    ) -> Result<(), StoreError> {
        self.tx.audit(
            &AuditEntry {
                appointment_id: Some(appointment_id),
                patient_id: None,
                actor: self.actor,
                action,
                old_value: Some(old),
                new_value: Some(new),
                reason: Some(self.at(row)),
            },
            self.now,
        )
    }

    /// `--complete`: booked appointments on the file's dates that the file does not list.
    fn cancel_missing(
        &mut self,
        clinic: &str,
        zone: chrono_tz::Tz,
        rows: &[&ImportRow],
        appointments: &HashMap<String, StoredAppointment>,
        patients: &HashMap<String, StoredPatient>,
    ) -> Result<(), StoreError> {
        let names: HashMap<i64, &str> =
            patients.values().map(|p| (p.id, p.name.as_str())).collect();
        let listed: HashSet<&str> = rows.iter().map(|r| r.appointment_id.as_str()).collect();
        let days: Vec<(DateTime<Utc>, DateTime<Utc>)> = rows
            .iter()
            .map(|r| r.local_date)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|d| local_day_bounds(zone, d))
            .collect();
        let missing: Vec<(String, StoredAppointment, String)> = appointments
            .iter()
            .filter(|(ext, a)| {
                a.status == Status::Booked
                    && !listed.contains(ext.as_str())
                    && days
                        .iter()
                        .any(|(s, e)| a.starts_at >= *s && a.starts_at < *e)
            })
            .map(|(ext, a)| {
                let name = names.get(&a.patient_id).copied().unwrap_or_default();
                (ext.clone(), a.clone(), name.to_string())
            })
            .collect();
        self.cancel_these(clinic, missing)
    }

    /// Cancels booked appointments a `--complete` file does not list, in start order, with
    /// their patient's name.
    fn cancel_these(
        &mut self,
        clinic: &str,
        mut missing: Vec<(String, StoredAppointment, String)>,
    ) -> Result<(), StoreError> {
        missing.sort_by(|(x, a, _), (y, b, _)| (a.starts_at, x).cmp(&(b.starts_at, y)));
        for (ext, a, patient) in missing {
            let write = AppointmentWrite {
                patient_id: a.patient_id,
                provider: a.provider.as_deref(),
                starts_at: a.starts_at,
                duration_min: a.duration_min,
                status: Status::Cancelled,
                cancelled_by: Some(CancelledBy::Source),
            };
            self.tx
                .update_appointment(a.id, &write, true, false, self.import_id, self.now)?;
            self.tx.audit(
                &AuditEntry {
                    appointment_id: Some(a.id),
                    patient_id: None,
                    actor: self.actor,
                    action: "cancel",
                    old_value: Some(a.status.to_string()),
                    new_value: Some(Status::Cancelled.to_string()),
                    reason: Some("missing from a complete schedule file".into()),
                },
                self.now,
            )?;
            self.counts.cancelled += 1;
            self.changes.push(Change {
                row: None,
                clinic: clinic.to_string(),
                appointment_id: ext,
                kind: ChangeKind::CancelledMissing,
                patient,
                starts_at: a.starts_at,
                response: a.response,
                undoes: Vec::new(),
                kept: None,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Said;
    use crate::model::ChannelChoice;
    use crate::phone::E164;

    fn number(n: &str) -> E164 {
        E164::parse(n, "IN".parse().expect("region")).expect("valid number")
    }

    fn caregiver() -> PatientReach {
        PatientReach {
            channel: Some(ChannelChoice::Sms),
            remind: RemindWhom::Both,
            contact_name: Some("Sunita".into()),
            contact_phone: Some(number("98200 54321")),
            contact_relation: Some("mother".into()),
        }
    }

    #[test]
    fn a_missing_column_keeps_the_stored_value_and_an_empty_cell_clears_it() {
        let stored = caregiver();
        assert_eq!(merge_reach(&stored, &Reach::default()), stored);

        let cleared = Reach {
            channel: Said::Cleared,
            remind: Some(RemindWhom::Patient),
            contact_name: Said::Cleared,
            contact_phone: Said::Cleared,
            contact_relation: Said::Cleared,
        };
        assert_eq!(merge_reach(&stored, &cleared), PatientReach::default());

        let only_channel = Reach {
            channel: Said::Value(ChannelChoice::None),
            ..Reach::default()
        };
        assert_eq!(
            merge_reach(&stored, &only_channel),
            PatientReach {
                channel: Some(ChannelChoice::None),
                ..caregiver()
            }
        );
    }

    #[test]
    fn emptying_the_caregivers_number_reminds_the_patient() {
        let no_number = Reach {
            contact_phone: Said::Cleared,
            ..Reach::default()
        };
        let merged = merge_reach(&caregiver(), &no_number);
        assert_eq!(merged.remind, RemindWhom::Patient);
        assert_eq!(merged.contact_phone, None);
        assert_eq!(merged.contact_name.as_deref(), Some("Sunita"));
    }
}
