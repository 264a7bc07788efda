//! Schedule upload: the dry-run preview, then confirm (one transaction) or discard.

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{CsrfForm, DeskState, Staff, auth, html, views};
use crate::config::Config;
use crate::import::{self, ApplyOptions, Audience, ImportError, ImportReport, ParseOptions};
use crate::store::{PastImport, Preview, Store, StoreError};

pub(super) async fn upload_page(
    State(state): State<DeskState>,
    staff: Staff,
) -> Result<Response, Response> {
    let last = state.db(|s| s.last_imports()).await?;
    Ok(html(views::upload(
        &staff.session,
        &state.config(),
        None,
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
    };
    show_preview(&state, &staff, preview, None).await
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
        views::upload(&staff.session, config, Some(why), last),
    )
        .into_response()
}

/// Runs the import as a dry-run; a file with errors shows them (nothing is kept), a good
/// one is kept as a preview awaiting confirm.
async fn show_preview(
    state: &DeskState,
    staff: &Staff,
    mut preview: Preview,
    notice: Option<&str>,
) -> Result<Response, Response> {
    let config = state.config();
    let now = state.clock.now();
    let actor = staff.actor();
    let cfg = Arc::clone(&config);
    let result = state
        .db(move |s| {
            let parsed = match parse_preview(&cfg, &preview) {
                Ok(p) => p,
                Err(why) => return Ok(Err(why)),
            };
            let report = match dry_run(s, &cfg, &parsed, &preview, &actor, now, false)? {
                Ok(r) => r,
                Err(why) => return Ok(Err(why)),
            };
            if report.errors.is_empty() {
                // Keeping desk statuses is chosen on the preview, so the confirm must match
                // either outcome: both fingerprints are kept, the second only when it differs.
                preview.summary = report.fingerprint();
                if report
                    .changes
                    .iter()
                    .flat_map(|c| &c.undoes)
                    .any(import::Undo::keepable)
                    && let Ok(kept) = dry_run(s, &cfg, &parsed, &preview, &actor, now, true)?
                {
                    preview.summary = format!("{} {}", preview.summary, kept.fingerprint());
                }
                s.save_preview(&preview, now)?;
            }
            Ok(Ok((preview, parsed, report)))
        })
        .await?;
    let (preview, parsed, report) = result.map_err(|why| bad_upload(staff, &config, &why))?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        views::preview(&staff.session, &config, &preview, &parsed, &report, notice),
    )
        .into_response())
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

fn parse_preview(config: &Config, p: &Preview) -> Result<import::ParsedFile, String> {
    // The clinic's own export format, if it has one, follows from the clinic.
    let opts = ParseOptions {
        clinic: p.clinic.as_deref(),
        format: None,
        audience: Audience::Desk,
    };
    import::parse(&p.body, config, &opts).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
pub(super) struct PreviewForm {
    token: String,
    /// "Keep statuses set at the desk", ticked on the preview.
    #[serde(default)]
    keep: Option<String>,
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
    Done(ImportReport),
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
    let result = state
        .db(move |s| {
            let Some(preview) = s.preview(&f.token)? else {
                return Ok(Confirmed::Missing);
            };
            if let Some(d) = &preview.decision {
                return Ok(Confirmed::Already(d.clone()));
            }
            let Ok(parsed) = parse_preview(&cfg, &preview) else {
                // The config changed under the preview (a clinic or format removed).
                s.close_preview(&preview.token, "changed", &actor, now)?;
                return Ok(Confirmed::Outdated(preview));
            };
            let (expected, keep) = expected_fingerprint(&preview.summary, f.keep.is_some());
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
            Ok(Confirmed::Done(applied.commit()?))
        })
        .await?;
    match result {
        Confirmed::Done(report) => {
            tracing::info!(user = %staff.session.user, file = %report.file, new = report.new, updated = report.updated, cancelled = report.cancelled, "desk: schedule imported");
            Ok(html(views::imported(&staff.session, &report)))
        }
        Confirmed::Outdated(mut preview) => {
            preview.token = auth::new_token();
            preview.decision = None;
            show_preview(&state, &staff, preview, Some("The schedule changed since this file was previewed (another upload or an import), so nothing was imported. Below is what the file would do now: check it and confirm again.")).await
        }
        Confirmed::Already(d) => Ok(html(views::message(
            Some(&staff.session),
            "Already done",
            &format!("This upload was already {d}; nothing more was imported. The day board shows the schedule as it is."),
        ))),
        Confirmed::Missing => Err((
            StatusCode::NOT_FOUND,
            views::message(Some(&staff.session), "Upload not found", "This preview no longer exists (previews are kept for a day). Upload the file again."),
        )
            .into_response()),
    }
}

pub(super) async fn discard_upload(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<PreviewForm>,
) -> Result<Response, Response> {
    let now = state.clock.now();
    let actor = staff.actor();
    let decided = state
        .db(move |s| s.close_preview(&f.token, "discarded", &actor, now))
        .await?;
    Ok(match decided {
        None => html(views::message(
            Some(&staff.session),
            "Discarded",
            "Nothing was imported. You can upload another file.",
        )),
        Some(d) => html(views::message(
            Some(&staff.session),
            "Already done",
            &format!("This upload was already {d}."),
        )),
    })
}
