//! Files patients send (voice notes, photos, videos, documents, stickers): the media object of
//! an inbound message, and fetching its bytes through the Cloud API's media endpoint, checked
//! (size cap, sha256, expected hosts) and handed over in memory, never stored.
//!
//! Fetching is two requests with the access token: `GET {api_base}/{version}/{media id}`
//! answers `{"url", "mime_type", "sha256", "file_size", "id"}`, then `GET url` answers the
//! bytes. The url lives 5 minutes; a media id about 30 days after its message.
//!
//! The download url must be on one of two origins: the configured `whatsapp.api_base` (the
//! simulator in tests, Graph itself) or `https://lookaside.fbsbx.com` (where Meta serves
//! media). Any other url is refused before a request is made, and a redirect is followed only
//! between those origins: the access token goes with the request, and the url comes from an
//! answer we do not control, so this keeps the desk from fetching, or sending the token to,
//! anything else (a server-side request forgery guard).

use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Digest as _;

use super::{InboundMessage, SendError, api_error};
use crate::config::WhatsApp;

/// Where Meta serves media files (the host of every download url the Cloud API gives).
pub const META_MEDIA_HOST: &str = "lookaside.fbsbx.com";

/// Largest photo, voice note, video or sticker fetched: WhatsApp's own audio and video limit.
pub const MAX_MEDIA_BYTES: u64 = 16 * 1024 * 1024;

/// Largest document fetched: WhatsApp's own document limit.
pub const MAX_DOCUMENT_BYTES: u64 = 100 * 1024 * 1024;

/// Time allowed for both requests together: under the desk's default 60 s request deadline.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(40);

/// The media object of an inbound `image`, `audio`, `video`, `document` or `sticker` message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InboundMedia {
    /// The Cloud API's media id (what the file is fetched by).
    #[serde(default)]
    pub id: String,
    /// e.g. `audio/ogg; codecs=opus`.
    pub mime_type: Option<String>,
    /// The file's SHA-256 as the webhook gives it (base64).
    pub sha256: Option<String>,
    /// What the patient wrote with a photo, video or document.
    pub caption: Option<String>,
    /// A document's name on the patient's phone.
    pub filename: Option<String>,
    /// A voice note recorded in WhatsApp (not an audio file sent on).
    #[serde(default)]
    pub voice: bool,
}

impl InboundMessage {
    /// The message's type and media object, for a message that carries a file.
    pub fn media(&self) -> Option<(&str, &InboundMedia)> {
        let media = match self.kind.as_str() {
            "image" => &self.image,
            "audio" => &self.audio,
            "video" => &self.video,
            "document" => &self.document,
            "sticker" => &self.sticker,
            _ => return None,
        };
        media.as_ref().map(|m| (self.kind.as_str(), m))
    }
}

/// How much to fetch and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted.
    pub max_bytes: u64,
    /// Time allowed for the metadata and the download together.
    pub timeout: Duration,
}

impl Limits {
    /// The limits for a message of this type: documents may be larger than the rest.
    pub fn for_kind(kind: &str) -> Self {
        Self {
            max_bytes: if kind == "document" {
                MAX_DOCUMENT_BYTES
            } else {
                MAX_MEDIA_BYTES
            },
            timeout: FETCH_TIMEOUT,
        }
    }
}

/// A fetched file, checked against its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The file.
    pub bytes: Vec<u8>,
    /// Its type as the media endpoint gives it.
    pub mime_type: Option<String>,
}

/// Why a file could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The media id is unknown to the API or has expired (about 30 days after the message).
    #[error("WhatsApp no longer has this file (files are kept about 30 days)")]
    Gone,
    /// The file is larger than the cap.
    #[error("the file is {size} bytes, more than the {limit} bytes that are fetched")]
    TooBig {
        /// Its size (as announced, or as far as it was read).
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// The bytes are not the file the patient sent.
    #[error("the file that arrived does not match its sha256, so it is not shown")]
    WrongChecksum,
    /// Neither the webhook nor the media endpoint gave a checksum to check the bytes with.
    #[error("WhatsApp gave no sha256 for the file, so it cannot be checked")]
    NoChecksum,
    /// The API took longer than [`Limits::timeout`].
    #[error("WhatsApp took too long to send the file")]
    Timeout,
    /// The download url is not on an expected host (see the module's rule).
    #[error(
        "the file's address is on {host}, which is not WhatsApp's media host; it was not fetched"
    )]
    ForeignHost {
        /// The host (or the url, if it has none).
        host: String,
    },
    /// A stored media id that is not one the API gives (it would change the request's path).
    #[error("{0:?} is not a WhatsApp media id")]
    BadId(String),
    /// The API refused the request (an expired token, missing permission...).
    #[error("WhatsApp refused the request: {0}")]
    Refused(SendError),
    /// The API could not be reached or gave an unreadable answer.
    #[error("WhatsApp could not be reached: {0}")]
    Unreachable(String),
}

/// The media endpoint's answer.
#[derive(Deserialize)]
struct MediaUrl {
    url: String,
    mime_type: Option<String>,
    sha256: Option<String>,
    /// A number, or a string of digits from some gateways.
    file_size: Option<serde_json::Value>,
}

/// Fetches a file by its media id, with the account's token: the metadata, then the bytes from
/// an allowed host, capped at `limits.max_bytes` and checked against every sha256 known (the
/// media endpoint's, and `webhook_sha256` as the webhook gave it).
pub async fn fetch(
    wa: &WhatsApp,
    token: &SecretString,
    media_id: &str,
    webhook_sha256: Option<&str>,
    limits: Limits,
) -> Result<Fetched, MediaError> {
    if !is_media_id(media_id) {
        return Err(MediaError::BadId(media_id.to_string()));
    }
    let base = Url::parse(&wa.api_base)
        .map_err(|e| MediaError::Unreachable(format!("whatsapp.api_base: {e}")))?;
    let redirect_base = base.clone();
    let http = reqwest::Client::builder()
        .connect_timeout(wa.connect_timeout)
        .timeout(limits.timeout)
        .user_agent(concat!("reminderd/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 3 {
                attempt.error("too many redirects")
            } else if allowed(attempt.url(), &redirect_base) {
                attempt.follow()
            } else {
                let host = host_of(attempt.url());
                attempt.error(format!("redirected to {host}"))
            }
        }))
        .build()
        .map_err(|e| MediaError::Unreachable(e.to_string()))?;
    let fetching = async {
        let info = media_url(&http, &base, &wa.api_version, token, media_id).await?;
        if let Some(size) = info.file_size.as_ref().and_then(file_size)
            && size > limits.max_bytes
        {
            return Err(MediaError::TooBig {
                size,
                limit: limits.max_bytes,
            });
        }
        let url = Url::parse(&info.url).map_err(|_| MediaError::ForeignHost {
            host: info.url.clone(),
        })?;
        if !allowed(&url, &base) {
            return Err(MediaError::ForeignHost {
                host: host_of(&url),
            });
        }
        let bytes = download(&http, url, token, limits.max_bytes).await?;
        let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        let known: Vec<&str> = [info.sha256.as_deref(), webhook_sha256]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if known.is_empty() {
            return Err(MediaError::NoChecksum);
        }
        if !known.iter().all(|s| same_digest(&digest, s)) {
            return Err(MediaError::WrongChecksum);
        }
        Ok(Fetched {
            bytes,
            mime_type: info.mime_type,
        })
    };
    tokio::time::timeout(limits.timeout, fetching)
        .await
        .unwrap_or(Err(MediaError::Timeout))
}

async fn media_url(
    http: &reqwest::Client,
    base: &Url,
    version: &str,
    token: &SecretString,
    media_id: &str,
) -> Result<MediaUrl, MediaError> {
    let url = format!(
        "{}/{version}/{media_id}",
        base.as_str().trim_end_matches('/')
    );
    let resp = http
        .get(&url)
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .map_err(request_error)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(request_error)?;
    if !status.is_success() {
        let e = api_error(status.as_u16(), &body);
        // 100 (no such object) is how Graph answers an unknown or expired media id.
        return Err(match (&e, status.as_u16()) {
            (
                SendError::Api {
                    code: 100 | 131_052,
                    ..
                },
                _,
            )
            | (_, 404 | 410) => MediaError::Gone,
            _ => MediaError::Refused(e),
        });
    }
    serde_json::from_slice(&body)
        .map_err(|e| MediaError::Unreachable(format!("an unreadable media answer: {e}")))
}

async fn download(
    http: &reqwest::Client,
    url: Url,
    token: &SecretString,
    limit: u64,
) -> Result<Vec<u8>, MediaError> {
    let mut resp = http
        .get(url)
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .map_err(request_error)?;
    let status = resp.status();
    if matches!(status.as_u16(), 404 | 410) {
        return Err(MediaError::Gone);
    }
    if !status.is_success() {
        return Err(MediaError::Unreachable(format!(
            "the download answered HTTP {status}"
        )));
    }
    if let Some(size) = resp.content_length()
        && size > limit
    {
        return Err(MediaError::TooBig { size, limit });
    }
    // Sized once from the announced length (already within the cap), not doubled as it grows.
    let mut bytes = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(request_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > limit {
            return Err(MediaError::TooBig {
                size: bytes.len() as u64,
                limit,
            });
        }
    }
    Ok(bytes)
}

#[allow(clippy::needless_pass_by_value)] // used as map_err(request_error)
fn request_error(e: reqwest::Error) -> MediaError {
    if e.is_timeout() {
        MediaError::Timeout
    } else {
        MediaError::Unreachable(e.to_string())
    }
}

/// Media ids are digits; letters, `_` and `-` are allowed for other gateways, nothing that
/// could change the request's path or query.
fn is_media_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The download rule: the configured API base's origin, or Meta's media host over https.
fn allowed(url: &Url, base: &Url) -> bool {
    let same_origin = url.scheme() == base.scheme()
        && url.host_str().is_some()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    let meta = url.scheme() == "https"
        && url.host_str() == Some(META_MEDIA_HOST)
        && url.port_or_known_default() == Some(443);
    same_origin || meta
}

fn host_of(url: &Url) -> String {
    url.host_str()
        .map_or_else(|| url.to_string(), str::to_string)
}

fn file_size(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Whether `text` is `digest` in hex (as the media endpoint writes it) or base64 (as webhooks
/// write it, standard or url-safe, padded or not).
fn same_digest(digest: &[u8; 32], text: &str) -> bool {
    use std::fmt::Write as _;
    let hex = digest.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    if text.eq_ignore_ascii_case(&hex) {
        return true;
    }
    let text = text.trim_end_matches('=');
    text == base64(digest, b'+', b'/') || text == base64(digest, b'-', b'_')
}

/// Unpadded base64 with the given last two letters of the alphabet.
fn base64(bytes: &[u8], c62: u8, c63: u8) -> String {
    let letter = |n: u32| -> char {
        match n {
            0..=25 => (b'A' + n as u8) as char,
            26..=51 => (b'a' + (n - 26) as u8) as char,
            52..=61 => (b'0' + (n - 52) as u8) as char,
            62 => c62 as char,
            _ => c63 as char,
        }
    };
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(letter((n >> (18 - 6 * i)) & 63));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Sim, SimConfig};

    const TOKEN: &str = "media-test-token";

    fn wa(base: &str) -> WhatsApp {
        let mut config = crate::config::Config::example().expect("example config");
        let mut wa = config.whatsapp.take().expect("[whatsapp]");
        wa.api_base = base.to_string();
        wa
    }

    async fn sim() -> Sim {
        Sim::start(SimConfig {
            access_token: TOKEN.into(),
            ..SimConfig::default()
        })
        .await
        .expect("sim")
    }

    fn token() -> SecretString {
        SecretString::from(TOKEN)
    }

    fn limits() -> Limits {
        Limits {
            max_bytes: 1024,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn media_messages_are_read_with_their_file() {
        let body = r#"{"entry":[{"changes":[{"field":"messages","value":{"messages":[
            {"from":"919820012345","id":"wamid.A","type":"audio","audio":{"id":"1234567890","mime_type":"audio/ogg; codecs=opus","sha256":"abc=","voice":true}},
            {"from":"919820012345","id":"wamid.B","type":"document","document":{"id":"42","mime_type":"application/pdf","filename":"report.pdf","caption":"my report"}},
            {"from":"919820012345","id":"wamid.C","type":"image","image":{"id":"43","mime_type":"image/jpeg","caption":"yes"}},
            {"from":"919820012345","id":"wamid.D","type":"reaction","reaction":{"emoji":"x"}}]}}]}]}"#;
        let items = super::super::read_webhook(body).expect("read");
        let m: Vec<&InboundMessage> = items
            .messages
            .iter()
            .map(|m| m.as_ref().expect("readable"))
            .collect();
        let (kind, audio) = m[0].media().expect("audio");
        assert_eq!(
            (kind, audio.id.as_str(), audio.voice),
            ("audio", "1234567890", true)
        );
        assert_eq!(audio.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
        let (_, doc) = m[1].media().expect("document");
        assert_eq!(doc.filename.as_deref(), Some("report.pdf"));
        assert_eq!(m[1].shown_text().as_deref(), Some("my report"));
        assert_eq!(
            m[2].content(),
            crate::replies::Message::Media {
                kind: "image",
                caption: Some("yes"),
                voice: false
            }
        );
        assert!(m[3].media().is_none());
    }

    #[test]
    fn digests_are_matched_in_hex_and_in_base64() {
        let d = sha2::Sha256::digest(b"voice note");
        let hex = format!("{d:x}");
        let digest: [u8; 32] = d.into();
        assert!(same_digest(&digest, &hex));
        assert!(same_digest(&digest, &hex.to_uppercase()));
        // The standard alphabet, as a reference encoder writes it.
        assert_eq!(base64(b"Man", b'+', b'/'), "TWFu");
        assert_eq!(base64(b"Ma", b'+', b'/'), "TWE");
        assert_eq!(base64(&[0xfb, 0xff], b'+', b'/'), "+/8");
        assert_eq!(base64(&[0xfb, 0xff], b'-', b'_'), "-_8");
        let b64 = format!("{}=", base64(&digest, b'+', b'/'));
        assert!(same_digest(&digest, &b64));
        assert!(!same_digest(&digest, "c2ltLW1lZGlh"));
        assert!(!same_digest(&digest, ""));
    }

    #[test]
    fn downloads_go_only_to_the_api_base_or_metas_media_host() {
        let base = Url::parse("http://127.0.0.1:8089").expect("url");
        let ok = |u: &str| allowed(&Url::parse(u).expect("url"), &base);
        assert!(ok(
            "http://127.0.0.1:8089/whatsapp_business/attachments/?mid=1"
        ));
        assert!(ok(
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
        ));
        assert!(!ok("http://localhost:8089/x"), "another host name");
        assert!(!ok("http://127.0.0.1:8090/x"), "another port");
        assert!(!ok("https://127.0.0.1:8089/x"), "another scheme");
        assert!(
            !ok("http://lookaside.fbsbx.com/x"),
            "Meta's host without TLS"
        );
        assert!(!ok("https://lookaside.fbsbx.com.evil.example/x"));
        assert!(!ok("https://lookaside.fbsbx.com@169.254.169.254/x"));
        assert!(!ok("file:///etc/passwd"));
        assert!(is_media_id("1037543291543636"));
        assert!(!is_media_id("../v23.0/me"));
        assert!(!is_media_id("1?fields=x"));
        assert!(!is_media_id(""));
    }

    #[tokio::test]
    async fn a_registered_file_comes_back_whole_and_checked() {
        let sim = sim().await;
        let m = sim.add_media(b"OggS voice".to_vec(), "audio/ogg; codecs=opus");
        let got = fetch(
            &wa(&sim.base_url()),
            &token(),
            &m.id,
            Some(&m.sha256),
            limits(),
        )
        .await
        .expect("fetched");
        assert_eq!(got.bytes, b"OggS voice");
        assert_eq!(got.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
        assert_eq!(sim.media_downloads(), 1);
    }

    #[tokio::test]
    async fn unknown_expired_big_altered_and_foreign_files_are_refused_by_name() {
        let sim = sim().await;
        let wa = wa(&sim.base_url());
        let err = |r: Result<Fetched, MediaError>| r.expect_err("refused");
        let e = err(fetch(&wa, &token(), "999", None, limits()).await);
        assert!(matches!(e, MediaError::Gone), "{e:?}");
        assert_eq!(
            e.to_string(),
            "WhatsApp no longer has this file (files are kept about 30 days)"
        );
        let m = sim.add_media(b"photo".to_vec(), "image/jpeg");
        assert!(sim.expire_media(&m.id));
        let e = err(fetch(&wa, &token(), &m.id, None, limits()).await);
        assert!(matches!(e, MediaError::Gone), "{e:?}");

        let big = sim.add_media(vec![7; 2048], "video/mp4");
        let e = err(fetch(&wa, &token(), &big.id, None, limits()).await);
        assert!(
            matches!(
                e,
                MediaError::TooBig {
                    size: 2048,
                    limit: 1024
                }
            ),
            "{e:?}"
        );

        let m = sim.add_media(b"document".to_vec(), "application/pdf");
        let other: [u8; 32] = sha2::Sha256::digest(b"another file").into();
        let other = base64(&other, b'+', b'/');
        let e = err(fetch(&wa, &token(), &m.id, Some(&other), limits()).await);
        assert!(matches!(e, MediaError::WrongChecksum), "{e:?}");

        // The gone and too-big files were refused before their download; the altered one
        // had to be downloaded to be checked.
        assert_eq!(sim.media_downloads(), 1);
        let port = sim.addr().port();
        let m = sim.add_media_on_host(b"x".to_vec(), "image/jpeg", &format!("localhost:{port}"));
        let e = err(fetch(&wa, &token(), &m.id, None, limits()).await);
        assert!(
            matches!(&e, MediaError::ForeignHost { host } if host == "localhost"),
            "{e:?}"
        );

        let e = err(fetch(&wa, &SecretString::from("wrong"), &m.id, None, limits()).await);
        assert!(
            matches!(&e, MediaError::Refused(s) if s.code() == Some(190)),
            "{e:?}"
        );
        assert_eq!(
            sim.media_downloads(),
            1,
            "nothing was downloaded from the foreign host"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let e = fetch(
            &wa(&base),
            &token(),
            "123",
            None,
            Limits {
                max_bytes: 1024,
                timeout: Duration::from_millis(300),
            },
        )
        .await
        .expect_err("timed out");
        assert!(matches!(e, MediaError::Timeout), "{e:?}");
        hold.abort();
    }
}
