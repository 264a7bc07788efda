//! An `Appointment` with its `Patient` (and `Location`) → the normalised record an upload's
//! row is (pure: no I/O, no clock). Whatever cannot be applied as it stands is a [`Refusal`]
//! worded for staff, naming the patient and the field.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::types::{Appointment, Location, Patient, Reference};
use crate::config::{Clinic, Config, Feed};
use crate::feeds::{Reading, Refusal};
use crate::import::{ImportRow, Reach, RowStatus};
use crate::phone::{E164, explain};

/// What an `Appointment` search entry points at, found among the includes (or read alone).
#[derive(Debug, Clone, Copy, Default)]
pub struct Related<'a> {
    /// The patient participant's resource.
    pub patient: Option<&'a Patient>,
    /// The location participant's resource.
    pub location: Option<&'a Location>,
}

/// The record an appointment says, or why it cannot be applied.
pub fn read_appointment(
    config: &Config,
    feed: &Feed,
    appt: &Appointment,
    related: Related<'_>,
) -> Result<Reading, Refusal> {
    let id = appt
        .id
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Refusal::error("an Appointment without an id cannot be followed"))?;
    let refuse = |reason: String| Refusal::Error {
        reason,
        external_id: Some(id.clone()),
    };
    let status = match appt.status.as_str() {
        "booked" | "pending" | "arrived" | "checked-in" => RowStatus::Booked,
        "cancelled" => RowStatus::Cancelled,
        "entered-in-error" => RowStatus::Deleted,
        "noshow" => RowStatus::NoShow,
        "fulfilled" => RowStatus::Completed,
        "proposed" | "waitlist" => {
            return Err(refuse(format!(
                "Appointment/{id} is {}, not booked: nobody is reminded of it until the practice system books it",
                appt.status
            )));
        }
        other => {
            return Err(refuse(format!(
                "Appointment/{id} has status {other:?}, which is not an R4 appointment status"
            )));
        }
    };

    // The clinic: the Location participant's id (or the included Location's name), else the
    // feed's clinic.
    let location_id = appt
        .actor(&["Location"])
        .and_then(Reference::target)
        .map(|(_, id)| id);
    let location_name = related.location.and_then(|l| l.name.as_deref());
    let clinic_key = location_id
        .and_then(|l| feed.locations.get(l.trim()))
        .or_else(|| location_name.and_then(|n| feed.locations.get(n.trim())))
        .map(String::as_str)
        .or(feed.clinic.as_deref());
    let Some(clinic_key) = clinic_key else {
        return Err(refuse(format!(
            "Appointment/{id} is at {}, which is not one of this feed's locations, and the feed names no clinic of its own; add it to [feeds.{}.locations]",
            location_id.map_or_else(|| "no location".to_string(), |l| format!("Location/{l}")),
            feed.name
        )));
    };
    let Some(clinic) = config.clinics.get(clinic_key) else {
        return Err(refuse(format!(
            "the clinic {clinic_key:?} of Appointment/{id} is not configured"
        )));
    };

    let Some((_, patient_ref)) = appt.actor(&["Patient"]).and_then(Reference::target) else {
        return Err(refuse(format!(
            "Appointment/{id} has no Patient participant: nobody to remind"
        )));
    };
    let Some(patient) = related.patient else {
        return Err(refuse(format!(
            "the server did not return Patient/{patient_ref} of Appointment/{id}"
        )));
    };
    let name = patient_name(patient);
    let who = match &name {
        Some(n) => format!("{n} (Patient/{patient_ref})"),
        None => format!("Patient/{patient_ref}"),
    };
    // A patient recorded as deceased is never reminded: their appointment is cancelled by the
    // source (one booked before stops its reminders), not refused and left booked.
    let deceased = patient.deceased_boolean == Some(true) || patient.deceased_date_time.is_some();
    let status = if deceased && status == RowStatus::Booked {
        RowStatus::Cancelled
    } else {
        status
    };
    let Some(name) = name else {
        return Err(refuse(format!(
            "Patient/{patient_ref} has no name (Patient.name): add it in the practice system"
        )));
    };
    let Some(raw_phone) = mobile(patient) else {
        return Err(refuse(format!(
            "{who} has no mobile number (Patient.telecom with system phone or sms and use mobile): add it in the practice system"
        )));
    };
    let phone = E164::parse(raw_phone, clinic.phone_region).map_err(|e| {
        refuse(format!(
            "{who}'s mobile number (Patient.telecom) {raw_phone:?}: {}",
            explain(raw_phone, clinic.phone_region, &e)
        ))
    })?;
    let language = language(patient).unwrap_or_else(|| clinic.default_language.clone());

    let Some(start) = appt.start.as_deref() else {
        return Err(refuse(format!(
            "Appointment/{id} of {who} has no start time (Appointment.start)"
        )));
    };
    let starts_at = instant(start, clinic).ok_or_else(|| {
        refuse(format!(
            "Appointment/{id} of {who} has a start time that is not a date and time: {start:?}"
        ))
    })?;
    let duration_min = appt
        .end
        .as_deref()
        .and_then(|e| instant(e, clinic))
        .map(|end| (end - starts_at).num_minutes())
        .filter(|m| (1..=24 * 60).contains(m))
        .and_then(|m| u32::try_from(m).ok())
        .or(appt.minutes_duration.filter(|m| (1..=24 * 60).contains(m)))
        .unwrap_or(clinic.default_duration_min);
    let provider = appt
        .actor(&["Practitioner", "PractitionerRole", "Person"])
        .and_then(|a| a.display.clone())
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());

    let by_patient = status == RowStatus::Cancelled && !deceased && appt.cancelled_by_patient();
    let row = ImportRow {
        row: 1,
        clinic: clinic.key.clone(),
        appointment_id: id,
        patient_id: patient_ref.to_string(),
        patient_name: name,
        phone,
        language,
        starts_at,
        local_date: starts_at.with_timezone(&clinic.time_zone).date_naive(),
        duration_min,
        provider,
        status,
        reach: Reach::default(),
    };
    Ok(if by_patient {
        Reading::PatientCancelled(row)
    } else {
        Reading::Appointment(row)
    })
}

/// A free `Slot` (with its `Schedule`, whose actors name the practitioner and location) →
/// a slot the practice system opened, for the waitlist; or a refusal naming the field.
pub fn read_slot(
    config: &Config,
    feed: &Feed,
    slot: &serde_json::Value,
    schedule: Option<&serde_json::Value>,
) -> Result<Reading, Refusal> {
    let id = slot["id"].as_str().unwrap_or("?").to_string();
    let refuse = |reason: String| Refusal::Error {
        reason,
        external_id: Some(format!("Slot/{id}")),
    };
    let actors: Vec<Reference> = schedule
        .and_then(|s| s["actor"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|a| serde_json::from_value::<Reference>(a.clone()).ok())
        .collect();
    let of = |kinds: &[&str]| {
        actors
            .iter()
            .find(|r| r.target().is_some_and(|(k, _)| kinds.contains(&k)))
    };
    let location = of(&["Location"])
        .and_then(Reference::target)
        .map(|(_, l)| l.to_string());
    let clinic_key = location
        .as_deref()
        .and_then(|l| feed.locations.get(l.trim()))
        .or(feed.clinic.as_ref());
    let Some(clinic) = clinic_key.and_then(|k| config.clinics.get(k)) else {
        return Err(refuse(format!(
            "Slot/{id} is at {}, which is not one of this feed's locations, and the feed names no clinic of its own; add it to [feeds.{}.locations]",
            location
                .as_deref()
                .map_or_else(|| "no location".to_string(), |l| format!("Location/{l}")),
            feed.name
        )));
    };
    let time = |f: &str| slot[f].as_str().and_then(|t| instant(t, clinic));
    let (Some(starts_at), Some(ends_at)) = (time("start"), time("end")) else {
        return Err(refuse(format!(
            "Slot/{id} has no start or end (Slot.start, Slot.end) that is a date and time"
        )));
    };
    let Some(duration_min) = u32::try_from((ends_at - starts_at).num_minutes())
        .ok()
        .filter(|m| (1..=24 * 60).contains(m))
    else {
        return Err(refuse(format!(
            "Slot/{id} ends before it starts or lasts more than a day"
        )));
    };
    let provider = of(&["Practitioner", "PractitionerRole"])
        .and_then(|a| a.display.as_deref())
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    Ok(Reading::Slot(crate::feeds::Slot {
        clinic: clinic.key.clone(),
        opened: true,
        starts_at,
        duration_min,
        provider,
        location,
    }))
}

/// The patient's name: the official one, else the first; its text, else given and family.
pub fn patient_name(p: &Patient) -> Option<String> {
    let n = p
        .name
        .iter()
        .find(|n| n.use_.as_deref() == Some("official"))
        .or_else(|| p.name.iter().find(|n| n.use_.as_deref() != Some("old")))?;
    let text = n.text.clone().unwrap_or_else(|| {
        n.given
            .iter()
            .map(String::as_str)
            .chain(n.family.as_deref())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

/// The mobile number: `system` phone or sms, `use` mobile, the lowest `rank` (unranked last).
pub fn mobile(p: &Patient) -> Option<&str> {
    p.telecom
        .iter()
        .filter(|t| matches!(t.system.as_deref(), Some("phone" | "sms")))
        .filter(|t| t.use_.as_deref() == Some("mobile"))
        .filter_map(|t| Some((t.rank.unwrap_or(u32::MAX), t.value.as_deref()?.trim())))
        .filter(|(_, v)| !v.is_empty())
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, v)| v)
}

/// The preferred language (else the first one), as a template language code.
fn language(p: &Patient) -> Option<String> {
    let c = p
        .communication
        .iter()
        .find(|c| c.preferred == Some(true))
        .or_else(|| p.communication.first())?;
    c.language
        .coding
        .iter()
        .filter_map(|c| c.code.as_deref())
        .chain(c.language.text.as_deref())
        .find_map(crate::model::normalize_language)
}

/// An instant as FHIR writes it; a date-time without an offset (which R4 forbids for
/// `instant`, but exports still write) is read in the clinic's zone.
fn instant(s: &str, clinic: &Clinic) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|local| {
            crate::time::local_to_utc(clinic.time_zone, local.date(), local.time()).ok()
        })
}

#[cfg(test)]
mod tests;
