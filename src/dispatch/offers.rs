//! Offer messages at send time: whether an offer still stands (its own state, its opening's,
//! its expiry, quiet hours), and its rendering with the opening's date, time and provider and
//! Accept / No buttons that name the offer (`WL:<offer id>:Y|N`), not the appointment the
//! row is filed under.

use chrono::{DateTime, Utc};

use crate::config::{Config, Template};
use crate::model::{Channel, Intent, Kind, OfferState, OpeningState};
use crate::store::{DueRow, Verdict};
use crate::template::{self, Input, RenderError, Rendered};

/// A button payload for an offer: `WL:<offer id>:Y` (accept) or `:N` (no).
pub fn payload(offer_id: i64, accept: bool) -> String {
    format!("WL:{offer_id}:{}", if accept { "Y" } else { "N" })
}

/// The send-time checks of an offer's message; no schedule check of the appointment it is
/// filed under applies.
pub(super) fn verdict(row: &DueRow, config: &Config, now: DateTime<Utc>) -> Verdict {
    let Some(offer) = &row.offer else {
        return Verdict::Skip("the offer is no longer stored".into());
    };
    if offer.offer != OfferState::Offered {
        return Verdict::Skip(format!("the offer is {}", offer.offer));
    }
    if offer.opening != OpeningState::Open {
        return Verdict::Skip(format!("the slot is {}", offer.opening));
    }
    if now > row.latest_at {
        return Verdict::Expire("the offer ran out before it could be sent".into());
    }
    if row.opted_out {
        return Verdict::Skip("the patient opted out of messages".into());
    }
    if row.channel == Channel::Sms {
        return Verdict::Skip("offers go by WhatsApp only".into());
    }
    let Some(clinic) = config.clinic(&row.clinic) else {
        return Verdict::Skip(format!("clinic {:?} is no longer configured", row.clinic));
    };
    if let Err(end) = crate::plan::check_quiet(now, clinic.quiet_hours, clinic.time_zone) {
        if end > row.latest_at {
            return Verdict::Expire("quiet hours last until after the offer runs out".into());
        }
        return Verdict::Hold(end, "held: quiet hours at the clinic".into());
    }
    Verdict::Send
}

/// Renders `row`'s template: an offer with its opening's start and provider and its offer's
/// payloads; any other message as it is.
pub(super) fn render(
    key: &str,
    template: &Template,
    input: &Input<'_>,
    row: &DueRow,
    config: &Config,
) -> Result<Rendered, RenderError> {
    let Some(offer) = row
        .offer
        .as_ref()
        .filter(|_| row.kind == Kind::WaitlistOffer)
    else {
        return template::render(key, template, input);
    };
    // A slot the practice system or staff opened may name no provider: the clinic's name
    // reads well in its place ("with Sunrise Family Clinic"), where an empty value would be
    // refused by the API.
    let clinic = input.clinic;
    let provider = offer.provider.as_deref().unwrap_or(&clinic.display_name);
    let input = Input {
        starts_at: offer.starts_at,
        provider: Some(provider),
        prep_note: crate::config::prep_note_for(&config.prep_notes, offer.provider.as_deref()),
        ..input.clone()
    };
    let mut rendered = template::render(key, template, &input)?;
    for b in &mut rendered.buttons {
        b.payload = payload(offer.offer_id, b.action == Intent::Confirm);
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OfferFacts;

    fn offer_row() -> DueRow {
        let mut row = super::super::tests::row();
        row.kind = Kind::WaitlistOffer;
        row.rule = "offer:7".into();
        // The appointment it is filed under was cancelled and has passed: no matter.
        row.status = crate::model::Status::Cancelled;
        row.starts_at = row.send_at - chrono::Duration::days(3);
        row.offer = Some(OfferFacts {
            offer_id: 7,
            offer: OfferState::Offered,
            opening: OpeningState::Open,
            starts_at: row.send_at + chrono::Duration::hours(6),
            duration_min: 15,
            provider: Some("Dr Rao".into()),
        });
        row
    }

    #[test]
    fn an_offer_names_the_slot_and_its_buttons_name_the_offer() {
        let config = Config::example().expect("config");
        let clinic = config.clinic("mumbai").expect("mumbai");
        let template = &config.templates["waitlist_offer"];
        let mut row = offer_row();
        let input = Input {
            clinic,
            patient_name: "Meera Joshi",
            patient_language: "en",
            starts_at: row.starts_at,
            provider: Some("Dr. Filed"),
            outbox_id: row.id,
            contact_name: None,
            prep_note: None,
        };
        let r = render("waitlist_offer", template, &input, &row, &config).expect("render");
        let payloads: Vec<&str> = r.buttons.iter().map(|b| b.payload.as_str()).collect();
        assert_eq!(payloads, ["WL:7:Y", "WL:7:N"]);
        assert_eq!(r.params[4], "Dr Rao");
        // A slot that names no provider says the clinic's name instead of nothing.
        if let Some(o) = row.offer.as_mut() {
            o.provider = None;
        }
        let r = render("waitlist_offer", template, &input, &row, &config).expect("render");
        assert_eq!(r.params[4], clinic.display_name);
    }

    #[test]
    fn an_offer_goes_while_it_and_its_slot_stand_whatever_its_filing_appointment_says() {
        let config = Config::example().expect("config");
        let row = offer_row();
        let now = row.send_at;
        assert_eq!(super::super::verdict(&row, &config, now), Verdict::Send);
        let mut taken = offer_row();
        if let Some(o) = taken.offer.as_mut() {
            o.opening = OpeningState::Held;
        }
        assert_eq!(
            super::super::verdict(&taken, &config, now),
            Verdict::Skip("the slot is held".into())
        );
        let mut declined = offer_row();
        if let Some(o) = declined.offer.as_mut() {
            o.offer = OfferState::Expired;
        }
        assert!(matches!(
            super::super::verdict(&declined, &config, now),
            Verdict::Skip(_)
        ));
        assert!(matches!(
            super::super::verdict(&row, &config, row.latest_at + chrono::Duration::seconds(1)),
            Verdict::Expire(_)
        ));
    }
}
