//! Schedule upload: the dry-run preview, then confirm (one transaction) or discard. Each
//! POST that succeeds answers with a redirect to a page (the preview, the result, the upload
//! form) read from what was stored, so Back and Refresh never send a form again.

use std::sync::Arc;

use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{CsrfForm, DeskState, Staff, auth, html, urlencode, views};
use crate::config::Config;
use crate::import::{self, ApplyOptions, Audience, ImportError, ImportReport, ParseOptions};
use crate::store::{PastImport, Preview, Store, StoreError};

#[derive(Deserialize)]
pub(super) struct UploadQuery {
    /// `discarded` after a discard: a key the page maps to a fixed text.
    #[serde(default)]
    done: Option<String>,
}

pub(super) async fn upload_page(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<UploadQuery>,
) -> Result<Response, Response> {
    let last = state.db(|s| s.last_imports()).await?;
    let notice = (q.done.as_deref() == Some("discarded"))
        .then_some("The file was discarded. Nothing was imported; you can upload another file.");
    Ok(html(views::upload(
        &staff.session,
        &state.config(),
        None,
        notice,
        &last,
    )))
}

pub(super) async fn upload(
    State(state): State<DeskState>,
    staff: Staff,
    mut form: Multipart,
) -> Result<Response, Response> {
    let config = state.config();
    let (mut csrf, mut clinic, mut complete, mut file) = (String::new(), None, false, None);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let file_name = field.file_name().map(str::to_string);
                let Ok(bytes) = field.bytes().await else {
                    return Err(bad_upload(
                        &staff,
                        &config,
                        "The file could not be read completely; it may be larger than the desk accepts (desk.max_upload_bytes).",
                    ));
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "clinic" => {
                        let v = String::from_utf8_lossy(&bytes).trim().to_string();
                        clinic = (!v.is_empty()).then_some(v);
                    }
                    "complete" => complete = !bytes.is_empty(),
                    "file" => {
                        file = Some((
                            file_name.unwrap_or_else(|| "upload.csv".into()),
                            bytes.to_vec(),
                        ))
                    }
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(bad_upload(
                    &staff,
                    &config,
                    &format!(
                        "The upload could not be read ({e}); it may be larger than the desk accepts (desk.max_upload_bytes)."
                    ),
                ));
            }
        }
    }
    // A multipart form, so not a `CsrfForm`: its token is one of the fields read above.
    staff.check(&csrf)?;
    let Some((file_name, body)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(bad_upload(
            &staff,
            &config,
            "Choose the schedule file (a CSV file or a spreadsheet) before pressing Preview.",
        ));
    };
    let file_name = sanitize_file_name(&file_name);
    let preview = Preview {
        token: auth::new_token(),
        user_id: staff.session.user_id,
        clinic,
        file_name,
        body,
        complete,
        summary: String::new(),
        decision: None,
        import_id: None,
    };
    new_preview(&state, &staff, preview, false).await
}

/// Names are shown and written to the audit log: keep what a person can read.
fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(120).collect();
    if clean.trim().is_empty() {
        "upload.csv".into()
    } else {
        clean
    }
}

fn bad_upload(staff: &Staff, config: &Config, why: &str) -> Response {
    // The form again with the reason; "last upload" is left for the page itself.
    let last: &[PastImport] = &[];
    (
        StatusCode::BAD_REQUEST,
        views::upload(&staff.session, config, Some(why), None, last),
    )
        .into_response()
}

/// Runs the import as a dry-run: a file with errors shows them (nothing is kept); a good
/// one is kept as a preview awaiting confirm, and the answer sends the browser to it, so that
/// Back and Refresh show the preview again instead of asking to send the file again.
async fn new_preview(
    state: &DeskState,
    staff: &Staff,
    mut preview: Preview,
    changed: bool,
) -> Result<Response, Response> {
    let config = state.config();
    let now = state.clock.now();
    let actor = staff.actor();
    let cfg = Arc::clone(&config);
    let result = state
        .db(move |s| {
            let (parsed, report, summary) = match read_preview(s, &cfg, &preview, &actor, now)? {
                Ok(read) => read,
                Err(why) => return Ok(Err(why)),
            };
            if report.errors.is_empty() {
                preview.summary = summary;
                s.save_preview(&preview, now)?;
            }
            Ok(Ok((preview, parsed, report)))
        })
        .await?;
    let (preview, parsed, report) = result.map_err(|why| bad_upload(staff, &config, &why))?;
    if report.errors.is_empty() {
        return Ok(Redirect::to(&preview_url(&preview.token, changed)).into_response());
    }
    // Nothing was kept: the problems are the answer to this POST, as for any refused form.
    Err((
        StatusCode::UNPROCESSABLE_ENTITY,
        views::preview(
            &staff.session,
            &config,
            &preview,
            &parsed,
            &report,
            changed.then_some(CHANGED_AT_CONFIRM),
            "",
        ),
    )
        .into_response())
}

/// Said on the fresh preview a confirm sent the browser to.
const CHANGED_AT_CONFIRM: &str = "The schedule changed since this file was previewed (another upload or an import), so nothing was imported. Below is what the file would do now: check it and confirm again.";

/// Said when a preview, shown again, would now do something else than when the file was read.
const CHANGED_SINCE_READ: &str = "What this file would do has changed since it was read (the schedule was changed meanwhile, or some appointments have passed). Below is what it would do now: check it before you confirm.";

fn preview_url(token: &str, changed: bool) -> String {
    let changed = if changed { "&changed=1" } else { "" };
    format!("/desk/upload/preview?token={}{changed}", urlencode(token))
}

fn done_url(token: &str, again: bool) -> String {
    let again = if again { "&again=1" } else { "" };
    format!("/desk/upload/done?token={}{again}", urlencode(token))
}

/// The stored file read again and dry-run against the schedule as it is now, with the
/// fingerprints a confirm must match: the plain outcome and, only when keeping desk statuses
/// changes anything, the kept one after it (keeping is chosen on the preview page, so the
/// confirm must match either). `Ok(Err)` is a reason for staff.
fn read_preview(
    s: &mut Store,
    cfg: &Config,
    preview: &Preview,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Result<(import::ParsedFile, ImportReport, String), String>, StoreError> {
    let parsed = match parse_preview(cfg, preview, now) {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    let report = match dry_run(s, cfg, &parsed, preview, actor, now, false)? {
        Ok(r) => r,
        Err(why) => return Ok(Err(why)),
    };
    let mut summary = report.fingerprint();
    if report.errors.is_empty()
        && report
            .changes
            .iter()
            .flat_map(|c| &c.undoes)
            .any(import::Undo::keepable)
        && let Ok(kept) = dry_run(s, cfg, &parsed, preview, actor, now, true)?
    {
        summary = format!("{summary} {}", kept.fingerprint());
    }
    Ok(Ok((parsed, report, summary)))
}

#[derive(Deserialize)]
pub(super) struct PreviewQuery {
    #[serde(default)]
    token: String,
    /// Set when a confirm found the schedule changed and sent the browser here.
    #[serde(default)]
    changed: Option<String>,
}

/// The preview of a stored upload, dry-run again on every visit so that what it shows is
/// what a confirm from it will do.
pub(super) async fn preview_page(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, Response> {
    let config = state.config();
    let now = state.clock.now();
    let actor = staff.actor();
    let cfg = Arc::clone(&config);
    let token = q.token.clone();
    let found = state
        .db(move |s| {
            let Some(preview) = s.preview(&token, now)? else {
                return Ok(None);
            };
            if preview.decision.is_some() {
                return Ok(Some((preview, None)));
            }
            let read = read_preview(s, &cfg, &preview, &actor, now)?;
            Ok(Some((preview, Some(read))))
        })
        .await?;
    let Some((preview, read)) = found else {
        return Err(not_found(&staff));
    };
    let (parsed, report, summary) = match (preview.decision.as_deref(), read) {
        (Some("confirmed"), _) => {
            return Ok(Redirect::to(&done_url(&preview.token, false)).into_response());
        }
        (None, Some(Ok(read))) => read,
        (None, Some(Err(why))) => {
            // The settings changed under the stored file (a clinic or its format removed).
            return Err((
                StatusCode::CONFLICT,
                views::upload_closed(
                    &staff.session,
                    "This file cannot be imported now",
                    &format!(
                        "{} cannot be imported as the desk is set up now, so nothing was imported: {why}",
                        preview.file_name
                    ),
                ),
            )
                .into_response());
        }
        (decided, _) => return Ok(decided_page(&staff, &preview.file_name, decided)),
    };
    let notice = if q.changed.is_some() {
        Some(CHANGED_AT_CONFIRM)
    } else if summary != preview.summary {
        Some(CHANGED_SINCE_READ)
    } else {
        None
    };
    // Problems found only now leave nothing to confirm: the page lists them instead.
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((
        status,
        views::preview(
            &staff.session,
            &config,
            &preview,
            &parsed,
            &report,
            notice,
            &summary,
        ),
    )
        .into_response())
}

/// A preview that was discarded, or replaced by a fresh one when the schedule changed.
fn decided_page(staff: &Staff, file_name: &str, decision: Option<&str>) -> Response {
    let (title, text) = match decision {
        Some("discarded") => (
            "Discarded",
            format!(
                "This upload of {file_name} was already discarded: nothing was imported from it. You can upload the file again."
            ),
        ),
        Some("changed") => (
            "Preview replaced",
            format!(
                "This preview of {file_name} was already replaced: the schedule changed before it was confirmed, so nothing was imported from it. Upload the file again to see what it would do now."
            ),
        ),
        _ => (
            "Already done",
            format!("This upload of {file_name} was already closed; nothing more was imported."),
        ),
    };
    html(views::upload_closed(&staff.session, title, &text))
}

fn not_found(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::upload_closed(
            &staff.session,
            "Upload not found",
            "This preview no longer exists (a preview is kept for a day until it is confirmed), so nothing was imported from it. Upload the file again.",
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct DoneQuery {
    #[serde(default)]
    token: String,
    /// Set when the upload was confirmed again (Back, a second press).
    #[serde(default)]
    again: Option<String>,
}

/// The page after a confirm: what the import did, read back from what was stored.
pub(super) async fn done_page(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<DoneQuery>,
) -> Result<Response, Response> {
    let config = state.config();
    let now = state.clock.now();
    let token = q.token.clone();
    let found = state
        .db(move |s| {
            let Some(preview) = s.preview(&token, now)? else {
                return Ok(None);
            };
            let result = match (preview.decision.as_deref(), preview.import_id) {
                (Some("confirmed"), Some(id)) => s.import_result(id)?,
                _ => None,
            };
            Ok(Some((preview, result)))
        })
        .await?;
    match found {
        None => Err(not_found(&staff)),
        Some((preview, Some(result))) => {
            // Rows left out are the file's problems: read from the stored file again.
            let left_out = parse_preview(&config, &preview, now).map_or(0, |parsed| {
                parsed
                    .errors
                    .iter()
                    .map(|e| e.row)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            });
            Ok(html(views::imported(
                &staff.session,
                &result,
                left_out,
                q.again.is_some(),
            )))
        }
        Some((preview, None)) if preview.decision.is_none() => {
            Ok(Redirect::to(&preview_url(&preview.token, false)).into_response())
        }
        Some((preview, None)) => Ok(decided_page(
            &staff,
            &preview.file_name,
            preview.decision.as_deref(),
        )),
    }
}

/// The import as a dry-run, keeping desk statuses or not; `Ok(Err)` is a reason for staff.
fn dry_run(
    s: &mut Store,
    cfg: &Config,
    parsed: &import::ParsedFile,
    preview: &Preview,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
    keep: bool,
) -> Result<Result<ImportReport, String>, StoreError> {
    let opts = ApplyOptions {
        file_name: &preview.file_name,
        complete: preview.complete,
        dry_run: true,
        imported_by: actor,
        now,
    };
    match import::apply_open_keeping(s, cfg, parsed, &opts, keep) {
        // Dropping the open transaction writes nothing.
        Ok(applied) => Ok(Ok(applied.report)),
        Err(ImportError::Store(e)) => Err(e),
        Err(e) => Ok(Err(e.to_string())),
    }
}

fn parse_preview(
    config: &Config,
    p: &Preview,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<import::ParsedFile, String> {
    // The clinic's own export format, if it has one, follows from the clinic.
    let opts = ParseOptions {
        clinic: p.clinic.as_deref(),
        format: None,
        audience: Audience::Desk,
        now: Some(now),
    };
    import::parse(&p.body, config, &opts).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
pub(super) struct PreviewForm {
    token: String,
    /// "Keep statuses set at the desk", ticked on the preview.
    #[serde(default)]
    keep: Option<String>,
    /// The fingerprints of what the preview page showed (the stored ones when absent).
    #[serde(default)]
    shown: Option<String>,
}

/// The preview's fingerprint for the choice made: the second one is the outcome with desk
/// statuses kept, present only when keeping changes anything.
fn expected_fingerprint(summary: &str, keep: bool) -> (&str, bool) {
    let mut parts = summary.split(' ');
    let plain = parts.next().unwrap_or_default();
    match parts.next() {
        Some(kept) if keep => (kept, true),
        _ => (plain, false),
    }
}

enum Confirmed {
    Done(ImportReport, String),
    Outdated(Preview),
    Already(String),
    Missing,
}

pub(super) async fn confirm_upload(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<PreviewForm>,
) -> Result<Response, Response> {
    let config = state.config();
    let now = state.clock.now();
    let actor = staff.actor();
    let cfg = Arc::clone(&config);
    let f_token = f.token.clone();
    let result = state
        .db(move |s| {
            let Some(preview) = s.preview(&f.token, now)? else {
                return Ok(Confirmed::Missing);
            };
            if let Some(d) = &preview.decision {
                return Ok(Confirmed::Already(d.clone()));
            }
            let Ok(parsed) = parse_preview(&cfg, &preview, now) else {
                // The config changed under the preview (a clinic or format removed).
                s.close_preview(&preview.token, "changed", &actor, now)?;
                return Ok(Confirmed::Outdated(preview));
            };
            // What the page showed, which is what the file did when it was last shown: the
            // schedule may have changed between the upload and that page.
            let shown = f.shown.as_deref().unwrap_or(&preview.summary);
            let (expected, keep) = expected_fingerprint(shown, f.keep.is_some());
            let expected = expected.to_string();
            let applied = match import::apply_open_keeping(
                s,
                &cfg,
                &parsed,
                &ApplyOptions {
                    file_name: &preview.file_name,
                    complete: preview.complete,
                    dry_run: false,
                    imported_by: &actor,
                    now,
                },
                keep,
            ) {
                Ok(a) => a,
                Err(ImportError::Store(e)) => return Err(e),
                Err(ImportError::Options(m)) => return Err(StoreError::Corrupt(m)),
            };
            // The file must still do exactly what was previewed, checked in the import's own
            // transaction, which also settles the preview: a second confirm writes nothing.
            let still_previewed =
                applied.report.errors.is_empty() && applied.report.fingerprint() == expected;
            let Some((tx, import_id)) = applied.open.as_ref().filter(|_| still_previewed) else {
                drop(applied);
                s.close_preview(&preview.token, "changed", &actor, now)?;
                return Ok(Confirmed::Outdated(preview));
            };
            if let Err(decided) = tx.settle_preview(&preview.token, *import_id, now)? {
                return Ok(Confirmed::Already(decided));
            }
            let r = &applied.report;
            let mut parts = vec![
                format!("{} new", r.new),
                format!("{} updated", r.updated),
                format!("{} cancelled", r.cancelled),
                format!("{} unchanged", r.unchanged),
            ];
            match r.kept {
                0 => {}
                1 => parts.push("1 desk status kept".into()),
                n => parts.push(format!("{n} desk statuses kept")),
            }
            let left_out: std::collections::BTreeSet<usize> =
                r.left_out.iter().map(|e| e.row).collect();
            match left_out.len() {
                0 => {}
                1 => parts.push("1 row left out".into()),
                n => parts.push(format!("{n} rows left out")),
            }
            let counts = parts.join(", ");
            tx.audit_staff(
                &actor,
                "upload_confirmed",
                Some(&preview.file_name),
                Some(&counts),
                now,
            )?;
            Ok(Confirmed::Done(applied.commit()?, preview.token))
        })
        .await?;
    match result {
        Confirmed::Done(report, token) => {
            tracing::info!(user = %staff.session.user, file = %report.file, new = report.new, updated = report.updated, cancelled = report.cancelled, "desk: schedule imported");
            Ok(Redirect::to(&done_url(&token, false)).into_response())
        }
        Confirmed::Outdated(mut preview) => {
            preview.token = auth::new_token();
            preview.decision = None;
            new_preview(&state, &staff, preview, true).await
        }
        Confirmed::Already(d) if d == "confirmed" => {
            Ok(Redirect::to(&done_url(&f_token, true)).into_response())
        }
        // The preview's page says what became of it.
        Confirmed::Already(_) => Ok(Redirect::to(&preview_url(&f_token, false)).into_response()),
        Confirmed::Missing => Err(not_found(&staff)),
    }
}

/// Closes a preview unimported, then back to the upload page, which says so.
pub(super) async fn discard_upload(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<PreviewForm>,
) -> Result<Response, Response> {
    let now = state.clock.now();
    let actor = staff.actor();
    let token = f.token.clone();
    let decided = state
        .db(move |s| s.close_preview(&token, "discarded", &actor, now))
        .await?;
    let to = match decided.as_deref() {
        None => "/desk/upload?done=discarded".to_string(),
        Some("confirmed") => done_url(&f.token, true),
        Some(_) => preview_url(&f.token, false),
    };
    Ok(Redirect::to(&to).into_response())
}
