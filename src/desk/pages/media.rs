//! A reply's file (a voice note, photo, video or document): fetched from WhatsApp when staff
//! open it and passed to the browser from memory, never written to disk or the database.
//! Each showing is audited (`view_media`): it is patient content.

use axum::http::{HeaderValue, header};

use super::{Deserialize, DeskState, IntoResponse, Query, Response, Staff, State, StatusCode};
use super::{urlencode, views};
use crate::whatsapp::media::{self, Limits, MediaError};

#[derive(Deserialize)]
pub(in crate::desk) struct MediaQuery {
    reply: Option<String>,
}

/// `GET /desk/replies/media?reply=N`: the reply's file, with its type, or a page saying why
/// it cannot be shown.
pub(in crate::desk) async fn reply_media(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<MediaQuery>,
) -> Result<Response, Response> {
    let Some(reply_id) = q
        .reply
        .as_deref()
        .and_then(|r| r.trim().parse::<i64>().ok())
    else {
        return Err(refusal(
            &staff,
            StatusCode::BAD_REQUEST,
            "This link does not name a reply. Open the file from the list of replies.",
        ));
    };
    let stored = state.db(move |s| s.reply_media(reply_id)).await?;
    let Some(stored) = stored else {
        return Err(refusal(
            &staff,
            StatusCode::NOT_FOUND,
            "That reply has no file, or it no longer exists. Reload the list of replies.",
        ));
    };
    let config = state.config();
    let (Some(wa), Some(token)) = (config.whatsapp.as_ref(), state.whatsapp_token.as_ref()) else {
        return Err(refusal(
            &staff,
            StatusCode::SERVICE_UNAVAILABLE,
            "This desk is not connected to WhatsApp, so the files patients send cannot be opened here. Ask the administrator.",
        ));
    };
    // Within the server's own deadline for a request, so a slow fetch gets this page's words.
    let mut limits = Limits::for_kind(&stored.kind);
    limits.timeout = limits.timeout.min(
        config
            .server
            .request_timeout
            .saturating_sub(std::time::Duration::from_secs(2))
            .max(std::time::Duration::from_secs(1)),
    );
    // A file sent to a number with its own token is that number's business account's.
    let token = stored
        .phone_number_id
        .as_ref()
        .and_then(|id| state.number_tokens.get(id))
        .unwrap_or(token);
    let fetched = media::fetch(
        wa,
        token,
        &stored.media_id,
        stored.sha256.as_deref(),
        limits,
    )
    .await;
    let file = match fetched {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(user = %staff.session.user, reply = reply_id, error = %e, "desk: a reply's file could not be fetched");
            let (status, text) = explain(&e);
            return Err(refusal(&staff, status, &text));
        }
    };
    let (actor, now) = (staff.actor(), state.clock.now());
    state
        .db(move |s| s.audit_media_view(&actor, reply_id, now))
        .await?;
    tracing::info!(user = %staff.session.user, reply = reply_id, kind = %stored.kind, bytes = file.bytes.len(), "desk: a reply's file was shown");
    let shown = presentation(
        reply_id,
        &stored.kind,
        file.mime_type.as_deref().or(stored.mime_type.as_deref()),
        stored.filename.as_deref(),
    );
    let mut res = file.bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(shown.content_type),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&shown.disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}

fn refusal(staff: &Staff, status: StatusCode, text: &str) -> Response {
    (
        status,
        views::message(Some(&staff.session), "The file cannot be shown", text),
    )
        .into_response()
}

/// What the page says about a failed fetch, in the receptionist's words, and its status.
fn explain(e: &MediaError) -> (StatusCode, String) {
    match e {
        MediaError::Gone => (
            StatusCode::NOT_FOUND,
            format!("{e}. If it is still needed, ask the patient to send it again."),
        ),
        MediaError::TooBig { limit, .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "The file is larger than the desk opens (more than {} MB), so it was not fetched. Ask the patient to bring it to the clinic.",
                limit / (1024 * 1024)
            ),
        ),
        MediaError::WrongChecksum | MediaError::NoChecksum => (
            StatusCode::BAD_GATEWAY,
            "The file that arrived from WhatsApp could not be checked against the one the patient sent, so it is not shown. Try again in a few minutes.".into(),
        ),
        MediaError::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "WhatsApp took too long to send the file. Try again in a few minutes.".into(),
        ),
        MediaError::Unreachable(_) => (
            StatusCode::BAD_GATEWAY,
            "WhatsApp could not be reached. Try again in a few minutes.".into(),
        ),
        MediaError::ForeignHost { .. } | MediaError::BadId(_) | MediaError::Refused(_) => (
            StatusCode::BAD_GATEWAY,
            "WhatsApp did not give the file in the expected way, so it was not fetched. Tell the administrator (the reason is in the service's log).".into(),
        ),
    }
}

/// How a file goes to the browser.
#[derive(Debug, PartialEq, Eq)]
struct Presentation {
    /// A type from [`SAFE_TYPES`], or `application/octet-stream`.
    content_type: &'static str,
    /// `inline`, or `attachment` with a safe file name.
    disposition: String,
}

/// Types the desk serves as what they are, with the file extension each is saved with.
/// Anything else (HTML, SVG, scripts) goes out as `application/octet-stream`, to be saved.
const SAFE_TYPES: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
    ("audio/ogg", "ogg"),
    ("audio/opus", "opus"),
    ("audio/aac", "aac"),
    ("audio/mp4", "m4a"),
    ("audio/mpeg", "mp3"),
    ("audio/amr", "amr"),
    ("video/mp4", "mp4"),
    ("video/3gpp", "3gp"),
    ("application/pdf", "pdf"),
    ("text/plain", "txt"),
    ("application/msword", "doc"),
    ("application/vnd.ms-excel", "xls"),
    ("application/vnd.ms-powerpoint", "ppt"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
    ),
    ("application/vnd.oasis.opendocument.text", "odt"),
    ("application/vnd.oasis.opendocument.spreadsheet", "ods"),
];

/// Audio, photos, stickers and videos of an allowed type play or show in the page; documents
/// and anything of another type are saved under a safe name.
fn presentation(
    reply_id: i64,
    kind: &str,
    mime: Option<&str>,
    filename: Option<&str>,
) -> Presentation {
    let essence = mime
        .and_then(|m| m.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let safe = SAFE_TYPES.iter().find(|(t, _)| *t == essence);
    let family = match kind {
        "audio" => Some("audio/"),
        "image" | "sticker" => Some("image/"),
        "video" => Some("video/"),
        _ => None,
    };
    match safe {
        Some((t, _)) if family.is_some_and(|f| t.starts_with(f)) => Presentation {
            content_type: t,
            disposition: "inline".into(),
        },
        _ => {
            let ext = safe.map_or("bin", |(_, e)| e);
            let name = filename
                .and_then(safe_filename)
                .unwrap_or_else(|| format!("whatsapp-{kind}-{reply_id}.{ext}"));
            Presentation {
                content_type: safe.map_or("application/octet-stream", |(t, _)| t),
                disposition: attachment(&name),
            }
        }
    }
}

/// A file name a patient's phone gave, made safe to save: its last path part, with control
/// and direction-changing characters (which can disguise an extension), quotes and the
/// characters Windows refuses replaced by `_`, and no leading dot.
fn safe_filename(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            let hidden =
                matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF);
            if c.is_control() || hidden || "\"'*:<>?|;%`".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(120)
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    (!cleaned.is_empty() && cleaned.chars().any(char::is_alphanumeric)).then(|| cleaned.to_string())
}

/// `attachment; filename="…"`, with the UTF-8 name as `filename*` when it is not ASCII.
fn attachment(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    if ascii == name {
        format!("attachment; filename=\"{name}\"")
    } else {
        format!(
            "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
            urlencode(name)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: &str, mime: Option<&str>, name: Option<&str>) -> (String, String) {
        let p = presentation(7, kind, mime, name);
        (p.content_type.to_string(), p.disposition)
    }

    #[test]
    fn players_and_photos_show_in_the_page_and_documents_are_saved() {
        assert_eq!(
            p("audio", Some("audio/ogg; codecs=opus"), None),
            ("audio/ogg".into(), "inline".into())
        );
        assert_eq!(
            p("image", Some("IMAGE/JPEG"), None),
            ("image/jpeg".into(), "inline".into())
        );
        assert_eq!(
            p("sticker", Some("image/webp"), None),
            ("image/webp".into(), "inline".into())
        );
        assert_eq!(
            p("video", Some("video/mp4"), None),
            ("video/mp4".into(), "inline".into())
        );
        assert_eq!(
            p("document", Some("application/pdf"), Some("Blood test.pdf")),
            (
                "application/pdf".into(),
                "attachment; filename=\"Blood test.pdf\"".into()
            )
        );
        assert_eq!(
            p("document", Some("application/pdf"), None),
            (
                "application/pdf".into(),
                "attachment; filename=\"whatsapp-document-7.pdf\"".into()
            )
        );
    }

    #[test]
    fn types_off_the_list_are_saved_as_bytes_never_shown() {
        for (kind, mime) in [
            ("document", Some("text/html")),
            ("image", Some("image/svg+xml")),
            ("image", Some("text/html")),
            ("audio", Some("application/javascript")),
            ("video", None),
        ] {
            let (t, d) = p(kind, mime, None);
            assert_eq!(t, "application/octet-stream", "{kind} {mime:?}");
            assert_eq!(d, format!("attachment; filename=\"whatsapp-{kind}-7.bin\""));
        }
        // A safe type that does not match its message's kind is saved, not played.
        assert_eq!(
            p("audio", Some("application/pdf"), None),
            (
                "application/pdf".into(),
                "attachment; filename=\"whatsapp-audio-7.pdf\"".into()
            )
        );
    }

    #[test]
    fn file_names_are_made_safe_to_save() {
        assert_eq!(safe_filename("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            safe_filename("C:\\Users\\x\\report.pdf").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            safe_filename("a\"b;c\r\nd.pdf").as_deref(),
            Some("a_b_c__d.pdf")
        );
        assert_eq!(safe_filename(".hidden").as_deref(), Some("hidden"));
        assert_eq!(safe_filename("..."), None);
        assert_eq!(safe_filename("\"\""), None);
        // Names in any script are kept whole for the browser, with an ASCII stand-in.
        assert_eq!(safe_filename("रिपोर्ट.pdf").as_deref(), Some("रिपोर्ट.pdf"));
        assert_eq!(
            p("document", Some("application/pdf"), Some("रिपोर्ट.pdf")),
            (
                "application/pdf".into(),
                "attachment; filename=\"_______.pdf\"; filename*=UTF-8''%E0%A4%B0%E0%A4%BF%E0%A4%AA%E0%A5%8B%E0%A4%B0%E0%A5%8D%E0%A4%9F.pdf".into()
            )
        );
        // A right-to-left override cannot make "fdp.exe" read as "exe.pdf".
        assert_eq!(
            safe_filename("report\u{202e}fdp.exe").as_deref(),
            Some("report_fdp.exe")
        );
        let long = "x".repeat(500);
        assert_eq!(safe_filename(&long).map(|n| n.len()), Some(120));
    }

    #[test]
    fn every_failure_has_a_page_in_plain_words() {
        let (status, text) = explain(&MediaError::Gone);
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            text.starts_with("WhatsApp no longer has this file (files are kept about 30 days)"),
            "{text}"
        );
        let (_, text) = explain(&MediaError::TooBig {
            size: 20 << 20,
            limit: 16 << 20,
        });
        assert!(text.contains("more than 16 MB"), "{text}");
        let (status, _) = explain(&MediaError::Timeout);
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        let (_, text) = explain(&MediaError::ForeignHost {
            host: "evil.example".into(),
        });
        assert!(!text.contains("evil.example"), "{text}");
    }
}
