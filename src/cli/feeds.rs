//! `reminderd feeds`: each schedule feed from a practice system (its last message or sync,
//! counts, whether it holds reminders and why, its last error), a feed's messages, one message
//! as received (numbers masked unless `--unmasked`, which is audited), and re-applying one.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use reminderd::config::{Config, Feed, FeedKind};
use reminderd::feeds::{self, Reapplied, ReapplyError};
use reminderd::store::{FeedMessage, MessageState, Store};
use reminderd::time::Clock;

use super::output::{print_feed_messages, print_feeds, print_json, rfc3339};
use super::{FeedsArgs, FeedsCommand, exit, fail, open};

/// One feed as `reminderd feeds` lists it.
pub(super) struct FeedLine<'a> {
    /// The feed as configured.
    pub feed: &'a Feed,
    /// What the store knows of it (`None`: never heard from).
    pub status: Option<reminderd::store::FeedStatus>,
    /// How many of its messages stand where.
    pub counts: reminderd::store::FeedCounts,
    /// Why it holds its clinics' reminders, if it does.
    pub hold: Option<String>,
}

impl FeedLine<'_> {
    /// `hl7` or `fhir`.
    pub fn kind(&self) -> &'static str {
        match self.feed.kind {
            FeedKind::Hl7(_) => "hl7",
            FeedKind::Fhir(_) => "fhir",
        }
    }

    /// The last message (HL7) or successful sync (FHIR).
    pub fn last_heard(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let s = self.status.as_ref()?;
        match self.feed.kind {
            FeedKind::Hl7(_) => s.last_message_at,
            FeedKind::Fhir(_) => s.last_success_at,
        }
    }
}

pub(super) fn run(config_path: &Path, db: Option<&Path>, args: &FeedsArgs) -> Result<u8> {
    let (config, mut store) = open(config_path, db)?;
    match &args.command {
        None => list(&config, &store, args),
        Some(FeedsCommand::Messages {
            name,
            refused,
            limit,
            json,
        }) => messages(&config, &store, name, *refused, *limit, *json),
        Some(FeedsCommand::Show { id, unmasked, json }) => show(&mut store, *id, *unmasked, *json),
        Some(FeedsCommand::Reapply { id, json }) => reapply(&config, &mut store, *id, *json),
        Some(FeedsCommand::Sync {
            name,
            full,
            now,
            json,
        }) => sync(config, store, name, *full, *now, *json),
    }
}

/// One sync of a FHIR feed, now: what it read and applied, or why the server failed it (the
/// error is recorded on the feed as the daemon's would be).
fn sync(
    config: Config,
    store: Store,
    name: &str,
    full: bool,
    now: Option<chrono::DateTime<chrono::Utc>>,
    json: bool,
) -> Result<u8> {
    let config = std::sync::Arc::new(config);
    let db = reminderd::store::Db::new(store);
    let clock = Clock::from_option(now);
    let report =
        super::runtime()?.block_on(feeds::fhir::sync_named(&db, &config, name, full, clock));
    match report {
        Ok(r) => {
            if json {
                print_json(&json!({
                    "feed": name,
                    "full": r.full,
                    "pages": r.pages,
                    "listed": r.listed,
                    "applied": r.applied,
                    "replays": r.replays,
                    "refused": r.refused,
                    "gone": r.gone,
                }))?;
            } else {
                println!(
                    "{name}: {} sync, {} pages, {} appointments listed: {} applied, {} unchanged since the last sync, {} refused, {} gone from the server",
                    if r.full { "full" } else { "incremental" },
                    r.pages,
                    r.listed,
                    r.applied,
                    r.replays,
                    r.refused,
                    r.gone
                );
                if r.refused > 0 {
                    println!(
                        "  `reminderd feeds messages {name} --refused` says why each was refused"
                    );
                }
            }
            Ok(if r.refused > 0 { exit::DATA } else { exit::OK })
        }
        Err(feeds::fhir::FhirError::Setup(why)) if why.contains("is not a FHIR feed") => {
            Err(fail(exit::USAGE, why))
        }
        Err(feeds::fhir::FhirError::Setup(why)) => Err(fail(exit::CONFIG, why)),
        Err(e) => Err(fail(exit::UNAVAILABLE, format!("{name}: {e}"))),
    }
}

/// Every configured feed; a held feed is printed with why, and the command still succeeds.
fn list(config: &Config, store: &Store, args: &FeedsArgs) -> Result<u8> {
    let now = Clock::from_option(args.now).now();
    let statuses = store.feed_statuses()?;
    let holds = feeds::holds(config, &statuses, now);
    let mut lines: Vec<FeedLine<'_>> = Vec::new();
    for feed in config.feeds.values() {
        lines.push(FeedLine {
            feed,
            status: statuses.iter().find(|s| s.feed == feed.name).cloned(),
            counts: store.feed_counts(&feed.name)?,
            hold: holds
                .iter()
                .find(|h| h.feed == feed.name)
                .map(|h| h.reason.clone()),
        });
    }
    if args.json {
        let rows: Vec<_> = lines
            .iter()
            .map(|l| {
                let s = l.status.clone().unwrap_or_default();
                json!({
                    "name": l.feed.name,
                    "kind": l.kind(),
                    "clinics": l.feed.clinics(),
                    "last_message_at": s.last_message_at.map(rfc3339),
                    "last_sync_at": s.last_sync_at.map(rfc3339),
                    "last_success_at": s.last_success_at.map(rfc3339),
                    "last_full_sync_at": s.last_full_sync_at.map(rfc3339),
                    "applied": l.counts.applied,
                    "refused": l.counts.refused,
                    "waiting": l.counts.waiting,
                    "replays": l.counts.replays,
                    "held": l.hold.is_some(),
                    "hold_reason": l.hold,
                    "last_error": s.last_error.as_ref().map(|(_, e)| e),
                    "last_error_at": s.last_error.as_ref().map(|(t, _)| rfc3339(*t)),
                })
            })
            .collect();
        print_json(&rows)?;
    } else {
        print_feeds(&lines, now)?;
    }
    Ok(exit::OK)
}

fn messages(
    config: &Config,
    store: &Store,
    name: &str,
    refused: bool,
    limit: usize,
    json: bool,
) -> Result<u8> {
    // A feed removed from the config still has its stored messages to look at.
    let known =
        config.feeds.contains_key(name) || store.feed_statuses()?.iter().any(|s| s.feed == name);
    if !known {
        let names: Vec<&str> = config.feeds.keys().map(String::as_str).collect();
        return Err(fail(
            exit::USAGE,
            format!(
                "there is no feed {name:?}; the configured feeds are: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let state = refused.then_some(MessageState::Refused);
    let list = store.feed_messages(name, state, limit)?;
    if json {
        print_json(&list.iter().map(message_json).collect::<Vec<_>>())?;
    } else {
        print_feed_messages(&list)?;
    }
    Ok(exit::OK)
}

fn message_json(m: &FeedMessage) -> serde_json::Value {
    json!({
        "id": m.id,
        "feed": m.feed,
        "message_id": m.message_id,
        "kind": m.kind,
        "received_at": rfc3339(m.received_at),
        "state": m.state.as_str(),
        "outcome": m.outcome,
        "error": m.error.as_deref().map(reminderd::phone::mask_loose),
        "external_id": m.external_id,
        "appointment_id": m.appointment_id,
        "replays": m.replays,
    })
}

fn no_such_message(id: i64) -> anyhow::Error {
    fail(
        exit::NO_INPUT,
        format!("there is no feed message {id}; `reminderd feeds messages NAME` lists them"),
    )
}

fn show(store: &mut Store, id: i64, unmasked: bool, json: bool) -> Result<u8> {
    let m = store.feed_message(id)?.ok_or_else(|| no_such_message(id))?;
    let raw = m.body.clone().unwrap_or_default();
    let body = if unmasked {
        // A reveal of a patient's number is audited, as at the desk.
        store.audit_staff(
            &super::admin_actor(),
            "view_feed_message_unmasked",
            m.appointment_id,
            Some(&format!("{} {}", m.feed, m.message_id)),
            None,
            Clock::System.now(),
        )?;
        raw.replace('\r', "\n")
    } else {
        reminderd::phone::mask_numbers(&raw)
    };
    if json {
        let mut v = message_json(&m);
        v["body"] = json!(body);
        v["masked"] = json!(!unmasked);
        print_json(&v)?;
    } else {
        println!(
            "message {} of feed {}: {} {}, received {}, {}",
            m.id,
            m.feed,
            m.kind,
            m.message_id,
            rfc3339(m.received_at),
            m.state.as_str()
        );
        if let Some(e) = &m.error {
            println!("refused: {}", reminderd::phone::mask_loose(e));
        }
        println!();
        println!("{}", body.trim_end());
    }
    Ok(exit::OK)
}

fn reapply(config: &Config, store: &mut Store, id: i64, json: bool) -> Result<u8> {
    let now = Clock::System.now();
    let done = match feeds::reapply_as(store, config, id, &super::admin_actor(), now) {
        Ok(d) => d,
        Err(ReapplyError::NoSuchMessage(_)) => return Err(no_such_message(id)),
        Err(e @ ReapplyError::NoSuchFeed(_)) => return Err(fail(exit::CONFIG, e.to_string())),
        Err(e @ ReapplyError::Purged(_)) => return Err(fail(exit::DATA, e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let (words, code) = match &done {
        Reapplied::Applied(outcome) => (
            format!("applied: {}", reminderd::desk::outcome_words(outcome)),
            exit::OK,
        ),
        Reapplied::AlreadyApplied => ("already applied: nothing was done again".into(), exit::OK),
        Reapplied::Refused(why) => (
            format!("still refused: {}", reminderd::phone::mask_loose(why)),
            exit::DATA,
        ),
    };
    if json {
        print_json(&json!({
            "id": id,
            "applied": matches!(done, Reapplied::Applied(_)),
            "already_applied": done == Reapplied::AlreadyApplied,
            "outcome": match &done { Reapplied::Applied(o) => Some(o.as_str()), _ => None },
            "refused": match &done { Reapplied::Refused(w) => Some(reminderd::phone::mask_loose(w)), _ => None },
        }))?;
    } else {
        println!("message {id}: {words}");
    }
    Ok(code)
}
