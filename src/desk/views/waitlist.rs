//! The Waitlist page as markup: figures, the freed slots and their rounds, every offer with
//! its state and local time, who waits, and the forms to add a patient or open a slot.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};

use super::{SignedIn, clinic_select, local, page, plural};
use crate::config::{Clinic, Config};
use crate::model::{OfferState, OpeningSource, OpeningState};
use crate::store::{OfferView, WaitlistFigures};
use crate::waitlist::{Entry, Opening};

/// The add-a-patient form, as typed.
#[derive(serde::Deserialize, Default, Clone, Debug)]
pub struct AddForm {
    /// As typed.
    #[serde(default)]
    pub clinic: String,
    /// As typed.
    #[serde(default)]
    pub patient: String,
    /// As typed.
    #[serde(default)]
    pub provider: String,
    /// As typed.
    #[serde(default)]
    pub earliest: String,
    /// As typed.
    #[serde(default)]
    pub latest: String,
    /// As typed.
    #[serde(default)]
    pub days: String,
    /// As typed.
    #[serde(default)]
    pub time_band: String,
    /// As typed.
    #[serde(default)]
    pub max_offers: String,
}

/// The open-a-slot form, as typed.
#[derive(serde::Deserialize, Default, Clone, Debug)]
pub struct OpenForm {
    /// As typed.
    #[serde(default)]
    pub clinic: String,
    /// As typed.
    #[serde(default)]
    pub date: String,
    /// As typed.
    #[serde(default)]
    pub time: String,
    /// As typed.
    #[serde(default)]
    pub duration: String,
    /// As typed.
    #[serde(default)]
    pub provider: String,
}

/// What the page shows, read in one database call.
#[derive(Debug, Clone, Default)]
pub struct WaitlistData {
    /// Active entries, in priority order.
    pub entries: Vec<Entry>,
    /// Openings of the last 30 days and to come.
    pub openings: Vec<Opening>,
    /// Offers of the last 30 days, newest first.
    pub offers: Vec<OfferView>,
    /// The figures of the last 30 days.
    pub figures: WaitlistFigures,
}

/// The forms as typed, and which one failed with why (`add` or `open`).
#[derive(Debug, Clone, Default)]
pub struct WaitlistForms {
    /// The add-a-patient form.
    pub add: AddForm,
    /// The open-a-slot form.
    pub open: OpenForm,
    /// Which form failed (`add` or `open`) and why, in the receptionist's words.
    pub error: Option<(&'static str, String)>,
}

const WHEN: &str = "%a %-d %b, %H:%M";

fn slot_words(t: DateTime<Utc>, provider: Option<&str>, zone: Tz) -> String {
    match provider {
        Some(p) => format!("{} with {p}", local(t, zone, WHEN)),
        None => local(t, zone, WHEN),
    }
}

fn opening_state(o: &Opening) -> String {
    let word = match o.state {
        OpeningState::Open => "open",
        OpeningState::Held => "held for a patient who accepted",
        OpeningState::Filled => "filled",
        OpeningState::Expired => "not filled in time",
        OpeningState::Withdrawn => "withdrawn",
    };
    match &o.reason {
        Some(r) => format!("{word}: {r}"),
        None => word.to_string(),
    }
}

fn source_words(o: &Opening) -> String {
    match o.source {
        OpeningSource::PatientCancel if o.opened_by.starts_with("feed:") => {
            "a patient cancelled in the practice system".into()
        }
        OpeningSource::PatientCancel => "a patient cancelled".into(),
        OpeningSource::Practice => "the practice system opened it".into(),
        OpeningSource::Staff => format!(
            "opened by {}",
            o.opened_by.strip_prefix("staff:").unwrap_or(&o.opened_by)
        ),
    }
}

fn offer_state(state: OfferState) -> &'static str {
    match state {
        OfferState::Offered => "waiting for an answer",
        OfferState::Accepted => "accepted",
        OfferState::Lost => "someone else took it first",
        OfferState::Declined => "said no",
        OfferState::Expired => "no answer in time",
        OfferState::Withdrawn => "withdrawn with the slot",
    }
}

fn minutes_words(secs: i64) -> String {
    let m = secs / 60;
    if m < 90 {
        plural(m, "minute", "minutes")
    } else {
        plural(m / 60, "hour", "hours")
    }
}

/// The whole page.
#[allow(clippy::too_many_arguments)]
pub fn waitlist_page(
    session: &SignedIn,
    config: &Config,
    clinic: &Clinic,
    data: &WaitlistData,
    forms: &WaitlistForms,
    notice: Option<&str>,
    today: NaiveDate,
) -> Markup {
    let zone = clinic.time_zone;
    let settings = config.waitlist.for_clinic(&clinic.key);
    let f = &data.figures;
    let median = crate::waitlist::plan::median_seconds(f.fill_seconds.clone());
    page(
        "Waitlist",
        Some(session),
        "Waitlist",
        &html! {
            form.filters method="get" action="/desk/waitlist" {
                (clinic_select(config, clinic))
                button type="submit" { "Show" }
            }
            @if let Some(n) = notice { p.ok role="status" { (n) } }
            @if !settings.enabled {
                p.notice { "Offers are switched off for " (clinic.display_name) ": freed slots are listed but nobody is offered them. Ask the administrator to switch the waitlist on." }
            }
            section.card aria-labelledby="wl-figures" {
                h2 #wl-figures { "Last 30 days" }
                ul.figures {
                    li { strong { (f.offers_sent) } " offers sent" }
                    li { strong { (f.accepted) } " accepted" }
                    li { strong { (f.filled) } " " (if f.filled == 1 { "slot filled" } else { "slots filled" }) }
                    li { "Time to fill (median): " strong { (median.map_or("none filled yet".to_string(), minutes_words)) } }
                }
            }
            section.card aria-labelledby="wl-openings" {
                h2 #wl-openings { "Freed slots" }
                @if data.openings.is_empty() {
                    p { "No slot has been freed in the last 30 days." }
                } @else {
                    table {
                        thead { tr { th { "Slot" } th { "How it opened" } th { "State" } th { "Rounds" } } }
                        tbody {
                            @for o in &data.openings {
                                tr {
                                    td { (slot_words(o.starts_at, o.provider.as_deref(), zone)) }
                                    td { (source_words(o)) ", " (local(o.opened_at, zone, WHEN)) }
                                    td { (opening_state(o)) }
                                    td { (o.round) }
                                }
                            }
                        }
                    }
                }
                (open_form(clinic, forms, today))
            }
            section.card aria-labelledby="wl-offers" {
                h2 #wl-offers { "Offers" }
                @if data.offers.is_empty() {
                    p { "No offers in the last 30 days." }
                } @else {
                    table {
                        thead { tr { th { "Patient" } th { "Slot" } th { "Round" } th { "Sent" } th { "Answer" } } }
                        tbody {
                            @for o in &data.offers {
                                tr {
                                    td { (o.patient_name) }
                                    td { (slot_words(o.starts_at, o.provider.as_deref(), zone)) }
                                    td { (o.round) }
                                    td { (local(o.created_at, zone, WHEN)) " (open until " (local(o.expires_at, zone, "%H:%M")) ")" }
                                    td {
                                        (offer_state(o.state))
                                        @if let Some(a) = o.answered_at { ", " (local(a, zone, WHEN)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="wl-entries" {
                h2 #wl-entries { "Waiting" }
                @if data.entries.is_empty() {
                    p { "Nobody is on the waitlist." }
                } @else {
                    table {
                        thead { tr { th { "Patient" } th { "Doctor" } th { "Dates" } th { "Days and times" } th { "Offers" } } }
                        tbody {
                            @for e in &data.entries {
                                tr {
                                    td { (e.patient_name) " (" (e.patient) ")" }
                                    td { (e.provider.as_deref().unwrap_or("any")) }
                                    td { "from " (e.earliest.format("%-d %b")) @if let Some(l) = e.latest { " to " (l.format("%-d %b")) } }
                                    td { (days_words(&e.days)) @if let (Some(a), Some(b)) = (e.time_from, e.time_to) { ", " (a.format("%H:%M")) "–" (b.format("%H:%M")) } }
                                    td { (e.offers_sent) " of " (e.max_offers) }
                                }
                            }
                        }
                    }
                }
                (add_form(clinic, forms))
            }
        },
    )
}

fn days_words(days: &str) -> String {
    const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    match days {
        "1234567" => "every day".into(),
        "12345" => "Mon–Fri".into(),
        d => d
            .chars()
            .filter_map(|c| c.to_digit(10))
            .filter_map(|n| NAMES.get(n.saturating_sub(1) as usize))
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn error_for(forms: &WaitlistForms, which: &str) -> Option<String> {
    forms
        .error
        .as_ref()
        .filter(|(w, _)| *w == which)
        .map(|(_, m)| m.clone())
}

fn add_form(clinic: &Clinic, forms: &WaitlistForms) -> Markup {
    let a = &forms.add;
    html! {
        h3 #wl-add { "Add a patient" }
        @if let Some(e) = error_for(forms, "add") { p.error role="alert" { (e) } }
        form method="post" action="/desk/waitlist/add" aria-labelledby="wl-add" {
            input type="hidden" name="clinic" value=(clinic.key);
            label for="wl-patient" { "Patient number (as on the schedule)" }
            input #wl-patient name="patient" required value=(a.patient);
            label for="wl-provider" { "Doctor (leave empty for any)" }
            input #wl-provider name="provider" value=(a.provider);
            label for="wl-earliest" { "From" }
            input #wl-earliest type="date" name="earliest" value=(a.earliest);
            label for="wl-latest" { "Until (leave empty for no end)" }
            input #wl-latest type="date" name="latest" value=(a.latest);
            label for="wl-days" { "Days, e.g. Mon-Fri (leave empty for any day)" }
            input #wl-days name="days" value=(a.days);
            label for="wl-band" { "Times, e.g. 09:00-12:00 (leave empty for any time)" }
            input #wl-band name="time_band" value=(a.time_band);
            label for="wl-max" { "Most offers" }
            input #wl-max type="number" min="1" max="50" name="max_offers" value=(if a.max_offers.is_empty() { "3" } else { a.max_offers.as_str() });
            button type="submit" { "Add to the waitlist" }
        }
    }
}

fn open_form(clinic: &Clinic, forms: &WaitlistForms, today: NaiveDate) -> Markup {
    let o = &forms.open;
    let date = if o.date.is_empty() {
        today.to_string()
    } else {
        o.date.clone()
    };
    html! {
        h3 #wl-open { "Open a slot" }
        p.hint { "A slot that became free and is not on the schedule as a cancellation: suitable patients on the waitlist are offered it." }
        @if let Some(e) = error_for(forms, "open") { p.error role="alert" { (e) } }
        form method="post" action="/desk/waitlist/open" aria-labelledby="wl-open" {
            input type="hidden" name="clinic" value=(clinic.key);
            label for="wl-date" { "Date" }
            input #wl-date type="date" name="date" required value=(date);
            label for="wl-time" { "Time" }
            input #wl-time type="time" name="time" required value=(o.time);
            label for="wl-duration" { "Minutes" }
            input #wl-duration type="number" min="1" name="duration" value=(if o.duration.is_empty() { clinic.default_duration_min.to_string() } else { o.duration.clone() });
            label for="wl-slot-provider" { "Doctor" }
            input #wl-slot-provider name="provider" value=(o.provider);
            button type="submit" { "Open the slot" }
        }
    }
}
