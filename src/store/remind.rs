//! "Remind now": reminders staff ask for, one outbox row per press and appointment, written
//! with their audit rows in one transaction.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::model::{Kind, OutboxState};
use crate::plan::{Candidate, Manual, NotNow, PRESS_RULE};

/// An appointment as the Remind now pages show it, with the latest reminder staff asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemindTarget {
    /// What the decision needs (row id, clinic, start, status, answer, opt-out).
    pub candidate: Candidate,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Who it is with.
    pub provider: Option<String>,
    /// The patient's name.
    pub patient_name: String,
    /// The latest manual reminder for it, if any.
    pub last: Option<ManualSent>,
}

/// A reminder staff asked for, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualSent {
    /// Its outbox row.
    pub id: i64,
    /// The appointment's row id.
    pub appointment: i64,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// Who asked (`staff:<name>`, `admin:<user>`), from the audit log.
    pub by: Option<String>,
    /// Where it is.
    pub state: OutboxState,
    /// When it may go (after quiet hours).
    pub send_at: DateTime<Utc>,
    /// When the API accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// What a person must do, the last error, or why it was not sent.
    pub detail: Option<String>,
}

/// Which appointments of a clinic one press is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press<'a> {
    /// One appointment, by the clinic system's id.
    One(&'a str),
    /// Every unanswered appointment (`plan::unanswered`) starting in `[from, to)`.
    Unanswered(DateTime<Utc>, DateTime<Utc>),
}

/// What a press did for one appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pressed {
    /// A new reminder: its outbox row and when it may go.
    Queued(i64, DateTime<Utc>),
    /// This press had made its reminder already (a double click, a form sent again, a retry):
    /// nothing new.
    Again(i64, DateTime<Utc>),
    /// Not sent, and why.
    Refused(NotNow),
}

/// The columns [`target`] reads: the appointment, its patient, and its latest manual reminder.
const TARGET_SQL: &str = "SELECT a.id, c.key, a.starts_at, a.created_at, a.status, a.response,
        p.opted_out_at IS NOT NULL, a.external_id, a.provider, p.name,
        m.id, m.created_at, m.state, m.send_at, m.sent_at,
        coalesce(m.needs_staff, m.last_error, m.reason),
        (SELECT l.actor FROM audit_log l WHERE l.appointment_id = a.id AND l.action = 'remind_now'
           AND l.new_value = CAST(m.id AS TEXT) ORDER BY l.id DESC LIMIT 1),
        p.channel, p.remind, p.contact_phone IS NOT NULL,
        (SELECT n.sms_only_until FROM numbers n WHERE n.phone = p.phone),
        (SELECT n.sms_only_until FROM numbers n WHERE n.phone = p.contact_phone)
    FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
    LEFT JOIN outbox m ON m.id = (SELECT max(o.id) FROM outbox o
                                  WHERE o.appointment_id = a.id AND o.kind = 'manual_reminder'
                                    AND o.fallback_of IS NULL)";

/// The columns [`manual_sent`] reads, from an outbox row `o` of a clinic `c`.
const SENT_SQL: &str = "SELECT o.id, o.appointment_id, o.created_at, o.state, o.send_at, o.sent_at,
        coalesce(o.needs_staff, o.last_error, o.reason),
        (SELECT l.actor FROM audit_log l WHERE l.appointment_id = o.appointment_id
           AND l.action = 'remind_now' AND l.new_value = CAST(o.id AS TEXT) ORDER BY l.id DESC LIMIT 1)
    FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id";

impl Store {
    /// One appointment of a clinic, by the clinic system's id, for the Remind now page.
    pub fn remind_target(
        &self,
        clinic: &str,
        appointment: &str,
    ) -> Result<Option<RemindTarget>, StoreError> {
        targets(&self.conn, clinic, Press::One(appointment), None).map(|mut v| v.pop())
    }

    /// The unanswered appointments of a clinic starting in `[from, to)` (in time order) that
    /// a press of "Remind all" at `now` would remind.
    pub fn remind_unanswered(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<RemindTarget>, StoreError> {
        targets(&self.conn, clinic, Press::Unanswered(from, to), Some(now))
    }

    /// The reminders one press (its nonce) asked for at a clinic.
    pub fn press_rows(&self, clinic: &str, nonce: &str) -> Result<Vec<ManualSent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SENT_SQL} WHERE c.key = ?1 AND o.kind = 'manual_reminder' AND o.rule = ?2
             ORDER BY a.starts_at, o.id"
        ))?;
        let rule = format!("{PRESS_RULE}{nonce}");
        let mut q = stmt.query(params![clinic, rule])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            out.push(manual_sent(&r)?);
        }
        Ok(out)
    }

    /// Records a press of "Remind now": in one transaction, each appointment it is for is
    /// judged by `decide` against what is stored now, and gets a `manual_reminder` row (rule
    /// `press:<nonce>`) and an audit row, unless this press made its row before. An unknown
    /// appointment gives an empty list.
    pub fn press_remind(
        &mut self,
        clinic: &str,
        press: Press<'_>,
        nonce: &str,
        actor: &str,
        now: DateTime<Utc>,
        decide: impl Fn(&Candidate) -> Result<Manual, NotNow>,
    ) -> Result<Vec<(RemindTarget, Pressed)>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let rule = format!("{PRESS_RULE}{nonce}");
        let t = now.timestamp();
        let why = match press {
            Press::One(_) => None,
            Press::Unanswered(..) => Some("every unanswered patient of the day at once"),
        };
        let mut out = Vec::new();
        for target in targets(&tx, clinic, press, Some(now))? {
            let a = &target.candidate;
            // A press already recorded is found whatever the appointment has become since.
            let earlier = tx
                .query_row(
                    "SELECT id, send_at FROM outbox WHERE appointment_id = ?1 AND kind = 'manual_reminder' AND rule = ?2
                     ORDER BY id LIMIT 1",
                    params![a.id, rule],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()?;
            let pressed = match (earlier, decide(a)) {
                (Some((id, at)), _) => Pressed::Again(id, crate::time::from_unix(at)),
                (None, Err(why)) => Pressed::Refused(why),
                (None, Ok(m)) => {
                    // One row per recipient and channel; the first names the press.
                    let mut first = None;
                    for (recipient, channel) in &m.routes {
                        let id = tx.insert(
                            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state,
                                created_at, updated_at, recipient, channel)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?9, ?10)",
                            params![
                                a.id,
                                Kind::ManualReminder.as_str(),
                                rule,
                                a.starts_at.timestamp(),
                                m.send_at.timestamp(),
                                m.latest_at.timestamp(),
                                m.template,
                                t,
                                recipient.as_str(),
                                channel.as_str()
                            ],
                        )?;
                        first.get_or_insert(id);
                    }
                    let Some(id) = first else {
                        out.push((target, Pressed::Refused(NotNow::NoChannel)));
                        continue;
                    };
                    tx.execute(
                        "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
                         VALUES (?1, ?2, (SELECT patient_id FROM appointments WHERE id = ?2), ?3, 'remind_now', ?4, ?5)",
                        params![t, a.id, actor, id.to_string(), why],
                    )?;
                    Pressed::Queued(id, m.send_at)
                }
            };
            out.push((target, pressed));
        }
        tx.commit()?;
        Ok(out)
    }
}

/// The appointments a press is for: the one of `Press::One` whatever its state (the page
/// explains a refusal), or those of the day unanswered at `now` (all of them without `now`).
fn targets(
    conn: &crate::store::sql::Conn,
    clinic: &str,
    press: Press<'_>,
    now: Option<DateTime<Utc>>,
) -> Result<Vec<RemindTarget>, StoreError> {
    let mut out = Vec::new();
    match press {
        Press::One(id) => {
            let mut stmt = conn.prepare_cached(&format!(
                "{TARGET_SQL} WHERE c.key = ?1 AND a.external_id = ?2"
            ))?;
            let mut q = stmt.query(params![clinic, id])?;
            while let Some(r) = q.next()? {
                out.push(target(&r)?);
            }
        }
        Press::Unanswered(from, to) => {
            let mut stmt = conn.prepare_cached(&format!(
                "{TARGET_SQL} WHERE c.key = ?1 AND a.starts_at >= ?2 AND a.starts_at < ?3
                 ORDER BY a.starts_at, a.external_id"
            ))?;
            let mut q = stmt.query(params![clinic, from.timestamp(), to.timestamp()])?;
            while let Some(r) = q.next()? {
                let t = target(&r)?;
                if now.is_none_or(|now| crate::plan::unanswered(&t.candidate, now)) {
                    out.push(t);
                }
            }
        }
    }
    Ok(out)
}

fn target(r: &crate::store::sql::Row<'_>) -> Result<RemindTarget, StoreError> {
    // The same columns as `outbox::REACH_COLUMNS`, after this query's own.
    let candidate = super::outbox::candidate(r, 17)?;
    let last = match r.get::<_, Option<i64>>(10)? {
        None => None,
        Some(id) => Some(ManualSent {
            id,
            appointment: candidate.id,
            requested_at: crate::time::from_unix(r.get(11)?),
            state: OutboxState::parse(&r.get::<_, String>(12)?)?,
            send_at: crate::time::from_unix(r.get(13)?),
            sent_at: r.get::<_, Option<i64>>(14)?.map(crate::time::from_unix),
            detail: r.get(15)?,
            by: r.get(16)?,
        }),
    };
    Ok(RemindTarget {
        candidate,
        appointment_id: r.get(7)?,
        provider: r.get(8)?,
        patient_name: r.get(9)?,
        last,
    })
}

/// A [`SENT_SQL`] row.
fn manual_sent(r: &crate::store::sql::Row<'_>) -> Result<ManualSent, StoreError> {
    Ok(ManualSent {
        id: r.get(0)?,
        appointment: r.get(1)?,
        requested_at: crate::time::from_unix(r.get(2)?),
        state: OutboxState::parse(&r.get::<_, String>(3)?)?,
        send_at: crate::time::from_unix(r.get(4)?),
        sent_at: r.get::<_, Option<i64>>(5)?.map(crate::time::from_unix),
        detail: r.get(6)?,
        by: r.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::Status;
    use crate::time::parse_instant;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_instant(s).expect("instant")
    }

    /// A store with Mumbai's 09:00 IST appointment on Thu 26 Nov 2026 (A1) and a cancelled one
    /// at 10:00 (A2).
    fn store(dir: &tempfile::TempDir) -> (Store, Config) {
        let config = Config::example().expect("shipped config");
        let mut s = Store::open(&dir.path().join("r.db")).expect("open");
        s.sync_clinics(&config.clinics).expect("clinics");
        s.conn
            .execute_batch(
                "INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
                   VALUES (1, (SELECT id FROM clinics WHERE key = 'mumbai'), 'P1', 'Aarav Sharma', '+919820012345', 'en', 0, 0);
                 INSERT INTO appointments (clinic_id, external_id, patient_id, starts_at, duration_min, status, status_at, created_at, updated_at)
                   VALUES ((SELECT id FROM clinics WHERE key = 'mumbai'), 'A1', 1, 1795663800, 15, 'booked', 0, 0, 0),
                          ((SELECT id FROM clinics WHERE key = 'mumbai'), 'A2', 1, 1795667400, 15, 'cancelled', 0, 0, 0);",
            )
            .expect("rows");
        (s, config)
    }

    #[test]
    fn a_press_sent_twice_makes_one_reminder_and_a_later_press_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut s, config) = store(&dir);
        let now = utc("2026-11-25T12:30:00Z");
        let decide = |c: &Candidate| crate::plan::manual(&config, c, now);
        let mut press = |nonce: &str, which: Press<'_>| {
            s.press_remind("mumbai", which, nonce, "staff:asha", now, decide)
                .expect("press")
                .into_iter()
                .map(|(t, p)| (t.appointment_id, p))
                .collect::<Vec<_>>()
        };
        let first = press("n1", Press::One("A1"));
        let [(id, Pressed::Queued(row, at))] = first.as_slice() else {
            panic!("{first:?}")
        };
        assert_eq!((id.as_str(), *at), ("A1", now));
        assert_eq!(
            press("n1", Press::One("A1")),
            [("A1".to_string(), Pressed::Again(*row, now))],
            "the same press again adds nothing"
        );
        assert!(matches!(
            press("n2", Press::One("A1")).as_slice(),
            [(_, Pressed::Queued(second, _))] if second != row
        ));
        assert!(matches!(
            press("n3", Press::One("A2")).as_slice(),
            [(_, Pressed::Refused(NotNow::NotBooked(Status::Cancelled)))]
        ));
        assert!(press("n4", Press::One("nope")).is_empty());
        // The day's unanswered: A1 only (A2 is cancelled).
        let day = (utc("2026-11-25T18:30:00Z"), utc("2026-11-26T18:30:00Z"));
        let all = press("n5", Press::Unanswered(day.0, day.1));
        assert_eq!(all.len(), 1, "{all:?}");
        let outbox: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM outbox WHERE kind = 'manual_reminder'",
                (),
                |r| r.get(0),
            )
            .expect("count");
        let audited: i64 = s
            .conn
            .query_row("SELECT count(*) FROM audit_log WHERE action = 'remind_now' AND actor = 'staff:asha'", (), |r| r.get(0))
            .expect("count");
        assert_eq!((outbox, audited), (3, 3));
        let target = s.remind_target("mumbai", "A1").expect("read").expect("A1");
        let last = target.last.expect("a manual reminder");
        assert_eq!(
            (last.by.as_deref(), last.state, last.send_at),
            (Some("staff:asha"), OutboxState::Pending, now)
        );
        assert_eq!(s.press_rows("mumbai", "n5").expect("rows").len(), 1);
        assert!(s.press_rows("nyc", "n5").expect("rows").is_empty());
    }
}
