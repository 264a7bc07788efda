//! What staff see and do: replies to handle, follow-ups, the day board, status changes and
//! stats.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::desk_status::CHANGES;
use super::{DeskChange, LastMessage, Note, Store, StoreError};

/// A reply as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplyView {
    /// Row id.
    pub id: i64,
    /// When it arrived (UTC, RFC 3339).
    pub received_at: String,
    /// The sender's number.
    pub from: String,
    /// The patient's name, if the number is a patient's.
    pub patient_name: Option<String>,
    /// Clinic key of the appointment it concerns.
    pub clinic: Option<String>,
    /// The appointment it concerns.
    pub appointment_id: Option<String>,
    /// The API's message type.
    pub kind: String,
    /// What was typed or tapped.
    pub text: Option<String>,
    /// What it was read as.
    pub intent: String,
    /// applied, needs_staff, ignored.
    pub outcome: String,
    /// Why it needs staff or was ignored.
    pub reason: Option<String>,
    /// The file it carries (a photo, voice note, ...), opened at `/desk/replies/media`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<super::ReplyMedia>,
    /// When it arrived, for pages that show it in a clinic's time.
    #[serde(skip)]
    pub received: DateTime<Utc>,
    /// The appointment's row id.
    #[serde(skip)]
    pub appointment_row: Option<i64>,
    /// The appointment's start.
    #[serde(skip)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Who the appointment is with.
    #[serde(skip)]
    pub provider: Option<String>,
    /// Clinic key of the patient the number belongs to (for a reply about no appointment).
    #[serde(skip)]
    pub patient_clinic: Option<String>,
}

/// An appointment staff should call about, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FollowUp {
    /// Row id (reveals and calls name it).
    pub id: i64,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Clinic key.
    pub clinic: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number, whole: staff will dial it.
    pub phone: String,
    /// Who it is with.
    pub provider: Option<String>,
    /// Why, one line each.
    pub reasons: Vec<String>,
}

/// Counts for `stats`, over the appointments that start in a range. Every appointment is in
/// exactly one [`RuleStats`] group, and the totals here are those groups' sums, so the
/// headline, the chart and the table of a page cannot disagree.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Appointments in the range (every status).
    pub appointments: i64,
    /// ... cancelled (by the clinic, the patient or the schedule).
    pub cancelled: i64,
    /// ... reminded: at least one reminder accepted by the API.
    pub reminded: i64,
    /// ... whose patient confirmed (by a reply or to staff).
    pub confirmed: i64,
    /// ... reminded and confirmed.
    pub reminded_confirmed: i64,
    /// ... that the patient cancelled.
    pub declined: i64,
    /// ... that the patient asked to move.
    pub reschedule_requested: i64,
    /// ... set to no-show: the one count of no-shows.
    pub no_shows: i64,
    /// No-shows whose patient had confirmed.
    pub no_show_confirmed: i64,
    /// No-shows reminded who had not confirmed.
    pub no_show_unconfirmed: i64,
    /// No-shows whose reminders all failed.
    pub no_show_unreachable: i64,
    /// No-shows who were sent no reminder (none planned, or none went out).
    pub no_show_not_reminded: i64,
    /// Reminder messages accepted by the API.
    pub reminders_sent: i64,
    /// ... and delivered to the phone (or read).
    pub reminders_delivered: i64,
    /// ... and read.
    pub reminders_read: i64,
    /// Reminder messages that failed.
    pub reminders_failed: i64,
    /// Patients with an appointment in the range who opted out.
    pub opt_outs: i64,
    /// The appointments grouped by their last reminder's rule (reminded first, by rule name),
    /// then those no reminder reached; the groups add up to the totals above.
    pub per_rule: Vec<RuleStats>,
    /// The same appointments grouped by the channel of their last accepted reminder
    /// (WhatsApp, then texts, then those no reminder reached), with each channel's message
    /// figures; the groups add up to the totals above.
    pub per_channel: Vec<ChannelStats>,
}

/// A group of appointments by the channel their last accepted reminder went by, and that
/// channel's reminder messages (counted apart, as the totals are).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChannelStats {
    /// whatsapp or sms; `None`: no reminder reached these appointments.
    pub channel: Option<String>,
    /// Appointments in the group.
    pub appointments: i64,
    /// ... whose patient confirmed.
    pub confirmed: i64,
    /// ... cancelled.
    pub cancelled: i64,
    /// ... set to no-show.
    pub no_show: i64,
    /// Reminder messages by this channel accepted by the provider.
    pub sent: i64,
    /// ... and delivered to the phone (or read).
    pub delivered: i64,
    /// ... and read (WhatsApp only: texts report no reading).
    pub read: i64,
    /// Reminder messages by this channel that failed.
    pub failed: i64,
}

/// A group of appointments: those whose last accepted reminder came from one rule, or those
/// no reminder reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleStats {
    /// The rule's name; `None`: no reminder reached these appointments.
    pub rule: Option<String>,
    /// Appointments in the group.
    pub appointments: i64,
    /// ... whose patient confirmed.
    pub confirmed: i64,
    /// ... cancelled.
    pub cancelled: i64,
    /// ... set to no-show.
    pub no_show: i64,
}

impl Store {
    /// Replies, newest first.
    pub fn replies(
        &self,
        needs_staff_only: bool,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ReplyView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.received_at, r.from_phone, p.name, c.key, a.external_id, r.kind, r.text, r.intent, r.outcome, r.reason,
                    a.id, a.starts_at, a.provider, pc.key,
                    m.reply_id IS NOT NULL, m.mime_type, m.filename, m.voice
             FROM replies r LEFT JOIN patients p ON p.id = r.patient_id LEFT JOIN clinics pc ON pc.id = p.clinic_id
             LEFT JOIN appointments a ON a.id = r.appointment_id LEFT JOIN clinics c ON c.id = a.clinic_id
             LEFT JOIN reply_media m ON m.reply_id = r.id
             WHERE (?1 = 0 OR (r.outcome = 'needs_staff' AND r.handled_by IS NULL)) AND r.received_at >= ?2
             ORDER BY r.received_at DESC, r.id DESC",
        )?;
        let since = since.map_or(i64::MIN, |t| t.timestamp());
        let rows = stmt.query_map(params![needs_staff_only, since], |r| {
            let media = if r.get::<_, bool>(15)? {
                Some(super::ReplyMedia {
                    kind: r.get(6)?,
                    mime_type: r.get(16)?,
                    filename: r.get(17)?,
                    caption: r.get(7)?,
                    voice: r.get(18)?,
                })
            } else {
                None
            };
            let received = crate::time::from_unix(r.get(1)?);
            Ok(ReplyView {
                id: r.get(0)?,
                received_at: received.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                received,
                from: r.get(2)?,
                patient_name: r.get(3)?,
                clinic: r.get(4)?,
                appointment_id: r.get(5)?,
                kind: r.get(6)?,
                text: r.get(7)?,
                intent: r.get(8)?,
                outcome: r.get(9)?,
                reason: r.get(10)?,
                media,
                appointment_row: r.get(11)?,
                starts_at: r.get::<_, Option<i64>>(12)?.map(crate::time::from_unix),
                provider: r.get(13)?,
                patient_clinic: r.get(14)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Booked appointments of one clinic starting in `[from, to)` that a person should call
    /// about, each with every reason that no call or handled reply has settled yet.
    /// `rules` is how many reminder rules apply to the clinic: "no answer after all reminders"
    /// needs that many of its reminders sent (or expired), not merely none pending.
    ///
    /// What settles a reason (calls are `called` audit rows whose `new_value` is the outcome,
    /// see `store::calls`): a request needs a conversation, so "asked to reschedule" leaves on a
    /// call that *reached* the patient after the request, and "a reply needs a person" when the
    /// reply is marked handled (reaching the patient marks it). The reasons that only mean "the
    /// patient must hear of the appointment" (opted out, not on WhatsApp, no answer after all
    /// reminders) leave on a call that reached the patient or left a message (for a failed
    /// message, one after the failure); "no answer" settles nothing, and a patient who wrote
    /// back (a reply that needed a person) has answered.
    ///
    /// Channels: a failed WhatsApp message that a text replaced is no reason to call (its row
    /// has no `needs_staff`); a text that failed too carries both reasons on its own row. A
    /// patient the schedule gives no automated messages (`channel = 'none'`, or `'sms'` when
    /// the clinic has no SMS provider: `sms` is whether it has one) is listed until a call
    /// tells them, and so is one whose text was skipped because the number opted out of texts,
    /// and one whose number gets no WhatsApp (it blocked the clinic) at a clinic without texts.
    pub fn follow_ups(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        rules: usize,
        sms: bool,
    ) -> Result<Vec<FollowUp>, StoreError> {
        // The unit separator between a message's reasons (what splits them again).
        let unit = self.conn.pick("char(31)", "chr(31)");
        let mut stmt = self.conn.prepare_cached(&format!(
            "WITH calls AS (
                SELECT appointment_id, max(CASE WHEN new_value = 'reached' THEN at END) AS reached,
                       max(CASE WHEN new_value IN ('reached', 'left_message') THEN at END) AS told
                FROM audit_log WHERE action = 'called' AND appointment_id IS NOT NULL
                GROUP BY appointment_id)
             SELECT a.id, a.external_id, c.key, a.starts_at, p.name, p.phone, a.provider,
                    a.response = 'reschedule_requested' AND coalesce(k.reached, -1) < coalesce(a.response_at, 0),
                    p.opted_out_at IS NOT NULL AND k.told IS NULL,
                    (SELECT group_concat(s, {unit}) FROM (SELECT o.needs_staff AS s, min(o.id) AS i FROM outbox o
                       WHERE o.appointment_id = a.id AND o.needs_staff IS NOT NULL AND coalesce(k.told, -1) < o.updated_at
                       GROUP BY o.needs_staff ORDER BY i) AS s),
                    (SELECT group_concat(coalesce(r.text, r.kind), ' | ') FROM replies r
                      WHERE r.appointment_id = a.id AND r.outcome = 'needs_staff' AND r.handled_by IS NULL),
                    a.response = 'none' AND k.told IS NULL
                      AND NOT EXISTS (SELECT 1 FROM replies r WHERE r.appointment_id = a.id AND r.outcome = 'needs_staff')
                      AND EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder' AND o.state IN ('sent', 'delivered', 'read'))
                      AND (SELECT count(DISTINCT o.rule) FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder'
                           AND o.state IN ('sent', 'delivered', 'read', 'failed', 'expired')
                           AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.fallback_of = o.id AND f.state IN ('pending', 'sending'))) >= ?4,
                    CASE WHEN k.told IS NULL THEN
                      CASE WHEN p.channel = 'none' THEN 'none' WHEN p.channel = 'sms' AND NOT ?5 THEN 'sms' END END,
                    EXISTS (SELECT 1 FROM outbox o
                              JOIN numbers n ON n.phone = CASE o.recipient WHEN 'contact' THEN p.contact_phone ELSE p.phone END
                            WHERE o.appointment_id = a.id AND o.channel = 'sms' AND o.kind != 'reply_ack' AND o.state = 'skipped'
                              AND o.slot_start = a.starts_at AND n.sms_opted_out_at <= o.updated_at
                              AND coalesce(k.told, -1) < o.updated_at),
                    k.told IS NULL AND NOT ?5 AND coalesce(p.channel, 'whatsapp') NOT IN ('none', 'sms')
                      AND EXISTS (SELECT 1 FROM numbers n WHERE n.sms_only_until > ?2
                                    AND n.phone = CASE WHEN p.remind = 'contact' THEN coalesce(p.contact_phone, p.phone) ELSE p.phone END)
             FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
             LEFT JOIN calls k ON k.appointment_id = a.id
             WHERE c.key = ?1 AND a.status = 'booked' AND a.starts_at >= ?2 AND a.starts_at < ?3
             ORDER BY a.starts_at, a.external_id"
        ))?;
        let mut q = stmt.query(params![
            clinic,
            from.timestamp(),
            to.timestamp(),
            rules.max(1) as i64,
            sms
        ])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            let mut reasons = Vec::new();
            if r.get::<_, bool>(7)? {
                reasons.push("asked to reschedule: find a new time".to_string());
            }
            match r.get::<_, Option<String>>(12)?.as_deref() {
                Some("none") => {
                    reasons.push("no automated messages (the schedule says: call them)".to_string());
                }
                Some(_) => reasons.push(
                    "no automated messages (the schedule says texts only, and this clinic sends none: call them)"
                        .to_string(),
                ),
                None => {}
            }
            if r.get::<_, bool>(8)? {
                reasons.push("opted out of WhatsApp messages: remind by phone".to_string());
            }
            if r.get::<_, bool>(13)? {
                reasons.push("opted out of text messages: remind by phone".to_string());
            }
            match r.get::<_, Option<String>>(9)? {
                // Unit separators: a reason's own commas stay in it.
                Some(s) => reasons.extend(s.split('\u{1f}').map(str::to_string)),
                // The failed message says why already; a later appointment is not messaged.
                None if r.get::<_, bool>(14)? => reasons.push(
                    "gets no WhatsApp (blocked the clinic, or not on WhatsApp), and this clinic sends no texts: call them"
                        .to_string(),
                ),
                None => {}
            }
            if let Some(s) = r.get::<_, Option<String>>(10)? {
                reasons.push(format!("a reply needs a person: \"{s}\""));
            }
            if r.get::<_, bool>(11)? {
                reasons.push("no answer after all reminders".to_string());
            }
            if reasons.is_empty() {
                continue;
            }
            out.push(FollowUp {
                id: r.get(0)?,
                appointment_id: r.get(1)?,
                clinic: r.get(2)?,
                starts_at: crate::time::from_unix(r.get(3)?),
                patient_name: r.get(4)?,
                phone: r.get(5)?,
                provider: r.get(6)?,
                reasons,
            });
        }
        Ok(out)
    }

    /// Records what staff did about an appointment: a call or a note is an audit row (and
    /// `Ok(None)`); a confirmation they took by phone sets the response; arrival is recorded
    /// beside the status; anything else sets the schedule status and skips the pending
    /// reminders. `Some((clinic, old value))` when the appointment changed. A no-show before
    /// the appointment's time is refused (`StoreError::Refused`), whoever asks.
    pub fn set_status(
        &mut self,
        clinic: Option<&str>,
        appointment_id: &str,
        status: crate::model::StaffAction,
        note: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT a.id, c.key FROM appointments a JOIN clinics c ON c.id = a.clinic_id
                 WHERE a.external_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.key = ?2)",
            )?;
            stmt.query_map(params![appointment_id, clinic], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let [(id, key)] = rows.as_slice() else {
            return Err(if rows.is_empty() {
                StoreError::NotFound(format!(
                    "no appointment {appointment_id:?}{}; `reminderd appointments` lists the ids",
                    clinic
                        .map(|c| format!(" at clinic {c:?}"))
                        .unwrap_or_default()
                ))
            } else {
                StoreError::Ambiguous(format!(
                    "appointment {appointment_id:?} exists at several clinics; name the clinic with --clinic KEY"
                ))
            });
        };
        let old = super::desk_status::apply_staff_action(&tx, *id, status, note, actor, now)?;
        tx.commit()?;
        Ok(old.map(|o| (key.clone(), o)))
    }

    /// Reminder and answer counts for appointments starting in `[from, to)`; see [`Stats`].
    pub fn stats(
        &self,
        clinic: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Stats, StoreError> {
        let p = params![from.timestamp(), to.timestamp(), clinic];
        // Each appointment once, with the rule and channel of its last accepted reminder: one
        // definition of every count, whatever the page groups by. A reminder sent with Remind
        // now counts under its own group, "remind-now" (its rule is the press's token).
        let mut stmt = self.conn.prepare_cached(
            "WITH x AS (
                 SELECT a.status, a.response,
                        (SELECT o.id FROM outbox o WHERE o.appointment_id = a.id AND o.kind IN ('reminder', 'manual_reminder')
                           AND o.state IN ('sent', 'delivered', 'read')
                         ORDER BY coalesce(o.request_at, o.sent_at, o.send_at) DESC, o.id DESC LIMIT 1) AS last,
                        EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind IN ('reminder', 'manual_reminder')
                                  AND o.state = 'failed') AS failed
                 FROM appointments a JOIN clinics c ON c.id = a.clinic_id
                 WHERE a.starts_at >= ?1 AND a.starts_at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR c.key = ?3)),
             y AS (
                 SELECT x.status, x.response, x.failed, l.channel,
                        CASE l.kind WHEN 'manual_reminder' THEN 'remind-now' ELSE l.rule END AS rule
                 FROM x LEFT JOIN outbox l ON l.id = x.last)
             SELECT rule, count(*), count(*) FILTER (WHERE response = 'confirmed'), count(*) FILTER (WHERE status = 'cancelled'), count(*) FILTER (WHERE status = 'no_show'),
                    count(*) FILTER (WHERE response = 'declined'), count(*) FILTER (WHERE response = 'reschedule_requested'),
                    count(*) FILTER (WHERE status = 'no_show' AND response = 'confirmed'),
                    count(*) FILTER (WHERE status = 'no_show' AND response != 'confirmed' AND rule IS NOT NULL),
                    count(*) FILTER (WHERE status = 'no_show' AND response != 'confirmed' AND rule IS NULL AND failed),
                    count(*) FILTER (WHERE status = 'no_show' AND response != 'confirmed' AND rule IS NULL AND NOT failed),
                    channel
             FROM y GROUP BY rule, channel ORDER BY rule IS NULL, rule, channel",
        )?;
        let mut s = Stats::default();
        let mut q = stmt.query(p)?;
        while let Some(r) = q.next()? {
            let group = RuleStats {
                rule: r.get(0)?,
                appointments: r.get(1)?,
                confirmed: r.get(2)?,
                cancelled: r.get(3)?,
                no_show: r.get(4)?,
            };
            s.appointments += group.appointments;
            s.confirmed += group.confirmed;
            s.cancelled += group.cancelled;
            s.no_shows += group.no_show;
            if group.rule.is_some() {
                s.reminded += group.appointments;
                s.reminded_confirmed += group.confirmed;
            }
            s.declined += r.get::<_, i64>(5)?;
            s.reschedule_requested += r.get::<_, i64>(6)?;
            s.no_show_confirmed += r.get::<_, i64>(7)?;
            s.no_show_unconfirmed += r.get::<_, i64>(8)?;
            s.no_show_unreachable += r.get::<_, i64>(9)?;
            s.no_show_not_reminded += r.get::<_, i64>(10)?;
            channel_group(&mut s.per_channel, r.get(11)?).add(&group);
            match s.per_rule.last_mut() {
                // One rule's channels come together (ordered by rule): one group per rule.
                Some(last) if last.rule == group.rule => last.add(&group),
                _ => s.per_rule.push(group),
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.channel, count(*) FILTER (WHERE o.state IN ('sent', 'delivered', 'read')), count(*) FILTER (WHERE o.state IN ('delivered', 'read')),
                    count(*) FILTER (WHERE o.state = 'read'), count(*) FILTER (WHERE o.state = 'failed')
             FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
             WHERE o.kind IN ('reminder', 'manual_reminder') AND a.starts_at >= ?1 AND a.starts_at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR c.key = ?3)
             GROUP BY o.channel",
        )?;
        let mut q = stmt.query(p)?;
        while let Some(r) = q.next()? {
            let g = channel_group(&mut s.per_channel, Some(r.get(0)?));
            (g.sent, g.delivered, g.read, g.failed) = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            s.reminders_sent += g.sent;
            s.reminders_delivered += g.delivered;
            s.reminders_read += g.read;
            s.reminders_failed += g.failed;
        }
        // WhatsApp, then texts, then the appointments no reminder reached.
        s.per_channel.sort_by_key(|g| match g.channel.as_deref() {
            Some("whatsapp") => 0,
            Some(_) => 1,
            None => 2,
        });
        s.opt_outs = self.conn.query_row(
            "SELECT count(DISTINCT p.id) FROM patients p JOIN appointments a ON a.patient_id = p.id JOIN clinics c ON c.id = a.clinic_id
             WHERE p.opted_out_at IS NOT NULL AND a.starts_at >= ?1 AND a.starts_at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR c.key = ?3)",
            p,
            |r| r.get(0),
        )?;
        Ok(s)
    }
}

/// The group of `channel` in `groups`, added when missing.
fn channel_group(groups: &mut Vec<ChannelStats>, channel: Option<String>) -> &mut ChannelStats {
    let i = match groups.iter().position(|g| g.channel == channel) {
        Some(i) => i,
        None => {
            groups.push(ChannelStats {
                channel,
                ..ChannelStats::default()
            });
            groups.len() - 1
        }
    };
    &mut groups[i]
}

impl RuleStats {
    fn add(&mut self, other: &RuleStats) {
        self.appointments += other.appointments;
        self.confirmed += other.confirmed;
        self.cancelled += other.cancelled;
        self.no_show += other.no_show;
    }
}

impl ChannelStats {
    fn add(&mut self, group: &RuleStats) {
        self.appointments += group.appointments;
        self.confirmed += group.confirmed;
        self.cancelled += group.cancelled;
        self.no_show += group.no_show;
    }
}

/// What marking a reply handled did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Marked now, and audited.
    Now,
    /// Someone marked it before (their audit actor, `staff:<name>`).
    Already(String),
    /// No reply with that id is waiting for a person.
    NotWaiting,
}

/// One appointment on the day board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRow {
    /// Row id (reveal and actions name it).
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration_min: i64,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number (E.164); pages mask it unless revealed.
    pub phone: String,
    /// Patient's language.
    pub language: String,
    /// Who it is with.
    pub provider: Option<String>,
    /// booked, cancelled, completed, no_show.
    pub status: String,
    /// none, confirmed, declined, reschedule_requested.
    pub response: String,
    /// The patient opted out of messages.
    pub opted_out: bool,
    /// A reply of the patient's waits for a person (about this appointment, or not matched
    /// to one before it).
    pub needs_person: bool,
    /// When the desk marked the patient arrived.
    pub arrived_at: Option<DateTime<Utc>>,
    /// Who marked it (the staff member's name).
    pub arrived_by: Option<String>,
    /// The appointment's latest reminder or confirmation that went out (or failed, or was
    /// not sent in time).
    pub last_message: Option<LastMessage>,
    /// The latest change to its status, response or arrival, when staff made it.
    pub desk: Option<DeskChange>,
    /// The schedule's channel for the patient: whatsapp, sms, none (`None`: not given).
    pub channel: Option<String>,
    /// The patient's number is known not to be on WhatsApp: it gets texts until then (stored
    /// as learned; the page decides whether it is still ahead).
    pub sms_only_until: Option<DateTime<Utc>>,
    /// The patient's number opted out of text messages.
    pub sms_opted_out: bool,
    /// Every staff note about it, newest first.
    pub notes: Vec<Note>,
}

/// The day board's columns; `{CHANGES}` and a WHERE clause complete it.
const BOARD_SQL: &str = "SELECT a.id, c.key, a.external_id, a.starts_at, a.duration_min, p.name, p.phone, p.language,
        a.provider, a.status, a.response, p.opted_out_at IS NOT NULL,
        EXISTS (SELECT 1 FROM replies r WHERE r.outcome = 'needs_staff' AND r.handled_by IS NULL
                AND (r.appointment_id = a.id
                     OR (r.appointment_id IS NULL AND r.patient_id = a.patient_id AND r.received_at < a.starts_at))),
        a.arrived_at, substr(a.arrived_by, 7),
        m.kind, m.state,
        coalesce(CASE m.state WHEN 'read' THEN m.read_at WHEN 'delivered' THEN m.delivered_at
                              WHEN 'failed' THEN m.failed_at WHEN 'sent' THEN m.sent_at END,
                 m.request_at, m.updated_at),
        m.last_error_code, coalesce(m.last_error, m.reason),
        d.action, d.old_value, d.new_value, substr(d.actor, 7), d.at,
        m.channel, m.recipient, m.needs_staff, (SELECT f.state FROM outbox f WHERE f.fallback_of = m.id),
        p.channel, n.sms_only_until, n.sms_opted_out_at IS NOT NULL
     FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
     LEFT JOIN numbers n ON n.phone = p.phone
     LEFT JOIN outbox m ON m.id = (SELECT o.id FROM outbox o WHERE o.appointment_id = a.id AND o.kind != 'reply_ack'
                                     AND o.state NOT IN ('pending', 'skipped')
                                   ORDER BY coalesce(o.request_at, o.send_at) DESC, o.id DESC LIMIT 1)
     LEFT JOIN audit_log d ON d.id = (SELECT l.id FROM audit_log l WHERE l.appointment_id = a.id AND l.action IN ({CHANGES})
                                      ORDER BY l.id DESC LIMIT 1)
                           AND d.actor LIKE 'staff:%'";

/// A [`BoardRow`] from a row of [`BOARD_SQL`], without its notes.
fn board_row(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<BoardRow> {
    let last_message = match r.get::<_, Option<String>>(15)? {
        Some(kind) => Some(LastMessage {
            kind,
            state: r.get(16)?,
            at: crate::time::from_unix(r.get(17)?),
            error_code: r.get(18)?,
            error: r.get(19)?,
            channel: r.get(25)?,
            recipient: r.get(26)?,
            needs_staff: r.get(27)?,
            replaced_by: r.get(28)?,
        }),
        None => None,
    };
    let desk = match r.get::<_, Option<String>>(20)? {
        Some(what) => Some(DeskChange {
            what,
            from: r.get(21)?,
            to: r.get(22)?,
            by: r.get(23)?,
            at: crate::time::from_unix(r.get(24)?),
        }),
        None => None,
    };
    Ok(BoardRow {
        id: r.get(0)?,
        clinic: r.get(1)?,
        appointment_id: r.get(2)?,
        starts_at: crate::time::from_unix(r.get(3)?),
        duration_min: r.get(4)?,
        patient_name: r.get(5)?,
        phone: r.get(6)?,
        language: r.get(7)?,
        provider: r.get(8)?,
        status: r.get(9)?,
        response: r.get(10)?,
        opted_out: r.get(11)?,
        needs_person: r.get(12)?,
        arrived_at: r.get::<_, Option<i64>>(13)?.map(crate::time::from_unix),
        arrived_by: r.get(14)?,
        last_message,
        desk,
        channel: r.get(29)?,
        sms_only_until: r.get::<_, Option<i64>>(30)?.map(crate::time::from_unix),
        sms_opted_out: r.get::<_, Option<bool>>(31)?.unwrap_or(false),
        notes: Vec::new(),
    })
}

impl Store {
    /// One clinic's appointments starting in `[from, to)`, in time order, each with its
    /// latest message, its desk-set status and every staff note.
    pub fn board(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BoardRow>, StoreError> {
        let sql = BOARD_SQL.replace("{CHANGES}", CHANGES)
            + " WHERE c.key = ?1 AND a.starts_at >= ?2 AND a.starts_at < ?3 ORDER BY a.starts_at, a.external_id";
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params![clinic, from.timestamp(), to.timestamp()], board_row)?
            .collect::<Result<Vec<_>, _>>()?;
        self.with_notes(rows)
    }

    /// The board row of one appointment, by row id (`None`: no such appointment).
    pub fn board_row(&self, id: i64) -> Result<Option<BoardRow>, StoreError> {
        let sql = BOARD_SQL.replace("{CHANGES}", CHANGES) + " WHERE a.id = ?1";
        let row = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], board_row)
            .optional()?;
        Ok(self.with_notes(row.into_iter().collect())?.pop())
    }

    fn with_notes(&self, mut rows: Vec<BoardRow>) -> Result<Vec<BoardRow>, StoreError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let index: std::collections::HashMap<i64, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for note in self.notes(&ids)? {
            if let Some(&i) = index.get(&note.appointment) {
                rows[i].notes.push(note);
            }
        }
        Ok(rows)
    }

    /// Marks a reply that needed a person as dealt with, and audits it; says who did if
    /// someone already had, and writes nothing unless it marked it now.
    pub fn handle_reply(
        &mut self,
        reply_id: i64,
        actor: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Handled, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE replies SET handled_by = ?2, handled_at = ?3
             WHERE id = ?1 AND outcome = 'needs_staff' AND handled_by IS NULL",
            params![reply_id, actor, now.timestamp()],
        )?;
        let done = if n == 1 {
            tx.execute(
                "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
                 SELECT ?1, appointment_id, patient_id, ?2, 'reply_handled', text, ?3 FROM replies WHERE id = ?4",
                params![now.timestamp(), actor, note, reply_id],
            )?;
            Handled::Now
        } else {
            tx.query_row(
                "SELECT handled_by FROM replies WHERE id = ?1 AND outcome = 'needs_staff'",
                params![reply_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten()
            .map_or(Handled::NotWaiting, Handled::Already)
        };
        tx.commit()?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests;
