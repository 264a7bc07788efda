//! The command line's import, streamed: each chunk of checked rows is compared with the
//! stored rows it names (looked up by key) and written at once, inside the one transaction,
//! while the next chunk is read. A problem anywhere, even on the last row, rolls everything
//! back, so the file is still imported whole or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;

use super::{ApplyState, Review};
use crate::config::{CSV_SOURCE, Config};
use crate::import::parse::{Digested, Input, Known, Progress, Scan, parse_chunks_digested};
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
    // Opened before the transaction: the reading thread asks it which rows are stored as
    // they are (what the last import of them left, unchanged since).
    let reader = store.import_reader();
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
        digest: None,
    };
    let mut opted_out: HashMap<i64, HashSet<i64>> = HashMap::new();
    // Only a `--complete` file needs its listed ids and days at the end.
    let mut listed: BTreeMap<String, (HashSet<String>, BTreeSet<NaiveDate>)> = BTreeMap::new();
    let mut clinic_ids = BTreeSet::new();
    let known: Option<Known<'_>> = reader.map(|r| -> Known<'_> {
        Box::new(move |clinic: &str, ids: &[&str]| {
            r.known(clinic, CSV_SOURCE, ids.iter().copied())
                .unwrap_or_default()
        })
    });
    let scan = parse_chunks_digested(input, config, parse, known, |rows, digests, at| {
        let mut by_clinic: BTreeMap<&str, Vec<(&ImportRow, Digested)>> = BTreeMap::new();
        for (r, d) in rows.iter().zip(digests) {
            by_clinic.entry(r.clinic.as_str()).or_default().push((r, d));
        }
        for (key, all) in by_clinic {
            let clinic_id = tx.clinic_id(key)?;
            clinic_ids.insert(clinic_id);
            if opts.complete {
                let (ids, days) = listed.entry(key.to_string()).or_default();
                ids.extend(all.iter().map(|(r, _)| r.appointment_id.clone()));
                days.extend(all.iter().map(|(r, _)| r.local_date));
            }
            // A row the store holds as this very row left it changes nothing: it is neither
            // looked up nor compared (its digest says so; see `Digested`).
            let (same, rows): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, d)| d.unchanged);
            state.counts.unchanged += same.len();
            if rows.is_empty() {
                continue;
            }
            state.opted_out = match opted_out.remove(&clinic_id) {
                Some(s) => s,
                None => tx.opted_out_of(clinic_id)?,
            };
            let mut patients = HashMap::new();
            let mut appointments = HashMap::new();
            tx.patients_into(
                clinic_id,
                rows.iter().map(|(r, _)| r.patient_id.as_str()),
                &mut patients,
            )?;
            tx.appointments_into(
                clinic_id,
                CSV_SOURCE,
                rows.iter().map(|(r, _)| r.appointment_id.as_str()),
                &mut appointments,
            )?;
            for (row, d) in &rows {
                let stored = appointments.contains_key(&row.appointment_id);
                state.digest = Some(d.digest);
                state.apply_row(clinic_id, row, &mut patients, &mut appointments)?;
                // An added appointment got its digest with its row; one compared in full
                // gets it now, so the next import of the same row skips it.
                if stored && let Some(a) = appointments.get(&row.appointment_id) {
                    tx.set_import_digest(a.id, &d.digest)?;
                }
            }
            state.digest = None;
            opted_out.insert(clinic_id, std::mem::take(&mut state.opted_out));
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
