//! The waitlist's store: entries (by file, by staff), openings (freed by a patient's
//! cancellation, opened by the practice system or by staff; withdrawn on an "oops", a rebooking
//! or a closed day), and offer rounds written with their outbox rows in one transaction.

use crate::store::sql::{Conn as Connection, OptionalExtension, params};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

use super::{Store, StoreError};
use crate::import::RowError;
use crate::model::{OfferState, OpeningSource, OpeningState};
use crate::time::from_unix;
use crate::waitlist::csv::EntryRow;
use crate::waitlist::{Candidate, Entry, OFFER_RULE, Opening};

/// What dispatch needs to know of an offer's message at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferFacts {
    /// The offer's id (its buttons name it).
    pub offer_id: i64,
    /// Where the offer stands.
    pub offer: OfferState,
    /// Where its opening stands.
    pub opening: OpeningState,
    /// The opening's start.
    pub starts_at: DateTime<Utc>,
    /// Its length.
    pub duration_min: u32,
    /// Who it is with.
    pub provider: Option<String>,
}

/// What a waitlist file import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WaitlistImported {
    /// Entries added.
    pub new: usize,
    /// Entries updated by their id.
    pub updated: usize,
}

/// An entry staff add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Clinic key.
    pub clinic: String,
    /// The clinic system's patient id.
    pub patient: String,
    /// `None`: any provider.
    pub provider: Option<String>,
    /// First local date that suits.
    pub earliest: NaiveDate,
    /// Last local date that suits.
    pub latest: Option<NaiveDate>,
    /// ISO weekday digits.
    pub days: String,
    /// Time band.
    pub band: (Option<NaiveTime>, Option<NaiveTime>),
    /// When it lapses.
    pub expires_at: Option<DateTime<Utc>>,
    /// Most offers.
    pub max_offers: u32,
}

/// One offer as the desk lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferView {
    /// Offer id.
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// The patient's name.
    pub patient_name: String,
    /// The opening's start and provider.
    pub starts_at: DateTime<Utc>,
    /// Who it is with.
    pub provider: Option<String>,
    /// Round it went in.
    pub round: u32,
    /// Where it stands.
    pub state: OfferState,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it runs out.
    pub expires_at: DateTime<Utc>,
    /// When the patient answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// Its message's state (`None`: no message row).
    pub message: Option<String>,
}

/// The waitlist's figures since a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaitlistFigures {
    /// Offers made.
    pub offers_sent: u64,
    /// Offers accepted.
    pub accepted: u64,
    /// Openings filled.
    pub filled: u64,
    /// Seconds from opening to the accepted offer, one per filled opening.
    pub fill_seconds: Vec<i64>,
}

const ENTRY_COLUMNS: &str =
    "w.id, c.key, w.patient_id, p.external_id, p.name, w.appointment_id, w.provider,
    w.earliest, w.latest, w.days, w.time_from, w.time_to, w.expires_at, w.max_offers, w.offers_sent,
    w.state, w.source, w.external_id, w.created_at";

const OPENING_COLUMNS: &str = "o.id, c.key, o.provider, o.starts_at, o.duration_min, o.source,
    (SELECT a.patient_id FROM appointments a WHERE a.id = o.appointment_id), o.opened_by,
    o.opened_at, o.offers_from, o.state, o.round, o.next_round_at, o.reason";

fn date(text: Option<String>) -> Option<NaiveDate> {
    text.and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok())
}

fn time(text: Option<String>) -> Option<NaiveTime> {
    text.and_then(|t| NaiveTime::parse_from_str(&t, "%H:%M").ok())
}

fn hhmm(t: Option<NaiveTime>) -> Option<String> {
    t.map(|t| t.format("%H:%M").to_string())
}

fn entry(r: &crate::store::sql::Row<'_>) -> Result<Entry, StoreError> {
    Ok(Entry {
        id: r.get(0)?,
        clinic: r.get(1)?,
        patient_id: r.get(2)?,
        patient: r.get(3)?,
        patient_name: r.get(4)?,
        appointment_id: r.get(5)?,
        provider: r.get(6)?,
        earliest: date(r.get(7)?).unwrap_or(NaiveDate::MIN),
        latest: date(r.get(8)?),
        days: r.get(9)?,
        time_from: time(r.get(10)?),
        time_to: time(r.get(11)?),
        expires_at: r.get::<_, Option<i64>>(12)?.map(from_unix),
        max_offers: r.get(13)?,
        offers_sent: r.get(14)?,
        state: r.get(15)?,
        source: r.get(16)?,
        external_id: r.get(17)?,
        created_at: from_unix(r.get(18)?),
    })
}

fn opening(r: &crate::store::sql::Row<'_>) -> Result<Opening, StoreError> {
    Ok(Opening {
        id: r.get(0)?,
        clinic: r.get(1)?,
        provider: r.get(2)?,
        starts_at: from_unix(r.get(3)?),
        duration_min: r.get(4)?,
        source: OpeningSource::parse(&r.get::<_, String>(5)?)?,
        freed_by: r.get(6)?,
        opened_by: r.get(7)?,
        opened_at: from_unix(r.get(8)?),
        offers_from: from_unix(r.get(9)?),
        state: OpeningState::parse(&r.get::<_, String>(10)?)?,
        round: r.get(11)?,
        next_round_at: r.get::<_, Option<i64>>(12)?.map(from_unix),
        reason: r.get(13)?,
    })
}

fn clinic_id(conn: &Connection, key: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT id FROM clinics WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("clinic {key:?} is not in the database")))
}

/// The patient's next booked appointment at the clinic, for an entry to replace.
fn next_booked(conn: &Connection, patient_id: i64, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM appointments WHERE patient_id = ?1 AND status = 'booked' AND starts_at > ?2
             ORDER BY starts_at LIMIT 1")?
            .query_row(
            params![patient_id, now],
            |r| r.get(0),
        )
        .optional()?)
}

/// The facts of offer message `rule` (`offer:<id>`), read in the claim's transaction.
pub(super) fn offer_facts(conn: &Connection, rule: &str) -> Result<Option<OfferFacts>, StoreError> {
    let Some(id) = rule
        .strip_prefix(OFFER_RULE)
        .and_then(|i| i.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    let row = conn
        .prepare_cached(
            "SELECT f.state, o.state, o.starts_at, o.duration_min, o.provider
             FROM offers f JOIN openings o ON o.id = f.opening_id WHERE f.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((offer, opening, starts_at, duration_min, provider)) = row else {
        return Ok(None);
    };
    Ok(Some(OfferFacts {
        offer_id: id,
        offer: OfferState::parse(&offer)?,
        opening: OpeningState::parse(&opening)?,
        starts_at: from_unix(starts_at),
        duration_min,
        provider,
    }))
}

impl Store {
    /// Adds or updates (by each row's id) a waitlist file's entries: all rows or none. A row
    /// naming a patient the clinic's schedule does not have is an error with its row.
    pub fn import_waitlist(
        &mut self,
        rows: &[EntryRow],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<WaitlistImported, Vec<RowError>>, StoreError> {
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let mut errors = Vec::new();
        let mut done = WaitlistImported::default();
        for row in rows {
            let cid = clinic_id(&tx, &row.clinic)?;
            let patient: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM patients WHERE clinic_id = ?1 AND external_id = ?2",
                )?
                .query_row(params![cid, row.patient], |r| r.get(0))
                .optional()?;
            let Some(patient) = patient else {
                errors.push(RowError {
                    row: row.row,
                    column: "patient_id".into(),
                    value: crate::import::shown_cell(&row.patient),
                    message: format!(
                        "is not a patient of clinic {}; import the schedule that has their appointment first, or correct the id",
                        row.clinic
                    ),
                    patient: None,
                });
                continue;
            };
            let existed: bool = tx.prepare_cached("SELECT count(*) > 0 FROM waitlist_entries WHERE clinic_id = ?1 AND external_id = ?2")?
            .query_row(
                params![cid, row.id],
                |r| r.get(0),
            )?;
            tx.prepare_cached("INSERT INTO waitlist_entries (clinic_id, patient_id, appointment_id, provider, earliest, latest, days,
                    time_from, time_to, expires_at, max_offers, source, external_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)
                 ON CONFLICT (clinic_id, external_id) DO UPDATE SET patient_id = ?2, appointment_id = ?3,
                    provider = ?4, earliest = ?5, latest = ?6, days = ?7, time_from = ?8, time_to = ?9,
                    expires_at = ?10, max_offers = ?11, updated_at = ?14")?
            .execute(
                params![
                    cid,
                    patient,
                    next_booked(&tx, patient, t)?,
                    row.provider,
                    row.earliest.to_string(),
                    row.latest.map(|d| d.to_string()),
                    row.days,
                    hhmm(row.time_from),
                    hhmm(row.time_to),
                    row.expires_at.map(|e| e.timestamp()),
                    row.max_offers,
                    source,
                    row.id,
                    t
                ],
            )?;
            if existed {
                done.updated += 1;
            } else {
                done.new += 1;
            }
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        tx.prepare_cached("INSERT INTO audit_log (at, actor, action, new_value) VALUES (?1, ?2, 'waitlist_import', ?3)")?
            .execute(
            params![t, source, format!("{} new, {} updated", done.new, done.updated)],
        )?;
        tx.commit()?;
        Ok(Ok(done))
    }

    /// Adds one entry for a patient of the clinic, audited as `actor`; refused (with why) when
    /// the clinic has no such patient.
    pub fn add_waitlist_entry(
        &mut self,
        e: &NewEntry,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let cid = clinic_id(&tx, &e.clinic)?;
        let patient: i64 = tx
            .prepare_cached("SELECT id FROM patients WHERE clinic_id = ?1 AND external_id = ?2")?
            .query_row(
                params![cid, e.patient.trim()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| {
                StoreError::Refused(format!(
                    "No patient with id {} is on this clinic's schedule. Check the id on the patient's page.",
                    e.patient.trim()
                ))
            })?;
        let id = tx.insert("INSERT INTO waitlist_entries (clinic_id, patient_id, appointment_id, provider, earliest, latest, days,
                time_from, time_to, expires_at, max_offers, source, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
            params![
                cid,
                patient,
                next_booked(&tx, patient, t)?,
                e.provider,
                e.earliest.to_string(),
                e.latest.map(|d| d.to_string()),
                e.days,
                hhmm(e.band.0),
                hhmm(e.band.1),
                e.expires_at.map(|x| x.timestamp()),
                e.max_offers,
                actor,
                t
            ],
        )?;
        tx.prepare_cached("INSERT INTO audit_log (at, patient_id, actor, action, new_value) VALUES (?1, ?2, ?3, 'waitlist_add', ?4)")?
            .execute(
            params![t, patient, actor, format!("entry {id}")],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Entries, active ones first then by priority; `clinic` narrows to one clinic.
    pub fn waitlist_entries(
        &self,
        clinic: Option<&str>,
        active_only: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM waitlist_entries w JOIN clinics c ON c.id = w.clinic_id
             JOIN patients p ON p.id = w.patient_id
             WHERE (CAST(?1 AS TEXT) IS NULL OR c.key = ?1) AND (?2 = 0 OR w.state = 'active')
             ORDER BY w.state != 'active', w.earliest, w.created_at, w.id"
        ))?;
        let mut q = stmt.query(params![clinic, active_only])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            out.push(entry(&r)?);
        }
        Ok(out)
    }

    /// Opens the slots freed since the last look: booked appointments the patient cancelled
    /// and slots the practice system opened (SIU S24), each once, offered from `grace` after.
    /// A cancellation by the clinic or the practice system never opens one: it may be a
    /// closed day.
    pub fn open_freed_slots(
        &mut self,
        clinic: &str,
        grace: Duration,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let (t, g) = (now.timestamp(), grace.num_seconds());
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let cid = clinic_id(&tx, clinic)?;
        let mut n = tx.prepare_cached("INSERT INTO openings (clinic_id, provider, starts_at, duration_min, source, appointment_id, opened_by,
                opened_at, offers_from, updated_at)
             SELECT a.clinic_id, a.provider, a.starts_at, a.duration_min, 'patient_cancel', a.id, 'patient',
                a.status_at, a.status_at + ?3, ?2
             FROM appointments a
             WHERE a.clinic_id = ?1 AND a.status = 'cancelled' AND a.cancelled_by = 'patient' AND a.starts_at > ?2
               AND NOT EXISTS (SELECT 1 FROM openings o WHERE o.appointment_id = a.id)")?
            .execute(
            params![cid, t, g],
        )?;
        n += tx.prepare_cached("INSERT INTO openings (clinic_id, provider, starts_at, duration_min, source, slot_event_id, opened_by,
                opened_at, offers_from, updated_at)
             SELECT s.clinic_id, s.provider, s.starts_at, s.duration_min, 'practice', s.id, 'feed:' || s.feed,
                s.recorded_at, s.recorded_at + ?3, ?2
             FROM slot_events s
             WHERE s.clinic_id = ?1 AND s.kind = 'opened' AND s.starts_at > ?2
               AND NOT EXISTS (SELECT 1 FROM openings o WHERE o.slot_event_id = s.id)")?
            .execute(
            params![cid, t, g],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Withdraws the clinic's open openings whose slot is taken again: the cancelled
    /// appointment was reinstated (an "oops"), another booked appointment now has that time,
    /// or the practice system blocked it (SIU S23) after opening it.
    pub fn withdraw_retaken(
        &mut self,
        clinic: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let cid = clinic_id(&tx, clinic)?;
        let mut n = 0;
        for (why, cond) in [
            (
                "the cancellation was undone",
                "EXISTS (SELECT 1 FROM appointments a WHERE a.id = o.appointment_id AND a.status = 'booked')",
            ),
            (
                "the slot was booked again",
                "EXISTS (SELECT 1 FROM appointments a WHERE a.clinic_id = o.clinic_id AND a.status = 'booked'
                    AND a.starts_at = o.starts_at AND a.id IS DISTINCT FROM o.appointment_id
                    AND (o.provider IS NULL OR a.provider IS NULL OR lower(a.provider) = lower(o.provider)))",
            ),
            (
                "the practice system blocked the slot",
                "EXISTS (SELECT 1 FROM slot_events s WHERE s.clinic_id = o.clinic_id AND s.kind = 'blocked'
                    AND s.starts_at = o.starts_at AND s.recorded_at >= o.opened_at
                    AND (o.provider IS NULL OR s.provider IS NULL OR lower(s.provider) = lower(o.provider)))",
            ),
        ] {
            let ids: Vec<i64> = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT o.id FROM openings o WHERE o.clinic_id = ?1 AND o.state = 'open' AND {cond}"
                ))?;
                stmt.query_map([cid], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            for id in ids {
                n += close(&tx, id, OpeningState::Withdrawn, why, t)?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// The clinic's open openings.
    pub fn open_openings(&self, clinic: &str) -> Result<Vec<Opening>, StoreError> {
        self.openings_where("c.key = ?1 AND o.state = 'open'", clinic, 0)
    }

    /// The clinic's openings starting after `since`, by start (the desk's list).
    pub fn openings_since(
        &self,
        clinic: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Opening>, StoreError> {
        self.openings_where(
            "c.key = ?1 AND o.starts_at >= ?2",
            clinic,
            since.timestamp(),
        )
    }

    fn openings_where(&self, cond: &str, clinic: &str, t: i64) -> Result<Vec<Opening>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {OPENING_COLUMNS} FROM openings o JOIN clinics c ON c.id = o.clinic_id
             WHERE {cond} AND CAST(?2 AS BIGINT) IS NOT NULL ORDER BY o.starts_at, o.id"
        ))?;
        let mut q = stmt.query(params![clinic, t])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            out.push(opening(&r)?);
        }
        Ok(out)
    }

    /// Appointments the clinic or its practice system cancelled starting in `[from, to)`: enough
    /// of them on one day means the clinic is closed that day.
    pub fn clinic_cancellations(
        &self,
        clinic: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<u32, StoreError> {
        Ok(self.conn.prepare_cached("SELECT count(*) FROM appointments a JOIN clinics c ON c.id = a.clinic_id
             WHERE c.key = ?1 AND a.status = 'cancelled' AND a.cancelled_by IN ('clinic', 'source')
               AND a.starts_at >= ?2 AND a.starts_at < ?3
               AND NOT EXISTS (SELECT 1 FROM openings o WHERE o.appointment_id = a.id AND o.source = 'patient_cancel')")?
            .query_row(
            params![clinic, from.timestamp(), to.timestamp()],
            |r| r.get(0),
        )?)
    }

    /// Says why an open opening got no offer this time (`None`: it got one), for the Waitlist
    /// page; written only when it changes.
    pub fn note_opening(
        &mut self,
        id: i64,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.prepare_cached("UPDATE openings SET reason = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'open' AND reason IS DISTINCT FROM ?2")?
            .execute(
            params![id, reason, now.timestamp()],
        )?;
        Ok(())
    }

    /// Ends an open opening (`expired` or `withdrawn`) with why; its open offers end with it.
    pub fn end_opening(
        &mut self,
        id: i64,
        state: OpeningState,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let n = close(&tx, id, state, reason, now.timestamp())?;
        tx.commit()?;
        Ok(n)
    }

    /// Offers past their time unanswered become `expired`; entries past theirs too.
    pub fn expire_waitlist(&mut self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let t = now.timestamp();
        let n = self
            .conn
            .prepare_cached(
                "UPDATE offers SET state = 'expired' WHERE state = 'offered' AND expires_at <= ?1",
            )?
            .execute([t])?;
        self.conn
            .prepare_cached(
                "UPDATE waitlist_entries SET state = 'expired', updated_at = ?1
             WHERE state = 'active' AND expires_at IS NOT NULL AND expires_at <= ?1",
            )?
            .execute([t])?;
        Ok(n)
    }

    /// The clinic's active entries with what a round of `o` needs of each patient.
    pub fn round_candidates(
        &self,
        o: &Opening,
        now: DateTime<Utc>,
    ) -> Result<Vec<Candidate>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS},
                (SELECT count(*) FROM offers f WHERE f.patient_id = w.patient_id AND f.created_at > ?3),
                EXISTS (SELECT 1 FROM offers f WHERE f.patient_id = w.patient_id AND f.opening_id = ?2),
                coalesce(w.appointment_id, (SELECT a.id FROM appointments a WHERE a.patient_id = w.patient_id
                    ORDER BY a.starts_at DESC LIMIT 1)),
                (SELECT a.starts_at FROM appointments a WHERE a.id = w.appointment_id AND a.status = 'booked')
             FROM waitlist_entries w JOIN clinics c ON c.id = w.clinic_id JOIN patients p ON p.id = w.patient_id
             WHERE c.key = ?1 AND w.state = 'active' AND p.opted_out_at IS NULL
               AND coalesce(p.channel, 'whatsapp') != 'none'"
        ))?;
        let week_ago = (now - Duration::days(7)).timestamp();
        let mut q = stmt.query(params![o.clinic, o.id, week_ago])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            out.push(Candidate {
                entry: entry(&r)?,
                offers_this_week: r.get(19)?,
                offered_this_opening: r.get(20)?,
                file_under: r.get(21)?,
                booked_at: r.get::<_, Option<i64>>(22)?.map(from_unix),
            });
        }
        Ok(out)
    }

    /// Writes one round of `o` in one transaction: an offer and its outbox message per pick,
    /// each entry's count, and the opening's round and next round time. Nothing is written
    /// when the opening is no longer open at round `o.round` (another run took it).
    pub fn write_round(
        &mut self,
        o: &Opening,
        picks: &[&Candidate],
        (template, valid, gap): (&str, Duration, Duration),
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let t = now.timestamp();
        let expires = (now + valid).timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let moved = tx
            .prepare_cached(
                "UPDATE openings SET round = round + 1, next_round_at = ?3, updated_at = ?4
             WHERE id = ?1 AND state = 'open' AND round = ?2",
            )?
            .execute(params![o.id, o.round, (now + gap).timestamp(), t])?;
        if moved == 0 {
            return Ok(0);
        }
        let mut n = 0;
        for c in picks {
            let Some(file_under) = c.file_under else {
                continue;
            };
            let added = tx.insert_if("INSERT INTO offers (opening_id, patient_id, entry_id, appointment_id, kind, round, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, 'waitlist', ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![o.id, c.entry.patient_id, c.entry.id, c.entry.appointment_id, o.round + 1, t, expires],
            )?;
            let Some(offer) = added else {
                continue;
            };
            tx.prepare_cached("INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state,
                    created_at, updated_at, channel, recipient)
                 VALUES (?1, 'waitlist_offer', ?2, ?3, ?4, ?5, ?6, 'pending', ?4, ?4, 'whatsapp', 'patient')")?
            .execute(
                params![file_under, format!("{OFFER_RULE}{offer}"), o.starts_at.timestamp(), t, expires, template],
            )?;
            tx.prepare_cached("UPDATE waitlist_entries SET offers_sent = offers_sent + 1, updated_at = ?2 WHERE id = ?1")?
            .execute(
                params![c.entry.id, t],
            )?;
            n += 1;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Staff open a slot by hand, offered at once; audited.
    pub fn open_slot_by_staff(
        &mut self,
        clinic: &str,
        (starts_at, duration_min): (DateTime<Utc>, u32),
        provider: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let cid = clinic_id(&tx, clinic)?;
        let id = tx.insert("INSERT INTO openings (clinic_id, provider, starts_at, duration_min, source, opened_by, opened_at,
                offers_from, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'staff', ?5, ?6, ?6, ?6)",
            params![cid, provider, starts_at.timestamp(), duration_min, actor, t],
        )?;
        tx.prepare_cached(
            "INSERT INTO audit_log (at, actor, action, new_value) VALUES (?1, ?2, 'open_slot', ?3)",
        )?
        .execute(params![
            t,
            actor,
            format!("opening {id} at {}", starts_at.to_rfc3339())
        ])?;
        tx.commit()?;
        Ok(id)
    }

    /// The clinic's offers made since `since`, newest first, with their message's state.
    pub fn waitlist_offers(
        &self,
        clinic: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OfferView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT f.id, c.key, p.name, o.starts_at, o.provider, f.round, f.state, f.created_at, f.expires_at,
                f.answered_at,
                (SELECT x.state FROM outbox x WHERE x.kind IN ('waitlist_offer', 'reschedule_offer')
                   AND x.rule = '{OFFER_RULE}' || f.id ORDER BY x.id DESC LIMIT 1)
             FROM offers f JOIN openings o ON o.id = f.opening_id JOIN clinics c ON c.id = o.clinic_id
             JOIN patients p ON p.id = f.patient_id
             WHERE c.key = ?1 AND f.created_at >= ?2 ORDER BY f.created_at DESC, f.id DESC LIMIT ?3"
        ))?;
        let mut q = stmt.query(params![clinic, since.timestamp(), limit as i64])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            out.push(OfferView {
                id: r.get(0)?,
                clinic: r.get(1)?,
                patient_name: r.get(2)?,
                starts_at: from_unix(r.get(3)?),
                provider: r.get(4)?,
                round: r.get(5)?,
                state: OfferState::parse(&r.get::<_, String>(6)?)?,
                created_at: from_unix(r.get(7)?),
                expires_at: from_unix(r.get(8)?),
                answered_at: r.get::<_, Option<i64>>(9)?.map(from_unix),
                message: r.get(10)?,
            });
        }
        Ok(out)
    }

    /// Offers sent and accepted, slots filled and each fill's time, for openings opened since
    /// `since` at the clinic.
    pub fn waitlist_figures(
        &self,
        clinic: &str,
        since: DateTime<Utc>,
    ) -> Result<WaitlistFigures, StoreError> {
        let s = since.timestamp();
        let (offers_sent, accepted) = self
            .conn
            .prepare_cached(
                "SELECT count(*), coalesce(count(*) FILTER (WHERE f.state = 'accepted'), 0) FROM offers f
             JOIN openings o ON o.id = f.opening_id JOIN clinics c ON c.id = o.clinic_id
             WHERE c.key = ?1 AND o.opened_at >= ?2",
            )?
            .query_row(params![clinic, s], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT (SELECT min(f.answered_at) FROM offers f WHERE f.opening_id = o.id AND f.state = 'accepted')
                    - o.opened_at
             FROM openings o JOIN clinics c ON c.id = o.clinic_id
             WHERE c.key = ?1 AND o.opened_at >= ?2 AND o.state = 'filled'",
        )?;
        let spans: Vec<Option<i64>> = stmt
            .query_map(params![clinic, s], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(WaitlistFigures {
            offers_sent: offers_sent.unsigned_abs(),
            accepted: accepted.unsigned_abs(),
            filled: spans.len() as u64,
            fill_seconds: spans.into_iter().flatten().collect(),
        })
    }
}

/// Ends open opening `id` and its open offers (withdrawn with it, or expired).
fn close(
    conn: &Connection,
    id: i64,
    state: OpeningState,
    reason: &str,
    t: i64,
) -> Result<usize, StoreError> {
    let n = conn.prepare_cached("UPDATE openings SET state = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1 AND state = 'open'")?
            .execute(
        params![id, state.as_str(), reason, t],
    )?;
    if n > 0 {
        let offers = if state == OpeningState::Withdrawn {
            OfferState::Withdrawn
        } else {
            OfferState::Expired
        };
        conn.prepare_cached(
            "UPDATE offers SET state = ?2 WHERE opening_id = ?1 AND state = 'offered'",
        )?
        .execute(params![id, offers.as_str()])?;
    }
    Ok(n)
}

impl super::ImportTx<'_> {
    /// In a feed message's own transaction: the appointment the practice system says the
    /// patient cancelled frees its slot (source `patient_cancel`, opened by `feed:<name>`,
    /// offered after the grace). Once per appointment; nothing for one already past or not
    /// cancelled after all.
    pub fn open_patient_cancellation(
        &self,
        appointment_id: i64,
        feed: &str,
        grace: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tx.prepare_cached("INSERT INTO openings (clinic_id, provider, starts_at, duration_min, source, appointment_id, opened_by,
                opened_at, offers_from, updated_at)
             SELECT clinic_id, provider, starts_at, duration_min, 'patient_cancel', id, 'feed:' || ?2, ?3, CAST(?3 AS BIGINT) + CAST(?4 AS BIGINT), ?3
             FROM appointments WHERE id = ?1 AND status = 'cancelled' AND starts_at > ?3
             ON CONFLICT (appointment_id) DO NOTHING")?
            .execute(
            params![appointment_id, feed, now.timestamp(), grace.num_seconds()],
        )?;
        Ok(())
    }
}
