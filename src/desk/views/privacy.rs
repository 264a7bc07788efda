//! A patient's data on the desk: their consent per channel and the form that records what
//! they told staff (any staff), and for administrators the "This patient's data" box on the
//! patient's page (export, erase) and the page that asks before erasing.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{SignedIn, page};
use crate::config::Clinic;
use crate::model::{Channel, Role};
use crate::store::ConsentAnswer;

/// The channel as receptionists name it.
fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::WhatsApp => "WhatsApp",
        Channel::Sms => "SMS",
    }
}

/// Where a consent answer came from, in words (`consents.source`).
fn source_words(answer: &ConsentAnswer) -> String {
    let s = answer.source.as_str();
    if let Some(path) = s.strip_prefix("import:") {
        // The command line records the whole path; staff know the file by its name.
        let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
        format!("from the schedule upload {file}")
    } else if s.starts_with("reply ") {
        let word = if answer.given { "START" } else { "STOP" };
        format!("patient replied {word}")
    } else if let Some(name) = s.strip_prefix("staff:") {
        format!("the patient told {name} at the desk")
    } else if s == "opt-out kept after erasure" {
        "kept for this number after an earlier patient's data was erased".to_string()
    } else {
        s.to_string()
    }
}

/// The patient's consent per channel in words, and the form to record what they told staff
/// by phone or in person. Not shown for an erased patient (the caller leaves it out).
pub(super) fn consent_box(
    session: &SignedIn,
    patient: i64,
    answers: &[ConsentAnswer],
    clinic: &Clinic,
) -> Markup {
    html! {
        h2 #consent { "Consent to messages" }
        ul.consents {
            @for channel in Channel::ALL {
                li {
                    (channel_name(*channel)) ": "
                    @match answers.iter().find(|a| a.channel == *channel) {
                        Some(a) => {
                            @if a.given { "agreed" } @else { span.badge.warn { "withdrawn" } }
                            " — " (source_words(a)) ", "
                            (a.recorded_at.with_timezone(&clinic.time_zone).format("%-d %b %Y"))
                        }
                        None => { "not recorded" }
                    }
                }
            }
        }
        form.consent-form method="post" action="/desk/patient/consent" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="patient" value=(patient);
            label for="consent-channel" { "The patient told us, for " }
            select #consent-channel name="channel" {
                @for channel in Channel::ALL {
                    option value=(channel.as_str()) { (channel_name(*channel)) }
                }
            }
            " "
            label.visually-hidden for="consent-answer" { "Their answer" }
            select #consent-answer name="answer" {
                option value="agreed" { "agreed to messages" }
                option value="withdrawn" { "withdrew consent: no more messages" }
            }
            " "
            button type="submit" { "Record" }
        }
        p.hint { "Withdrawn stops messages on that channel at once, as a STOP reply does; agreed starts them again." }
    }
}

/// The box at the foot of a patient's page: for an administrator, Export data and Erase
/// data; for an erased patient, when it happened. Staff without the role see nothing.
pub(super) fn data_box(
    session: &SignedIn,
    patient: i64,
    erased_at: Option<DateTime<Utc>>,
    clinic: &Clinic,
) -> Markup {
    html! {
        @if let Some(t) = erased_at {
            p.notice #erased {
                "This patient's personal data was erased on "
                (t.with_timezone(&clinic.time_zone).format("%-d %B %Y"))
                ". Their appointments and messages are kept without name, number or words, for the clinic's figures."
            }
        } @else if session.role == Role::Admin {
            h2 #data { "This patient's data" }
            p.hint { "For a patient who asks what the clinic holds about them, or asks for it to be erased. Both are recorded in the audit log." }
            form.inline method="post" action="/desk/patient/export" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="patient" value=(patient);
                button type="submit" { "Export data" }
            }
            " "
            a href={ "/desk/patient/erase?id=" (patient) } { "Erase data…" }
        }
    }
}

/// What the erase page needs about the patient.
#[derive(Debug, Clone)]
pub struct EraseAsk<'a> {
    /// The patient's row.
    pub patient: i64,
    /// Their name.
    pub name: &'a str,
    /// The clinic system's patient id.
    pub external_id: &'a str,
    /// Their upcoming booked appointments.
    pub upcoming: i64,
}

/// Asks before erasing: what goes, what stays, and (with upcoming appointments) that they are
/// cancelled too.
pub fn erase_confirm(session: &SignedIn, clinic: &Clinic, ask: &EraseAsk<'_>) -> Markup {
    let title = format!("Erase the data of {}?", ask.name);
    page(
        &title,
        Some(session),
        "",
        &html! {
            p { (ask.name) " · " (clinic.display_name) " · patient id " (ask.external_id) }
            h2 { "What is erased" }
            ul {
                li { "The name, phone numbers and caregiver's details." }
                li { "The words of every message sent and every reply received, and any files sent." }
                li { "The messages exactly as WhatsApp, the SMS provider or the practice system delivered them." }
            }
            h2 { "What stays" }
            ul {
                li { "Appointments, messages and replies as counts and states (sent, confirmed, no-show), so the clinic's figures do not change." }
                li { "That the data was erased, by whom and when." }
                li { "If the patient asked not to be messaged, that wish, kept without their name." }
            }
            p.warn { "This cannot be undone. Copies of the database made before now keep the data until they are deleted." }
            form method="post" action="/desk/patient/erase" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="patient" value=(ask.patient);
                @if ask.upcoming > 0 {
                    p.warn {
                        @if ask.upcoming == 1 { "The patient has an upcoming appointment." }
                        @else { "The patient has " (ask.upcoming) " upcoming appointments." }
                        " Erasing cancels it in reminderd and stops its reminders; cancel it in the practice system too."
                    }
                    p {
                        input #force type="checkbox" name="force" value="1";
                        label for="force" { "Cancel the upcoming appointments and erase" }
                    }
                }
                button type="submit" { "Erase this patient's data" }
                " "
                a href={ "/desk/patient?id=" (ask.patient) } { "Keep the data" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(given: bool, source: &str) -> ConsentAnswer {
        ConsentAnswer {
            channel: Channel::WhatsApp,
            given,
            source: source.to_string(),
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn every_source_of_consent_reads_as_words() {
        let cases = [
            (
                true,
                "import:/srv/in/s.csv",
                "from the schedule upload s.csv",
            ),
            (
                true,
                "import:C:\\in\\s.csv",
                "from the schedule upload s.csv",
            ),
            (true, "import:s.csv", "from the schedule upload s.csv"),
            (false, "reply wamid.1", "patient replied STOP"),
            (true, "reply wamid.2", "patient replied START"),
            (false, "staff:asha", "the patient told asha at the desk"),
            (
                false,
                "opt-out kept after erasure",
                "kept for this number after an earlier patient's data was erased",
            ),
        ];
        for (given, source, words) in cases {
            assert_eq!(source_words(&answer(given, source)), words, "{source}");
        }
    }
}
