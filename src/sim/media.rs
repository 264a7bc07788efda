//! Files patients send, as the simulator holds them: a test registers a file and gets a media
//! id, a `Reply::Media` webhook names it, and the Cloud API's media endpoint answers its
//! download url (`GET /{version}/{media id}`) and serves its bytes from that url, with the
//! bearer-token check, a 5-minute url and Graph's error for an unknown or expired id.
//!
//! Over HTTP: `POST /_sim/media` with the file as the body and its type as `Content-Type`
//! (`?download_host=HOST:PORT` answers a url on another host, for testing a client's host
//! check) answers `{"id", "sha256", "file_size", "mime_type"}`; `DELETE /_sim/media/{id}`
//! expires a file as WhatsApp does after about 30 days.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest as _;

use super::api::{authorized, bad_version, unauthorized, unknown_node, valid_version};
use super::{Shared, Sim};
use crate::time::Clock;

/// Largest file `POST /_sim/media` takes: WhatsApp's document limit.
pub(crate) const MAX_SIM_MEDIA: usize = 100 * 1024 * 1024;

/// How long a download url is valid, as on the Cloud API.
const URL_LIFETIME_SECS: i64 = 300;

/// Where the download urls point, as on Meta's media host.
const DOWNLOAD_PATH: &str = "/whatsapp_business/attachments/";

/// A registered file.
pub(crate) struct Stored {
    bytes: Bytes,
    mime_type: String,
    /// Lower-case hex, as the media endpoint writes it.
    sha256_hex: String,
    /// Base64, as webhooks write it.
    sha256_base64: String,
    /// Answer download urls on this `host:port` instead of the simulator's.
    download_host: Option<String>,
    /// The file name, for a file the client uploaded (`POST /{version}/{node}/media`).
    uploaded_as: Option<String>,
    /// The token that may read it: its business number's (`None`: the main number's).
    token: Option<String>,
}

/// A file the simulator now holds, as a test refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimMedia {
    /// The media id a webhook names it by.
    pub id: String,
    /// Its SHA-256 as webhooks write it (base64).
    pub sha256: String,
    /// Its size in bytes.
    pub file_size: usize,
    /// Its type.
    pub mime_type: String,
}

impl Shared {
    /// Registers a file under a fresh media id (digits, as the Cloud API's are).
    pub(crate) fn add_media(
        &self,
        bytes: Bytes,
        mime_type: &str,
        download_host: Option<String>,
    ) -> SimMedia {
        let digest = sha2::Sha256::digest(&bytes);
        let sha256_hex = format!("{digest:x}");
        let sha256_base64 = base64(&digest);
        let mut st = self.state();
        let id = loop {
            let id =
                (1_000_000_000_000_000 + rand::random::<u64>() % 9_000_000_000_000_000).to_string();
            if !st.media.contains_key(&id) {
                break id;
            }
        };
        let out = SimMedia {
            id: id.clone(),
            sha256: sha256_base64.clone(),
            file_size: bytes.len(),
            mime_type: mime_type.to_string(),
        };
        st.media.insert(
            id,
            Stored {
                bytes,
                mime_type: mime_type.to_string(),
                sha256_hex,
                sha256_base64,
                download_host,
                uploaded_as: None,
                token: None,
            },
        );
        out
    }

    /// The token that may read file `id` (`None`: no such file).
    fn media_token(&self, id: &str) -> Option<String> {
        self.state().media.get(id).map(|m| {
            m.token
                .clone()
                .unwrap_or_else(|| self.config.access_token.clone())
        })
    }

    /// The type and base64 SHA-256 of a registered file, for the webhook that names it.
    pub(crate) fn media_meta(&self, id: &str) -> Option<(String, String)> {
        self.state()
            .media
            .get(id)
            .map(|m| (m.mime_type.clone(), m.sha256_base64.clone()))
    }
}

impl Sim {
    /// Holds `bytes` as a file a patient sent; a [`super::Reply::Media`] names it by the id.
    pub fn add_media(&self, bytes: Vec<u8>, mime_type: &str) -> SimMedia {
        self.shared.add_media(Bytes::from(bytes), mime_type, None)
    }

    /// As [`Sim::add_media`], a file sent to the further number `phone_number_id`: only that
    /// number's token reads it, as a file belongs to its business account.
    pub fn add_media_for(
        &self,
        phone_number_id: &str,
        bytes: Vec<u8>,
        mime_type: &str,
    ) -> SimMedia {
        let media = self.shared.add_media(Bytes::from(bytes), mime_type, None);
        let token = self
            .shared
            .config
            .line(phone_number_id)
            .map(|l| l.access_token.to_string());
        if let Some(m) = self.shared.state().media.get_mut(&media.id) {
            m.token = token;
        }
        media
    }

    /// As [`Sim::add_media`], but the media endpoint answers a download url on `host` (e.g.
    /// `localhost:PORT`): a client must refuse a url off the hosts it expects.
    pub fn add_media_on_host(&self, bytes: Vec<u8>, mime_type: &str, host: &str) -> SimMedia {
        self.shared
            .add_media(Bytes::from(bytes), mime_type, Some(host.to_string()))
    }

    /// Forgets a file, as WhatsApp does about 30 days after its message; false if unknown.
    pub fn expire_media(&self, id: &str) -> bool {
        self.shared.state().media.remove(id).is_some()
    }

    /// The files the client uploaded (`POST /{version}/{node}/media`), by media id.
    pub fn uploads(&self) -> Vec<SimUpload> {
        let mut out: Vec<SimUpload> = self
            .shared
            .state()
            .media
            .iter()
            .filter_map(|(id, m)| {
                Some(SimUpload {
                    id: id.clone(),
                    filename: m.uploaded_as.clone()?,
                    sha256_hex: m.sha256_hex.clone(),
                    mime_type: m.mime_type.clone(),
                    file_size: m.bytes.len(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// How many file downloads were served.
    pub fn media_downloads(&self) -> usize {
        self.shared.state().media_downloads
    }
}

/// `GET /{version}/{media id}`: the download url and what is known of the file.
pub(crate) async fn media_url(
    State(sh): State<Arc<Shared>>,
    Path((version, node)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(line) = sh.config.line(&node) {
        return super::api::phone_number(line, &version, q.get("fields"), &headers);
    }
    // A file is read with its business number's token; an unknown one with the main token
    // is simply not found.
    let token = sh
        .media_token(&node)
        .unwrap_or_else(|| sh.config.access_token.clone());
    if !authorized(&headers, &token) {
        return unauthorized();
    }
    if !valid_version(&version) {
        return bad_version(&version).into_response();
    }
    let st = sh.state();
    let Some(m) = st.media.get(&node) else {
        return unknown_node("get", &node).into_response();
    };
    let host = m
        .download_host
        .clone()
        .unwrap_or_else(|| sh.addr.to_string());
    let expires = Clock::System.now().timestamp() + URL_LIFETIME_SECS;
    let hash: u64 = rand::random();
    let url = format!("http://{host}{DOWNLOAD_PATH}?mid={node}&ext={expires}&hash={hash:x}");
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": m.mime_type,
        "sha256": m.sha256_hex,
        "file_size": m.bytes.len(),
        "id": node,
    }))
    .into_response()
}

/// `GET /whatsapp_business/attachments/?mid=…&ext=…`: the file, for the account's token only,
/// while its url is valid.
pub(crate) async fn download(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = q
        .get("mid")
        .and_then(|id| sh.media_token(id))
        .unwrap_or_else(|| sh.config.access_token.clone());
    if !authorized(&headers, &token) {
        return unauthorized();
    }
    let fresh = q
        .get("ext")
        .and_then(|e| e.parse::<i64>().ok())
        .is_some_and(|e| e >= Clock::System.now().timestamp());
    let mut st = sh.state();
    let found = q
        .get("mid")
        .and_then(|id| st.media.get(id))
        .filter(|_| fresh)
        .map(|m| (m.bytes.clone(), m.mime_type.clone()));
    let Some((bytes, mime)) = found else {
        return (
            StatusCode::NOT_FOUND,
            "URL signature expired or file not found",
        )
            .into_response();
    };
    st.media_downloads += 1;
    ([(header::CONTENT_TYPE, mime)], bytes).into_response()
}

#[derive(Deserialize)]
pub(crate) struct RegisterQuery {
    download_host: Option<String>,
}

/// `POST /_sim/media`: registers the body as a file of its `Content-Type`.
pub(crate) async fn register(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<RegisterQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let media = sh.add_media(body, mime, q.download_host.filter(|h| !h.is_empty()));
    axum::Json(media).into_response()
}

/// `DELETE /_sim/media/{id}`: expires a file.
pub(crate) async fn expire(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> StatusCode {
    if sh.state().media.remove(&id).is_some() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// A file the client uploaded, as the simulator recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimUpload {
    /// The media id the upload answered.
    pub id: String,
    /// The multipart part's file name.
    pub filename: String,
    /// The bytes' SHA-256, lower-case hex.
    pub sha256_hex: String,
    /// The type the upload gave.
    pub mime_type: String,
    /// Its size in bytes.
    pub file_size: usize,
}

/// The types the Cloud API takes for a document upload.
const DOCUMENT_TYPES: [&str; 8] = [
    "application/pdf",
    "text/plain",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

/// `POST /{version}/{phone number id}/media`: a multipart upload (`messaging_product`,
/// `type`, `file`) answered `{"id"}`, with Graph's errors for a missing or unsupported part.
pub(crate) async fn upload(
    State(sh): State<Arc<Shared>>,
    Path((version, node)): Path<(String, String)>,
    headers: HeaderMap,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if !valid_version(&version) {
        return bad_version(&version).into_response();
    }
    let Some(line) = sh.config.line(&node) else {
        if !authorized(&headers, &sh.config.access_token) {
            return unauthorized();
        }
        return unknown_node("post", &node).into_response();
    };
    if !authorized(&headers, line.access_token) {
        return unauthorized();
    }
    let param = |m: &str| super::api::GraphError::new(100, m.to_string()).into_response();
    let Ok(mut multipart) = multipart else {
        return param("The request must be multipart/form-data with the parameter file.");
    };
    let (mut product, mut kind, mut file) = (None, None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return param(&format!("The upload could not be read: {e}")),
        };
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let part_type = field.content_type().map(str::to_string);
        let Ok(bytes) = field.bytes().await else {
            return param("The upload was cut off.");
        };
        match name.as_str() {
            "messaging_product" => product = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "type" => kind = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "file" => file = Some((bytes, filename, part_type)),
            _ => {}
        }
    }
    if product.as_deref() != Some("whatsapp") {
        return param("The parameter messaging_product is required and must be whatsapp.");
    }
    let Some((bytes, filename, part_type)) = file.filter(|(b, _, _)| !b.is_empty()) else {
        return param("The parameter file is required.");
    };
    let mime = kind.or(part_type).unwrap_or_default();
    if !DOCUMENT_TYPES.contains(&mime.as_str()) && !mime.starts_with("image/") {
        return param(&format!(
            "Param file must be a file with one of the following types: {}. Received file of type '{mime}'.",
            DOCUMENT_TYPES.join(", ")
        ));
    }
    let media = sh.add_media(bytes, &mime, None);
    let owner =
        (line.phone_number_id != sh.config.phone_number_id).then(|| line.access_token.to_string());
    if let Some(m) = sh.state().media.get_mut(&media.id) {
        m.uploaded_as = Some(filename.unwrap_or_else(|| "file".into()));
        m.token = owner;
    }
    axum::Json(json!({ "id": media.id })).into_response()
}

/// Whether a document message's media id names a file the simulator holds.
pub(crate) fn check_document(
    document: Option<&serde_json::Value>,
    media: &HashMap<String, Stored>,
) -> Result<(), super::api::GraphError> {
    let Some(d) = document.filter(|d| d.is_object()) else {
        return Err(super::api::GraphError::new(
            100,
            "The parameter document is required.",
        ));
    };
    match (
        d.get("id").and_then(serde_json::Value::as_str),
        d.get("link"),
    ) {
        (Some(id), _) if media.contains_key(id) => Ok(()),
        (Some(_), _) => Err(super::api::GraphError::new(
            100,
            "Param document['id'] is not a valid whatsapp business account media attachment ID",
        )),
        (None, Some(_)) => Ok(()),
        (None, None) => Err(super::api::GraphError::new(
            100,
            "The parameter document['id'] or document['link'] is required.",
        )),
    }
}

/// Padded standard base64, as webhooks write a file's SHA-256.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;
    use crate::sim::{Sim, SimConfig};
    use serde_json::Value;

    #[tokio::test]
    async fn files_are_registered_described_and_served_over_http_like_the_cloud_api() {
        let sim = Sim::start(SimConfig::default()).await.expect("sim");
        let base = sim.base_url();
        let http = reqwest::Client::new();
        let token = "Bearer sim-token";
        let registered: Value = http
            .post(format!("{base}/_sim/media"))
            .header("content-type", "audio/ogg; codecs=opus")
            .body(b"OggS".to_vec())
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("json");
        let id = registered["id"].as_str().expect("id").to_string();
        assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id}");
        assert_eq!(
            registered["sha256"],
            "aNntKtskRY/xc9sGtBudG24ih2TEVwMNY/rRGwK/rh4="
        );

        let info = http
            .get(format!("{base}/v23.0/{id}"))
            .header("authorization", token)
            .send()
            .await
            .expect("media url");
        assert_eq!(info.status(), 200);
        let info: Value = info.json().await.expect("json");
        assert_eq!(info["mime_type"], "audio/ogg; codecs=opus");
        assert_eq!(info["file_size"], 4);
        assert_eq!(
            info["sha256"],
            "68d9ed2adb24458ff173db06b41b9d1b6e228764c457030d63fad11b02bfae1e"
        );
        let url = info["url"].as_str().expect("url");
        assert!(
            url.starts_with(&format!(
                "{base}/whatsapp_business/attachments/?mid={id}&ext="
            )),
            "{url}"
        );
        let no_token = http.get(url).send().await.expect("download");
        assert_eq!(no_token.status(), 401);
        let file = http
            .get(url)
            .header("authorization", token)
            .send()
            .await
            .expect("download");
        assert_eq!(file.status(), 200);
        assert_eq!(file.headers()["content-type"], "audio/ogg; codecs=opus");
        assert_eq!(file.bytes().await.expect("bytes").as_ref(), b"OggS");

        // Expired (about 30 days on), the id is an object Graph no longer knows.
        let gone = http
            .delete(format!("{base}/_sim/media/{id}"))
            .send()
            .await
            .expect("expire");
        assert_eq!(gone.status(), 204);
        let unknown = http
            .get(format!("{base}/v23.0/{id}"))
            .header("authorization", token)
            .send()
            .await
            .expect("media url");
        assert_eq!(unknown.status(), 400);
        let err: Value = unknown.json().await.expect("json");
        assert_eq!(err["error"]["code"], 100);
        assert!(
            err["error"]["error_data"]["details"]
                .as_str()
                .is_some_and(|d| d.starts_with("Unsupported get request.")),
            "{err}"
        );
        let bad_token = http
            .get(format!("{base}/v23.0/{id}"))
            .header("authorization", "Bearer wrong")
            .send()
            .await
            .expect("media url");
        assert_eq!(bad_token.status(), 401);
        assert_eq!(sim.media_downloads(), 1);
    }

    #[test]
    fn base64_is_the_standard_padded_encoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(&[0xfb, 0xff, 0xfe]), "+//+");
    }
}
