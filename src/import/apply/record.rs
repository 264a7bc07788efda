//! One feed record applied through the upload's rules: the path an HL7 message or a FHIR
//! resource takes into the schedule (`crate::feeds`), one appointment per transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{ApplyState, Review};
use crate::config::Config;
use crate::import::{ChangeKind, ImportError, ImportRow, RowOutcome};
use crate::store::{ImportCounts, ImportTx, Store, StoreError};

/// Where a feed's record comes from, as the store and the audit trail name it.
#[derive(Debug, Clone, Copy)]
pub struct RecordFrom<'a> {
    /// The namespace of its ids (`appointments.source`): the feed's, or `csv`.
    pub source: &'a str,
    /// The audit rows' actor: `feed:NAME`.
    pub actor: &'a str,
    /// The message, as audit rows name it: `SIU^S13 1234`.
    pub origin: &'a str,
}

/// What applying one feed record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordApplied {
    /// The appointment's row id.
    pub appointment_id: i64,
    /// New, updated, cancelled or unchanged.
    pub outcome: RowOutcome,
    /// The notable change (a move, a cancellation, a reinstatement), if any.
    pub change: Option<ChangeKind>,
}

/// Applies one appointment a feed sent (an SIU message, a FHIR resource) through the very
/// rules an upload follows (`decide`, audit rows, a move re-plans), in one transaction that
/// also runs `settle` (the caller's own writes, e.g. marking the feed's message applied), so
/// the record and its bookkeeping commit together or not at all. `actor` names the feed in
/// the audit trail ([`RecordFrom`]).
pub fn apply_record(
    store: &mut Store,
    config: &Config,
    from: &RecordFrom<'_>,
    row: &ImportRow,
    now: DateTime<Utc>,
    settle: impl FnOnce(&ImportTx<'_>, &RecordApplied) -> Result<(), StoreError>,
) -> Result<RecordApplied, ImportError> {
    let tx = store.begin_import()?;
    let clinic_id = tx.clinic_id(&row.clinic)?;
    let mut patients = tx.patients_of(clinic_id, Some(&row.patient_id))?;
    let mut appointments = tx.appointments_of(clinic_id, from.source, Some(&row.appointment_id))?;
    let mut state = ApplyState {
        tx: &tx,
        actor: from.actor,
        source: from.source,
        origin: Some(from.origin),
        import_id: None,
        now,
        keep: false,
        booking: config.booking_confirmation.is_some(),
        counts: ImportCounts::default(),
        changes: Vec::new(),
        outcomes: Vec::with_capacity(1),
        review: Review::default(),
        opted_out: HashSet::new(),
        digest: None,
    };
    state.apply_row(clinic_id, row, &mut patients, &mut appointments)?;
    let outcome = state
        .outcomes
        .first()
        .map_or(RowOutcome::Unchanged, |(_, o)| *o);
    let change = state.changes.into_iter().next().map(|c| c.kind);
    let appointment_id = appointments
        .get(&row.appointment_id)
        .map(|a| a.id)
        .ok_or_else(|| StoreError::Corrupt("an applied record left no appointment".into()))?;
    let applied = RecordApplied {
        appointment_id,
        outcome,
        change,
    };
    settle(&tx, &applied)?;
    tx.commit()?;
    Ok(applied)
}
