//! `reminderd remind`: one appointment's reminder on demand, as the desk's "Remind now" sends
//! it (each run is one press), for administrators.

use std::path::Path;

use anyhow::Result;

use reminderd::plan;
use reminderd::store::{Press, Pressed};
use reminderd::time::Clock;

use super::output::{print_json, rfc3339};
use super::{RemindArgs, exit, fail, open};

pub(super) fn remind(config_path: &Path, db: Option<&Path>, args: &RemindArgs) -> Result<u8> {
    let (config, mut store) = open(config_path, db)?;
    let clinic = config
        .clinic(&args.clinic)
        .ok_or_else(|| fail(exit::USAGE, config.unknown_clinic(&args.clinic)))?
        .clone();
    let now = Clock::from_option(args.now).now();
    let actor = super::admin_actor();
    // A run is a press of its own: a fresh nonce, so running it again sends again.
    let nonce = reminderd::desk::auth::new_token();
    let pressed = store.press_remind(
        &clinic.key,
        Press::One(&args.appointment),
        &nonce,
        &actor,
        now,
        |c| plan::manual(&config, c, now),
    )?;
    let Some((target, pressed)) = pressed.into_iter().next() else {
        return Err(fail(
            exit::DATA,
            format!(
                "no appointment {:?} at clinic {}; `reminderd appointments --clinic {}` lists the ids",
                args.appointment, clinic.key, clinic.key
            ),
        ));
    };
    let (id, send_at) = match pressed {
        Pressed::Queued(id, at) | Pressed::Again(id, at) => (id, at),
        Pressed::Refused(why) => return Err(fail(exit::DATA, why.sentence(&clinic))),
    };
    let waits = send_at > now;
    if args.json {
        print_json(&serde_json::json!({
            "outbox": id,
            "clinic": clinic.key,
            "appointment": target.appointment_id,
            "starts_at": rfc3339(target.candidate.starts_at),
            "send_at": rfc3339(send_at),
            "waits_for_quiet_hours": waits,
        }))?;
    } else {
        let starts = target
            .candidate
            .starts_at
            .with_timezone(&clinic.time_zone)
            .format("%a %d %b %H:%M %Z");
        let when = if waits {
            format!(
                "it waits for the end of quiet hours at the clinic and goes at {}",
                plan::clock_time(send_at, &clinic)
            )
        } else {
            "it goes with the next send (the running daemon's, or `reminderd send`)".to_string()
        };
        println!(
            "reminder {id} for {} ({}/{}, {starts}) asked for: {when}",
            target.patient_name, clinic.key, target.appointment_id
        );
    }
    Ok(exit::OK)
}
