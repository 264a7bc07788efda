//! The upload form, the preview of what an upload will change, and the page after it.

use super::{
    ChangeKind, Config, ImportReport, Markup, ParsedFile, Preview, SignedIn, html, local, page,
};

/// The upload form.
pub fn upload(session: &SignedIn, config: &Config, error: Option<&str>) -> Markup {
    page(
        "Upload the schedule",
        Some(session),
        "Upload",
        &html! {
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            p { "Choose the CSV export of the schedule. You will see what changes before anything is saved." }
            form.card method="post" action="/desk/upload" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(session.csrf);
                p {
                    label for="file" { "Schedule file (.csv)" }
                    input #file type="file" name="file" accept=".csv,text/csv,text/plain" required;
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

fn change_text(config: &Config, clinic: &str, kind: &ChangeKind) -> String {
    let zone = config
        .clinic(clinic)
        .map_or(chrono_tz::UTC, |c| c.time_zone);
    match kind {
        ChangeKind::Rescheduled { from, to } => format!(
            "moved from {} to {}",
            local(*from, zone, "%a %-d %b %H:%M"),
            local(*to, zone, "%a %-d %b %H:%M")
        ),
        ChangeKind::Cancelled => "cancelled by the file".into(),
        ChangeKind::CancelledMissing => "cancelled: not in the file".into(),
        ChangeKind::Reinstated => "booked again".into(),
    }
}

/// The dry-run of an upload: its errors (nothing kept), or its changes with confirm/discard.
pub fn preview(
    session: &SignedIn,
    config: &Config,
    p: &Preview,
    parsed: &ParsedFile,
    r: &ImportReport,
    notice: Option<&str>,
) -> Markup {
    let title = format!("Preview of {}", p.file_name);
    page(
        &title,
        Some(session),
        "Upload",
        &html! {
            @if let Some(n) = notice {
                p.error role="alert" { (n) }
            }
            @if r.errors.is_empty() {
                p { "Nothing has been saved yet. This is what importing " strong { (p.file_name) } " will do:" }
                (counts(r))
                @if !r.changes.is_empty() {
                    h2 { "Changes to check" }
                    ul.changes {
                        @for c in &r.changes {
                            li {
                                @if let Some(row) = c.row { "Row " (row) ": " }
                                (c.clinic) " appointment " (c.appointment_id) " — " (change_text(config, &c.clinic, &c.kind))
                            }
                        }
                    }
                }
                div.actions {
                    form.inline method="post" action="/desk/upload/confirm" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="token" value=(p.token);
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
                            @for (row, outcome) in parsed.rows.iter().zip(&r.outcomes) {
                                @let zone = config.clinic(&row.clinic).map_or(chrono_tz::UTC, |c| c.time_zone);
                                tr {
                                    td { (row.row) }
                                    td { span.badge.(format!("o-{}", outcome.as_str())) { (outcome.as_str()) } }
                                    td { (row.clinic) }
                                    td { (row.appointment_id) }
                                    td { (row.patient_name) }
                                    td { (local(row.starts_at, zone, "%a %-d %b %H:%M")) }
                                    td { (row.phone.masked()) }
                                }
                            }
                        }
                    }
                }
            } @else {
                p.error role="alert" {
                    "Nothing was imported: " (r.errors.len()) " problem(s) in " (p.file_name) ". Fix them in the file (or in the clinic system, then export again) and upload it again."
                }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Row" } th scope="col" { "Column" } th scope="col" { "Value" } th scope="col" { "How to fix it" } } }
                        tbody {
                            @for e in &r.errors {
                                tr { td { (e.row) } td { (e.column) } td { code { (e.value) } } td { (e.message) } }
                            }
                        }
                    }
                }
                p { a href="/desk/upload" { "Upload another file" } }
            }
        },
    )
}

/// After a confirmed upload.
pub fn imported(session: &SignedIn, r: &ImportReport) -> Markup {
    page(
        "Schedule imported",
        Some(session),
        "Upload",
        &html! {
            p.ok role="status" { (r.file) " was imported." }
            (counts(r))
            p { a href="/desk/day" { "See the day board" } " · " a href="/desk/follow-ups" { "Follow-ups" } }
        },
    )
}
