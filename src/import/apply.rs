//! The write side of an import: compares parsed rows with what is stored (`decide` is the
//! pure rule) and writes the differences through one [`ImportTx`], committed last.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{
    Applied, ApplyOptions, Change, ChangeKind, ImportError, ImportReport, ImportRow, ParsedFile,
    RowOutcome, RowStatus,
};
use crate::config::Config;
use crate::store::{
    AppointmentWrite, AuditEntry, CancelledBy, ImportCounts, ImportTx, Status, Store, StoreError,
    StoredAppointment, StoredPatient,
};
use crate::time::local_day_bounds;

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
    if !parsed.errors.is_empty() {
        return Ok(Applied {
            report: ImportReport::rejected(opts.file_name, parsed.rows_read, parsed.errors.clone()),
            open: None,
        });
    }
    let tx = store.begin_import()?;
    let actor = format!("import:{}", opts.file_name);
    let clinic_keys: BTreeSet<&str> = parsed.rows.iter().map(|r| r.clinic.as_str()).collect();
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
        import_id,
        now: opts.now,
        counts: ImportCounts {
            rows: parsed.rows.len(),
            ..ImportCounts::default()
        },
        changes: Vec::new(),
        outcomes: Vec::with_capacity(parsed.rows.len()),
    };
    for key in &clinic_keys {
        let clinic_id = clinic_ids[key];
        let mut patients = tx.patients_of(clinic_id)?;
        let mut appointments = tx.appointments_of(clinic_id)?;
        let rows: Vec<&ImportRow> = parsed.rows.iter().filter(|r| r.clinic == *key).collect();
        for row in &rows {
            state.apply_row(clinic_id, row, &mut patients, &mut appointments)?;
        }
        if opts.complete {
            let zone = config.clinic(key).map_or(chrono_tz::UTC, |c| c.time_zone);
            state.cancel_missing(key, zone, &rows, &appointments)?;
        }
    }
    let ApplyState {
        counts,
        changes,
        outcomes,
        ..
    } = state;
    tx.finish_import(import_id, &counts)?;
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
    };
    Ok(Applied {
        report,
        open: Some((tx, import_id)),
    })
}

struct ApplyState<'t, 'c> {
    tx: &'t ImportTx<'c>,
    actor: &'t str,
    import_id: i64,
    now: DateTime<Utc>,
    counts: ImportCounts,
    changes: Vec<Change>,
    /// (spreadsheet row, outcome) per valid row.
    outcomes: Vec<(usize, RowOutcome)>,
}

/// What one row does to a stored appointment; decided without touching the store.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    status: Status,
    cancelled_by: Option<CancelledBy>,
    moved: bool,
    kind: Option<ChangeKind>,
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
        (RowStatus::Cancelled, Status::Booked) => Decision {
            status: Status::Cancelled,
            cancelled_by: Some(CancelledBy::Source),
            moved,
            kind: Some(ChangeKind::Cancelled),
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
                if p.name != row.patient_name || p.phone != row.phone || p.language != row.language
                {
                    if p.phone != row.phone {
                        self.tx.audit(
                            &AuditEntry {
                                appointment_id: None,
                                patient_id: Some(p.id),
                                actor: self.actor,
                                action: "phone_changed",
                                old_value: Some(p.phone.to_string()),
                                new_value: Some(row.phone.to_string()),
                                reason: Some(format!("row {}", row.row)),
                            },
                            self.now,
                        )?;
                    }
                    self.tx.update_patient(
                        p.id,
                        &row.patient_name,
                        &row.phone,
                        &row.language,
                        self.now,
                    )?;
                    p.name.clone_from(&row.patient_name);
                    p.phone = row.phone.clone();
                    p.language.clone_from(&row.language);
                    patient_changed = true;
                }
                p.id
            }
            None => {
                let id = self.tx.insert_patient(
                    clinic_id,
                    &row.patient_id,
                    &row.patient_name,
                    &row.phone,
                    &row.language,
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
                    },
                );
                id
            }
        };

        let Some(existing) = appointments.get_mut(&row.appointment_id) else {
            let (status, cancelled_by) = match row.status {
                RowStatus::Booked => (Status::Booked, None),
                RowStatus::Cancelled => (Status::Cancelled, Some(CancelledBy::Source)),
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
                &row.appointment_id,
                &write,
                self.import_id,
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
            return Ok(());
        };

        let d = decide(existing, row);
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
            let action = if d.status == Status::Cancelled {
                "cancel"
            } else {
                "reinstate"
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
        if let Some(kind) = d.kind {
            self.changes.push(Change {
                row: Some(row.row),
                clinic: row.clinic.clone(),
                appointment_id: row.appointment_id.clone(),
                kind,
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
                reason: Some(format!("row {row}")),
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
    ) -> Result<(), StoreError> {
        let listed: HashSet<&str> = rows.iter().map(|r| r.appointment_id.as_str()).collect();
        let days: Vec<(DateTime<Utc>, DateTime<Utc>)> = rows
            .iter()
            .map(|r| r.local_date)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|d| local_day_bounds(zone, d))
            .collect();
        let mut missing: Vec<(&String, &StoredAppointment)> = appointments
            .iter()
            .filter(|(ext, a)| {
                a.status == Status::Booked
                    && !listed.contains(ext.as_str())
                    && days
                        .iter()
                        .any(|(s, e)| a.starts_at >= *s && a.starts_at < *e)
            })
            .collect();
        missing.sort_by_key(|(ext, a)| (a.starts_at, (*ext).clone()));
        for (ext, a) in missing {
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
                appointment_id: ext.clone(),
                kind: ChangeKind::CancelledMissing,
            });
        }
        Ok(())
    }
}
