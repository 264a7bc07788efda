//! The HTTP side of a FHIR feed: the only code that knows how a FHIR server is asked and how it
//! answers. It says what an answer *is* ([`FhirError`]); the sync and the updates job decide
//! what to do about it. Bearer tokens come from secrets; OAuth2 client-credentials tokens are
//! fetched and kept until shortly before they expire. `next` links are followed only on the
//! base URL's own origin, since the token goes with every request; redirects are not followed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::types::{Bundle, CapabilityStatement, OperationOutcome};
use crate::config::{Feed, FhirAuth, FhirFeed};
use crate::secrets::{FeedSecretKind, feed_secret};
use crate::store::StoreError;

const FHIR_JSON: &str = "application/fhir+json";

/// Why talking to a FHIR server failed, worded for staff.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// The feed cannot be used as configured (a secret missing, a bad address).
    #[error("{0}")]
    Setup(String),
    /// The request did not get an answer (connection refused, timeout, TLS): safe to retry.
    #[error("cannot reach the FHIR server {base}: {detail}")]
    Unreachable {
        /// The server's base URL.
        base: String,
        /// What failed.
        detail: String,
    },
    /// The server answered with an error status, in its own words (an `OperationOutcome`'s
    /// diagnostics, else the start of the body).
    #[error("{}", refused_words(*status, words))]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's words.
        words: String,
    },
    /// The answer is not the FHIR JSON asked for.
    #[error("the FHIR server's answer is not what FHIR R4 says: {0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused_words(status: u16, words: &str) -> String {
    let said = if words.is_empty() {
        String::new()
    } else {
        format!(": {words}")
    };
    match status {
        401 | 403 => format!(
            "the FHIR server refused reminderd's credentials (HTTP {status}){said}; check the feed's token or client secret"
        ),
        404 => format!("the FHIR server has no such resource (HTTP 404){said}"),
        412 => format!("the appointment changed on the FHIR server meanwhile (HTTP 412){said}"),
        s if s >= 500 => format!("the FHIR server failed (HTTP {status}){said}"),
        _ => format!("the FHIR server refused the request (HTTP {status}){said}"),
    }
}

impl FhirError {
    /// Worth trying again later: no answer, a server error, or too many requests.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429,
            Self::Setup(_) | Self::Invalid(_) | Self::Store(_) => false,
        }
    }

    /// The HTTP status, for an answer with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A resource as read, with its version (`ETag` or `meta.versionId`).
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The resource as the server sent it (every field kept, for a PUT back).
    pub resource: Value,
    /// Its version id, without `W/"…"`.
    pub version: Option<String>,
}

enum Auth {
    None,
    Bearer(SecretString),
    ClientCredentials {
        token_url: String,
        client_id: String,
        scope: Option<String>,
        secret: SecretString,
    },
}

/// One FHIR server, as one feed reaches it.
pub struct Client {
    settings: FhirFeed,
    base: Url,
    http: reqwest::Client,
    auth: Auth,
    token: Mutex<Option<(SecretString, Instant)>>,
    capability: tokio::sync::Mutex<Option<CapabilityStatement>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The client of a FHIR feed, its secret read through `env` (the environment, then
    /// `$CREDENTIALS_DIRECTORY`).
    pub fn new(feed: &Feed, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, FhirError> {
        let settings = feed
            .fhir()
            .ok_or_else(|| FhirError::Setup(format!("feed {} is not a FHIR feed", feed.name)))?
            .clone();
        let base =
            Url::parse(&format!("{}/", settings.base_url.trim_end_matches('/'))).map_err(|e| {
                FhirError::Setup(format!(
                    "feeds.{}.base_url {:?}: {e}",
                    feed.name, settings.base_url
                ))
            })?;
        let secret = |kind| {
            feed_secret(&feed.name, kind)
                .load_from(env)
                .map_err(|e| FhirError::Setup(e.to_string()))
        };
        let auth = match &settings.auth {
            FhirAuth::None => Auth::None,
            FhirAuth::Bearer => Auth::Bearer(secret(FeedSecretKind::Token)?),
            FhirAuth::ClientCredentials {
                token_url,
                client_id,
                scope,
            } => Auth::ClientCredentials {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                scope: scope.clone(),
                secret: secret(FeedSecretKind::ClientSecret)?,
            },
        };
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("reminderd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FhirError::Setup(format!("HTTP client: {e}")))?;
        Ok(Self {
            settings,
            base,
            http,
            auth,
            token: Mutex::new(None),
            capability: tokio::sync::Mutex::new(None),
        })
    }

    /// The settings it was made from.
    pub fn settings(&self) -> &FhirFeed {
        &self.settings
    }

    /// The URL of `path` (`Appointment?date=…`) under the base URL.
    pub fn url(&self, path: &str) -> Result<Url, FhirError> {
        self.base
            .join(path)
            .map_err(|e| FhirError::Setup(format!("{path}: {e}")))
    }

    /// A `next` link, refused unless it is on the base URL's origin (the token goes with it).
    pub fn follow(&self, next: &str) -> Result<Url, FhirError> {
        let url = self
            .base
            .join(next)
            .map_err(|e| FhirError::Invalid(format!("next link {next:?}: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(FhirError::Invalid(format!(
                "the next page is on another server ({}); reminderd follows pages only on {}",
                url.origin().ascii_serialization(),
                self.base.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// One search page.
    pub async fn search(&self, url: Url) -> Result<Bundle, FhirError> {
        let (body, _) = self.send(self.http.get(url)).await?;
        let bundle: Bundle =
            serde_json::from_value(body).map_err(|e| FhirError::Invalid(e.to_string()))?;
        if bundle.resource_type != "Bundle" {
            return Err(FhirError::Invalid(format!(
                "a search answered a {}, not a Bundle",
                bundle.resource_type
            )));
        }
        Ok(bundle)
    }

    /// One resource (`None`: the server has no such resource, or it was deleted).
    pub async fn read(&self, kind: &str, id: &str) -> Result<Option<Versioned>, FhirError> {
        let url = self.url(&format!("{kind}/{id}"))?;
        match self.send(self.http.get(url)).await {
            Ok((resource, etag)) => Ok(Some(versioned(resource, etag))),
            Err(FhirError::Refused {
                status: 404 | 410, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT [base]/kind/id` with `If-Match: W/"version"`.
    pub async fn update(
        &self,
        kind: &str,
        id: &str,
        resource: &Value,
        version: Option<&str>,
    ) -> Result<(), FhirError> {
        let url = self.url(&format!("{kind}/{id}"))?;
        let mut req = self
            .http
            .put(url)
            .header(CONTENT_TYPE, FHIR_JSON)
            .body(resource.to_string());
        if let Some(v) = version {
            req = req.header("If-Match", format!("W/\"{v}\""));
        }
        self.send(req).await.map(|_| ())
    }

    /// `POST [base]/kind`, with `If-None-Exist` so a repeat after a crash makes no second one
    /// on servers that support conditional create.
    pub async fn create(
        &self,
        kind: &str,
        resource: &Value,
        if_none_exist: Option<&str>,
    ) -> Result<(), FhirError> {
        let url = self.url(kind)?;
        let mut req = self
            .http
            .post(url)
            .header(CONTENT_TYPE, FHIR_JSON)
            .body(resource.to_string());
        if let Some(q) = if_none_exist {
            req = req.header("If-None-Exist", q);
        }
        self.send(req).await.map(|_| ())
    }

    /// The server's CapabilityStatement, read once and kept.
    pub async fn capability(&self) -> Result<CapabilityStatement, FhirError> {
        let mut held = self.capability.lock().await;
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let (body, _) = self.send(self.http.get(self.url("metadata")?)).await?;
        let c: CapabilityStatement =
            serde_json::from_value(body).map_err(|e| FhirError::Invalid(e.to_string()))?;
        *held = Some(c.clone());
        Ok(c)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(Value, Option<String>), FhirError> {
        let mut req = req.header(ACCEPT, FHIR_JSON);
        if let Some(token) = self.bearer().await? {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| FhirError::Setup("the feed's token is not a valid header".into()))?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let etag = etag(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            return Err(refused(status, &bytes));
        }
        if bytes.is_empty() {
            return Ok((Value::Null, etag));
        }
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|e| FhirError::Invalid(e.to_string()))?;
        Ok((body, etag))
    }

    fn unreachable(&self, e: &reqwest::Error) -> FhirError {
        let detail = if e.is_timeout() {
            "no answer in time".to_string()
        } else if e.is_connect() {
            "the connection failed".to_string()
        } else {
            // The URL (with its query) stays out of logs and pages: the cause alone.
            std::error::Error::source(e)
                .map_or_else(|| "the request failed".to_string(), ToString::to_string)
        };
        FhirError::Unreachable {
            base: self.settings.base_url.clone(),
            detail,
        }
    }

    async fn bearer(&self) -> Result<Option<SecretString>, FhirError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Bearer(t) => Ok(Some(t.clone())),
            Auth::ClientCredentials {
                token_url,
                client_id,
                scope,
                secret,
            } => {
                if let Some((t, until)) = self
                    .token
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    && Instant::now() < *until
                {
                    return Ok(Some(t.clone()));
                }
                let mut form: HashMap<&str, &str> = HashMap::new();
                form.insert("grant_type", "client_credentials");
                form.insert("client_id", client_id);
                form.insert("client_secret", secret.expose_secret());
                if let Some(s) = scope {
                    form.insert("scope", s);
                }
                let resp = self
                    .http
                    .post(token_url)
                    .header(ACCEPT, "application/json")
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| self.unreachable(&e))?;
                let status = resp.status();
                let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
                if !status.is_success() {
                    let words = serde_json::from_slice::<Value>(&bytes)
                        .ok()
                        .and_then(|v| {
                            v["error_description"]
                                .as_str()
                                .or(v["error"].as_str())
                                .map(str::to_string)
                        })
                        .unwrap_or_default();
                    return Err(FhirError::Refused {
                        status: if status.is_server_error() {
                            status.as_u16()
                        } else {
                            401
                        },
                        words: format!(
                            "the token endpoint said {}{}",
                            status.as_u16(),
                            if words.is_empty() {
                                String::new()
                            } else {
                                format!(" ({words})")
                            }
                        ),
                    });
                }
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| FhirError::Invalid(format!("token endpoint: {e}")))?;
                let token = v["access_token"].as_str().ok_or_else(|| {
                    FhirError::Invalid("the token endpoint sent no access_token".into())
                })?;
                // Renewed a little early, so a token never expires in flight; a day at most, so
                // no answer can overflow the clock.
                let life = v["expires_in"]
                    .as_u64()
                    .unwrap_or(300)
                    .min(86_400)
                    .saturating_sub(30);
                let token = SecretString::from(token.to_string());
                *self.token.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((token.clone(), Instant::now() + Duration::from_secs(life)));
                Ok(Some(token))
            }
        }
    }
}

fn etag(h: &HeaderMap) -> Option<String> {
    let raw = h.get(ETAG)?.to_str().ok()?.trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    Some(raw.trim_matches('"').to_string()).filter(|s| !s.is_empty())
}

fn versioned(resource: Value, etag: Option<String>) -> Versioned {
    let version = etag.or_else(|| resource["meta"]["versionId"].as_str().map(str::to_string));
    Versioned { resource, version }
}

fn refused(status: StatusCode, body: &[u8]) -> FhirError {
    let words = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|v| v["resourceType"] == "OperationOutcome")
        .and_then(|v| serde_json::from_value::<OperationOutcome>(v).ok())
        .map_or_else(
            || {
                let text = String::from_utf8_lossy(body);
                text.chars()
                    .take(200)
                    .collect::<String>()
                    .trim()
                    .to_string()
            },
            |o| o.words(),
        );
    FhirError::Refused {
        status: status.as_u16(),
        words,
    }
}

/// Where secrets are looked up by name (the environment, or a test's map).
type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The clients of the configured FHIR feeds, made on first use and kept (their tokens and
/// CapabilityStatements with them) until the feed's settings change.
#[derive(Clone)]
pub struct FhirClients {
    env: Lookup,
    made: Arc<Mutex<HashMap<String, Arc<Client>>>>,
}

impl std::fmt::Debug for FhirClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FhirClients")
    }
}

impl FhirClients {
    /// Secrets from the process's environment (then `$CREDENTIALS_DIRECTORY`).
    pub fn from_env() -> Self {
        Self::with_env(|k| std::env::var(k).ok())
    }

    /// Secrets from `env` (tests).
    pub fn with_env(env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            env: Arc::new(env),
            made: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The client of `feed`, made again when its settings changed (a reload).
    pub fn client(&self, feed: &Feed) -> Result<Arc<Client>, FhirError> {
        let mut made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = made.get(&feed.name)
            && Some(c.settings()) == feed.fhir()
        {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(Client::new(feed, &*self.env)?);
        made.insert(feed.name.clone(), Arc::clone(&c));
        Ok(c)
    }
}
