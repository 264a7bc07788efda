//! The upload form, the preview of what an upload will change, and the page after it.

use chrono_tz::Tz;

use super::{
    ChangeKind, Config, ImportReport, Markup, ParsedFile, Preview, SignedIn, html, local, page,
};
use crate::import::review as review_words;
use crate::import::{Change, RowError};
use crate::store::{ImportResult, PastImport};

/// How the upload pages write a local time: "Thu 26 Nov 09:00".
const WHEN: &str = "%a %-d %b %H:%M";

fn zone_of(config: &Config, clinic: &str) -> Tz {
    config
        .clinic(clinic)
        .map_or(chrono_tz::UTC, |c| c.time_zone)
}

/// The upload form, with when each clinic's schedule was last uploaded and by whom.
pub fn upload(
    session: &SignedIn,
    config: &Config,
    error: Option<&str>,
    notice: Option<&str>,
    last: &[PastImport],
) -> Markup {
    page(
        "Upload the schedule",
        Some(session),
        "Upload",
        &html! {
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            @if let Some(n) = notice {
                p.ok role="status" { (n) }
            }
            (last_uploads(config, last))
            p { "Choose the schedule exported from the clinic system: a CSV file, or the spreadsheet itself (.xlsx or .ods). You will see what changes before anything is saved." }
            form.card method="post" action="/desk/upload" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(session.csrf);
                p {
                    label for="file" { "Schedule file (CSV or spreadsheet)" }
                    input #file type="file" name="file" accept=".csv,.xlsx,.ods,text/csv,text/plain,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,application/vnd.oasis.opendocument.spreadsheet" required;
                }
                p {
                    label for="clinic" { "Clinic" }
                    select #clinic name="clinic" aria-describedby="clinic-hint" {
                        option value="" { "The file names the clinic on each row" }
                        @for c in config.clinics.values() {
                            option value=(c.key) { (c.display_name) }
                        }
                    }
                    span #clinic-hint .hint { "For exports without a clinic column, choose the clinic." }
                }
                p.check {
                    input #complete type="checkbox" name="complete" value="1";
                    label for="complete" { "This file is the whole schedule for its days (appointments missing from it are cancelled)" }
                }
                button type="submit" { "Preview" }
            }
        },
    )
}

/// "Last uploaded": per clinic, when, by whom and what it changed.
fn last_uploads(config: &Config, last: &[PastImport]) -> Markup {
    html! {
        section.notice aria-labelledby="last-upload" {
            h2 #last-upload { "Last upload" }
            ul {
                @for c in config.clinics.values() {
                    li {
                        strong { (c.display_name) } ": "
                        @match last.iter().find(|l| l.clinic == c.key) {
                            Some(l) => {
                                (local(l.at, c.time_zone, "%a %-d %b %Y at %H:%M"))
                                " by " (review_words::actor_name(&l.imported_by))
                                " (" (l.file_name) ": "
                                (l.new) " new, " (l.updated) " updated, " (l.cancelled) " cancelled)"
                            }
                            None => "never uploaded",
                        }
                    }
                }
            }
        }
    }
}

fn counts(r: &ImportReport) -> Markup {
    html! {
        ul.counts {
            li { strong { (r.new) } " new" }
            li { strong { (r.updated) } " updated" }
            li { strong { (r.cancelled) } " cancelled" }
            li { strong { (r.unchanged) } " unchanged" }
        }
    }
}

fn change_text(zone: Tz, c: &Change) -> String {
    let what = match &c.kind {
        ChangeKind::Rescheduled { from, to } => format!(
            "moved from {} to {}",
            local(*from, zone, WHEN),
            local(*to, zone, WHEN)
        ),
        ChangeKind::Cancelled => {
            format!("{}: cancelled by the file", local(c.starts_at, zone, WHEN))
        }
        ChangeKind::CancelledMissing => format!(
            "{}: cancelled, not in the file (answer: {})",
            local(c.starts_at, zone, WHEN),
            review_words::response_words(c.response)
        ),
        ChangeKind::Reinstated => format!("{}: booked again", local(c.starts_at, zone, WHEN)),
        ChangeKind::Kept => format!("{}: no change", local(c.starts_at, zone, WHEN)),
    };
    match &c.kept {
        Some(k) => format!(
            "{what}; kept as {} (set at the desk by {})",
            review_words::status_words(k.status),
            k.by
        ),
        None => what,
    }
}

/// The dry-run of an upload: its errors (nothing kept), or its changes with confirm/discard;
/// `shown` is the dry-run's fingerprints, which the confirm checks the import against.
pub fn preview(
    session: &SignedIn,
    config: &Config,
    p: &Preview,
    parsed: &ParsedFile,
    r: &ImportReport,
    notice: Option<&str>,
    shown: &str,
) -> Markup {
    let title = format!("Preview of {}", p.file_name);
    let undoing: Vec<&Change> = r.changes.iter().filter(|c| !c.undoes.is_empty()).collect();
    let keepable = r
        .changes
        .iter()
        .flat_map(|c| &c.undoes)
        .filter(|u| u.keepable())
        .count();
    let banner_zone = parsed
        .clinics
        .iter()
        .next()
        .map_or(chrono_tz::UTC, |k| zone_of(config, k));
    page(
        &title,
        Some(session),
        "Upload",
        &html! {
            @if let Some(n) = notice {
                p.error role="alert" { (n) }
            }
            @if r.errors.is_empty() {
                @if !r.warnings.is_empty() {
                    div.error.warnings role="alert" {
                        p { strong { "Check this file before you confirm." } }
                        ul {
                            @for w in &r.warnings {
                                li { (w.describe(banner_zone)) }
                            }
                        }
                    }
                }
                p { "Nothing has been saved yet. This is what importing " strong { (p.file_name) } " will do:" }
                (counts(r))
                p.booking {
                    @match r.booking_messages {
                        None => "Booking messages are off: nobody gets a message when you confirm.",
                        Some(0) => "Nobody gets a booking message when you confirm.",
                        Some(1) => "1 patient gets a booking message when you confirm.",
                        Some(n) => { (n) " patients get a booking message when you confirm." },
                    }
                }
                @if !r.left_out.is_empty() {
                    h2 { "Rows left out" }
                    p.error role="alert" {
                        (rows_count(left_out_rows(r))) " of " (p.file_name)
                        @if left_out_rows(r) == 1 { " has" } @else { " have" }
                        " a problem and will not be imported; the other rows will. Their appointments stay as they are: fix them in the clinic system and upload the file again to import them."
                    }
                    (error_table(&r.left_out))
                }
                @if !undoing.is_empty() {
                    h2 { "What this undoes" }
                    ul.undoes {
                        @for c in &undoing {
                            @let zone = zone_of(config, &c.clinic);
                            // Named by the time staff know it by: before the move.
                            @let now_at = match c.kind { ChangeKind::Rescheduled { from, .. } => from, _ => c.starts_at };
                            @for u in &c.undoes {
                                li {
                                    strong { (c.patient) } " (" (local(now_at, zone, WHEN)) "): " (u.describe())
                                }
                            }
                        }
                    }
                }
                @if !r.changes.is_empty() {
                    h2 { "Changes to check" }
                    ul.changes {
                        @for c in &r.changes {
                            li {
                                @if let Some(row) = c.row { "Row " (row) ": " }
                                strong { (c.patient) } ", " (c.appointment_id) " — " (change_text(zone_of(config, &c.clinic), c))
                            }
                        }
                    }
                }
                div.actions {
                    form.inline method="post" action="/desk/upload/confirm" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="token" value=(p.token);
                        input type="hidden" name="shown" value=(shown);
                        @if keepable > 0 {
                            p.check {
                                input #keep type="checkbox" name="keep" value="1";
                                label for="keep" { "Keep statuses set at the desk (no-show, cancelled, completed)" }
                            }
                        }
                        button.primary type="submit" { "Confirm import" }
                    }
                    form.inline method="post" action="/desk/upload/discard" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="token" value=(p.token);
                        button type="submit" { "Discard" }
                    }
                }
                h2 { "Every row" }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Row" } th scope="col" { "Change" } th scope="col" { "Clinic" } th scope="col" { "Appointment" } th scope="col" { "Patient" } th scope="col" { "When" } th scope="col" { "Phone" } } }
                        tbody {
                            @for (row, outcome) in r.applied_rows(parsed).iter().zip(&r.outcomes) {
                                @let zone = zone_of(config, &row.clinic);
                                tr {
                                    td { (row.row) }
                                    td { span.badge.(format!("o-{}", outcome.as_str())) { (outcome.as_str()) } }
                                    td { (config.clinic(&row.clinic).map_or(row.clinic.as_str(), |c| c.display_name.as_str())) }
                                    td { (row.appointment_id) }
                                    td { (row.patient_name) }
                                    td { (local(row.starts_at, zone, WHEN)) }
                                    td { (row.phone.masked()) }
                                }
                            }
                        }
                    }
                }
            } @else {
                p.error role="alert" {
                    "Nothing was imported: " (problems_count(r.errors.len())) " in " (p.file_name) ". Fix them in the file (or in the clinic system, then export again) and upload it again."
                }
                (error_table(&r.errors))
                p { a href="/desk/upload" { "Upload another file" } }
            }
        },
    )
}

/// Rows a partial import leaves out (a row may have several problems).
fn left_out_rows(r: &ImportReport) -> usize {
    r.left_out
        .iter()
        .map(|e| e.row)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

fn rows_count(n: usize) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{n} rows")
    }
}

fn problems_count(n: usize) -> String {
    if n == 1 {
        "1 problem".into()
    } else {
        format!("{n} problems")
    }
}

/// Each problem with its row, the patient on that row, the column, the value and the fix.
fn error_table(errors: &[RowError]) -> Markup {
    html! {
        div.scroll {
            table {
                thead { tr { th scope="col" { "Row" } th scope="col" { "Patient" } th scope="col" { "Column" } th scope="col" { "Value" } th scope="col" { "How to fix it" } } }
                tbody {
                    @for e in errors {
                        tr { td { (e.row) } td { (e.patient.as_deref().unwrap_or("")) } td { (e.column) } td { code { (e.value) } } td { (e.message) } }
                    }
                }
            }
        }
    }
}

/// After a confirmed upload: what it did, read back from the store; `left_out` counts the
/// file's rows with a problem, `again` says the confirm was pressed once more.
pub fn imported(session: &SignedIn, r: &ImportResult, left_out: usize, again: bool) -> Markup {
    page(
        "Schedule imported",
        Some(session),
        "Upload",
        &html! {
            @if again {
                p.notice role="status" { "This upload was already confirmed; nothing more was imported." }
            }
            p.ok role="status" { (r.file_name) " was imported." }
            ul.counts {
                li { strong { (r.new) } " new" }
                li { strong { (r.updated) } " updated" }
                li { strong { (r.cancelled) } " cancelled" }
                li { strong { (r.unchanged) } " unchanged" }
            }
            @if !r.kept.is_empty() {
                p.notice {
                    @if r.kept.len() == 1 { "1 status set at the desk was kept as it was:" }
                    @else { (r.kept.len()) " statuses set at the desk were kept as they were:" }
                }
                ul.kept {
                    @for k in &r.kept {
                        li { strong { (k.patient) } ": " (review_words::status_words(k.status)) ", set at the desk by " (k.by) }
                    }
                }
            }
            @if left_out > 0 {
                p.error {
                    (rows_count(left_out)) " with a problem "
                    @if left_out == 1 { "was" } @else { "were" }
                    " left out; fix them and upload the file again."
                }
            }
            p { a href="/desk/day" { "See the day board" } " · " a href="/desk/follow-ups" { "Follow-ups" } " · " a href="/desk/upload" { "Upload another file" } }
        },
    )
}

/// An upload that can no longer be confirmed (not found, discarded, replaced), with the way
/// to upload the file again.
pub fn upload_closed(session: &SignedIn, title: &str, text: &str) -> Markup {
    page(
        title,
        Some(session),
        "Upload",
        &html! {
            p.notice role="status" { (text) }
            p { a href="/desk/upload" { "Upload the schedule" } }
        },
    )
}
