//! What follows a patient's answer to an offer: the words of each answer, the staff's
//! follow-up by the clinic's `confirm` mode, the lists offered to a patient who asked to
//! reschedule, and the job step that lapses holds and confirms moves that landed.

use chrono::{DateTime, Utc};

use crate::config::{Clinic, Config, Confirm, OfferTexts};
use crate::model::{Channel, Intent, Recipient};
use crate::phone::E164;
use crate::store::{
    AnswerTexts, BookBy, FreeOpening, OfferAnswer, OfferDetail, Store, StoreError, Taken,
};
use crate::waitlist::answers::{self, Answer, OfferKind, Settled};
use crate::whatsapp::list::{ListMessage, ListRow};

/// How long a patient's answer may come after its offer's message went out and still be
/// read as one (the free-form window).
const ANSWER_WINDOW_HOURS: i64 = 24;

/// Minutes before the end of the 24-hour window within which a "moved" message goes by
/// template instead of free text.
const WINDOW_MARGIN_MINUTES: i64 = 10;

/// Most openings one list offers.
pub const LIST_SIZE: usize = 3;

/// A reply as the answers side needs it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The webhook event it came in (`None`: an SMS).
    pub event_id: Option<i64>,
    /// The API's message id.
    pub message_id: &'a str,
    /// The sender.
    pub from: &'a E164,
    /// The API's message type.
    pub kind: &'a str,
    /// What was typed or tapped.
    pub text: Option<&'a str>,
    /// A button's payload or list row id.
    pub payload: Option<&'a str>,
    /// What the words mean.
    pub intent: Intent,
    /// The message replied to.
    pub context: Option<&'a str>,
    /// How it came.
    pub channel: Channel,
}

/// Where a reply went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Not an answer to an offer: the ordinary reply path reads it.
    NotOffer,
    /// Answered an offer: recorded (`false`: recorded before).
    Recorded(bool),
    /// About offers, but a person must read it (why).
    Staff(String),
}

/// Reads a reply as an answer to an offer, and records and settles it if it is one.
pub fn route(
    store: &mut Store,
    config: &Config,
    m: &Inbound<'_>,
    now: DateTime<Utc>,
) -> Result<Routed, StoreError> {
    let tap = m.payload.and_then(answers::parse_payload);
    let (offers, last_reminder) = if tap.is_some() {
        (Vec::new(), None)
    } else {
        store.open_offers_for(m.from, now - chrono::Duration::hours(ANSWER_WINDOW_HOURS))?
    };
    if tap.is_none() && offers.is_empty() {
        return Ok(Routed::NotOffer);
    }
    let reply = answers::Reply {
        tap,
        intent: m.intent,
        text: m.text,
        context: m.context,
    };
    let (offer_id, what) = match answers::decide(&reply, &offers, last_reminder) {
        Answer::NotOffer => return Ok(Routed::NotOffer),
        Answer::Staff(why) => return Ok(Routed::Staff(why)),
        Answer::Accept(id) => (id, Taken::Accept),
        Answer::Decline(id) => (id, Taken::Decline),
        Answer::NoneOfThese(id) => (id, Taken::NoneOfThese),
    };
    let Some(offer) = store.offer_detail(offer_id)? else {
        return Ok(Routed::Staff(
            "the patient answered an offer reminderd does not know".into(),
        ));
    };
    if offer.phone != m.from.as_str() && offer.contact_phone.as_deref() != Some(m.from.as_str()) {
        return Ok(Routed::Staff(
            "an offer sent to another number was answered".into(),
        ));
    }
    let Some(clinic) = config.clinic(&offer.clinic) else {
        return Ok(Routed::Staff(format!(
            "the offer's clinic {} is no longer configured",
            offer.clinic
        )));
    };
    if offer.message.is_none() {
        return Ok(Routed::Staff(
            "the patient answered an offer whose message is not stored".into(),
        ));
    }
    let booking = &config.booking;
    let mode = booking.confirm_for(&clinic.key);
    let hold_until = (now + booking.hold).min(offer.starts_at);
    let texts = booking.texts_for(&offer.language, &clinic.default_language);
    let words = Words {
        clinic,
        name: &offer.patient_name,
        language: &offer.language,
    };
    let say = |t: &str| words.fill(t, offer.starts_at, offer.provider.as_deref(), hold_until);
    // A lost pick from a list is answered with the next free times, when there are some.
    let next = if offer.kind == OfferKind::Reschedule && what == Taken::Accept {
        offer
            .appointment_id
            .map(|a| {
                store.free_openings(a, now + booking.lead, offer.patient_id, now, LIST_SIZE + 1)
            })
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o.id != offer.opening_id)
            .take(LIST_SIZE)
            .collect()
    } else {
        Vec::new()
    };
    let answer_texts = AnswerTexts {
        held: Some(say(if mode == Confirm::Call {
            &texts.call
        } else {
            &texts.held
        })),
        filled: next.is_empty().then(|| say(&texts.filled)),
        expired: Some(say(&texts.expired)),
        declined: clinic.acks.then(|| say(&texts.declined)),
    };
    let settled = store.commit_offer_answer(
        &OfferAnswer {
            event_id: m.event_id,
            message_id: m.message_id,
            from: m.from,
            kind: m.kind,
            text: m.text.or(m.payload),
            channel: m.channel,
            offer: &offer,
            what,
            texts: answer_texts,
            hold_until,
            starts_after: now + booking.lead,
            staff_task: staff_task(&words, &offer, mode, hold_until),
            book: book_by(config, &clinic.key, mode),
        },
        now,
    )?;
    let Some(settled) = settled else {
        return Ok(Routed::Recorded(false));
    };
    tracing::info!(offer = offer.id, ?settled, "an answer to an offer");
    if settled == Settled::Filled
        && !next.is_empty()
        && let Some(appointment) = offer.appointment_id
    {
        {
            let slot = offer.appointment_starts_at.unwrap_or(offer.starts_at);
            let to = if m.from.as_str() == offer.phone {
                Recipient::Patient
            } else {
                Recipient::Contact
            };
            send_list(
                store,
                &words,
                texts,
                (offer.patient_id, appointment, slot),
                &next,
                (to, m.channel),
                true,
                now,
            )?;
        }
    }
    Ok(Routed::Recorded(true))
}

/// The reply paths' hook (WhatsApp and SMS): `Ok(recorded)` when the reply answered an
/// offer and was recorded here; `Err(reading)` to go on with the ordinary path, with the
/// reading to use (a reply about offers that names none for sure goes to staff).
#[allow(clippy::too_many_arguments)]
pub fn route_reply(
    store: &mut Store,
    config: &Config,
    (event_id, message_id, kind): (Option<i64>, &str, &str),
    from: Option<&E164>,
    content: &crate::replies::Message<'_>,
    replied_to: Option<&str>,
    reading: crate::replies::Reading,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<Result<bool, crate::replies::Reading>, StoreError> {
    use crate::replies::Message;
    let Some(from) = from else {
        return Ok(Err(reading));
    };
    let (payload, text) = match content {
        Message::Button { payload } => (Some(*payload), None),
        Message::Text { body } => (None, Some(*body)),
        Message::Media { caption, .. } => (None, *caption),
        Message::Other { .. } => (None, None),
    };
    let inbound = Inbound {
        event_id,
        message_id,
        from,
        kind,
        text,
        payload,
        intent: reading.intent,
        context: replied_to,
        channel,
    };
    Ok(match route(store, config, &inbound, now)? {
        Routed::Recorded(recorded) => Ok(recorded),
        Routed::NotOffer => Err(reading),
        Routed::Staff(why) => Err(crate::replies::Reading {
            intent: Intent::Unknown,
            outbox_id: None,
            needs_staff: Some(why),
        }),
    })
}

/// Whether an applied "reschedule" reply gets a list of free openings (then the list answers
/// it, not the usual acknowledgement).
pub fn list_follows(
    store: &Store,
    config: &Config,
    resolution: &crate::replies::Resolution,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    match (
        &resolution.appointment,
        resolution.intent,
        resolution.outcome,
    ) {
        (Some(a), Intent::Reschedule, crate::replies::Outcome::Applied) => Ok(!store
            .free_openings(
                a.appointment_id,
                now + config.booking.lead,
                a.patient_id,
                now,
                1,
            )?
            .is_empty()),
        _ => Ok(false),
    }
}

/// After a reply asking to reschedule was applied: offers the next free openings for the
/// same clinic and provider as a list (or numbered choices by SMS). `false` when there are
/// none (the staff follow-up is all there is, as before).
pub fn offer_reschedule(
    store: &mut Store,
    config: &Config,
    appointment: &crate::replies::Candidate,
    to: (Recipient, Channel),
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(clinic) = config.clinic(&appointment.clinic) else {
        return Ok(false);
    };
    let free = store.free_openings(
        appointment.appointment_id,
        now + config.booking.lead,
        appointment.patient_id,
        now,
        LIST_SIZE,
    )?;
    if free.is_empty() {
        return Ok(false);
    }
    let words = Words {
        clinic,
        name: &appointment.patient_name,
        language: &appointment.language,
    };
    let texts = config
        .booking
        .texts_for(&appointment.language, &clinic.default_language);
    send_list(
        store,
        &words,
        texts,
        (
            appointment.patient_id,
            appointment.appointment_id,
            appointment.starts_at,
        ),
        &free,
        to,
        false,
        now,
    )
}

/// Queues the list: its offers and its one message.
#[allow(clippy::too_many_arguments)]
fn send_list(
    store: &mut Store,
    words: &Words<'_>,
    texts: &OfferTexts,
    of: (i64, i64, DateTime<Utc>),
    free: &[FreeOpening],
    to: (Recipient, Channel),
    again: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let heading = words.fill(
        if again {
            &texts.choose_again
        } else {
            &texts.choose
        },
        now,
        None,
        now,
    );
    let labels: Vec<(String, Option<String>)> = free
        .iter()
        .map(|o| {
            let local = o.starts_at.with_timezone(&words.clinic.time_zone);
            (
                local
                    .format_localized("%a %-d %b ", words.locale())
                    .to_string()
                    + &local.format(&words.clinic.time_format).to_string(),
                o.provider.as_ref().map(|p| format!("with {p}")),
            )
        })
        .collect();
    let none_title = texts.none_of_these.clone();
    let build = |ids: &[i64]| {
        let rows: Vec<ListRow> = ids
            .iter()
            .zip(&labels)
            .map(|(id, (title, description))| ListRow {
                id: format!("RS:{id}"),
                title: title.clone(),
                description: description.clone(),
            })
            .chain(ids.first().map(|first| ListRow {
                id: format!("RS:none:{first}"),
                title: none_title.clone(),
                description: None,
            }))
            .collect();
        let numbered: Vec<String> = labels
            .iter()
            .take(ids.len())
            .enumerate()
            .map(|(i, (t, d))| {
                format!(
                    "{}. {t}{}",
                    i + 1,
                    d.as_ref().map(|d| format!(" {d}")).unwrap_or_default()
                )
            })
            .collect();
        let choices: Vec<String> = (1..=ids.len()).map(|n| n.to_string()).collect();
        let text = format!(
            "{heading}\n{}\nReply {}.",
            numbered.join("\n"),
            or_list(&choices)
        );
        serde_json::json!({
            "text": text,
            "offers": ids,
            "list": ListMessage { body: heading.clone(), button: "Choose a time".into(), rows },
        })
        .to_string()
    };
    let ids = store.offer_reschedule(
        of,
        free,
        now + chrono::Duration::hours(ANSWER_WINDOW_HOURS),
        to,
        words.language,
        &build,
        now,
    )?;
    Ok(!ids.is_empty())
}

/// "1, 2 or 3".
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The job step: holds that ran out go back to open, and patients whose move landed are told
/// their new time, once: as free text inside the 24-hour window their answer opened (or by
/// SMS, which has no window), else through the clinic's booking-confirmation template (the
/// appointment at its new time), so a move an import confirms days later is not left
/// untold. Returns (lapsed, told).
pub fn settle(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(usize, usize), StoreError> {
    let lapsed = store.lapse_holds(now)?;
    let mut told = 0;
    for landed in store.landed_unconfirmed()? {
        let Some(clinic) = config.clinic(&landed.clinic) else {
            continue;
        };
        let words = Words {
            clinic,
            name: &landed.patient.0,
            language: &landed.patient.1,
        };
        // A free-form message queued this close to the window's end would likely expire.
        let window_closed = landed.channel == Channel::WhatsApp
            && now + chrono::Duration::minutes(WINDOW_MARGIN_MINUTES) >= landed.window_end;
        if window_closed && let Some(template) = config.booking_confirmation.as_deref() {
            store.queue_moved_template(&landed, template, now)?;
            told += 1;
            continue;
        }
        if window_closed {
            tracing::warn!(
                offer = landed.offer_id,
                "the patient's 24-hour window has closed and no [booking_confirmation] template is configured: the new time is sent as text and may expire unsent"
            );
        }
        let texts = config
            .booking
            .texts_for(&landed.patient.1, &clinic.default_language);
        let text = words.fill(
            &texts.moved,
            landed.starts_at,
            landed.provider.as_deref(),
            landed.starts_at,
        );
        store.queue_moved(&landed, &text, now)?;
        told += 1;
    }
    Ok((lapsed, told))
}

/// How a hold at clinic `key` is booked: by the FHIR write-back of a feed that keeps the
/// clinic and may write (`confirm = "fhir"`), else by staff from a follow-up card.
fn book_by(config: &Config, key: &str, mode: Confirm) -> BookBy {
    match mode {
        Confirm::Staff => BookBy::Staff(None),
        Confirm::Call => BookBy::Staff(Some(
            "The patient was asked to call the clinic to take it.".into(),
        )),
        Confirm::Fhir => config
            .feeds
            .values()
            .find(|f| f.fhir().is_some_and(|h| h.write_back) && f.clinics().contains(&key))
            .map_or_else(
                || {
                    BookBy::Staff(Some(
                        "reminderd has no FHIR feed with write-back for this clinic to book it through."
                            .into(),
                    ))
                },
                |f| BookBy::Fhir(f.name.clone()),
            ),
    }
}

/// The words kept on the patient's reply for a held opening, by the clinic's mode.
fn staff_task(
    words: &Words<'_>,
    offer: &OfferDetail,
    mode: Confirm,
    hold_until: DateTime<Utc>,
) -> String {
    let when = words.when(offer.starts_at, offer.provider.as_deref());
    let until = words.time(hold_until);
    let instead = offer
        .appointment_starts_at
        .map(|s| format!(" in place of their appointment on {}", words.when(s, None)))
        .unwrap_or_default();
    let how = match mode {
        Confirm::Staff => String::new(),
        Confirm::Call => " The patient was asked to call the clinic to take it.".into(),
        Confirm::Fhir => " reminderd books it through the practice system's FHIR server.".into(),
    };
    format!(
        "Book {} into {when}{instead}; the slot is held until {until}.{how}",
        words.name
    )
}

/// The words of the answers, in the clinic's zone and formats.
struct Words<'a> {
    clinic: &'a Clinic,
    name: &'a str,
    language: &'a str,
}

impl Words<'_> {
    fn locale(&self) -> chrono::Locale {
        crate::template::locale_for(self.language, &self.clinic.phone_region.to_string())
    }

    fn time(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.clinic.time_zone)
            .format(&self.clinic.time_format)
            .to_string()
    }

    fn date(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.clinic.time_zone)
            .format_localized(&self.clinic.date_format, self.locale())
            .to_string()
    }

    /// "Tuesday 1 December at 10:30 with Dr Rao".
    fn when(&self, at: DateTime<Utc>, provider: Option<&str>) -> String {
        format!(
            "{} at {}{}",
            self.date(at),
            self.time(at),
            provider.map(|p| format!(" with {p}")).unwrap_or_default()
        )
    }

    fn fill(
        &self,
        text: &str,
        at: DateTime<Utc>,
        provider: Option<&str>,
        hold_until: DateTime<Utc>,
    ) -> String {
        text.replace("{first_name}", crate::template::first_name(self.name))
            .replace("{date}", &self.date(at))
            .replace("{time}", &self.time(at))
            .replace(
                "{provider}",
                &provider.map(|p| format!(" with {p}")).unwrap_or_default(),
            )
            .replace("{clinic}", &self.clinic.display_name)
            .replace("{phone}", self.clinic.phone.as_deref().unwrap_or(""))
            .replace("{hold_until}", &self.time(hold_until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_written_as_a_receptionist_would() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        assert_eq!(or_list(&s(&["1", "2", "3"])), "1, 2 or 3");
        assert_eq!(or_list(&s(&["1", "2"])), "1 or 2");
        assert_eq!(or_list(&s(&["1"])), "1");
    }
}
