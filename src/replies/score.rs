//! Feedback scores in replies: a tapped score button (`score:4:42`) or a bare digit 1 to 5
//! answering a feedback request. Pure, like the rest of reply reading.

use super::{Candidate, Message, normalize};

/// The start of a score button's payload: `score:<1–5>:<outbox id>` (`score:4:42`).
pub const SCORE: &str = "score";

/// A score button's payload: `score:4:42` → (4, Some(42)); `score:4` (a payload that names no
/// message) → (4, None). Scores are 1 to 5.
pub fn parse_score(payload: &str) -> Option<(u8, Option<i64>)> {
    let mut parts = payload.trim().split(':');
    if !parts.next()?.eq_ignore_ascii_case(SCORE) {
        return None;
    }
    let score = parts
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=5).contains(n))?;
    let id = match parts.next() {
        None => None,
        Some(id) => Some(id.trim().parse().ok().filter(|n: &i64| *n > 0)?),
    };
    parts.next().is_none().then_some((score, id))
}

/// A score typed as a bare digit 1 to 5 ("4", " 4! "); anything else is words.
pub fn typed_score(body: &str) -> Option<u8> {
    match normalize(body).as_str() {
        d @ ("1" | "2" | "3" | "4" | "5") => d.parse().ok(),
        _ => None,
    }
}

/// The score a stored reply carried: a tapped button (kept as "[Label] score:4:42") or a
/// typed digit.
pub fn score_of(text: &str) -> Option<u8> {
    let payload = text
        .strip_prefix('[')
        .and_then(|t| t.split_once("] "))
        .map_or(text, |(_, p)| p);
    parse_score(payload)
        .map(|(n, _)| n)
        .or_else(|| typed_score(payload))
}

/// How long after a feedback request a bare digit is still read as its score.
pub const SCORE_WINDOW_DAYS: i64 = 7;

/// A feedback request a reply may answer, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRequest {
    /// The request's outbox row.
    pub outbox_id: i64,
    /// The visit it asks about.
    pub appointment: Candidate,
    /// The number it went to (the patient's, or their caregiver's).
    pub sent_to: String,
    /// When it went out (`None`: not sent).
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// No later automated message (a reminder, an offer) went to that number since.
    pub newest: bool,
    /// The score already stored for the visit.
    pub stored: Option<u8>,
}

/// What a reply means for a feedback request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scored {
    /// The visit's first score.
    New(u8),
    /// The visit was scored before: the first score stays; this one is thanked, not stored.
    Again {
        /// The score kept.
        stored: u8,
        /// The score sent now.
        sent: u8,
    },
    /// A score that cannot be matched for sure: a person reads it.
    Staff(String),
}

/// Reads a reply against the feedback request it may answer: a score button names its
/// request (`request` is the row it names, `None` if there is none); a bare digit scores the
/// sender's request when it is the message replied to (`replied_to`), or when it is the newest
/// message the number got, within [`SCORE_WINDOW_DAYS`]. `None`: not a score; the ordinary
/// reading applies (a comment goes to staff as any other words).
pub fn score_reply(
    message: &Message<'_>,
    request: Option<&FeedbackRequest>,
    replied_to: bool,
    from: Option<&crate::phone::E164>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Scored> {
    let (score, tapped) = match message {
        Message::Button { payload } => (parse_score(payload)?.0, true),
        Message::Text { body } => (typed_score(body)?, false),
        _ => return None,
    };
    let Some(r) = request else {
        return tapped.then(|| {
            Scored::Staff("a score button of a message reminderd does not know was tapped".into())
        });
    };
    if from.is_none_or(|f| f.as_str() != r.sent_to) {
        return tapped.then(|| {
            Scored::Staff("a score button of a message sent to another number was tapped".into())
        });
    }
    let recent = r
        .sent_at
        .is_some_and(|t| now - t <= chrono::Duration::days(SCORE_WINDOW_DAYS));
    if !(tapped || replied_to || (recent && r.newest)) {
        return None;
    }
    Some(match r.stored {
        None => Scored::New(score),
        Some(stored) => Scored::Again {
            stored,
            sent: score,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::phone::E164;
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse_instant(s).expect("instant")
    }

    fn request(stored: Option<u8>, newest: bool) -> FeedbackRequest {
        FeedbackRequest {
            outbox_id: 42,
            appointment: Candidate {
                appointment_id: 1,
                external_id: "A1".into(),
                patient_id: 1,
                clinic: "mumbai".into(),
                starts_at: t("2026-11-26T04:30:00Z"),
                status: Status::Completed,
                message_slot: None,
                outbox_id: Some(42),
                patient_name: "Aarav Sharma".into(),
                language: "en".into(),
                phone: "+919820012345".into(),
            },
            sent_to: "+919820012345".into(),
            sent_at: Some(t("2026-11-26T07:00:00Z")),
            newest,
            stored,
        }
    }

    #[test]
    fn score_payloads_and_digits_are_read_and_nothing_else_is() {
        assert_eq!(parse_score("score:4:42"), Some((4, Some(42))));
        assert_eq!(parse_score("SCORE:1"), Some((1, None)));
        for bad in [
            "score:0:42",
            "score:6",
            "score:x",
            "score:3:-1",
            "score:3:4:5",
            "confirm:42",
        ] {
            assert_eq!(parse_score(bad), None, "{bad}");
        }
        assert_eq!(typed_score(" 4! "), Some(4));
        for bad in ["0", "6", "45", "four", "4 stars please"] {
            assert_eq!(typed_score(bad), None, "{bad}");
        }
        assert_eq!(score_of("[4 ★] score:4:42"), Some(4));
        assert_eq!(score_of("5"), Some(5));
        assert_eq!(score_of("great visit"), None);
    }

    #[test]
    fn a_digit_scores_only_the_newest_recent_request_and_a_tap_only_from_its_number() {
        let me = E164::from_stored("+919820012345".into());
        let other = E164::from_stored("+919820099999".into());
        let now = t("2026-11-26T09:00:00Z");
        let tap = Message::Button {
            payload: "score:5:42",
        };
        let digit = Message::Text { body: "4" };
        let read =
            |m: &Message<'_>, r: Option<&FeedbackRequest>, replied: bool, from: &E164, at| {
                score_reply(m, r, replied, Some(from), at)
            };
        assert_eq!(
            read(&tap, Some(&request(None, false)), false, &me, now),
            Some(Scored::New(5))
        );
        assert_eq!(
            read(&digit, Some(&request(None, true)), false, &me, now),
            Some(Scored::New(4))
        );
        assert_eq!(
            read(&digit, Some(&request(Some(2), true)), false, &me, now),
            Some(Scored::Again { stored: 2, sent: 4 })
        );
        // A reminder came after it: the digit answers the reminder.
        assert_eq!(
            read(&digit, Some(&request(None, false)), false, &me, now),
            None
        );
        // Unless the patient replied to the request itself.
        assert_eq!(
            read(&digit, Some(&request(None, false)), true, &me, now),
            Some(Scored::New(4))
        );
        // A week later a digit is no longer a score.
        let late = t("2026-12-04T09:00:00Z");
        assert_eq!(
            read(&digit, Some(&request(None, true)), false, &me, late),
            None
        );
        assert!(matches!(
            read(&tap, Some(&request(None, true)), false, &other, now),
            Some(Scored::Staff(_))
        ));
        assert!(matches!(
            read(&tap, None, false, &me, now),
            Some(Scored::Staff(_))
        ));
        assert_eq!(read(&digit, None, false, &me, now), None);
        let comment = Message::Text {
            body: "the doctor was kind",
        };
        assert_eq!(
            read(&comment, Some(&request(None, true)), false, &me, now),
            None
        );
    }
}
