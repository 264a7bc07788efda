//! `reminderd waitlist`: import a waitlist file (all rows or none, the schedule import's row
//! errors), list the entries, or add one patient.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use serde_json::json;

use reminderd::import::ImportReport;
use reminderd::store::NewEntry;
use reminderd::time::Clock;
use reminderd::waitlist::csv;

use super::output::{print_import, print_json};
use super::{admin_actor, exit, fail, open};

/// `reminderd waitlist`'s arguments.
#[derive(Debug, Args)]
pub(super) struct WaitlistArgs {
    #[command(subcommand)]
    command: WaitlistCommand,
}

#[derive(Debug, Subcommand)]
enum WaitlistCommand {
    /// Add or update entries from a CSV file (columns: id, patient_id, clinic, provider,
    /// earliest, latest, days, time_band, expires, max_offers); all rows or none
    Import {
        /// The CSV file
        file: PathBuf,
        /// Clinic for rows without a clinic column
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// List the waitlist (active entries first)
    List {
        /// Only this clinic
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Add one patient to the waitlist
    Add {
        /// The patient's id from the clinic's schedule
        patient: String,
        /// The clinic (its key in reminders.toml)
        #[arg(long, value_name = "KEY")]
        clinic: String,
        /// Only this provider [default: any]
        #[arg(long)]
        provider: Option<String>,
        /// First date that suits (YYYY-MM-DD) [default: today]
        #[arg(long)]
        earliest: Option<NaiveDate>,
        /// Last date that suits (YYYY-MM-DD) [default: open-ended]
        #[arg(long)]
        latest: Option<NaiveDate>,
        /// Weekdays that suit: Mon-Fri, 1-5, Mon,Wed [default: every day]
        #[arg(long, default_value = "")]
        days: String,
        /// Local time band, HH:MM-HH:MM [default: any time]
        #[arg(long, default_value = "")]
        time_band: String,
        /// Most offers this patient gets
        #[arg(long, default_value_t = 3)]
        max_offers: u32,
    },
}

/// Runs one `waitlist` subcommand; exit 65 when a file has bad rows (nothing written).
pub(super) fn run(config_path: &Path, db: Option<&Path>, args: &WaitlistArgs) -> Result<u8> {
    let (config, mut store) = open(config_path, db)?;
    let now = Clock::System.now();
    match &args.command {
        WaitlistCommand::Import { file, clinic, json } => {
            if let Some(c) = clinic
                && config.clinic(c).is_none()
            {
                return Err(fail(exit::USAGE, config.unknown_clinic(c)));
            }
            let bytes = std::fs::read(file).map_err(|e| {
                fail(
                    exit::NO_INPUT,
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            let name = file.display().to_string();
            let rows = csv::parse(&bytes, &config, clinic.as_deref());
            let done = match rows {
                Ok(rows) => {
                    let source = format!("import:{name}");
                    store
                        .import_waitlist(&rows, &source, now)?
                        .map(|d| (d, rows.len()))
                }
                Err(errors) => Err(errors),
            };
            match done {
                Ok((d, rows)) => {
                    if *json {
                        print_json(
                            &json!({"file": name, "rows": rows, "new": d.new, "updated": d.updated}),
                        )?;
                    } else {
                        println!(
                            "{name}: {rows} row(s): {} new, {} updated",
                            d.new, d.updated
                        );
                    }
                    Ok(exit::OK)
                }
                Err(errors) => {
                    let report = ImportReport::rejected(&name, 0, errors);
                    if *json {
                        print_json(&report)?;
                    } else {
                        print_import(&config, &report)?;
                    }
                    Ok(exit::DATA)
                }
            }
        }
        WaitlistCommand::List { clinic, json } => {
            let entries = store.waitlist_entries(clinic.as_deref(), false)?;
            if *json {
                let v: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        json!({
                            "id": e.id, "external_id": e.external_id, "clinic": e.clinic,
                            "patient": e.patient, "provider": e.provider,
                            "earliest": e.earliest.to_string(), "latest": e.latest.map(|d| d.to_string()),
                            "days": e.days, "time_from": e.time_from.map(|t| t.format("%H:%M").to_string()),
                            "time_to": e.time_to.map(|t| t.format("%H:%M").to_string()),
                            "max_offers": e.max_offers, "offers_sent": e.offers_sent, "state": e.state,
                        })
                    })
                    .collect();
                print_json(&v)?;
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{:<6} {:<10} {:<12} {:<14} {:<23} {:<8} {:<7} STATE",
                    "ID", "CLINIC", "PATIENT", "PROVIDER", "DATES", "DAYS", "OFFERS"
                )?;
                for e in &entries {
                    let dates = format!(
                        "{}..{}",
                        e.earliest,
                        e.latest.map_or(String::new(), |d| d.to_string())
                    );
                    writeln!(
                        out,
                        "{:<6} {:<10} {:<12} {:<14} {:<23} {:<8} {:<7} {}",
                        e.id,
                        e.clinic,
                        e.patient,
                        e.provider.as_deref().unwrap_or("any"),
                        dates,
                        e.days,
                        format!("{}/{}", e.offers_sent, e.max_offers),
                        e.state
                    )?;
                }
            }
            Ok(exit::OK)
        }
        WaitlistCommand::Add {
            patient,
            clinic,
            provider,
            earliest,
            latest,
            days,
            time_band,
            max_offers,
        } => {
            let Some(c) = config.clinic(clinic) else {
                return Err(fail(exit::USAGE, config.unknown_clinic(clinic)));
            };
            let days =
                csv::parse_days(days).map_err(|m| fail(exit::USAGE, format!("--days: {m}")))?;
            let band = csv::parse_band(time_band)
                .map_err(|m| fail(exit::USAGE, format!("--time-band: {m}")))?;
            let entry = NewEntry {
                clinic: clinic.clone(),
                patient: patient.clone(),
                provider: provider.clone(),
                earliest: earliest.unwrap_or_else(|| now.with_timezone(&c.time_zone).date_naive()),
                latest: *latest,
                days,
                band,
                expires_at: None,
                max_offers: (*max_offers).clamp(1, 50),
            };
            let id = store
                .add_waitlist_entry(&entry, &admin_actor(), now)
                .map_err(|e| match e {
                    reminderd::store::StoreError::Refused(m) => fail(exit::NO_INPUT, m),
                    e => e.into(),
                })?;
            println!("waitlist entry {id} added for patient {patient}");
            Ok(exit::OK)
        }
    }
}
