//! "Send a document" (`/desk/patients/{id}/documents`): staff choose a form, consent or
//! leaflet from the clinic's library and it goes to the patient on WhatsApp while their
//! 24-hour window is open.
//!
//! A send is counted once: the form carries a one-time nonce that becomes the outbox row's
//! rule (`staff:<nonce>`), so the same form sent again (a double click, Back and send again)
//! finds its row and adds nothing. The page is shown again after the POST (post/redirect/get).

use axum::extract::Path;

use super::{
    CsrfForm, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff, State,
    StatusCode, html, views,
};
use crate::desk::views::{
    DocumentForm, DocumentNotice, DocumentsPage, OTHER_PATIENT, documents_page,
};
use crate::store::DocumentQueued;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct DocumentsQuery {
    /// Set after a send that made a new message.
    sent: Option<String>,
    /// Set after a form that had been sent before.
    again: Option<String>,
}

#[derive(Deserialize)]
pub(in crate::desk) struct DocumentPost {
    #[serde(default)]
    document: String,
    #[serde(default)]
    caption: String,
    #[serde(default)]
    nonce: String,
}

fn patient_id(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

fn no_such_patient(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such patient",
            "This patient is not in the schedule. Find them with the search box above.",
        ),
    )
        .into_response()
}

/// Shows the page for patient `id`, with `form` kept and `status` (an error's).
async fn show(
    state: &DeskState,
    staff: &Staff,
    id: i64,
    notice: Option<DocumentNotice>,
    form: &DocumentForm,
    status: StatusCode,
) -> Result<Response, Response> {
    let now = state.clock.now();
    let config = state.config();
    let (target, sent) = state
        .db(move |s| Ok((s.document_target(id)?, s.documents_sent(id)?)))
        .await?;
    let Some(target) = target else {
        return Err(no_such_patient(staff));
    };
    let Some(clinic) = config.clinic(&target.clinic) else {
        return Err(no_such_patient(staff));
    };
    let nonce = crate::desk::auth::new_token();
    let page = documents_page(
        &staff.session,
        DocumentsPage {
            clinic,
            target: &target,
            library: &config.documents,
            sent: &sent,
            now,
            nonce: &nonce,
            notice,
        },
        form,
    );
    Ok((status, html(page)).into_response())
}

/// `GET /desk/patients/{id}/documents`.
pub(in crate::desk) async fn documents(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<DocumentsQuery>,
) -> Result<Response, Response> {
    let Some(id) = patient_id(&id) else {
        return Err(no_such_patient(&staff));
    };
    let notice = match (q.sent, q.again) {
        (_, Some(_)) => Some(DocumentNotice::Again),
        (Some(_), None) => Some(DocumentNotice::Sent),
        (None, None) => None,
    };
    show(
        &state,
        &staff,
        id,
        notice,
        &DocumentForm::default(),
        StatusCode::OK,
    )
    .await
}

/// `POST /desk/patients/{id}/documents`: queues the chosen document, once per form.
pub(in crate::desk) async fn send_document(
    State(state): State<DeskState>,
    Path(id): Path<String>,
    CsrfForm(staff, f): CsrfForm<DocumentPost>,
) -> Result<Response, Response> {
    let Some(id) = patient_id(&id) else {
        return Err(no_such_patient(&staff));
    };
    let config = state.config();
    let caption = f.caption.trim().to_string();
    let problem = if !config.documents.contains_key(&f.document) {
        Some("Choose one of the documents in the list.".to_string())
    } else if caption.chars().count() > views::CAPTION_CHARS {
        Some(format!(
            "The note is {} characters long; WhatsApp shows at most {}. Shorten it.",
            caption.chars().count(),
            views::CAPTION_CHARS
        ))
    } else if !crate::desk::auth::is_token(&f.nonce) {
        Some("This form is out of date. Choose the document again and send it.".to_string())
    } else {
        None
    };
    let mut form = DocumentForm {
        document: f.document.clone(),
        caption: caption.clone(),
        problem,
    };
    if form.problem.is_some() {
        return show(&state, &staff, id, None, &form, StatusCode::BAD_REQUEST).await;
    }
    let (now, actor) = (state.clock.now(), staff.actor());
    let (key, nonce) = (f.document, f.nonce);
    let queued = state
        .db(move |s| {
            s.queue_document(
                id,
                &key,
                Some(caption.as_str()).filter(|c| !c.is_empty()),
                &nonce,
                &actor,
                now,
            )
        })
        .await?;
    let to = format!("/desk/patients/{id}/documents");
    match queued {
        DocumentQueued::New(row) => {
            tracing::info!(user = %staff.session.user, patient = id, outbox = row, "desk: document queued");
            Ok(Redirect::to(&format!("{to}?sent={row}")).into_response())
        }
        DocumentQueued::Again(row) => {
            Ok(Redirect::to(&format!("{to}?again={row}")).into_response())
        }
        DocumentQueued::NoPatient => Err(no_such_patient(&staff)),
        DocumentQueued::OtherPatient => {
            form.problem = Some(OTHER_PATIENT.into());
            show(&state, &staff, id, None, &form, StatusCode::CONFLICT).await
        }
        DocumentQueued::WindowClosed | DocumentQueued::OptedOut => {
            // The page says why; what was chosen is kept should the window open again.
            form.problem = None;
            show(&state, &staff, id, None, &form, StatusCode::CONFLICT).await
        }
    }
}
