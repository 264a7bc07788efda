//! `reminderd patient`: everything stored about one patient as JSON (`export`), or their
//! personal data erased (`erase`), for a patient's request under the DPDP Act, GDPR or HIPAA.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use reminderd::store::{PatientRef, Store, StoreError};
use reminderd::time::{Clock, parse_instant};

use super::output::print_json;
use super::{admin_actor, exit, fail, open};

/// `reminderd patient`'s arguments.
#[derive(Debug, Args)]
pub(super) struct PatientArgs {
    #[command(subcommand)]
    command: PatientCommand,
}

#[derive(Debug, Subcommand)]
enum PatientCommand {
    /// Write everything stored about a patient as JSON (audited)
    Export {
        /// The patient id of the clinic's system, as in the schedule file
        id: String,
        /// The clinic, if several use the same patient id
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
        /// Write to this file (readable by its owner only) instead of standard output
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Erase a patient's personal data; counts and states stay for the statistics (audited)
    Erase {
        /// The patient id of the clinic's system, as in the schedule file
        id: String,
        /// The clinic, if several use the same patient id
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
        /// Erase even with an upcoming appointment (it is cancelled, its reminders stop)
        #[arg(long)]
        force: bool,
        /// Erase as if it were this RFC 3339 instant ("upcoming" is judged then)
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// A store refusal in the words it carries, as bad input rather than a database failure.
fn refusal(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound(m) | StoreError::Ambiguous(m) | StoreError::Refused(m) => {
            fail(exit::DATA, m)
        }
        other => other.into(),
    }
}

fn find(store: &Store, id: &str, clinic: Option<&str>) -> Result<PatientRef> {
    store.find_patient(id, clinic).map_err(refusal)
}

pub(super) fn run(config_path: &Path, db: Option<&Path>, args: &PatientArgs) -> Result<u8> {
    let (config, mut store) = open(config_path, db)?;
    let actor = admin_actor();
    match &args.command {
        PatientCommand::Export { id, clinic, output } => {
            if let Some(c) = clinic.as_deref().filter(|c| config.clinic(c).is_none()) {
                return Err(fail(exit::USAGE, config.unknown_clinic(c)));
            }
            let p = find(&store, id, clinic.as_deref())?;
            let doc = store
                .export_patient(p.id, &actor, Clock::System.now())
                .map_err(refusal)?;
            match output {
                None => print_json(&doc)?,
                Some(path) => {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(path)
                        .map_err(|e| {
                            fail(
                                exit::NO_INPUT,
                                format!("cannot write {}: {e}", path.display()),
                            )
                        })?;
                    serde_json::to_writer_pretty(&mut f, &doc)?;
                    f.write_all(b"\n")?;
                    eprintln!(
                        "patient {} ({}) exported to {}; it holds their personal data, keep it safe",
                        p.external_id,
                        p.clinic,
                        path.display()
                    );
                }
            }
        }
        PatientCommand::Erase {
            id,
            clinic,
            force,
            now,
            json,
        } => {
            if let Some(c) = clinic.as_deref().filter(|c| config.clinic(c).is_none()) {
                return Err(fail(exit::USAGE, config.unknown_clinic(c)));
            }
            let p = find(&store, id, clinic.as_deref())?;
            confirm(&p)?;
            let now = Clock::from_option(*now).now();
            let erased = store
                .erase_patient(p.id, &actor, *force, now)
                .map_err(|e| match e {
                    StoreError::Refused(m) if !force && m.contains("upcoming") => {
                        fail(exit::DATA, format!("{m}; to erase anyway, add --force"))
                    }
                    other => refusal(other),
                })?;
            if *json {
                print_json(&erased)?;
            } else {
                println!(
                    "patient {} ({}) erased: name, numbers and words removed from {} messages, {} replies and {} stored payloads{}; counts and states are kept",
                    p.external_id,
                    p.clinic,
                    erased.messages,
                    erased.replies,
                    erased.payloads,
                    if erased.cancelled > 0 {
                        format!(", upcoming appointments cancelled: {}", erased.cancelled)
                    } else {
                        String::new()
                    }
                );
                if erased.opt_out_kept {
                    println!(
                        "their opt-out is kept as a hash of the number, so it is honoured if the number comes back"
                    );
                }
                if !erased.checkpointed {
                    println!(
                        "another process (the daemon) is reading the database: the old bytes leave the write-ahead log at its next checkpoint"
                    );
                }
                println!("backups taken before now still hold the data until they are removed");
            }
        }
    }
    Ok(exit::OK)
}

/// At a terminal, the patient id typed again; scripts (no terminal) are not asked.
fn confirm(p: &PatientRef) -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(());
    }
    eprint!(
        "erase the personal data of patient {} at {}? this cannot be undone; type the patient id to go on: ",
        p.external_id, p.clinic
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if line.trim() == p.external_id {
        Ok(())
    } else {
        Err(fail(exit::USAGE, "not confirmed; nothing was erased"))
    }
}
