//! The jobs as the CLI and the daemon run them: each is a short sequence of store calls around
//! the pure planning and dispatch logic.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::phone::E164;
use crate::plan::{self, BOOKING_WINDOW};
pub mod feedback;
pub mod purge;
mod sms;
pub mod waitlist;

pub use sms::{SmsSummary, process_sms_inbound, process_sms_status};

/// A daemon job on `cron` that runs `work` with the config as it is at each tick; a tick that
/// finds the last run still going skips, so a slow run never piles up behind itself.
pub(crate) fn exclusive_cron_job<F, Fut>(
    cron: &str,
    name: &str,
    config: std::sync::Arc<std::sync::RwLock<std::sync::Arc<Config>>>,
    work: F,
) -> Result<tokio_cron_scheduler::Job, String>
where
    F: Fn(std::sync::Arc<Config>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use std::sync::atomic::{AtomicBool, Ordering};
    let running = std::sync::Arc::new(AtomicBool::new(false));
    let work = std::sync::Arc::new(work);
    tokio_cron_scheduler::Job::new_async(cron, move |_, _| {
        let (config, running, work) = (
            std::sync::Arc::clone(&config),
            std::sync::Arc::clone(&running),
            std::sync::Arc::clone(&work),
        );
        Box::pin(async move {
            if running.swap(true, Ordering::AcqRel) {
                return;
            }
            let config = std::sync::Arc::clone(
                &config
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            work(config).await;
            running.store(false, Ordering::Release);
        })
    })
    .map_err(|e| format!("{name}: {e:?}"))
}

use crate::store::{Delivery, PlanCounts, ReplyRecord, StatusApplied, Store, StoreError};

/// Plans everything due at `now` and materialises it (or, with `dry_run`, only counts).
pub fn plan_due(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<PlanCounts, StoreError> {
    if !dry_run {
        // Holds that ran out reopen; moves an import landed are confirmed to the patient.
        crate::waitlist::booking::settle(store, config, now)?;
    }
    // Without a booking-confirmation template nothing is planned from an appointment's
    // creation, so none is asked for: the day after a big import that half of the candidates
    // is every row it wrote (1M rows: 386 MB and seconds holding the store, every tick).
    let created_since = if config.booking_confirmation.is_some() {
        now - BOOKING_WINDOW
    } else {
        DateTime::<Utc>::MAX_UTC
    };
    let feedback = feedback::due(store, config, now)?;
    store.plan_into_outbox(
        (now, now + plan::horizon(config), created_since),
        |candidates| plan::plan(config, candidates, now),
        &feedback,
        now,
        dry_run,
    )
}

/// Days a stats page or `reminderd stats` covers when no start is given: the last 30 days,
/// the end day included.
pub const STATS_DAYS: u64 = 30;

/// The first day of the default stats range ending on `to`.
pub fn stats_from(to: chrono::NaiveDate) -> chrono::NaiveDate {
    to.checked_sub_days(chrono::Days::new(STATS_DAYS - 1))
        .unwrap_or(chrono::NaiveDate::MIN)
}

/// The follow-up list of one clinic's local day, as the CLI, the desk and the demo show it.
pub fn follow_ups_for(
    store: &Store,
    config: &Config,
    clinic: &crate::config::Clinic,
    day: chrono::NaiveDate,
) -> Result<Vec<crate::store::FollowUp>, StoreError> {
    let (from, to) = crate::time::local_day_bounds(clinic.time_zone, day);
    store.follow_ups(
        &clinic.key,
        from,
        to,
        config.rule_count(&clinic.key),
        clinic.sms_provider.is_some(),
    )
}

/// Which follow-ups to list: one clinic or all, and one local day or the coming days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallScope<'a> {
    /// Only this clinic (`None`: every clinic).
    pub clinic: Option<&'a str>,
    /// Only this local day at each clinic (`None`: today and the `days` after it).
    pub day: Option<chrono::NaiveDate>,
    /// Days after each clinic's local today (`desk.follow_up_days`).
    pub days: u32,
}

/// The "to call now" list: the follow-ups of every clinic in `scope`, from each clinic's own
/// local today through `scope.days` days after it (or on `scope.day` only), in time order.
/// Today's calls are mostly about the coming days' patients, so no single day is enough.
pub fn to_call(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
    scope: CallScope<'_>,
) -> Result<Vec<crate::store::FollowUp>, StoreError> {
    let mut all = Vec::new();
    for c in config
        .clinics
        .values()
        .filter(|c| scope.clinic.is_none_or(|k| k == c.key))
    {
        let (first, last) = match scope.day {
            Some(day) => (day, day),
            None => {
                let today = now.with_timezone(&c.time_zone).date_naive();
                let last = today
                    .checked_add_days(chrono::Days::new(scope.days.into()))
                    .unwrap_or(today);
                (today, last)
            }
        };
        let from = crate::time::local_day_bounds(c.time_zone, first).0;
        let to = crate::time::local_day_bounds(c.time_zone, last).1;
        all.extend(store.follow_ups(
            &c.key,
            from,
            to,
            config.rule_count(&c.key),
            c.sms_provider.is_some(),
        )?);
    }
    all.sort_by(|a, b| {
        (a.starts_at, &a.clinic, &a.appointment_id).cmp(&(
            b.starts_at,
            &b.clinic,
            &b.appointment_id,
        ))
    });
    Ok(all)
}

/// What the desk shows on every page: how many wait on Follow-ups and on Replies, and why
/// reminders are not going out, as far as the store knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeskStatus {
    /// People on the "to call now" list (every clinic, `desk.follow_up_days`) and updates to
    /// make in the practice system by hand.
    pub follow_ups: usize,
    /// Replies waiting for a person.
    pub replies: usize,
    /// Feed messages refused and not applied since (`None`: no feeds are configured, so the
    /// desk shows no Feeds page).
    pub feeds: Option<usize>,
    /// Why reminders are held, if they are.
    pub holds: Vec<Hold>,
    /// Each configured clinic's display name and zone: the banner's times are the clinics'
    /// local times (the account is the clinics' together).
    pub zones: Vec<(String, chrono_tz::Tz)>,
}

/// A reason reminders are not going out that staff should know of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// A clinic's schedule is older than its `max_import_age`, so its reminders wait for a
    /// fresh one (dispatch's stale-schedule guard).
    StaleSchedule {
        /// The clinic's display name.
        clinic: String,
        /// How long ago it was last imported (`None`: never).
        ago: Option<chrono::Duration>,
    },
    /// A schedule feed is silent or failing, so the reminders of the clinics it feeds wait
    /// (the feed's freshness guard).
    Feed {
        /// The feed's name.
        feed: String,
        /// The clinics it holds, by display name.
        clinics: Vec<String>,
        /// What was last heard and the limit it passed.
        reason: String,
    },
    /// WhatsApp refused the account (token, permission, payment): dispatch stopped and the
    /// messages wait.
    Account {
        /// How long ago the latest was refused.
        ago: chrono::Duration,
        /// How many messages wait.
        messages: i64,
        /// The API's answer.
        error: String,
    },
    /// WhatsApp refused a message template (missing, paused, parameters that do not match).
    Template {
        /// The template's config key (`[templates.KEY]`).
        template: String,
        /// How long ago the latest was refused.
        ago: chrono::Duration,
        /// How many messages it concerns.
        messages: i64,
        /// The API's answer.
        error: String,
    },
    /// Meta restricted or disabled the WhatsApp Business account (`account_update`): nothing
    /// is sent until it is lifted.
    AccountBlocked {
        /// What Meta said.
        reason: String,
        /// When the restriction ends, if Meta said (the desk shows it in the clinics' zones).
        until: Option<DateTime<Utc>>,
        /// The clinics whose messages it holds, by name, when the clinics send from several
        /// business accounts and it holds only some (empty: every clinic's).
        clinics: Vec<String>,
    },
    /// Meta paused, disabled or rejected a configured template, or made it marketing: its
    /// messages are held, sent with the alternate template, or sent by SMS.
    TemplateStopped {
        /// The template's config key.
        template: String,
        /// What Meta did, in words.
        why: String,
        /// Messages held for it.
        messages: i64,
        /// The template sent instead, if one is configured.
        alternate: Option<String>,
    },
    /// Meta announced a change to a template that still works (a re-categorisation, a low
    /// quality rating): nothing is held.
    TemplateWarning {
        /// The template's config key.
        template: String,
        /// What Meta said, in words.
        why: String,
        /// When an announced change takes effect, if Meta said (shown in the clinics' zones).
        at: Option<DateTime<Utc>>,
    },
}

/// How far back a template refusal is still news: a day, so the morning shift sees the
/// evening's trouble.
const TROUBLE_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// The desk's counts and holds at `now`.
pub fn desk_status(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<DeskStatus, StoreError> {
    let days = config.desk.as_ref().map_or(2, |d| d.follow_up_days);
    let scope = CallScope {
        days,
        ..CallScope::default()
    };
    let mut holds = Vec::new();
    for age in store.schedule_ages(now)?.into_iter().filter(|a| a.upcoming) {
        let Some(clinic) = config.clinic(&age.clinic) else {
            continue;
        };
        let Some(max_age) = clinic.max_import_age else {
            continue;
        };
        if crate::feeds::is_fed(config, &clinic.key) {
            continue;
        }
        // The same test as dispatch's guard.
        if age.last_import.is_none_or(|t| now - t > max_age) {
            holds.push(Hold::StaleSchedule {
                clinic: clinic.display_name.clone(),
                ago: age.last_import.map(|t| now - t),
            });
        }
    }
    let mut feeds = None;
    if !config.feeds.is_empty() {
        let statuses = store.feed_statuses()?;
        feeds = Some(refused_messages(store, config)?);
        for h in crate::feeds::holds(config, &statuses, now) {
            let clinics = h
                .clinics
                .iter()
                .filter_map(|k| config.clinic(k).map(|c| c.display_name.clone()))
                .collect();
            holds.push(Hold::Feed {
                feed: h.feed,
                clinics,
                reason: h.reason,
            });
        }
    }
    if let Some(stop) = store.account_stop()? {
        holds.push(Hold::Account {
            ago: now - stop.at,
            messages: stop.messages,
            error: stop.reason,
        });
    }
    holds.extend(crate::dispatch::health::desk_holds(store, config, now)?);
    for t in store.send_troubles(now - TROUBLE_WINDOW)? {
        if let (Some(template), true) = (t.template, crate::whatsapp::is_template_problem(t.code)) {
            holds.push(Hold::Template {
                template,
                ago: now - t.at,
                messages: t.messages,
                error: t.error,
            });
        }
    }
    Ok(DeskStatus {
        follow_ups: to_call(store, config, now, scope)?.len()
            + practice_updates(store, config, None)?.len(),
        replies: store.waiting_reply_count()?,
        feeds,
        holds,
        zones: config
            .clinics
            .values()
            .map(|c| (c.display_name.clone(), c.time_zone))
            .collect(),
    })
}

/// Refused messages of the configured feeds (a feed removed from the config is not counted:
/// nobody can fix its messages).
pub fn refused_messages(store: &Store, config: &Config) -> Result<usize, StoreError> {
    let mut n = 0;
    for feed in config.feeds.keys() {
        n += usize::try_from(store.refused_feed_messages(feed)?).unwrap_or(0);
    }
    Ok(n)
}

/// The practice-system updates staff must make by hand, of configured clinics (of `clinic`
/// only, when given), oldest first: each is a follow-up ("cancel it in the practice system
/// too").
pub fn practice_updates(
    store: &Store,
    config: &Config,
    clinic: Option<&str>,
) -> Result<Vec<crate::store::PracticeUpdate>, StoreError> {
    Ok(store
        .practice_updates()?
        .into_iter()
        .filter(|p| config.clinic(&p.update.clinic).is_some())
        .filter(|p| clinic.is_none_or(|k| k == p.update.clinic))
        .collect())
}

/// What one webhook body did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebhookSummary {
    /// Replies recorded (new message ids).
    pub replies: usize,
    /// Replies already recorded before (Meta retried).
    pub duplicates: usize,
    /// Statuses that moved a message forward.
    pub statuses: usize,
    /// Statuses that were duplicates or out of order.
    pub stale_statuses: usize,
    /// Statuses for messages that are not ours.
    pub unknown_statuses: usize,
    /// Messages that could not be read (each handed to staff) and statuses that could not be
    /// read (logged): the rest of their batch was applied all the same.
    pub unreadable: usize,
    /// The same bytes were received and applied before: counted, not stored or applied again.
    pub replay: bool,
}

/// Stores a signed webhook body, then applies each of its messages and statuses on its own,
/// all in one transaction (a savepoint when the caller has one open: the server's group
/// commit). `Ok(Err(why))` means the body was stored but is not a JSON object (nothing to
/// apply); `Err` is a database failure (nothing of it is kept; answer 500, so that Meta
/// retries).
pub fn process_webhook(
    store: &mut Store,
    config: &Config,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Result<WebhookSummary, String>, StoreError> {
    store.atomically(|store| apply_webhook(store, config, body, now))
}

/// [`process_webhook`]'s work, inside its transaction.
fn apply_webhook(
    store: &mut Store,
    config: &Config,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Result<WebhookSummary, String>, StoreError> {
    let event = store.record_event(body, now)?;
    if event.replay {
        metrics::counter!("reminderd_webhook_events_total", "kind" => "replay").increment(1);
        if event.processed {
            return Ok(Ok(WebhookSummary {
                replay: true,
                ..WebhookSummary::default()
            }));
        }
    }
    let items = match std::str::from_utf8(body)
        .map_err(|e| format!("not UTF-8 ({e})"))
        .and_then(crate::whatsapp::read_webhook)
    {
        Ok(items) => items,
        Err(e) => {
            metrics::counter!("reminderd_webhook_events_total", "kind" => "malformed").increment(1);
            let why = format!("malformed: {e}");
            store.finish_event(event.id, &why, now)?;
            return Ok(Err(why));
        }
    };
    let mut summary = WebhookSummary {
        replay: event.replay,
        ..WebhookSummary::default()
    };
    let mut problems = items.problems;
    for status in &items.statuses {
        match status {
            Ok(status) => match delivery(status) {
                Some(d) if expired_after_ttl(store, config, &d, now)? => summary.statuses += 1,
                Some(mut d) => {
                    settle_failure(store, config, &mut d, now)?;
                    match store.apply_status(&d, now)? {
                        StatusApplied::Moved(_) => summary.statuses += 1,
                        StatusApplied::Stale => summary.stale_statuses += 1,
                        StatusApplied::Unknown => summary.unknown_statuses += 1,
                    }
                    // What Meta bills for it (the status's `pricing`), on the same row.
                    store.record_pricing_of(status, now)?;
                }
                // A state we do not track (Meta adds some): nothing moves.
                None => summary.stale_statuses += 1,
            },
            Err(bad) => {
                summary.unreadable += 1;
                tracing::warn!(event = event.id, why = %bad.why, "a delivery status could not be read; the rest of the batch is applied");
                problems.push(format!("a status could not be read: {}", bad.why));
            }
        }
    }
    for (n, msg) in items.messages.iter().enumerate() {
        let recorded = match msg {
            Ok(msg) if msg.id.is_empty() => continue,
            Ok(msg) => apply_message(store, config, event.id, msg, now)?,
            Err(bad) => {
                summary.unreadable += 1;
                problems.push(format!("a message could not be read: {}", bad.why));
                hand_unreadable_to_staff(store, event.id, n, bad, now)?
            }
        };
        if recorded {
            summary.replies += 1;
        } else {
            summary.duplicates += 1;
        }
    }
    problems.extend(crate::dispatch::health::apply_events(
        store,
        &items.events,
        event.id,
        now,
    )?);
    let outcome = if problems.is_empty() {
        "applied".to_string()
    } else {
        format!("applied; {}", problems.join("; "))
    };
    store.finish_event(event.id, &outcome, now)?;
    for (kind, n) in [
        ("reply", summary.replies),
        ("duplicate_reply", summary.duplicates),
        ("status", summary.statuses),
        ("stale_status", summary.stale_statuses),
        ("unknown_status", summary.unknown_statuses),
        ("unreadable", summary.unreadable),
    ] {
        if n > 0 {
            metrics::counter!("reminderd_webhook_events_total", "kind" => kind).increment(n as u64);
        }
    }
    Ok(Ok(summary))
}

/// A delivery status as the store records it, with dispatch's rule for who must act on a
/// failure; `None` for a status that names no state we track.
fn delivery(u: &crate::whatsapp::StatusUpdate) -> Option<Delivery> {
    let state = crate::model::OutboxState::parse(&u.status).ok()?;
    let error = u.error();
    Some(Delivery {
        wamid: u.id.clone(),
        outbox_id: u.outbox_id(),
        state,
        error_code: error.as_ref().map(|(code, _)| *code),
        needs_staff: error
            .as_ref()
            .and_then(|(code, _)| crate::dispatch::needs_staff(*code)),
        error: error.map(|(_, text)| text),
        fallback: None,
        off_whatsapp_until: None,
    })
}

/// For a failed WhatsApp status: alerts on codes a person must see, and records the message
/// as expired when WhatsApp gave up after its template's time to live (`true`: done).
fn expired_after_ttl(
    store: &mut Store,
    config: &Config,
    d: &Delivery,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if d.state != crate::model::OutboxState::Failed {
        return Ok(false);
    }
    if let Some(code) = d.error_code {
        crate::dispatch::health::alert(code, d.outbox_id);
    }
    let ttl_of = |k: &str| config.templates.get(k).and_then(|t| t.ttl);
    let error = d
        .error_code
        .map(|c| (c, d.error.as_deref().unwrap_or("failed")));
    store.expire_after_ttl(&d.wamid, d.outbox_id, &ttl_of, error, now)
}

/// For a failed WhatsApp status: whether an SMS replaces the message (then nobody needs to
/// call yet), by dispatch's one policy for send errors and statuses alike.
fn settle_failure(
    store: &Store,
    config: &Config,
    d: &mut Delivery,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (crate::model::OutboxState::Failed, Some(code)) = (d.state, d.error_code) else {
        return Ok(());
    };
    if !crate::dispatch::FALLBACK_CODES.contains(&code) {
        return Ok(());
    }
    let Some(row) = store.due_row_for(&d.wamid, d.outbox_id)? else {
        return Ok(());
    };
    if crate::dispatch::may_fall_back(config, &row, code) {
        d.fallback = Some(crate::dispatch::fallback_for(config, code, now));
        d.needs_staff = None;
    } else {
        d.off_whatsapp_until = crate::dispatch::off_whatsapp_until(config, &row, code, now);
    }
    Ok(())
}

/// The clinics that send from the number `msg` was written to, when the config has several
/// numbers and knows this one (`None`: every clinic's appointments are candidates).
fn on_number<'c>(
    config: &'c Config,
    msg: &crate::whatsapp::InboundMessage,
) -> Option<Vec<&'c str>> {
    let several = config.whatsapp.as_ref()?.numbers.len() > 1;
    several
        .then(|| config.clinics_on(msg.to_number.as_deref()?))
        .flatten()
}

/// Reads, resolves and records one inbound message. `false` when it was recorded before.
fn apply_message(
    store: &mut Store,
    config: &Config,
    event_id: i64,
    msg: &crate::whatsapp::InboundMessage,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use crate::replies;
    if let Some(system) = msg.system.as_ref().filter(|_| msg.kind == "system") {
        return apply_system(store, event_id, msg, system, now);
    }
    let user_id = msg.from_user_id.as_deref().filter(|u| !u.is_empty());
    let mut from = msg.from.as_deref().and_then(E164::from_wa_id);
    match (&from, user_id) {
        // A sender known only by username is matched by the user id their earlier messages
        // carried beside their number; unknown, staff decide.
        (None, Some(u)) => from = store.phone_for_user_id(u)?,
        (Some(number), Some(u)) => {
            store.remember_user_id(number, u, now)?;
        }
        _ => {}
    }
    let reading = replies::read(&msg.content(), &config.replies.words);
    let context = msg.context.as_ref().and_then(|c| c.id.as_deref());
    // A score of a visit (a tapped score, or a digit answering the request) is feedback's.
    let shown = msg.shown_text();
    let reading = match feedback::route_reply(
        store,
        config,
        (Some(event_id), &msg.id, &msg.kind),
        from.as_ref(),
        &msg.content(),
        shown.as_deref(),
        context,
        reading,
        crate::model::Channel::WhatsApp,
        now,
    )? {
        Ok(recorded) => return Ok(recorded),
        Err(reading) => reading,
    };
    // An answer to an offer (a tap on it, or words its one live offer takes) is the
    // waitlist's; anything else goes on as before.
    let reading = match crate::waitlist::booking::route_reply(
        store,
        config,
        (Some(event_id), &msg.id, &msg.kind),
        from.as_ref(),
        &msg.content(),
        context,
        reading,
        crate::model::Channel::WhatsApp,
        now,
    )? {
        Ok(recorded) => return Ok(recorded),
        Err(reading) => reading,
    };
    let mut found = store.reply_candidates(from.as_ref(), reading.outbox_id, context, now)?;
    if let Some(clinics) = on_number(config, msg) {
        found.only_clinics(&clinics);
    }
    let resolution = replies::resolve(&reading, &found, from.as_ref(), now);
    let list = crate::waitlist::booking::list_follows(store, config, &resolution, now)?;
    let ack = ack_for(config, &resolution).filter(|_| !list);
    let text = shown;
    let recorded = store.commit_reply(
        &ReplyRecord {
            event_id,
            message_id: &msg.id,
            from: from.as_ref(),
            kind: &msg.kind,
            text: text.as_deref(),
            resolution: &resolution,
            patients: &found.patients,
            ack,
            media: media_record(msg),
            channel: crate::model::Channel::WhatsApp,
            from_contact: from_contact(&resolution, from.as_ref()),
        },
        now,
    )?;
    if recorded {
        tracing::info!(
            from = %from.as_ref().map_or_else(|| "(no number)".into(), E164::masked),
            intent = resolution.intent.as_str(),
            outcome = resolution.outcome.as_str(),
            "reply"
        );
    }
    if let (true, true, Some(a)) = (recorded, list, &resolution.appointment) {
        let to = (
            recipient(&resolution, from.as_ref()),
            crate::model::Channel::WhatsApp,
        );
        crate::waitlist::booking::offer_reschedule(store, config, a, to, now)?;
    }
    Ok(recorded)
}

/// A `system` message: a changed number moves the one patient who had the old one (the store
/// files a note for staff either way); other kinds (a changed user id) update the id kept with
/// the patients who had the old one. `false` when it was recorded before.
fn apply_system(
    store: &mut Store,
    event_id: i64,
    msg: &crate::whatsapp::InboundMessage,
    system: &crate::whatsapp::InboundSystem,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let old = msg.from.as_deref().and_then(E164::from_wa_id);
    let new = system.wa_id.as_deref().and_then(E164::from_wa_id);
    match (system.kind.as_str(), old, new) {
        (kind, old, new) if kind.ends_with("_changed_number") => {
            let change = store.change_number(
                &crate::store::NumberChangeRecord {
                    event_id,
                    message_id: &msg.id,
                    old: old.as_ref(),
                    new: new.as_ref(),
                    user_id: system.user_id.as_deref(),
                },
                now,
            )?;
            if change != crate::store::NumberChange::Replayed {
                let masked = |n: &Option<E164>| {
                    n.as_ref()
                        .map_or_else(|| "(none given)".into(), E164::masked)
                };
                tracing::info!(from = %masked(&old), to = %masked(&new), ?change, "a patient changed their WhatsApp number");
            }
            Ok(change != crate::store::NumberChange::Replayed)
        }
        (_, number, _) => {
            // A new user id for a known one: the patients who had the old id keep the new.
            if let (Some(prev), Some(id)) = (
                system.previous_user_id.as_deref(),
                system.user_id.as_deref(),
            ) && let Some(phone) = store.phone_for_user_id(prev)?.or(number)
            {
                store.remember_user_id(&phone, id, now)?;
            }
            tracing::info!(kind = %system.kind, "a system message about a WhatsApp user was read");
            Ok(true)
        }
    }
}

/// The file a message carries, as the store records it (a file without an id cannot be
/// fetched, so it is not recorded; the reply still says what came).
fn media_record(msg: &crate::whatsapp::InboundMessage) -> Option<crate::store::MediaRecord<'_>> {
    let (_, m) = msg.media().filter(|(_, m)| !m.id.is_empty())?;
    Some(crate::store::MediaRecord {
        media_id: &m.id,
        mime_type: m.mime_type.as_deref(),
        sha256: m.sha256.as_deref(),
        filename: m.filename.as_deref(),
        voice: m.voice,
        phone_number_id: msg.to_number.as_deref(),
    })
}

/// Records a message that could not be read as one for staff, filed under the sender's one
/// upcoming reminded appointment when there is one: a patient wrote, and a person must look.
/// Without an id of its own it is named after its place in the stored event, so a second
/// processing of the same event records it once.
fn hand_unreadable_to_staff(
    store: &mut Store,
    event_id: i64,
    index: usize,
    bad: &crate::whatsapp::Unreadable,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use crate::replies::{self, Intent, Reading};
    let from = bad.from.as_deref().and_then(E164::from_wa_id);
    let message_id = bad
        .id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("unreadable:{event_id}:{index}"));
    let reading = Reading {
        intent: Intent::Unknown,
        outbox_id: None,
        needs_staff: Some(format!(
            "the message could not be read ({}); see the patient's chat, or inbound event {event_id}",
            bad.why
        )),
    };
    let found = store.reply_candidates(from.as_ref(), None, None, now)?;
    let resolution = replies::resolve(&reading, &found, from.as_ref(), now);
    let recorded = store.commit_reply(
        &ReplyRecord {
            event_id,
            message_id: &message_id,
            from: from.as_ref(),
            kind: bad.kind.as_deref().unwrap_or("unreadable"),
            text: None,
            resolution: &resolution,
            patients: &found.patients,
            ack: None,
            media: None,
            channel: crate::model::Channel::WhatsApp,
            from_contact: from_contact(&resolution, from.as_ref()),
        },
        now,
    )?;
    if recorded {
        tracing::warn!(
            event = event_id,
            from = %from.as_ref().map_or_else(|| "(no number)".into(), E164::masked),
            why = %bad.why,
            "a message could not be read; handed to staff, the rest of the batch is applied"
        );
    }
    Ok(recorded)
}

/// Whether a reply came from the caregiver of the appointment it concerns rather than the
/// patient: the acknowledgement then goes to the caregiver.
fn from_contact(resolution: &crate::replies::Resolution, from: Option<&E164>) -> bool {
    match (&resolution.appointment, from) {
        (Some(a), Some(f)) => a.phone != f.as_str(),
        _ => false,
    }
}

/// Who the answer to a reply goes to: the caregiver when they wrote.
fn recipient(
    resolution: &crate::replies::Resolution,
    from: Option<&E164>,
) -> crate::model::Recipient {
    if from_contact(resolution, from) {
        crate::model::Recipient::Contact
    } else {
        crate::model::Recipient::Patient
    }
}

/// The acknowledgement of an applied reply, in the patient's language (`None` for a reply
/// that changed nothing).
fn ack_for(config: &Config, resolution: &crate::replies::Resolution) -> Option<String> {
    let a = resolution.appointment.as_ref()?;
    if resolution.outcome != crate::replies::Outcome::Applied {
        return None;
    }
    let clinic = config.clinic(&a.clinic)?;
    crate::template::ack_text(
        &config.replies.acks,
        resolution.intent,
        clinic,
        &a.patient_name,
        &a.language,
        a.starts_at,
    )
}
