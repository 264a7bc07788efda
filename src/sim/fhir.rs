//! The simulator's FHIR R4 server under `/fhir`: Appointments, Patients and Locations that
//! tests seed and change, searched as HAPI and most servers do (`date=ge…&date=lt…`,
//! `_lastUpdated=gt…`, `status`, `_include=Appointment:patient|location`, `_count`, `next`
//! links), each resource versioned (`meta.versionId`, `ETag: W/"n"`), `PUT` under `If-Match`
//! (412 on a stale version), `POST AppointmentResponse` (with `If-None-Exist`), a
//! CapabilityStatement at `/fhir/metadata` (read-only on request, as OpenEMR's is), a bearer
//! token (401 with an OperationOutcome), an OAuth2 client-credentials token endpoint at
//! `/fhir-auth/token`, and injected OperationOutcome errors.
//!
//! Driven from Rust ([`super::Sim::fhir_put`] …) or over HTTP: `POST /_sim/fhir/resources`
//! (a resource, created or changed), `DELETE /_sim/fhir/resources/{type}/{id}`,
//! `GET /_sim/fhir/writes`, `POST /_sim/fhir/faults` and `POST /_sim/fhir/settings`
//! (`{"read_only": true, "token": "…", "no_token": false}`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Shared;

/// The simulated server's bearer token unless a test sets another (or none).
pub const SIM_FHIR_TOKEN: &str = "sim-fhir-token";
/// The client id the token endpoint accepts.
pub const SIM_FHIR_CLIENT_ID: &str = "sim-client";
/// The client secret the token endpoint accepts.
pub const SIM_FHIR_CLIENT_SECRET: &str = "sim-fhir-secret";

/// An error the next matching FHIR request gets, as an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimFhirFault {
    /// Which requests it hits: `search`, `read`, `update`, `create`, or `None` for any.
    pub on: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// The code (`exception`, `invalid`, `business-rule`, ...).
    pub code: String,
    /// The diagnostics.
    pub diagnostics: String,
}

/// A write the simulated server received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimFhirWrite {
    /// `PUT` or `POST`.
    pub method: String,
    /// `Appointment/7`, `AppointmentResponse`.
    pub path: String,
    /// The `If-Match` header, as sent.
    pub if_match: Option<String>,
    /// The body.
    pub body: Value,
    /// What it was answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct Stored {
    body: Value,
    version: u64,
    updated: DateTime<Utc>,
    deleted: bool,
}

/// The simulated FHIR server's state (inside the simulator's one lock).
#[derive(Debug)]
pub(super) struct FhirState {
    resources: BTreeMap<(String, String), Stored>,
    read_only: bool,
    token: Option<String>,
    faults: VecDeque<SimFhirFault>,
    writes: Vec<SimFhirWrite>,
    searches: usize,
    touch_before_put: usize,
    last_stamp: DateTime<Utc>,
    seq: u64,
}

impl Default for FhirState {
    fn default() -> Self {
        Self {
            resources: BTreeMap::new(),
            read_only: false,
            token: Some(SIM_FHIR_TOKEN.into()),
            faults: VecDeque::new(),
            writes: Vec::new(),
            searches: 0,
            touch_before_put: 0,
            last_stamp: DateTime::<Utc>::UNIX_EPOCH,
            seq: 0,
        }
    }
}

impl FhirState {
    /// A stamp later than every one before (two changes in one millisecond stay ordered).
    fn stamp(&mut self) -> DateTime<Utc> {
        let now = crate::time::Clock::System.now();
        self.last_stamp = if now > self.last_stamp {
            now
        } else {
            self.last_stamp + Duration::milliseconds(1)
        };
        self.last_stamp
    }

    /// Stores a resource as a new version; returns it.
    fn put(&mut self, mut body: Value) -> Option<u64> {
        let kind = body["resourceType"].as_str()?.to_string();
        let id = match body["id"].as_str() {
            Some(id) => id.to_string(),
            None => {
                self.seq += 1;
                let id = format!("sim-{}", self.seq);
                body["id"] = json!(id);
                id
            }
        };
        let stamp = self.stamp();
        let key = (kind, id);
        let version = self.resources.get(&key).map_or(1, |s| s.version + 1);
        body["meta"] = json!({
            "versionId": version.to_string(),
            "lastUpdated": stamp.to_rfc3339_opts(SecondsFormat::Millis, true)
        });
        self.resources.insert(
            key,
            Stored {
                body,
                version,
                updated: stamp,
                deleted: false,
            },
        );
        Some(version)
    }

    fn fault(&mut self, op: &str) -> Option<SimFhirFault> {
        let i = self
            .faults
            .iter()
            .position(|f| f.on.as_deref().is_none_or(|o| o == op))?;
        self.faults.remove(i)
    }

    fn live(&self, kind: &str, id: &str) -> Option<&Stored> {
        self.resources
            .get(&(kind.to_string(), id.to_string()))
            .filter(|s| !s.deleted)
    }
}

/// The FHIR routes, merged into the simulator's router.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/fhir/metadata", get(metadata))
        .route("/fhir/{kind}", get(search).post(create))
        .route("/fhir/{kind}/{id}", get(read).put(update))
        .route("/fhir-auth/token", post(token))
        .route("/_sim/fhir/resources", post(sim_put))
        .route("/_sim/fhir/resources/{kind}/{id}", delete(sim_delete))
        .route("/_sim/fhir/writes", get(sim_writes))
        .route("/_sim/fhir/faults", post(sim_fault))
        .route("/_sim/fhir/settings", post(sim_settings))
        .with_state(shared)
}

fn outcome(status: StatusCode, code: &str, diagnostics: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]
        })
        .to_string(),
    )
        .into_response()
}

fn fhir_json(status: StatusCode, body: &Value, version: Option<u64>) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        body.to_string(),
    )
        .into_response();
    if let Some(v) = version
        && let Ok(h) = format!("W/\"{v}\"").parse()
    {
        resp.headers_mut().insert(header::ETAG, h);
    }
    resp
}

/// The bearer check and any injected fault, before a request is served.
fn gate(shared: &Shared, headers: &HeaderMap, op: &str) -> Option<Response> {
    let mut st = shared.state();
    let fhir = &mut st.fhir;
    if let Some(token) = &fhir.token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(token.as_str()) {
            return Some(outcome(
                StatusCode::UNAUTHORIZED,
                "login",
                "Authentication required: the bearer token is missing or not valid",
            ));
        }
    }
    let f = fhir.fault(op)?;
    Some(outcome(
        StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &f.code,
        &f.diagnostics,
    ))
}

async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    let read_only = shared.state().fhir.read_only;
    let i = |codes: &[&str]| -> Vec<Value> { codes.iter().map(|c| json!({"code": c})).collect() };
    let (appt, resp): (&[&str], &[&str]) = if read_only {
        (&["read", "search-type"], &[])
    } else {
        (&["read", "search-type", "update"], &["create", "read"])
    };
    let mut resources = vec![
        json!({"type": "Appointment", "interaction": i(appt)}),
        json!({"type": "Patient", "interaction": i(&["read", "search-type"])}),
        json!({"type": "Location", "interaction": i(&["read", "search-type"])}),
    ];
    if !resp.is_empty() {
        resources.push(json!({"type": "AppointmentResponse", "interaction": i(resp)}));
    }
    let body = json!({
        "resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
        "fhirVersion": "4.0.1", "format": ["application/fhir+json"],
        "rest": [{"mode": "server", "resource": resources}]
    });
    fhir_json(StatusCode::OK, &body, None)
}

/// `ge2026-12-01T00:00:00Z` → (`ge`, instant); a bare date is midnight UTC.
fn prefixed(v: &str) -> Option<(&str, DateTime<Utc>)> {
    let (p, rest) = match v.get(..2) {
        Some(p @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le" | "sa" | "eb")) => (p, &v[2..]),
        _ => ("eq", v),
    };
    let t = DateTime::parse_from_rfc3339(rest)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(rest, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        })?;
    Some((p, t))
}

fn holds(p: &str, x: DateTime<Utc>, t: DateTime<Utc>) -> bool {
    match p {
        "gt" | "sa" => x > t,
        "lt" | "eb" => x < t,
        "ge" => x >= t,
        "le" => x <= t,
        "ne" => x != t,
        _ => x == t,
    }
}

async fn search(
    State(shared): State<Arc<Shared>>,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&shared, &headers, "search") {
        return r;
    }
    let query = query.unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut conds: Vec<(&str, &str)> = Vec::new();
    let (mut count, mut offset, mut includes) = (50_usize, 0_usize, Vec::new());
    for (k, v) in &params {
        match k.as_str() {
            "_count" => count = v.parse().unwrap_or(50).clamp(1, 1000),
            "_getpagesoffset" => offset = v.parse().unwrap_or(0),
            "_include" => includes.push(v.as_str()),
            "date" | "start" | "_lastUpdated" | "status" | "_id" | "patient" => {
                conds.push((k.as_str(), v.as_str()));
            }
            other => {
                return outcome(
                    StatusCode::BAD_REQUEST,
                    "not-supported",
                    &format!("Unknown search parameter \"{other}\" for resource type \"{kind}\""),
                );
            }
        }
    }
    let mut st = shared.state();
    st.fhir.searches += 1;
    let stamp = st.fhir.stamp();
    let fhir = &st.fhir;
    let mut matched: Vec<&Stored> = Vec::new();
    for ((k, _), s) in &fhir.resources {
        if *k != kind || s.deleted {
            continue;
        }
        let start = s.body["start"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let ok = conds.iter().all(|(k, v)| match *k {
            // An Appointment's `date` and a Slot's `start` both search the start.
            "date" | "start" => match (prefixed(v), start) {
                (Some((p, t)), Some(x)) => holds(p, x, t),
                _ => false,
            },
            "_lastUpdated" => prefixed(v).is_some_and(|(p, t)| holds(p, s.updated, t)),
            "status" => v.split(',').any(|x| s.body["status"] == x),
            "_id" => s.body["id"] == *v,
            "patient" => s.body["participant"].as_array().is_some_and(|ps| {
                ps.iter().any(|p| {
                    p["actor"]["reference"].as_str().is_some_and(|r| {
                        r == *v || r == format!("Patient/{v}") || r.ends_with(&format!("/{v}"))
                    })
                })
            }),
            _ => true,
        });
        if ok {
            matched.push(s);
        }
    }
    matched.sort_by(|a, b| {
        (a.body["start"].as_str(), a.body["id"].as_str())
            .cmp(&(b.body["start"].as_str(), b.body["id"].as_str()))
    });
    let total = matched.len();
    let page: Vec<&Stored> = matched.into_iter().skip(offset).take(count).collect();
    let mut entry: Vec<Value> = page
        .iter()
        .map(|s| json!({"resource": s.body, "search": {"mode": "match"}}))
        .collect();
    let mut pulled: Vec<(String, String)> = Vec::new();
    for s in &page {
        for inc in &includes {
            let want = match *inc {
                "Appointment:patient" => "Patient",
                "Appointment:location" => "Location",
                "Slot:schedule" => "Schedule",
                _ => continue,
            };
            let refs: Vec<&Value> = if want == "Schedule" {
                vec![&s.body["schedule"]]
            } else {
                s.body["participant"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| &p["actor"])
                    .collect()
            };
            for a in refs {
                let Some(r) = a["reference"].as_str() else {
                    continue;
                };
                let mut parts = r.rsplit('/');
                let (Some(id), Some(k)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let key = (k.to_string(), id.to_string());
                if k == want && !pulled.contains(&key) {
                    if let Some(res) = fhir.live(k, id) {
                        entry.push(json!({"resource": res.body, "search": {"mode": "include"}}));
                    }
                    pulled.push(key);
                }
            }
        }
    }
    let base = format!("http://{}/fhir/{kind}", shared.addr);
    let rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "_getpagesoffset")
        .cloned()
        .collect();
    let link_to = |off: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &rest {
            q.append_pair(k, v);
        }
        if off > 0 {
            q.append_pair("_getpagesoffset", &off.to_string());
        }
        format!("{base}?{}", q.finish())
    };
    let mut link = vec![json!({"relation": "self", "url": link_to(offset)})];
    if offset + count < total {
        link.push(json!({"relation": "next", "url": link_to(offset + count)}));
    }
    let body = json!({
        "resourceType": "Bundle", "type": "searchset",
        "meta": {"lastUpdated": stamp.to_rfc3339_opts(SecondsFormat::Millis, true)},
        "total": total, "link": link, "entry": entry
    });
    drop(st);
    fhir_json(StatusCode::OK, &body, None)
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&shared, &headers, "read") {
        return r;
    }
    let st = shared.state();
    match st.fhir.resources.get(&(kind.clone(), id.clone())) {
        Some(s) if s.deleted => outcome(
            StatusCode::GONE,
            "deleted",
            &format!("Resource {kind}/{id} has been deleted"),
        ),
        Some(s) => fhir_json(StatusCode::OK, &s.body, Some(s.version)),
        None => outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("Resource {kind}/{id} is not known"),
        ),
    }
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = format!("{kind}/{id}");
    let answer = (|| {
        if let Some(r) = gate(&shared, &headers, "update") {
            return r;
        }
        let mut st = shared.state();
        let fhir = &mut st.fhir;
        if fhir.read_only {
            return outcome(
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                &format!("update is not supported for {kind}"),
            );
        }
        if parsed["resourceType"] != kind.as_str() || parsed["id"] != id.as_str() {
            return outcome(
                StatusCode::BAD_REQUEST,
                "invalid",
                "the body's resourceType and id must match the URL",
            );
        }
        if let Some(why) = invalid_appointment(&parsed) {
            return outcome(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &why);
        }
        if fhir.touch_before_put > 0
            && let Some(body) = fhir.live(&kind, &id).map(|s| s.body.clone())
        {
            // Someone at the practice changes the appointment just before this PUT lands.
            fhir.touch_before_put -= 1;
            fhir.put(body);
        }
        let current = fhir.live(&kind, &id).map(|s| s.version);
        if let (Some(want), Some(cur)) = (&if_match, current)
            && *want != format!("W/\"{cur}\"")
        {
            return outcome(
                StatusCode::PRECONDITION_FAILED,
                "conflict",
                &format!("{kind}/{id} is at version {cur}, not {want}"),
            );
        }
        match fhir.put(parsed.clone()) {
            Some(v) => {
                let body = fhir
                    .live(&kind, &id)
                    .map_or(Value::Null, |s| s.body.clone());
                fhir_json(
                    if current.is_some() {
                        StatusCode::OK
                    } else {
                        StatusCode::CREATED
                    },
                    &body,
                    Some(v),
                )
            }
            None => outcome(StatusCode::BAD_REQUEST, "invalid", "no resourceType"),
        }
    })();
    shared.state().fhir.writes.push(SimFhirWrite {
        method: "PUT".into(),
        path,
        if_match,
        body: parsed,
        status: answer.status().as_u16(),
    });
    answer
}

/// What a real server's validation refuses in an Appointment (R4 invariants app-2 and app-3,
/// the status value set, an end before the start); `None` for any other resource.
fn invalid_appointment(body: &Value) -> Option<String> {
    const STATUSES: [&str; 10] = [
        "proposed",
        "pending",
        "booked",
        "arrived",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
        "checked-in",
        "waitlist",
    ];
    if body["resourceType"] != "Appointment" {
        return None;
    }
    let status = body["status"].as_str().unwrap_or("");
    if !STATUSES.contains(&status) {
        return Some(format!(
            "Appointment.status {status:?} is not a valid status"
        ));
    }
    let time = |f: &str| {
        body[f]
            .as_str()
            .map(|s| chrono::DateTime::parse_from_rfc3339(s).map_err(|_| f.to_string()))
    };
    match (time("start"), time("end")) {
        (Some(Err(f)), _) | (_, Some(Err(f))) => {
            Some(format!("Appointment.{f} is not a valid instant"))
        }
        (Some(Ok(_)), None) | (None, Some(Ok(_))) => {
            Some("app-2: either start and end are specified, or neither".into())
        }
        (Some(Ok(s)), Some(Ok(e))) if e < s => Some("Appointment.end is before its start".into()),
        (None, None) if !matches!(status, "proposed" | "cancelled" | "waitlist") => Some(
            "app-3: only proposed or cancelled appointments can be missing start/end dates".into(),
        ),
        _ if body["participant"].as_array().is_none_or(Vec::is_empty) => {
            Some("Appointment.participant: at least one is required".into())
        }
        _ => None,
    }
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = (|| {
        if let Some(r) = gate(&shared, &headers, "create") {
            return r;
        }
        let mut st = shared.state();
        let fhir = &mut st.fhir;
        if fhir.read_only || kind != "AppointmentResponse" {
            return outcome(
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                &format!("create is not supported for {kind}"),
            );
        }
        if parsed["resourceType"] != kind.as_str() {
            return outcome(StatusCode::BAD_REQUEST, "invalid", "wrong resourceType");
        }
        let same = fhir.resources.values().find(|s| {
            !s.deleted
                && s.body["resourceType"] == "AppointmentResponse"
                && s.body["appointment"] == parsed["appointment"]
                && s.body["actor"] == parsed["actor"]
        });
        if headers.contains_key("if-none-exist")
            && let Some(s) = same
        {
            return fhir_json(StatusCode::OK, &s.body.clone(), Some(s.version));
        }
        let mut body = parsed.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("id");
        }
        let v = fhir.put(body);
        fhir_json(StatusCode::CREATED, &json!({"resourceType": kind}), v)
    })();
    shared.state().fhir.writes.push(SimFhirWrite {
        method: "POST".into(),
        path: kind,
        if_match: None,
        body: parsed,
        status: answer.status().as_u16(),
    });
    answer
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    client_id: String,
    client_secret: String,
}

async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form: Option<TokenForm> = serde_urlencoded::from_bytes(&body).ok();
    let ok = form.as_ref().is_some_and(|f| {
        f.grant_type == "client_credentials"
            && f.client_id == SIM_FHIR_CLIENT_ID
            && f.client_secret == SIM_FHIR_CLIENT_SECRET
    });
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client", "error_description": "unknown client or wrong secret"})),
        )
            .into_response();
    }
    let token = shared.state().fhir.token.clone().unwrap_or_default();
    axum::Json(json!({"access_token": token, "token_type": "bearer", "expires_in": 300}))
        .into_response()
}

async fn sim_put(
    State(shared): State<Arc<Shared>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    match shared.state().fhir.put(body) {
        Some(v) => axum::Json(json!({"version": v})).into_response(),
        None => (StatusCode::BAD_REQUEST, "a resource needs a resourceType").into_response(),
    }
}

async fn sim_delete(
    State(shared): State<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
) -> StatusCode {
    if let Some(s) = shared.state().fhir.resources.get_mut(&(kind, id)) {
        s.deleted = true;
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn sim_writes(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<SimFhirWrite>> {
    axum::Json(shared.state().fhir.writes.clone())
}

async fn sim_fault(
    State(shared): State<Arc<Shared>>,
    axum::Json(f): axum::Json<SimFhirFault>,
) -> StatusCode {
    shared.state().fhir.faults.push_back(f);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Settings {
    read_only: Option<bool>,
    /// The token required from now on.
    token: Option<String>,
    /// No token required.
    #[serde(default)]
    no_token: bool,
}

async fn sim_settings(
    State(shared): State<Arc<Shared>>,
    axum::Json(s): axum::Json<Settings>,
) -> StatusCode {
    let mut st = shared.state();
    if let Some(r) = s.read_only {
        st.fhir.read_only = r;
    }
    if let Some(t) = s.token {
        st.fhir.token = Some(t);
    }
    if s.no_token {
        st.fhir.token = None;
    }
    StatusCode::NO_CONTENT
}

impl super::Sim {
    /// The FHIR base URL: `http://127.0.0.1:PORT/fhir`.
    pub fn fhir_base(&self) -> String {
        format!("http://{}/fhir", self.addr)
    }

    /// Creates or changes a resource (a new version, `lastUpdated` now); returns its version.
    pub fn fhir_put(&self, resource: Value) -> u64 {
        self.shared.state().fhir.put(resource).unwrap_or(0)
    }

    /// Deletes a resource: reads answer 410 and searches no longer list it.
    pub fn fhir_delete(&self, kind: &str, id: &str) {
        if let Some(s) = self
            .shared
            .state()
            .fhir
            .resources
            .get_mut(&(kind.to_string(), id.to_string()))
        {
            s.deleted = true;
        }
    }

    /// A resource as the server has it, with its version.
    pub fn fhir_resource(&self, kind: &str, id: &str) -> Option<(Value, u64)> {
        self.shared
            .state()
            .fhir
            .live(kind, id)
            .map(|s| (s.body.clone(), s.version))
    }

    /// Every PUT and POST received, in order.
    pub fn fhir_writes(&self) -> Vec<SimFhirWrite> {
        self.shared.state().fhir.writes.clone()
    }

    /// Searches answered so far.
    pub fn fhir_searches(&self) -> usize {
        self.shared.state().fhir.searches
    }

    /// Queues an OperationOutcome error for the next matching request.
    pub fn fhir_fault(&self, fault: SimFhirFault) {
        self.shared.state().fhir.faults.push_back(fault);
    }

    /// Makes the server read-only (as OpenEMR's FHIR API is) or writable again.
    pub fn fhir_read_only(&self, read_only: bool) {
        self.shared.state().fhir.read_only = read_only;
    }

    /// The bearer token required (`None`: none).
    pub fn fhir_token(&self, token: Option<&str>) {
        self.shared.state().fhir.token = token.map(str::to_string);
    }

    /// The next PUT finds the resource changed just before it lands (a new version), so an
    /// `If-Match` on the version read before gets 412.
    pub fn fhir_change_before_next_put(&self) {
        self.shared.state().fhir.touch_before_put += 1;
    }
}
