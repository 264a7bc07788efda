//! Finding a patient, the patient's page with its audited reveal, and the week view.

use super::REVEAL_SHOWN;
use chrono::{Datelike, Days, NaiveDate};

use super::{
    CsrfForm, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff, State,
    StatusCode, bad_date, html, local_day_bounds, page_day, views,
};

/// Most patients a search lists.
const SEARCH_LIMIT: usize = 50;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub(in crate::desk) async fn patients(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<SearchQuery>,
) -> Result<Response, Response> {
    let now = state.clock.now();
    let text: String = q.q.chars().take(100).collect();
    let query = text.clone();
    let found = state
        .db(move |s| s.find_patients(&query, now, SEARCH_LIMIT))
        .await?;
    Ok(html(views::search_page(
        &staff.session,
        &state.config(),
        &text,
        &found,
        now,
    )))
}

/// `id` (the patient's row) or `appointment` (one of theirs, as the day board links it), and
/// `shown`, the reveal that shows the whole number. Numbers are read by hand so that a
/// mistyped link gets the desk's page, not a bare 400.
#[derive(Deserialize, Default)]
pub(in crate::desk) struct PatientQuery {
    id: Option<String>,
    appointment: Option<String>,
    shown: Option<String>,
}

fn number(text: Option<&str>) -> Option<i64> {
    text.and_then(|t| t.trim().parse().ok())
}

pub(in crate::desk) async fn patient(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<PatientQuery>,
) -> Result<Response, Response> {
    let now = state.clock.now();
    let (id, appointment) = (number(q.id.as_deref()), number(q.appointment.as_deref()));
    let shown = number(q.shown.as_deref());
    let actor = staff.actor();
    let found = state
        .db(move |s| {
            let id = match (id, appointment) {
                (Some(id), _) => Some(id),
                (None, Some(a)) => s.patient_of_appointment(a)?,
                (None, None) => None,
            };
            let Some(file) = id.map(|id| s.patient_file(id)).transpose()?.flatten() else {
                return Ok(None);
            };
            let channels = s.patient_channels(file.id)?.unwrap_or_default();
            let erased_at = s.patient_ref(file.id)?.and_then(|p| p.erased_at);
            let consents = s.consents(file.id)?;
            let revealed = match shown {
                Some(r) if s.was_revealed(file.id, r, &actor, now - REVEAL_SHOWN)? => Some(r),
                _ => None,
            };
            Ok(Some((file, channels, revealed, erased_at, consents)))
        })
        .await?;
    let Some((file, channels, revealed, erased_at, consents)) = found else {
        return Err(no_such_patient(&staff));
    };
    let config = state.config();
    let Some(clinic) = config.clinic(&file.clinic) else {
        return Err(html(views::message(
            Some(&staff.session),
            "Clinic no longer configured",
            "This patient belongs to a clinic the configuration no longer lists, so the desk cannot show the clinic's times. Ask the administrator.",
        )));
    };
    Ok(html(views::patient_page(
        &staff.session,
        (&config, clinic),
        &file,
        &channels,
        revealed,
        (erased_at, &consents),
        now,
    )))
}

fn no_such_patient(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such patient",
            "That patient is not stored (the link may be old). Find the patient by name, phone or appointment id in the search box above.",
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(in crate::desk) struct RevealPatientForm {
    patient: i64,
}

/// Shows a patient's whole number: audits the reveal, then sends the browser back to the
/// page with the reveal in the link (post/redirect/get).
pub(in crate::desk) async fn reveal_patient(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<RevealPatientForm>,
) -> Result<Response, Response> {
    let (actor, now) = (staff.actor(), state.clock.now());
    let audited = state
        .db(move |s| s.reveal_patient_phone(f.patient, &actor, now))
        .await?;
    let Some(reveal) = audited else {
        return Err(no_such_patient(&staff));
    };
    tracing::info!(user = %staff.session.user, patient = f.patient, "desk: phone number revealed");
    Ok(Redirect::to(&format!(
        "/desk/patient?id={}&shown={reveal}#phone",
        f.patient
    ))
    .into_response())
}

#[derive(Deserialize)]
pub(in crate::desk) struct PatientForm {
    patient: i64,
    /// Erase despite upcoming appointments (the confirm page's box).
    #[serde(default)]
    force: Option<String>,
}

/// Export data (administrators): everything stored about the patient as a JSON download,
/// audited by the store in the same transaction as it is read.
pub(in crate::desk) async fn export_patient(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<PatientForm>,
) -> Result<Response, Response> {
    staff.require_admin()?;
    let (actor, now) = (staff.actor(), state.clock.now());
    let exported = state
        .db(move |s| {
            let Some(p) = s.patient_ref(f.patient)? else {
                return Ok(None);
            };
            s.export_patient(p.id, &actor, now)
                .map(|doc| Some((p, doc)))
        })
        .await?;
    let Some((p, doc)) = exported else {
        return Err(no_such_patient(&staff));
    };
    tracing::info!(user = %staff.session.user, patient = p.id, "desk: patient data exported");
    let name: String = format!("patient-{}-{}.json", p.clinic, p.external_id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let body = serde_json::to_string_pretty(&doc).unwrap_or_default();
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The page that asks before erasing (administrators).
pub(in crate::desk) async fn erase_page(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<PatientQuery>,
) -> Result<Response, Response> {
    staff.require_admin()?;
    let now = state.clock.now();
    let Some(id) = number(q.id.as_deref()) else {
        return Err(no_such_patient(&staff));
    };
    let found = state
        .db(move |s| {
            let Some(p) = s.patient_ref(id)? else {
                return Ok(None);
            };
            let name = s.patient_file(id)?.map(|f| f.name).unwrap_or_default();
            Ok(Some((p, name, s.upcoming_appointments(id, now)?)))
        })
        .await?;
    let Some((p, name, upcoming)) = found else {
        return Err(no_such_patient(&staff));
    };
    if p.erased_at.is_some() {
        return Ok(Redirect::to(&format!("/desk/patient?id={id}#erased")).into_response());
    }
    let config = state.config();
    let Some(clinic) = config.clinic(&p.clinic) else {
        return Err(no_such_patient(&staff));
    };
    Ok(html(views::erase_confirm(
        &staff.session,
        clinic,
        &views::EraseAsk {
            patient: id,
            name: &name,
            external_id: &p.external_id,
            upcoming,
        },
    )))
}

/// Erases the patient's personal data (administrators), then back to their page, which says
/// it happened.
pub(in crate::desk) async fn erase_patient(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<PatientForm>,
) -> Result<Response, Response> {
    staff.require_admin()?;
    let (actor, now) = (staff.actor(), state.clock.now());
    let force = f.force.is_some();
    let id = f.patient;
    let result = state
        .db(move |s| match s.erase_patient(id, &actor, force, now) {
            Ok(_) => Ok(Ok(())),
            Err(crate::store::StoreError::NotFound(_)) => Ok(Err(None)),
            Err(crate::store::StoreError::Refused(why)) => Ok(Err(Some(why))),
            Err(e) => Err(e),
        })
        .await?;
    match result {
        Ok(()) => {
            tracing::info!(user = %staff.session.user, patient = id, forced = force, "desk: patient data erased");
            Ok(Redirect::to(&format!("/desk/patient?id={id}#erased")).into_response())
        }
        Err(None) => Err(no_such_patient(&staff)),
        Err(Some(why)) => {
            let mut text = why;
            if let Some(first) = text.get(..1) {
                text = first.to_uppercase() + &text[1..];
            }
            Err((
                StatusCode::CONFLICT,
                views::message(
                    Some(&staff.session),
                    "The data was not erased",
                    &format!("{text}."),
                ),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub(in crate::desk) struct ConsentForm {
    patient: i64,
    /// 'whatsapp' or 'sms'.
    channel: String,
    /// 'agreed' or 'withdrawn'.
    answer: String,
}

/// Records what the patient told staff about messages on one channel (any staff, audited):
/// withdrawn stops them as a STOP reply does, agreed starts them again; then back to the
/// patient's page.
pub(in crate::desk) async fn record_consent(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<ConsentForm>,
) -> Result<Response, Response> {
    let channel = crate::model::Channel::parse(f.channel.trim()).ok();
    let given = match f.answer.trim() {
        "agreed" => Some(true),
        "withdrawn" => Some(false),
        _ => None,
    };
    let (Some(channel), Some(given)) = (channel, given) else {
        return Err((
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "Nothing was recorded",
                "Choose WhatsApp or SMS, and whether the patient agreed or withdrew, on the patient's page.",
            ),
        )
            .into_response());
    };
    let (actor, now, id) = (staff.actor(), state.clock.now(), f.patient);
    let recorded = state
        .db(move |s| s.record_consent(id, channel, given, &actor, now))
        .await?;
    if !recorded {
        return Err(no_such_patient(&staff));
    }
    tracing::info!(user = %staff.session.user, patient = id, channel = %channel, given, "desk: consent recorded");
    Ok(Redirect::to(&format!("/desk/patient?id={id}#consent")).into_response())
}

#[derive(Deserialize, Default)]
pub(in crate::desk) struct WeekQuery {
    clinic: Option<String>,
    week: Option<String>,
}

/// The Monday that starts `day`'s week.
fn monday_of(day: NaiveDate) -> NaiveDate {
    day.checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday())))
        .unwrap_or(day)
}

pub(in crate::desk) async fn week(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<WeekQuery>,
) -> Result<Response, Response> {
    let (config, clinic, today) = page_day(&state, &staff, q.clinic.as_deref(), None)?;
    let day = match super::parse_day(q.week.as_deref()) {
        Ok(day) => day.unwrap_or(today),
        Err(why) => return Err(bad_date(&staff, &why)),
    };
    let monday = monday_of(day);
    let sunday = monday.checked_add_days(Days::new(6)).unwrap_or(monday);
    let (from, to) = (
        local_day_bounds(clinic.time_zone, monday).0,
        local_day_bounds(clinic.time_zone, sunday).1,
    );
    let key = clinic.key.clone();
    let rows = state.db(move |s| s.week(&key, from, to)).await?;
    Ok(html(views::week_page(
        &staff.session,
        &config,
        &clinic,
        monday,
        &rows,
        today,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).expect("date");
        for d in 23..=29 {
            assert_eq!(monday_of(day(d)), day(23), "{d} November");
        }
        assert_eq!(monday_of(day(30)), day(30));
    }
}
