//! Which offer a patient's reply answers, and how (pure: no I/O, no clock). A button names its
//! offer (`WL:<offer id>:Y|N`, a list row `RS:<offer id>`, `RS:none:<offer id>`); typed words
//! and SMS digits resolve to the patient's one live offer message, by the rule in [`decide`].

use chrono::{DateTime, Utc};

use crate::model::{Intent, OfferState};

/// What an offer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferKind {
    /// A freed slot offered to a waitlisted patient (Accept / No).
    Waitlist,
    /// One of the openings listed for a patient who asked to reschedule.
    Reschedule,
}

impl OfferKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waitlist => "waitlist",
            Self::Reschedule => "reschedule",
        }
    }
}

/// A button's payload or a list row's id, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// `WL:<id>:Y` (accept) or `WL:<id>:N` (no).
    Answer {
        /// The offer.
        offer: i64,
        /// Yes.
        accept: bool,
    },
    /// `RS:<id>`: this opening of the list.
    Pick(i64),
    /// `RS:none:<id>`: none of the list whose first offer is `id`.
    NoneOfThese(i64),
}

/// Reads `WL:12:Y`, `WL:12:N`, `RS:12` and `RS:none:12`; anything else is not an offer's.
pub fn parse_payload(payload: &str) -> Option<Tap> {
    let parts: Vec<&str> = payload.trim().split(':').collect();
    let id = |s: &str| s.parse::<i64>().ok().filter(|n| *n > 0);
    match parts.as_slice() {
        [wl, n, yn] if wl.eq_ignore_ascii_case("WL") => {
            let accept = match *yn {
                "Y" | "y" => true,
                "N" | "n" => false,
                _ => return None,
            };
            Some(Tap::Answer {
                offer: id(n)?,
                accept,
            })
        }
        [rs, n] if rs.eq_ignore_ascii_case("RS") => Some(Tap::Pick(id(n)?)),
        [rs, none, n] if rs.eq_ignore_ascii_case("RS") && none.eq_ignore_ascii_case("none") => {
            Some(Tap::NoneOfThese(id(n)?))
        }
        _ => None,
    }
}

/// An offer the patient may be answering, as the store found it: their offers not yet
/// answered whose message went out recently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOffer {
    /// Offer row id.
    pub id: i64,
    /// What it is for.
    pub kind: OfferKind,
    /// Where it stands.
    pub state: OfferState,
    /// The outbox row of its message.
    pub message: i64,
    /// Its place in its message (1 for a waitlist offer; 1..=3 in a list).
    pub position: usize,
    /// When its message went out.
    pub sent_at: DateTime<Utc>,
    /// The message's wamid (a reply's `context.id` names it).
    pub wamid: Option<String>,
}

/// What a reply means for offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Take this offer's opening.
    Accept(i64),
    /// No to this offer.
    Decline(i64),
    /// None of the list this offer heads: staff follow up, as before the list.
    NoneOfThese(i64),
    /// It is about offers but names none for sure: a person must read it.
    Staff(String),
    /// Not about an offer: the ordinary reply path reads it.
    NotOffer,
}

/// A reply, as much of it as [`decide`] needs.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    /// The payload or list row id, if a button was tapped.
    pub tap: Option<Tap>,
    /// What the words mean (`[replies.words]`).
    pub intent: Intent,
    /// What was typed, for a numbered choice ("2").
    pub text: Option<&'a str>,
    /// The message replied to (`context.id`).
    pub context: Option<&'a str>,
}

/// Decides which offer a reply answers.
///
/// A tap names its offer. Otherwise only offers whose message went out *after* the patient's
/// latest reminder (`last_reminder`) are candidates: the patient answers the last message they
/// got, so a "yes" after a reminder confirms the appointment, as before. A reply to a message
/// (`context`) narrows the candidates to that message. Among the candidates, the newest message
/// counts: a list (reschedule) takes a number from 1 to its length; a waitlist offer takes yes
/// (accept) or no (decline). Two or more waitlist offers in different messages that a yes or no
/// could mean go to staff, never a guess.
pub fn decide(
    reply: &Reply<'_>,
    offers: &[OpenOffer],
    last_reminder: Option<DateTime<Utc>>,
) -> Answer {
    match reply.tap {
        Some(
            Tap::Answer {
                offer,
                accept: true,
            }
            | Tap::Pick(offer),
        ) => {
            return Answer::Accept(offer);
        }
        Some(Tap::Answer {
            offer,
            accept: false,
        }) => return Answer::Decline(offer),
        Some(Tap::NoneOfThese(offer)) => return Answer::NoneOfThese(offer),
        None => {}
    }
    let by_context: Vec<&OpenOffer> = match reply.context {
        Some(w) => offers
            .iter()
            .filter(|o| o.wamid.as_deref() == Some(w))
            .collect(),
        None => Vec::new(),
    };
    let live: Vec<&OpenOffer> = if by_context.is_empty() {
        if reply.context.is_some() {
            // A reply to another message (a reminder): not ours to read.
            return Answer::NotOffer;
        }
        offers
            .iter()
            .filter(|o| last_reminder.is_none_or(|r| o.sent_at > r))
            .collect()
    } else {
        by_context
    };
    let Some(newest) = live.iter().map(|o| (o.sent_at, o.message)).max() else {
        return Answer::NotOffer;
    };
    let in_newest: Vec<&&OpenOffer> = live.iter().filter(|o| o.message == newest.1).collect();
    if in_newest.iter().any(|o| o.kind == OfferKind::Reschedule) {
        let digit = reply
            .text
            .map(crate::replies::normalize)
            .and_then(|t| t.parse::<usize>().ok());
        return match digit {
            Some(n) => in_newest
                .iter()
                .find(|o| o.position == n)
                .map_or(Answer::NotOffer, |o| Answer::Accept(o.id)),
            None => Answer::NotOffer,
        };
    }
    if !matches!(reply.intent, Intent::Confirm | Intent::Cancel) {
        return Answer::NotOffer;
    }
    let messages: std::collections::BTreeSet<i64> = live
        .iter()
        .filter(|o| o.kind == OfferKind::Waitlist)
        .map(|o| o.message)
        .collect();
    if messages.len() > 1 {
        return Answer::Staff(
            "the patient has several open offers of earlier appointments; which one is meant?"
                .into(),
        );
    }
    let offer = in_newest[0].id;
    if reply.intent == Intent::Confirm {
        Answer::Accept(offer)
    } else {
        Answer::Decline(offer)
    }
}

/// How an answer to an offer is settled, given the offer's state at the time of the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The claim took the opening: it is held for this patient.
    Held,
    /// Someone else took it first (or it went away).
    Filled,
    /// The offer had run out.
    Expired,
    /// They said no.
    Declined,
    /// None of the list: staff follow up.
    NoneOfThese,
    /// Answered before (a second tap): nothing changes, nothing is sent.
    AlreadyAnswered,
}

/// What an acceptance meets before the claim is tried: `None` means try the claim.
pub fn before_claim(
    state: OfferState,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Settled> {
    match state {
        OfferState::Offered if expires_at <= now => Some(Settled::Expired),
        OfferState::Offered => None,
        OfferState::Expired => Some(Settled::Expired),
        OfferState::Lost | OfferState::Withdrawn => Some(Settled::Filled),
        OfferState::Accepted | OfferState::Declined => Some(Settled::AlreadyAnswered),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse_instant(s).expect("instant")
    }

    fn offer(id: i64, kind: OfferKind, message: i64, position: usize, sent: &str) -> OpenOffer {
        OpenOffer {
            id,
            kind,
            state: OfferState::Offered,
            message,
            position,
            sent_at: t(sent),
            wamid: Some(format!("wamid.{message}")),
        }
    }

    fn words(intent: Intent, text: &str) -> Reply<'_> {
        Reply {
            tap: None,
            intent,
            text: Some(text),
            context: None,
        }
    }

    #[test]
    fn payloads_name_their_offer() {
        assert_eq!(
            parse_payload("WL:12:Y"),
            Some(Tap::Answer {
                offer: 12,
                accept: true
            })
        );
        assert_eq!(
            parse_payload("wl:12:N"),
            Some(Tap::Answer {
                offer: 12,
                accept: false
            })
        );
        assert_eq!(parse_payload("RS:7"), Some(Tap::Pick(7)));
        assert_eq!(parse_payload("RS:none:7"), Some(Tap::NoneOfThese(7)));
        for bad in ["WL:0:Y", "WL:x:Y", "WL:3:maybe", "confirm:3", "RS:", "Yes"] {
            assert_eq!(parse_payload(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_typed_yes_takes_the_one_offer_sent_after_the_last_reminder() {
        let offers = [offer(5, OfferKind::Waitlist, 50, 1, "2026-12-01T05:00:00Z")];
        let yes = words(Intent::Confirm, "yes");
        assert_eq!(decide(&yes, &offers, None), Answer::Accept(5));
        assert_eq!(
            decide(&yes, &offers, Some(t("2026-12-01T04:00:00Z"))),
            Answer::Accept(5)
        );
        assert_eq!(
            decide(&words(Intent::Cancel, "no"), &offers, None),
            Answer::Decline(5)
        );
        // A reminder came after the offer: the yes is the reminder's.
        assert_eq!(
            decide(&yes, &offers, Some(t("2026-12-01T06:00:00Z"))),
            Answer::NotOffer
        );
        // Words that are not yes or no are not an answer to the offer.
        assert_eq!(
            decide(&words(Intent::Reschedule, "later"), &offers, None),
            Answer::NotOffer
        );
    }

    #[test]
    fn two_offers_go_to_staff_and_a_context_picks_one() {
        let offers = [
            offer(5, OfferKind::Waitlist, 50, 1, "2026-12-01T05:00:00Z"),
            offer(6, OfferKind::Waitlist, 60, 1, "2026-12-01T05:10:00Z"),
        ];
        assert!(matches!(
            decide(&words(Intent::Confirm, "yes"), &offers, None),
            Answer::Staff(_)
        ));
        let reply = Reply {
            context: Some("wamid.50"),
            ..words(Intent::Confirm, "yes")
        };
        assert_eq!(decide(&reply, &offers, None), Answer::Accept(5));
        let reply = Reply {
            context: Some("wamid.reminder"),
            ..words(Intent::Confirm, "yes")
        };
        assert_eq!(decide(&reply, &offers, None), Answer::NotOffer);
    }

    #[test]
    fn a_number_picks_from_the_newest_list_and_taps_name_offers() {
        let offers = [
            offer(7, OfferKind::Reschedule, 70, 1, "2026-12-01T05:00:00Z"),
            offer(8, OfferKind::Reschedule, 70, 2, "2026-12-01T05:00:00Z"),
        ];
        assert_eq!(
            decide(&words(Intent::Cancel, "2"), &offers, None),
            Answer::Accept(8)
        );
        assert_eq!(
            decide(&words(Intent::Confirm, "4"), &offers, None),
            Answer::NotOffer
        );
        let tap = |tap| Reply {
            tap: Some(tap),
            intent: Intent::None,
            text: None,
            context: None,
        };
        assert_eq!(decide(&tap(Tap::Pick(7)), &[], None), Answer::Accept(7));
        assert_eq!(
            decide(&tap(Tap::NoneOfThese(7)), &[], None),
            Answer::NoneOfThese(7)
        );
    }

    #[test]
    fn the_offer_state_decides_before_the_claim() {
        let now = t("2026-12-01T05:00:00Z");
        let later = t("2026-12-01T05:30:00Z");
        assert_eq!(before_claim(OfferState::Offered, later, now), None);
        assert_eq!(
            before_claim(OfferState::Offered, now, now),
            Some(Settled::Expired)
        );
        assert_eq!(
            before_claim(OfferState::Lost, later, now),
            Some(Settled::Filled)
        );
        assert_eq!(
            before_claim(OfferState::Accepted, later, now),
            Some(Settled::AlreadyAnswered)
        );
    }
}
