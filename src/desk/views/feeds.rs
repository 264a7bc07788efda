//! The Feeds page: each schedule feed from the practice system in receptionists' words (when
//! it was last heard from, whether it holds reminders and why, what it sent), its refused
//! messages with View and Apply again, and one stored message with its phone numbers masked.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Config, Markup, SignedIn, ago_words, html, local, page};
use crate::config::{Feed, FeedKind};
use crate::phone::mask_loose;
use crate::store::{FeedCounts, FeedMessage, FeedStatus, MessageState};

/// One configured feed as its card shows it.
#[derive(Debug, Clone)]
pub struct FeedCard {
    /// The feed as configured.
    pub feed: Feed,
    /// What the store knows of it (`None`: never heard from).
    pub status: Option<FeedStatus>,
    /// How many of its messages stand where.
    pub counts: FeedCounts,
    /// Why it holds its clinics' reminders, if it does (`feeds::holds`).
    pub hold: Option<String>,
    /// Its latest refused messages, newest first.
    pub refused: Vec<FeedMessage>,
}

/// What kind of feed, in receptionists' words.
pub fn kind_words(feed: &Feed) -> &'static str {
    match feed.kind {
        FeedKind::Hl7(_) => "Practice system feed (HL7)",
        FeedKind::Fhir(_) => "Practice system (FHIR)",
    }
}

/// What applying a message did, in words (`new` → "new appointment").
pub fn outcome_words(outcome: &str) -> String {
    match outcome {
        "new" => "new appointment".into(),
        "updated" => "appointment changed".into(),
        "cancelled" => "appointment cancelled".into(),
        "unchanged" => "nothing changed".into(),
        "deleted" => "appointment removed".into(),
        other => other.replace('_', " "),
    }
}

/// The zone and clock format a feed's times are shown in: its first clinic's.
fn feed_clock(config: &Config, feed: &Feed) -> (Tz, String) {
    feed.clinics()
        .first()
        .and_then(|k| config.clinic(k))
        .map_or((chrono_tz::UTC, "%H:%M".to_string()), |c| {
            (c.time_zone, c.time_format.clone())
        })
}

/// "26 Nov 10:30 IST (5 minutes ago)".
fn at_words(t: DateTime<Utc>, zone: Tz, time_format: &str, now: DateTime<Utc>) -> String {
    format!(
        "{} {} {} ({})",
        local(t, zone, "%-d %b"),
        local(t, zone, time_format),
        local(t, zone, "%Z"),
        ago_words(now - t)
    )
}

/// The Feeds page.
pub fn feeds_page(
    session: &SignedIn,
    config: &Config,
    cards: &[FeedCard],
    notice: Option<&str>,
    now: DateTime<Utc>,
) -> Markup {
    page(
        "Feeds",
        Some(session),
        "Feeds",
        &html! {
            @if let Some(n) = notice {
                p.ok role="status" { (n) }
            }
            @if cards.is_empty() {
                p.notice { "No schedule feeds are set up: the schedule comes from uploads." }
            } @else {
                p.hint { "The practice system sends the schedule to reminderd by itself. When a message cannot be used, it is listed here with why; after the administrator fixes the cause, press Apply again." }
            }
            @for card in cards {
                (feed_card(session, config, card, now))
            }
        },
    )
}

fn feed_card(session: &SignedIn, config: &Config, card: &FeedCard, now: DateTime<Utc>) -> Markup {
    let feed = &card.feed;
    let (zone, clock) = feed_clock(config, feed);
    let clinics: Vec<&str> = feed
        .clinics()
        .into_iter()
        .map(|k| config.clinic(k).map_or(k, |c| c.display_name.as_str()))
        .collect();
    let status = card.status.clone().unwrap_or_default();
    let id = format!("feed-{}", feed.name);
    html! {
        section.card.feed #(id) aria-labelledby={ (id) "-h" } {
            h2 #{ (id) "-h" } { (feed.name) }
            p.when { (kind_words(feed)) " · " (clinics.join(", ")) }
            @match &feed.kind {
                FeedKind::Hl7(_) => {
                    @match status.last_message_at {
                        Some(t) => p { "Last message: " strong { (at_words(t, zone, &clock, now)) } },
                        None => p.warn { "Never heard from: no message has arrived from this feed yet." },
                    }
                }
                FeedKind::Fhir(_) => {
                    @match status.last_success_at {
                        Some(t) => p { "Last read the schedule: " strong { (at_words(t, zone, &clock, now)) } },
                        None => p.warn { "Never heard from: reminderd has not read the schedule from this practice system yet." },
                    }
                    @if let Some(t) = status.last_sync_at.filter(|t| Some(*t) != status.last_success_at) {
                        p { "Last tried: " (at_words(t, zone, &clock, now)) }
                    }
                }
            }
            @match &card.hold {
                Some(reason) => p.error {
                    "Reminders for " strong { (clinics.join(", ")) } " are on hold: "
                    (reason) ". Tell the administrator."
                },
                None => p.ok { "Reminders for " (clinics.join(", ")) " are not held by this feed." },
            }
            ul.counts {
                li { "Applied: " strong { (card.counts.applied) } }
                li { "Refused: " strong { (card.counts.refused) } }
                li { "Waiting: " strong { (card.counts.waiting) } }
                li { "Sent again by the practice system: " strong { (card.counts.replays) } }
            }
            @if let Some((t, e)) = &status.last_error {
                p { "Last error, " (at_words(*t, zone, &clock, now)) ": " (mask_loose(e)) }
            }
            @if !card.refused.is_empty() {
                h3 { "Refused messages" }
                div.scroll {
                    table.results {
                        thead { tr { th { "Message" } th { "Kind" } th { "Received" } th { "Appointment" } th { "Why" } th { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for m in &card.refused {
                                tr #{ "m-" (m.id) } {
                                    td { (m.message_id) }
                                    td { (m.kind) }
                                    td { (local(m.received_at, zone, "%-d %b")) " " (local(m.received_at, zone, &clock)) }
                                    td { (m.external_id.as_deref().unwrap_or("not read")) }
                                    td { (mask_loose(m.error.as_deref().unwrap_or_default())) }
                                    td.row-actions {
                                        a.button.small href={ "/desk/feeds/message?id=" (m.id) } aria-label={ "View message " (m.message_id) } { "View" }
                                        " "
                                        (apply_again(session, m))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn apply_again(session: &SignedIn, m: &FeedMessage) -> Markup {
    html! {
        form.inline method="post" action="/desk/feeds/reapply" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="id" value=(m.id);
            button.small type="submit" aria-label={ "Apply message " (m.message_id) " again" } { "Apply again" }
        }
    }
}

/// One stored message, its body with phone numbers masked (`body` is already masked).
pub fn message_page(
    session: &SignedIn,
    config: &Config,
    m: &FeedMessage,
    body: &str,
    now: DateTime<Utc>,
) -> Markup {
    let feed = config.feeds.get(&m.feed);
    let (zone, clock) = feed.map_or((chrono_tz::UTC, "%H:%M".to_string()), |f| {
        feed_clock(config, f)
    });
    page(
        &format!("Message {}", m.message_id),
        Some(session),
        "Feeds",
        &html! {
            dl.details {
                dt { "Feed" } dd { (m.feed) @if let Some(f) = feed { " · " (kind_words(f)) } }
                dt { "Kind" } dd { (m.kind) }
                dt { "Received" } dd { (at_words(m.received_at, zone, &clock, now)) }
                dt { "State" } dd {
                    @match m.state {
                        MessageState::Applied => { "applied" @if let Some(o) = &m.outcome { ": " (outcome_words(o)) } },
                        MessageState::Refused => "refused",
                        MessageState::Received => "waiting to be applied",
                    }
                }
                @if let Some(e) = &m.error { dt { "Why it was refused" } dd { (mask_loose(e)) } }
                dt { "Appointment" } dd { (m.external_id.as_deref().unwrap_or("not read")) }
                @if m.replays > 0 { dt { "Sent again" } dd { (super::plural(m.replays, "time", "times")) } }
            }
            h2 { "The message as received" }
            p.hint { "Phone numbers are hidden." }
            div.scroll { pre.message { (body) } }
            @if m.state != MessageState::Applied && feed.is_some() {
                (apply_again(session, m))
            }
            p { a href={ "/desk/feeds#feed-" (m.feed) } { "Back to the feeds" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::mask_numbers;

    #[test]
    fn hl7_phone_fields_are_masked_and_the_rest_is_kept() {
        let body = "MSH|^~\\&|EHR|CLINIC|REMINDERD|X|20261126103000||SIU^S12|MSG-1|P|2.5.1\rSCH|APT-7||||||||15|min\rPID|1||P-9^^^EHR||Patil^Priya||19800101|F|||||^PRN^CP^^91^9876543210~(022)2345-6789^WPN^PH|022 2345 6789\rNK1|1|Patil^Ravi|SPO||+91 98200 12345";
        let masked = mask_numbers(body);
        assert!(
            masked.contains("20261126103000"),
            "timestamps kept: {masked}"
        );
        assert!(masked.contains("Patil^Priya"), "names kept");
        assert!(!masked.contains("9876543210"), "{masked}");
        assert!(
            masked.contains("^PRN^CP^^**^******3210~(***)****-6789^WPN^PH|*** **** 6789"),
            "{masked}"
        );
        assert!(masked.contains("+** ***** *2345"), "next of kin: {masked}");
        assert_eq!(masked.lines().count(), 4, "one segment a line");
    }

    #[test]
    fn fhir_telecom_values_are_masked_but_not_email() {
        let body = r#"{"resourceType":"Patient","id":"p1","telecom":[{"system":"phone","use":"mobile","value":"+919876543210"},{"system":"email","value":"a@b.in"}],"birthDate":"1980-01-01"}"#;
        let masked = mask_numbers(body);
        assert!(masked.contains("+91******3210"), "{masked}");
        assert!(masked.contains("a@b.in"));
        assert!(masked.contains("1980-01-01"));
        assert!(!masked.contains("9876543210"));
    }

    #[test]
    fn loose_masking_takes_plus_numbers_only() {
        assert_eq!(
            mask_loose("bad mobile +91 98765 43210 on 2026-11-26"),
            "bad mobile +** ***** *3210 on 2026-11-26"
        );
        assert_eq!(mask_loose("a + b"), "a + b");
        assert_eq!(mask_loose("+12"), "+12");
    }

    #[test]
    fn outcomes_read_as_words() {
        assert_eq!(outcome_words("new"), "new appointment");
        assert_eq!(outcome_words("slot opened"), "slot opened");
    }
}
