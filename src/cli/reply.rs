//! `reminderd reply PATIENT "text"`: an answer to a patient from the command line, queued as
//! the desk's conversation page queues it (the same store call, one outbox row per run).

use std::path::Path;

use anyhow::Result;
use clap::Args;

use reminderd::store::{StaffMessage, StaffRefusal, StaffSend, StaffSent};
use reminderd::time::Clock;

use super::{exit, fail, open};

/// `reminderd reply`'s arguments.
#[derive(Debug, Args)]
pub(super) struct ReplyArgs {
    /// The patient's id from the clinic's schedule
    patient: String,
    /// What to send (free text, within 24 hours of the patient's last WhatsApp message)
    #[arg(required_unless_present = "call_us")]
    text: Option<String>,
    /// The clinic (its key in reminders.toml), when patients of several clinics share the id
    #[arg(long, value_name = "KEY")]
    clinic: Option<String>,
    /// The name the audit trail gives the sender [default: $USER]
    #[arg(long = "as", value_name = "NAME")]
    name: Option<String>,
    /// Send the configured "please call us" template instead ([conversations] call_us_template)
    #[arg(long, conflicts_with = "text")]
    call_us: bool,
}

/// Queues the answer; exit 65 when it cannot be sent (the reason printed), 66 for an unknown
/// patient.
pub(super) fn reply(config_path: &Path, db: Option<&Path>, args: &ReplyArgs) -> Result<u8> {
    let (config, mut store) = open(config_path, db)?;
    if let Some(clinic) = &args.clinic
        && config.clinic(clinic).is_none()
    {
        return Err(fail(exit::USAGE, config.unknown_clinic(clinic)));
    }
    let found = store.patients_by_external_id(args.clinic.as_deref(), &args.patient)?;
    let (patient, clinic_key) = match found.as_slice() {
        [] => {
            return Err(fail(
                exit::NO_INPUT,
                format!(
                    "no patient {:?}{}; the schedule's patient_id column names them",
                    args.patient,
                    args.clinic
                        .as_deref()
                        .map(|c| format!(" at clinic {c}"))
                        .unwrap_or_default()
                ),
            ));
        }
        [one] => one.clone(),
        many => {
            let clinics: Vec<&str> = many.iter().map(|(_, c)| c.as_str()).collect();
            return Err(fail(
                exit::USAGE,
                format!(
                    "patient {:?} is at several clinics ({}); say which with --clinic",
                    args.patient,
                    clinics.join(", ")
                ),
            ));
        }
    };
    let text = args.text.as_deref().map(str::trim).unwrap_or_default();
    let what = if args.call_us {
        match &config.conversations.call_us_template {
            Some(key) => StaffSend::Template(key),
            None => {
                return Err(fail(
                    exit::DATA,
                    "no \"please call us\" template is configured: set [conversations] call_us_template in reminders.toml".to_string(),
                ));
            }
        }
    } else if text.is_empty() {
        return Err(fail(exit::DATA, "the text is empty".to_string()));
    } else if text.chars().count() > 4096 {
        return Err(fail(
            exit::DATA,
            "the text is longer than the 4096 characters WhatsApp takes".to_string(),
        ));
    } else {
        StaffSend::Text(text)
    };
    let actor = match &args.name {
        Some(name) => format!("admin:{name}"),
        None => super::admin_actor(),
    };
    // A run is a form of its own: a fresh nonce, so running it again sends again.
    let nonce = reminderd::desk::auth::new_token();
    let now = Clock::System.now();
    let sent = store.queue_staff_message(
        &StaffMessage {
            patient,
            nonce: &nonce,
            what,
            actor: &actor,
            overridden: None,
        },
        now,
    )?;
    let id = match sent {
        StaffSent::Queued(id) | StaffSent::Again(id) => id,
        StaffSent::Refused(why) => return Err(refused(why, &args.patient, &config, &clinic_key)),
    };
    println!(
        "message {id} to patient {} ({clinic_key}) queued: it goes with the next send (the running daemon's, or `reminderd send`)",
        args.patient
    );
    Ok(exit::OK)
}

/// The refusal as an error with its exit code.
fn refused(
    why: StaffRefusal,
    patient: &str,
    config: &reminderd::config::Config,
    clinic: &str,
) -> anyhow::Error {
    let zone = config.clinic(clinic).map(|c| c.time_zone);
    match why {
        StaffRefusal::NoPatient => fail(exit::NO_INPUT, format!("no patient {patient:?}")),
        StaffRefusal::WindowClosed(closed) => fail(
            exit::DATA,
            format!(
                "not sent: WhatsApp allows free text only within 24 hours of the patient's last message, and {}; send the approved template with --call-us instead",
                match (closed, zone) {
                    (Some(t), Some(z)) => format!(
                        "that window closed at {}",
                        t.with_timezone(&z).format("%a %d %b %H:%M %Z")
                    ),
                    (Some(t), None) => format!("that window closed at {}", t.to_rfc3339()),
                    (None, _) => "this patient has never written".to_string(),
                }
            ),
        ),
        StaffRefusal::OptedOut => fail(
            exit::DATA,
            "not sent: the patient opted out of WhatsApp messages (STOP); call them".to_string(),
        ),
        StaffRefusal::NoAppointment => fail(
            exit::DATA,
            "not sent: the patient has no appointment stored to tie the message to".to_string(),
        ),
        StaffRefusal::OtherPatient => fail(
            exit::DATA,
            "not sent: this message's id was already used for another patient".to_string(),
        ),
    }
}
