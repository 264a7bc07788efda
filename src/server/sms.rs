//! The SMS providers' webhooks, beside Meta's on the public port: Twilio's status callbacks
//! and inbound texts (verified with `X-Twilio-Signature` over the configured public URL) and
//! MSG91's delivery reports (MSG91 signs nothing, so its URL carries a secret token). Nothing
//! unverified is stored.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret as _, SecretString};

use super::AppState;
use crate::jobs;

/// The secrets the SMS webhooks are checked with (`None`: that provider is not configured,
/// and its webhook answers 404).
#[derive(Clone, Default)]
pub struct SmsSecrets {
    /// Twilio's auth token, the key of `X-Twilio-Signature`.
    pub twilio_auth_token: Option<Arc<SecretString>>,
    /// The token MSG91's report URL carries.
    pub msg91_webhook_token: Option<Arc<SecretString>>,
}

impl SmsSecrets {
    /// The secrets of the providers `config` names, through `secret`: a configured provider
    /// without its secret is an error, so a server never runs with a webhook it cannot check.
    pub fn new(
        config: &crate::config::Config,
        secret: impl Fn(crate::secrets::Secret) -> Result<SecretString, String>,
    ) -> Result<Self, String> {
        let mut out = Self::default();
        let Some(sms) = &config.sms else {
            return Ok(out);
        };
        if sms.twilio.is_some() {
            out.twilio_auth_token = Some(Arc::new(secret(crate::secrets::TWILIO_AUTH_TOKEN)?));
        }
        if sms.msg91.is_some() {
            out.msg91_webhook_token = Some(Arc::new(secret(crate::secrets::MSG91_WEBHOOK_TOKEN)?));
        }
        Ok(out)
    }
}

/// What the webhook answers a text with: an empty TwiML document, so Twilio replies nothing
/// (acknowledgements, when configured, go through the outbox like every message).
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

/// The form fields of a body, in order.
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Checks a Twilio request's signature against the URL Twilio called (the configured public
/// URL plus this request's path and query) and its form fields; `Err` is the answer.
fn twilio_verified(
    state: &AppState,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<(), Box<Response>> {
    let config = state.config();
    let (Some(twilio), Some(token)) = (
        config.sms.as_ref().and_then(|s| s.twilio.as_ref()),
        state.sms.twilio_auth_token.as_ref(),
    ) else {
        return Err(Box::new(StatusCode::NOT_FOUND.into_response()));
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    let Some(signature) = signature else {
        tracing::warn!(
            path = uri.path(),
            "Twilio webhook without X-Twilio-Signature refused"
        );
        return Err(Box::new(StatusCode::BAD_REQUEST.into_response()));
    };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!("{}{path}", twilio.public_url);
    if crate::sms::twilio::verify(
        &url,
        params,
        Some(signature),
        token.expose_secret().as_bytes(),
    ) {
        Ok(())
    } else {
        tracing::warn!(
            path = uri.path(),
            "Twilio webhook with a wrong signature refused (is sms.twilio.public_url the address Twilio calls?)"
        );
        Err(Box::new(StatusCode::FORBIDDEN.into_response()))
    }
}

/// `POST /twilio/status`: a delivery status of a text we sent.
pub(super) async fn twilio_status(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    if let Err(answer) = twilio_verified(&state, &uri, &headers, &params) {
        return *answer;
    }
    let report = match crate::sms::twilio::read_status(&params) {
        Ok(r) => vec![r],
        Err(why) => {
            tracing::warn!(%why, "a signed Twilio status could not be read; stored for inspection");
            Vec::new()
        }
    };
    let now = state.clock.now();
    let result = state
        .store
        .run(move |s| jobs::process_sms_status(s, "twilio", &body, &report, now))
        .await;
    answer(result, StatusCode::NO_CONTENT.into_response())
}

/// `POST /twilio/inbound`: a text to the clinic's number.
pub(super) async fn twilio_inbound(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    if let Err(answer) = twilio_verified(&state, &uri, &headers, &params) {
        return *answer;
    }
    let twiml = ([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response();
    let sms = match crate::sms::twilio::read_inbound(&params) {
        Ok(sms) => sms,
        Err(why) => {
            // Signed by Twilio, so a retry would carry the same fields: stored, not applied.
            tracing::warn!(%why, "a signed inbound text could not be read; stored for inspection");
            let now = state.clock.now();
            let result = state
                .store
                .run(move |s| jobs::process_sms_status(s, "twilio", &body, &[], now))
                .await;
            return answer(result, twiml);
        }
    };
    let config = state.config();
    let now = state.clock.now();
    let result = state
        .store
        .run(move |s| jobs::process_sms_inbound(s, &config, "twilio", &body, &sms, now))
        .await;
    answer(result, twiml)
}

/// `POST /msg91/report?token=…`: delivery reports of texts sent through MSG91.
pub(super) async fn msg91_report(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(expected) = state.sms.msg91_webhook_token.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    if !crate::sms::msg91::webhook_token_ok(given.as_deref(), expected.expose_secret().as_bytes()) {
        tracing::warn!(
            present = given.is_some(),
            "MSG91 report with a missing or wrong token refused"
        );
        return StatusCode::FORBIDDEN.into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let reports = match crate::sms::msg91::read_reports(&content_type, &body) {
        Ok(r) => r.reports,
        Err(why) => {
            tracing::warn!(%why, "an MSG91 report could not be read; stored for inspection");
            Vec::new()
        }
    };
    let now = state.clock.now();
    let result = state
        .store
        .run(move |s| jobs::process_sms_status(s, "msg91", &body, &reports, now))
        .await;
    answer(result, StatusCode::OK.into_response())
}

/// The answer once the body was stored and applied (or 500, so the provider tries again).
fn answer<T>(
    result: Result<Result<T, crate::store::StoreError>, crate::store::StoreError>,
    ok: Response,
) -> Response {
    match result {
        Ok(Ok(_)) => ok,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "an SMS webhook could not be stored or applied");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "an SMS webhook task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
