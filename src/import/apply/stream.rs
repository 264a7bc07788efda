//! The command line's import, streamed: each chunk of checked rows is compared with the
//! stored rows it names (looked up by key) and written at once, inside the one transaction,
//! while the next chunk is read. A problem anywhere, even on the last row, rolls everything
//! back, so the file is still imported whole or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;

use super::{ApplyState, Review};
use crate::config::{CSV_SOURCE, Config};
use crate::import::parse::{Input, Progress, Scan, parse_chunks};
use crate::import::{ApplyOptions, ImportError, ImportReport, ImportRow, ParseOptions};
use crate::store::{ImportCounts, Store};
use crate::time::local_day_bounds;

/// Reads, checks and applies a file chunk by chunk in one transaction, committed
/// last (rolled back for a dry-run or a refused file). `progress` hears after each chunk;
/// it is the caller's to show (or not).
pub fn import_stream(
    store: &mut Store,
    config: &Config,
    input: Input<'_>,
    parse: &ParseOptions<'_>,
    opts: &ApplyOptions<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    let tx = store.begin_import()?;
    let actor = format!("import:{}", opts.file_name);
    // The checksum and the clinics are known once the file is read; both are filled in then.
    let import_id = tx.start_import(
        opts.file_name,
        "",
        opts.complete,
        opts.imported_by,
        &[],
        opts.now,
    )?;
    let mut state = ApplyState {
        tx: &tx,
        actor: &actor,
        source: CSV_SOURCE,
        origin: None,
        import_id: Some(import_id),
        now: opts.now,
        keep: false,
        booking: config.booking_confirmation.is_some(),
        counts: ImportCounts::default(),
        changes: Vec::new(),
        outcomes: Vec::new(),
        review: Review::default(),
        opted_out: HashSet::new(),
    };
    let mut opted_out: HashMap<i64, HashSet<i64>> = HashMap::new();
    // Only a `--complete` file needs its listed ids and days at the end.
    let mut listed: BTreeMap<String, (HashSet<String>, BTreeSet<NaiveDate>)> = BTreeMap::new();
    let mut clinic_ids = BTreeSet::new();
    let scan = parse_chunks(input, config, parse, |rows, at| {
        let mut by_clinic: BTreeMap<&str, Vec<&ImportRow>> = BTreeMap::new();
        for r in &rows {
            by_clinic.entry(r.clinic.as_str()).or_default().push(r);
        }
        for (key, rows) in by_clinic {
            let clinic_id = tx.clinic_id(key)?;
            clinic_ids.insert(clinic_id);
            state.opted_out = match opted_out.remove(&clinic_id) {
                Some(s) => s,
                None => tx.opted_out_of(clinic_id)?,
            };
            let mut patients = HashMap::new();
            let mut appointments = HashMap::new();
            tx.patients_into(
                clinic_id,
                rows.iter().map(|r| r.patient_id.as_str()),
                &mut patients,
            )?;
            tx.appointments_into(
                clinic_id,
                CSV_SOURCE,
                rows.iter().map(|r| r.appointment_id.as_str()),
                &mut appointments,
            )?;
            for row in &rows {
                state.apply_row(clinic_id, row, &mut patients, &mut appointments)?;
            }
            opted_out.insert(clinic_id, std::mem::take(&mut state.opted_out));
            if opts.complete {
                let (ids, days) = listed.entry(key.to_string()).or_default();
                ids.extend(rows.iter().map(|r| r.appointment_id.clone()));
                days.extend(rows.iter().map(|r| r.local_date));
            }
        }
        state.counts.rows += rows.len();
        // The command line reports counts, not each row's outcome.
        state.outcomes.clear();
        progress(at);
        Ok(())
    })?;

    let left_out = if scan.errors.is_empty() {
        Vec::new()
    } else if partial_allowed(config, &scan, opts) {
        scan.errors.clone()
    } else {
        // Dropping the transaction writes nothing.
        return Ok(ImportReport::rejected(
            opts.file_name,
            scan.rows_read,
            scan.errors,
        ));
    };
    for (key, (ids, days)) in &listed {
        let clinic_id = tx.clinic_id(key)?;
        let zone = config.clinic(key).map_or(chrono_tz::UTC, |c| c.time_zone);
        let mut missing = Vec::new();
        for day in days {
            let (from, to) = local_day_bounds(zone, *day);
            for m in tx.booked_between(clinic_id, CSV_SOURCE, from, to)? {
                if !ids.contains(&m.0) {
                    missing.push(m);
                }
            }
        }
        state.cancel_these(key, missing)?;
    }
    let ApplyState {
        counts,
        mut changes,
        review,
        booking,
        ..
    } = state;
    // Staff read changes clinic by clinic, in file order, the missing ones last.
    changes.sort_by_key(|c| (c.clinic.clone(), c.row.is_none(), c.row));
    let ids: Vec<i64> = clinic_ids.into_iter().collect();
    tx.add_import_clinics(import_id, &ids)?;
    tx.set_import_checksum(import_id, &scan.checksum)?;
    tx.finish_import(import_id, &counts)?;
    let warnings = super::warnings_of(&tx, &review, &scan.checksum, &ids, import_id)?;
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
        outcomes: Vec::new(),
        warnings,
        booking_messages: booking.then_some(review.booked_patients.len()),
        kept: review.kept,
        left_out,
    };
    if !opts.dry_run {
        tx.commit()?;
    }
    Ok(report)
}

/// As the whole-file path's rule: every clinic the file names allows a partial import, the
/// file is not the whole schedule, and some row is sound.
fn partial_allowed(config: &Config, scan: &Scan, opts: &ApplyOptions<'_>) -> bool {
    !opts.complete
        && scan.partial_possible()
        && !scan.clinics.is_empty()
        && scan
            .clinics
            .iter()
            .all(|k| config.clinic(k).is_some_and(|c| c.import_partial))
}
