//! A patient's conversation: reading it, answering inside the 24-hour window, the "please call
//! us" template outside it, the warning before sending what looks like a result or diagnosis,
//! and the Guidelines page.
//!
//! An answer is counted once: every form carries a one-time nonce that becomes the outbox
//! row's rule (`staff:<nonce>`), so the same form sent again finds its row and adds nothing.

use axum::extract::Path;

use super::{
    CsrfForm, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff, State,
    StatusCode, html, views,
};
use crate::store::{Conversation, StaffMessage, StaffSend, StaffSent};
use views::ConversationNotice;

/// The most characters of text WhatsApp takes in one message.
const MAX_TEXT: usize = 4096;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct ConversationQuery {
    /// Set after a message was queued; `again` when the form had been received before.
    sent: Option<String>,
    again: Option<String>,
}

/// The patient's row id from the path, or the desk's "no such patient" page.
fn patient_id(staff: &Staff, id: &str) -> Result<i64, Response> {
    id.trim().parse().map_err(|_| no_such_patient(staff))
}

/// `GET /desk/patients/{id}/conversation`.
pub(in crate::desk) async fn conversation(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<ConversationQuery>,
) -> Result<Response, Response> {
    let id = patient_id(&staff, &id)?;
    let (c, now) = read(&state, &staff, id).await?;
    let notice = q.sent.map(|_| ConversationNotice::Sent {
        again: q.again.is_some(),
    });
    show(&state, &staff, &c, now, notice, StatusCode::OK)
}

async fn read(
    state: &DeskState,
    staff: &Staff,
    id: i64,
) -> Result<(Conversation, chrono::DateTime<chrono::Utc>), Response> {
    let now = state.clock.now();
    match state.db(move |s| s.conversation(id, now)).await? {
        Some(c) => Ok((c, now)),
        None => Err(no_such_patient(staff)),
    }
}

fn show(
    state: &DeskState,
    staff: &Staff,
    c: &Conversation,
    now: chrono::DateTime<chrono::Utc>,
    notice: Option<ConversationNotice<'_>>,
    status: StatusCode,
) -> Result<Response, Response> {
    let config = state.config();
    let Some(clinic) = config.clinic(&c.patient.clinic) else {
        return Err(html(views::message(
            Some(&staff.session),
            "Clinic no longer configured",
            "This patient belongs to a clinic the configuration no longer lists, so the desk cannot show the clinic's times. Ask the administrator.",
        )));
    };
    let page = views::conversation_page(
        &staff.session,
        &config,
        clinic,
        c,
        now,
        &crate::desk::auth::new_token(),
        notice,
    );
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub(in crate::desk) struct AnswerForm {
    nonce: String,
    /// `send` (the text), `edit` (back from the warning) or `call_us` (the template).
    action: String,
    #[serde(default)]
    text: String,
    /// The sensitive phrase staff were warned about and chose to send anyway.
    #[serde(default, rename = "override")]
    overridden: String,
}

/// `POST /desk/patients/{id}/conversation`: an answer, the warning's choice, or the template.
pub(in crate::desk) async fn answer(
    State(state): State<DeskState>,
    Path(id): Path<String>,
    CsrfForm(staff, f): CsrfForm<AnswerForm>,
) -> Result<Response, Response> {
    let id = patient_id(&staff, &id)?;
    if !crate::desk::auth::is_token(&f.nonce) {
        return Err(out_of_date(&staff));
    }
    let config = state.config();
    let text = f.text.trim().to_string();
    let what = match f.action.as_str() {
        "call_us" => match config.conversations.call_us_template.clone() {
            Some(key) if config.templates.contains_key(&key) => Err(key),
            _ => return Err(out_of_date(&staff)),
        },
        "send" | "edit" => Ok(text.clone()),
        _ => return Err(out_of_date(&staff)),
    };
    let (c, now) = read(&state, &staff, id).await?;
    if f.action == "edit" {
        // Back from the warning: the conversation again with the text kept; nothing is saved.
        return show(
            &state,
            &staff,
            &c,
            now,
            Some(ConversationNotice::Edit(&text)),
            StatusCode::OK,
        );
    }
    let mut overridden = None;
    if let Ok(text) = &what {
        if text.is_empty() {
            return show(
                &state,
                &staff,
                &c,
                now,
                Some(ConversationNotice::Empty),
                StatusCode::BAD_REQUEST,
            );
        }
        let n = text.chars().count();
        if n > MAX_TEXT {
            return show(
                &state,
                &staff,
                &c,
                now,
                Some(ConversationNotice::TooLong(n, text)),
                StatusCode::BAD_REQUEST,
            );
        }
        if let Some(pattern) = config.conversations.sensitive_match(text) {
            if f.overridden != pattern {
                let page = views::sensitive_confirm(&staff.session, &c, text, pattern, &f.nonce);
                return Ok(html(page));
            }
            overridden = Some(pattern.to_string());
        }
    }
    let (actor, nonce) = (staff.actor(), f.nonce.clone());
    let sent = state
        .db(move |s| {
            let send = match &what {
                Ok(text) => StaffSend::Text(text),
                Err(key) => StaffSend::Template(key),
            };
            s.queue_staff_message(
                &StaffMessage {
                    patient: id,
                    nonce: &nonce,
                    what: send,
                    actor: &actor,
                    overridden: overridden.as_deref(),
                },
                now,
            )
        })
        .await?;
    let again = match sent {
        StaffSent::Queued(_) => false,
        StaffSent::Again(_) => true,
        StaffSent::Refused(why) => {
            let notice = Some(ConversationNotice::Refused(why, &text));
            return show(&state, &staff, &c, now, notice, StatusCode::CONFLICT);
        }
    };
    tracing::info!(user = %staff.session.user, patient = id, template = f.action == "call_us", again, "desk: message to a patient queued");
    Ok(Redirect::to(&format!(
        "{}?sent=1{}#reply",
        views::conversation_path(id),
        if again { "&again=1" } else { "" }
    ))
    .into_response())
}

#[derive(Deserialize, Default)]
pub(in crate::desk) struct FromReply {
    reply: Option<String>,
}

/// `GET /desk/conversation?reply=ID`: the Replies page's "Open conversation", to the
/// conversation of the patient who wrote it.
pub(in crate::desk) async fn open_from_reply(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FromReply>,
) -> Result<Response, Response> {
    let Some(reply) = q.reply.and_then(|r| r.trim().parse::<i64>().ok()) else {
        return Err(no_such_patient(&staff));
    };
    match state.db(move |s| s.reply_patient(reply)).await? {
        Some(id) => Ok(Redirect::to(&views::conversation_path(id)).into_response()),
        None => Err(no_such_patient(&staff)),
    }
}

/// `GET /desk/guidelines`: the clinic's rules for messaging.
pub(in crate::desk) async fn guidelines(State(state): State<DeskState>, staff: Staff) -> Response {
    let config = state.config();
    html(views::guidelines_page(
        &staff.session,
        &config.conversations.guidelines,
    ))
}

fn no_such_patient(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such patient",
            "That patient is not stored, or the number that wrote belongs to no single patient (the link may be old). Find the patient by name, phone or appointment id in the search box above.",
        ),
    )
        .into_response()
}

fn out_of_date(staff: &Staff) -> Response {
    (
        StatusCode::BAD_REQUEST,
        views::message(
            Some(&staff.session),
            "This form is out of date",
            "Nothing was sent. Go back, reload the page and try again.",
        ),
    )
        .into_response()
}
