//! Follow-ups: everyone to call now, across clinics and the coming days; call outcomes; what
//! staff changed about an appointment; and the page shell's counts and holds.

use super::REVEAL_SHOWN;
use std::collections::HashMap;

use super::{
    CsrfForm, DayQuery, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff,
    StaffAction, State, StatusCode, StoreError, bad_date, html, not_on_page, parse_day, urlencode,
    views,
};

use crate::jobs::CallScope;
use crate::store::{CallOutcome, CallRecorded};
use views::{FollowUpCard, ListFilter};

/// Calls shown on a card, newest first.
const CALLS_SHOWN: usize = 5;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct FollowUpQuery {
    clinic: Option<String>,
    date: Option<String>,
    done: Option<String>,
    /// An appointment whose number was just revealed (shown only after an audited reveal).
    shown: Option<String>,
}

pub(in crate::desk) async fn follow_ups(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FollowUpQuery>,
) -> Result<Response, Response> {
    let filter = list_filter(&state, &staff, q.clinic.as_deref(), q.date.as_deref())?;
    let shown = q.shown.as_deref().and_then(|s| s.parse().ok());
    render(&state, &staff, &filter, shown, q.done.as_deref()).await
}

/// The list's filter from a query: an unknown or empty clinic is every clinic, an empty date
/// the coming days; an unreadable date is a 400 page.
fn list_filter(
    state: &DeskState,
    staff: &Staff,
    clinic: Option<&str>,
    date: Option<&str>,
) -> Result<ListFilter, Response> {
    let config = state.config();
    let day = parse_day(date).map_err(|why| bad_date(staff, &why))?;
    Ok(ListFilter {
        clinic: clinic
            .filter(|k| config.clinic(k).is_some())
            .map(str::to_string),
        day,
        days: state.desk().follow_up_days,
    })
}

/// Where a form sends staff back to: the list they were on, at the card they acted on.
fn back_to(filter: &ListFilter, done: &str, card: Option<i64>) -> String {
    let anchor = card.map(|id| format!("#f-{id}")).unwrap_or_default();
    format!(
        "/desk/follow-ups?{}&done={}{anchor}",
        filter.query(),
        urlencode(done)
    )
}

async fn render(
    state: &DeskState,
    staff: &Staff,
    filter: &ListFilter,
    shown: Option<i64>,
    done: Option<&str>,
) -> Result<Response, Response> {
    let config = state.config();
    let (now, actor) = (state.clock.now(), staff.actor());
    let (the_config, the_filter) = (std::sync::Arc::clone(&config), filter.clone());
    let (cards, practice, books) = state
        .db(move |s| {
            let practice =
                crate::jobs::practice_updates(s, &the_config, the_filter.clinic.as_deref())?;
            let books = s.book_tasks()?;
            let scope = CallScope {
                clinic: the_filter.clinic.as_deref(),
                day: the_filter.day,
                days: the_filter.days,
            };
            let list = crate::jobs::to_call(s, &the_config, now, scope)?;
            let ids: Vec<i64> = list.iter().map(|f| f.id).collect();
            let mut calls = s.calls(&ids, CALLS_SHOWN)?;
            let mut notes: HashMap<i64, Vec<crate::store::Note>> = HashMap::new();
            for n in s.notes(&ids)? {
                notes.entry(n.appointment).or_default().push(n);
            }
            let revealed = match shown.filter(|id| ids.contains(id)) {
                Some(id) if s.revealed_since(&actor, None, Some(id), now - REVEAL_SHOWN)? => {
                    Some(id)
                }
                _ => None,
            };
            let cards = list
                .into_iter()
                .map(|item| FollowUpCard {
                    calls: calls.remove(&item.id).unwrap_or_default(),
                    notes: notes.remove(&item.id).unwrap_or_default(),
                    revealed: revealed == Some(item.id),
                    item,
                })
                .collect::<Vec<_>>();
            Ok((cards, practice, books))
        })
        .await?;
    let done = done.and_then(|k| {
        views::call_notice(k)
            .or_else(|| views::practice_notice(k))
            .or_else(|| views::Notice::from_key(k).map(views::Notice::text))
    });
    Ok(html(views::follow_ups(
        &staff.session,
        &config,
        filter,
        &views::FollowUpLists {
            calls: &cards,
            practice: &practice,
            books: &books,
        },
        done,
        state.clock.now(),
    )))
}

/// A reveal on the follow-up list (the reveal form's `back=follow-ups`): audited when the
/// appointment is on the list asked for, then back to that list at its card, where the number
/// shows whole (post/redirect/get, so a refresh neither asks to resend nor audits again).
pub(super) async fn follow_ups_page(
    state: &DeskState,
    staff: &Staff,
    q: &DayQuery,
    revealed: Option<i64>,
    done: Option<&str>,
) -> Result<Response, Response> {
    let filter = list_filter(state, staff, q.clinic.as_deref(), q.date.as_deref())?;
    let Some(id) = revealed else {
        return render(state, staff, &filter, None, done).await;
    };
    let (config, now, actor) = (state.config(), state.clock.now(), staff.actor());
    let scope_filter = filter.clone();
    let on_list = state
        .db(move |s| {
            let scope = CallScope {
                clinic: scope_filter.clinic.as_deref(),
                day: scope_filter.day,
                days: scope_filter.days,
            };
            let on = crate::jobs::to_call(s, &config, now, scope)?
                .iter()
                .any(|f| f.id == id);
            // Only a reveal that shows a number is audited.
            if on {
                s.audit_staff(&actor, "reveal_phone", Some(id), None, None, now)?;
            }
            Ok(on)
        })
        .await?;
    if !on_list {
        return Err(not_on_page(staff));
    }
    tracing::info!(user = %staff.session.user, appointment = id, "desk: phone number revealed on follow-ups");
    Ok(Redirect::to(&format!(
        "/desk/follow-ups?{}&shown={id}#f-{id}",
        filter.query()
    ))
    .into_response())
}

#[derive(Deserialize)]
pub(in crate::desk) struct CallForm {
    appointment: i64,
    outcome: String,
    note: Option<String>,
    list_clinic: Option<String>,
    list_date: Option<String>,
}

/// Records a call's outcome from a follow-up card.
pub(in crate::desk) async fn record_call(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<CallForm>,
) -> Result<Response, Response> {
    let Some(outcome) = CallOutcome::parse(&f.outcome) else {
        return Err((
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "Unknown call outcome",
                "Press Reached, No answer or Left a message on the patient's card.",
            ),
        )
            .into_response());
    };
    let note = trimmed(f.note);
    let (now, actor, id) = (state.clock.now(), staff.actor(), f.appointment);
    let recorded = state
        .db(move |s| s.record_call(id, outcome, note.as_deref(), &actor, now))
        .await?;
    match recorded {
        CallRecorded::Saved(replies) => {
            tracing::info!(user = %staff.session.user, appointment = id, outcome = outcome.as_str(), replies_handled = replies, "desk: call recorded");
            let filter = back_filter(&state, f.list_clinic.as_deref(), f.list_date.as_deref());
            let done = format!("call_{}", outcome.as_str());
            Ok(Redirect::to(&back_to(&filter, &done, Some(id))).into_response())
        }
        CallRecorded::NoSuchAppointment => Err(no_such_appointment(&staff)),
    }
}

#[derive(Deserialize)]
pub(in crate::desk) struct PracticeForm {
    update: i64,
    list_clinic: Option<String>,
    list_date: Option<String>,
}

/// "Done in the practice system": staff made the change by hand; settled and audited, then
/// back to the list (a second press, or one after a colleague's, says it was already done).
pub(in crate::desk) async fn practice_done(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<PracticeForm>,
) -> Result<Response, Response> {
    let (now, actor, id) = (state.clock.now(), staff.actor(), f.update);
    let settled = state
        .db(move |s| s.settle_source_update(id, &actor, now))
        .await?;
    tracing::info!(user = %staff.session.user, update = id, settled, "desk: practice system updated by hand");
    let filter = back_filter(&state, f.list_clinic.as_deref(), f.list_date.as_deref());
    let done = if settled {
        "practice_done"
    } else {
        "practice_already"
    };
    Ok(Redirect::to(&back_to(&filter, done, None)).into_response())
}

/// The list a form came from; whatever cannot be read is "every clinic, the coming days".
fn back_filter(state: &DeskState, clinic: Option<&str>, date: Option<&str>) -> ListFilter {
    let config = state.config();
    ListFilter {
        clinic: clinic
            .filter(|k| config.clinic(k).is_some())
            .map(str::to_string),
        day: parse_day(date).ok().flatten(),
        days: state.desk().follow_up_days,
    }
}

fn trimmed(note: Option<String>) -> Option<String> {
    note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

fn no_such_appointment(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such appointment",
            "Reload the list and try again.",
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(in crate::desk) struct ActionForm {
    clinic: String,
    appointment: String,
    date: Option<String>,
    action: String,
    note: Option<String>,
    /// The list the form is on (absent: the clinic and day of the appointment).
    list_clinic: Option<String>,
    list_date: Option<String>,
    /// "yes" once the question before a cancel or no-show was answered.
    sure: Option<String>,
}

pub(in crate::desk) async fn follow_up_action(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<ActionForm>,
) -> Result<Response, Response> {
    let note = trimmed(f.note.clone());
    let Some(action) = StaffAction::parse(&f.action)
        .ok()
        .filter(|a| StaffAction::ON_THE_DESK.contains(a))
    else {
        return Err((
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "Unknown action",
                "Choose one of the actions in the list.",
            ),
        )
            .into_response());
    };
    if action == StaffAction::Note && note.is_none() {
        return Err((
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "The note is empty",
                "Write the note in the box, then press Save.",
            ),
        )
            .into_response());
    }
    // A cancel or no-show from a card is asked about first, as on the day board: one wrong
    // pick in the list must not cancel a patient's appointment.
    // The question is a page of its own (GET), so that Back and Refresh show it again.
    if matches!(action, StaffAction::Cancelled | StaffAction::NoShow)
        && f.sure.as_deref() != Some("yes")
    {
        let query = question_fields(&f)
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        return Ok(Redirect::to(&format!("/desk/follow-ups/confirm?{query}")).into_response());
    }
    let now = state.clock.now();
    let actor = staff.actor();
    let (clinic, appointment) = (f.clinic.clone(), f.appointment.clone());
    let done = state
        .db(move |s| {
            match s.set_status(
                Some(&clinic),
                &appointment,
                action,
                note.as_deref(),
                &actor,
                now,
            ) {
                Ok(_) => {
                    // A status set at the desk answers whatever the patient wrote about it:
                    // the reply leaves Replies too.
                    if action.changes_status() {
                        s.settle_replies(&clinic, &appointment, &actor, note.as_deref(), now)?;
                    }
                    Ok(true)
                }
                Err(StoreError::NotFound(_) | StoreError::Ambiguous(_)) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await?;
    if !done {
        return Err(no_such_appointment(&staff));
    }
    tracing::info!(user = %staff.session.user, clinic = %f.clinic, appointment = %f.appointment, action = %f.action, "desk: follow-up action");
    // The notice is a key the page maps to a fixed text, never text from the URL.
    let filter = match (&f.list_clinic, &f.list_date) {
        (None, None) => back_filter(&state, Some(&f.clinic), f.date.as_deref()),
        (clinic, date) => back_filter(&state, clinic.as_deref(), date.as_deref()),
    };
    Ok(Redirect::to(&back_to(&filter, &f.action, None)).into_response())
}

/// The card's fields, carried to the question and from it to the answer.
fn question_fields(f: &ActionForm) -> [(&'static str, &str); 7] {
    [
        ("clinic", f.clinic.as_str()),
        ("appointment", f.appointment.as_str()),
        ("date", f.date.as_deref().unwrap_or_default()),
        ("action", f.action.as_str()),
        ("note", f.note.as_deref().unwrap_or_default()),
        ("list_clinic", f.list_clinic.as_deref().unwrap_or_default()),
        ("list_date", f.list_date.as_deref().unwrap_or_default()),
    ]
}

/// `GET /desk/follow-ups/confirm`: "Cancel the appointment?" or "Set no-show?" for a card's
/// choice, with what was typed; answering it posts the card's form again, marked sure.
pub(in crate::desk) async fn follow_up_question(
    staff: Staff,
    Query(f): Query<ActionForm>,
) -> Result<Response, Response> {
    let no_show = match StaffAction::parse(&f.action) {
        Ok(StaffAction::NoShow) => true,
        Ok(StaffAction::Cancelled) => false,
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                views::message(
                    Some(&staff.session),
                    "Unknown action",
                    "Choose one of the actions in the list.",
                ),
            )
                .into_response());
        }
    };
    let mut fields = question_fields(&f).to_vec();
    fields.push(("sure", "yes"));
    Ok(html(views::confirm_change(
        &staff.session,
        no_show,
        &fields,
    )))
}
