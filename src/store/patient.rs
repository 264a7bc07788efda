//! Finding a patient, the patient's file (appointments, messages, replies, staff actions) and a
//! clinic's week of appointments: what the desk's search, patient page and week view read.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::time::from_unix;

/// What a search box's text asks for: name words, trailing phone digits, an id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchTerms {
    /// Words every matching name contains, folded (lower case, common accents removed).
    pub words: Vec<String>,
    /// The digits a matching number ends with (a trunk `0` dropped), when the text is a number.
    pub digits: Option<String>,
    /// The digits are a whole number with its country code (typed with `+`), not its end.
    pub whole: bool,
    /// The text as an appointment or patient id.
    pub id: String,
}

impl SearchTerms {
    /// Reads what staff typed: "priya pat", "2345", "+91 98200 12345", "098200 12345",
    /// "MUM-1005". Empty when there is nothing to look for.
    pub fn read(text: &str) -> Self {
        let text = text.trim();
        let phone_like = text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        // "098200 12345": a national number's trunk prefix is not part of the E.164 form.
        let digits = if text.starts_with('+') {
            digits
        } else {
            digits.trim_start_matches('0').to_string()
        };
        Self {
            words: if phone_like {
                Vec::new()
            } else {
                fold(text).split_whitespace().map(str::to_string).collect()
            },
            digits: (phone_like && !digits.is_empty()).then_some(digits),
            whole: text.starts_with('+'),
            id: text.chars().take(200).collect(),
        }
    }

    /// Whether there is anything to look for.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

/// Lower case with the accents of Latin letters removed, so "jose" finds "José" and
/// "HERNÁNDEZ" finds "Hernández"; other scripts are only lower-cased.
pub fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'è'..='ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
            'ì'..='ï' | 'ī' | 'į' | 'ı' => 'i',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò'..='ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ù'..='ü' | 'ū' | 'ů' | 'ű' => 'u',
            'ý' | 'ÿ' => 'y',
            'ś' | 'š' => 's',
            'ź' | 'ż' | 'ž' => 'z',
            c => c,
        })
        .collect()
}

/// Whether `name` holds the folded `word`: without allocating for the common ASCII name.
fn holds(name: &str, word: &str) -> bool {
    if name.is_ascii() && word.is_ascii() {
        let (name, word) = (name.as_bytes(), word.as_bytes());
        return word.is_empty()
            || name
                .windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word));
    }
    fold(name).contains(word)
}

/// Why a patient is in the search results.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Matched {
    /// One of their appointments has this id.
    Appointment(String),
    /// Their id in the clinic's system is the text searched.
    PatientId,
    /// Their number ends with the digits searched.
    Phone,
    /// Their name holds every word searched.
    Name,
}

/// An appointment named for people: when and with whom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Visit {
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Who it is with.
    pub provider: Option<String>,
}

/// A patient found by the search.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PatientHit {
    /// Row id (the patient page's `id`).
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// Name.
    pub name: String,
    /// Number (E.164); pages mask it.
    pub phone: String,
    /// Opted out of messages.
    pub opted_out: bool,
    /// Why they matched.
    pub matched: Matched,
    /// Their next booked appointment from now, if any.
    pub next: Option<Visit>,
}

/// The search's answer: at most the limit asked for, and whether there were more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientSearch {
    /// Patients by how they matched (ids first), then by name.
    pub hits: Vec<PatientHit>,
    /// More patients matched than were returned.
    pub more: bool,
}

/// One of a patient's appointments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientAppointment {
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration_min: i64,
    /// Who it is with.
    pub provider: Option<String>,
    /// booked, cancelled, completed, no_show.
    pub status: String,
    /// clinic, patient, source (when cancelled).
    pub cancelled_by: Option<String>,
    /// none, confirmed, declined, reschedule_requested.
    pub response: String,
}

/// A message to the patient, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// When it went out (or was due, skipped or expired).
    pub at: DateTime<Utc>,
    /// The appointment it was about.
    pub appointment_id: String,
    /// reminder, booking_confirmation, reply_ack.
    pub kind: String,
    /// The rule that planned it (`booking`, `reply:<id>` for the others).
    pub rule: String,
    /// pending, sending, sent, delivered, read, failed, unknown, skipped, expired.
    pub state: String,
    /// When it reached the phone.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was read.
    pub read_at: Option<DateTime<Utc>>,
    /// The API's error code when it failed.
    pub error_code: Option<i64>,
    /// The API's words for the error.
    pub error: Option<String>,
    /// Why it was skipped, expired or held.
    pub reason: Option<String>,
    /// What staff must do about it.
    pub needs_staff: Option<String>,
    /// whatsapp or sms.
    pub channel: String,
    /// patient or contact (the caregiver).
    pub recipient: String,
}

/// A message from the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyEvent {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The appointment it was taken to concern.
    pub appointment_id: Option<String>,
    /// The API's message type (text, button, image, ...).
    pub kind: String,
    /// What was typed or tapped.
    pub text: Option<String>,
    /// What it was read as (confirm, cancel, reschedule, stop, start, unknown, none).
    pub intent: String,
    /// applied, needs_staff, ignored.
    pub outcome: String,
    /// Why it needs a person or was ignored.
    pub reason: Option<String>,
    /// Who dealt with it (`staff:<name>`).
    pub handled_by: Option<String>,
}

/// A staff note or action from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// The appointment it concerned, if one.
    pub appointment_id: Option<String>,
    /// Who (the name, without `staff:`).
    pub who: String,
    /// What (`called`, `note`, `status`, `response`, `reveal_phone`, ...).
    pub action: String,
    /// The value before, for changes.
    pub old_value: Option<String>,
    /// The value after, for changes.
    pub new_value: Option<String>,
    /// The note typed with it.
    pub note: Option<String>,
}

/// Everything the desk knows about one patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientFile {
    /// Row id.
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// The clinic system's patient id.
    pub external_id: String,
    /// Name.
    pub name: String,
    /// Number (E.164); pages mask it unless revealed.
    pub phone: String,
    /// Language messages are sent in.
    pub language: String,
    /// When they opted out of messages, if they have.
    pub opted_out_at: Option<DateTime<Utc>>,
    /// Their appointments, earliest first.
    pub appointments: Vec<PatientAppointment>,
    /// Messages to them, in time order.
    pub messages: Vec<MessageEvent>,
    /// Their messages, in time order (also from their number when no patient was matched).
    pub replies: Vec<ReplyEvent>,
    /// Staff notes and actions about them or their appointments, in time order.
    pub actions: Vec<StaffEvent>,
}

/// One appointment of a clinic's week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekRow {
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Who it is with.
    pub provider: Option<String>,
    /// booked, cancelled, completed, no_show.
    pub status: String,
    /// none, confirmed, declined, reschedule_requested.
    pub response: String,
}

fn opt_time(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.map(from_unix)
}

impl Store {
    /// Patients whose name holds every word of `text`, whose number ends with its digits, or
    /// who have an appointment (or a patient id) that is `text`, across all clinics; with
    /// each one's next booked appointment after `now`. At most `limit`.
    pub fn find_patients(
        &self,
        text: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<PatientSearch, StoreError> {
        let terms = SearchTerms::read(text);
        if terms.is_empty() {
            return Ok(PatientSearch::default());
        }
        // Patient id → how they matched (the strongest way) and their folded name.
        let mut found = std::collections::BTreeMap::<i64, (Matched, String)>::new();
        let mut note = |id: i64, m: Matched, name: &str| {
            let e = found.entry(id).or_insert_with(|| (m.clone(), fold(name)));
            if m < e.0 {
                e.0 = m;
            }
        };
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT a.patient_id, a.external_id, p.name FROM appointments a JOIN patients p ON p.id = a.patient_id
                 WHERE a.external_id = ?1 COLLATE NOCASE",
            )?;
            let mut q = stmt.query([&terms.id])?;
            while let Some(r) = q.next()? {
                note(
                    r.get(0)?,
                    Matched::Appointment(r.get(1)?),
                    &r.get::<_, String>(2)?,
                );
            }
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, name FROM patients WHERE external_id = ?1 COLLATE NOCASE",
            )?;
            let mut q = stmt.query([&terms.id])?;
            while let Some(r) = q.next()? {
                note(r.get(0)?, Matched::PatientId, &r.get::<_, String>(1)?);
            }
        }
        if let Some(digits) = &terms.digits {
            // Digits only, so no LIKE wildcard can come from the text.
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, name FROM patients WHERE CASE WHEN ?2 THEN phone = '+' || ?1 ELSE phone LIKE '%' || ?1 END",
            )?;
            let mut q = stmt.query(params![digits, terms.whole])?;
            while let Some(r) = q.next()? {
                note(r.get(0)?, Matched::Phone, &r.get::<_, String>(1)?);
            }
        }
        if !terms.words.is_empty() {
            // SQLite folds the case of ASCII letters only; names are in every script, so they
            // are compared here, in one pass over the names (ASCII ones without allocating).
            let mut stmt = self.conn.prepare_cached("SELECT id, name FROM patients")?;
            let mut q = stmt.query(())?;
            while let Some(r) = q.next()? {
                let name: String = r.get(1)?;
                if terms.words.iter().all(|w| holds(&name, w)) {
                    note(r.get(0)?, Matched::Name, &name);
                }
            }
        }
        // Ids first (the caller named one patient), then by name; details for those shown.
        let rank = |m: &Matched| !matches!(m, Matched::Appointment(_) | Matched::PatientId);
        let mut order: Vec<(bool, String, i64, Matched)> = found
            .into_iter()
            .map(|(id, (m, name))| (rank(&m), name, id, m))
            .collect();
        let more = order.len() > limit;
        if more {
            // A word as short as "a" matches most patients: only the first `limit` are sorted.
            order.select_nth_unstable(limit);
            order.truncate(limit);
        }
        order.sort();
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, c.key, p.name, p.phone, p.opted_out_at IS NOT NULL, n.external_id, n.starts_at, n.provider
             FROM patients p JOIN clinics c ON c.id = p.clinic_id
             LEFT JOIN appointments n ON n.id = (
                 SELECT a.id FROM appointments a WHERE a.patient_id = p.id AND a.status = 'booked' AND a.starts_at >= ?2
                 ORDER BY a.starts_at, a.id LIMIT 1)
             WHERE p.id = ?1",
        )?;
        let mut hits = Vec::with_capacity(order.len());
        for (_, _, id, matched) in order {
            let hit = stmt.query_row(params![id, now.timestamp()], |r| {
                let next = match r.get::<_, Option<String>>(5)? {
                    Some(appointment_id) => Some(Visit {
                        appointment_id,
                        starts_at: from_unix(r.get(6)?),
                        provider: r.get(7)?,
                    }),
                    None => None,
                };
                Ok(PatientHit {
                    id: r.get(0)?,
                    clinic: r.get(1)?,
                    name: r.get(2)?,
                    phone: r.get(3)?,
                    opted_out: r.get(4)?,
                    matched,
                    next,
                })
            })?;
            hits.push(hit);
        }
        Ok(PatientSearch { hits, more })
    }

    /// One patient's file: details, appointments, and every message, reply and staff action
    /// about them. `None` when there is no such patient.
    pub fn patient_file(&self, id: i64) -> Result<Option<PatientFile>, StoreError> {
        let head = self
            .conn
            .query_row(
                "SELECT p.id, c.key, p.external_id, p.name, p.phone, p.language, p.opted_out_at
                 FROM patients p JOIN clinics c ON c.id = p.clinic_id WHERE p.id = ?1",
                [id],
                |r| {
                    Ok(PatientFile {
                        id: r.get(0)?,
                        clinic: r.get(1)?,
                        external_id: r.get(2)?,
                        name: r.get(3)?,
                        phone: r.get(4)?,
                        language: r.get(5)?,
                        opted_out_at: opt_time(r.get(6)?),
                        appointments: Vec::new(),
                        messages: Vec::new(),
                        replies: Vec::new(),
                        actions: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut file) = head else {
            return Ok(None);
        };
        file.appointments = self
            .conn
            .prepare_cached(
                "SELECT external_id, starts_at, duration_min, provider, status, cancelled_by, response
                 FROM appointments WHERE patient_id = ?1 ORDER BY starts_at, id",
            )?
            .query_map([id], |r| {
                Ok(PatientAppointment {
                    appointment_id: r.get(0)?,
                    starts_at: from_unix(r.get(1)?),
                    duration_min: r.get(2)?,
                    provider: r.get(3)?,
                    status: r.get(4)?,
                    cancelled_by: r.get(5)?,
                    response: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        file.messages = self
            .conn
            .prepare_cached(
                "SELECT coalesce(o.request_at, o.sent_at, o.failed_at,
                                 CASE WHEN o.state IN ('skipped', 'expired') THEN o.updated_at END, o.send_at) AS at,
                        a.external_id, o.kind, o.rule, o.state, o.delivered_at, o.read_at,
                        o.last_error_code, o.last_error, o.reason, o.needs_staff, o.channel, o.recipient
                 FROM outbox o JOIN appointments a ON a.id = o.appointment_id
                 WHERE a.patient_id = ?1 ORDER BY at, o.id",
            )?
            .query_map([id], |r| {
                Ok(MessageEvent {
                    at: from_unix(r.get(0)?),
                    appointment_id: r.get(1)?,
                    kind: r.get(2)?,
                    rule: r.get(3)?,
                    state: r.get(4)?,
                    delivered_at: opt_time(r.get(5)?),
                    read_at: opt_time(r.get(6)?),
                    error_code: r.get(7)?,
                    error: r.get(8)?,
                    reason: r.get(9)?,
                    needs_staff: r.get(10)?,
                    channel: r.get(11)?,
                    recipient: r.get(12)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        file.replies = self
            .conn
            .prepare_cached(
                "SELECT r.received_at, a.external_id, r.kind, r.text, r.intent, r.outcome, r.reason, r.handled_by
                 FROM replies r LEFT JOIN appointments a ON a.id = r.appointment_id
                 WHERE r.patient_id = ?1 OR (r.patient_id IS NULL AND r.from_phone = ?2)
                 ORDER BY r.received_at, r.id",
            )?
            .query_map(params![id, file.phone], |r| {
                Ok(ReplyEvent {
                    at: from_unix(r.get(0)?),
                    appointment_id: r.get(1)?,
                    kind: r.get(2)?,
                    text: r.get(3)?,
                    intent: r.get(4)?,
                    outcome: r.get(5)?,
                    reason: r.get(6)?,
                    handled_by: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        file.actions = self
            .conn
            .prepare_cached(
                "SELECT l.at, a.external_id, substr(l.actor, 7), l.action, l.old_value, l.new_value, l.reason
                 FROM audit_log l LEFT JOIN appointments a ON a.id = l.appointment_id
                 WHERE l.actor LIKE 'staff:%'
                   AND (l.patient_id = ?1 OR l.appointment_id IN (SELECT id FROM appointments WHERE patient_id = ?1))
                 ORDER BY l.at, l.id",
            )?
            .query_map([id], |r| {
                Ok(StaffEvent {
                    at: from_unix(r.get(0)?),
                    appointment_id: r.get(1)?,
                    who: r.get(2)?,
                    action: r.get(3)?,
                    old_value: r.get(4)?,
                    new_value: r.get(5)?,
                    note: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(file))
    }

    /// The patient an appointment (by row id) belongs to.
    pub fn patient_of_appointment(&self, appointment: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT patient_id FROM appointments WHERE id = ?1",
                [appointment],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Audits that `actor` was shown a patient's whole number; the audit row's id (the page
    /// shows the number for it), or `None` when there is no such patient.
    pub fn reveal_patient_phone(
        &mut self,
        patient: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.insert_if(
            "INSERT INTO audit_log (at, patient_id, actor, action)
             SELECT ?1, id, ?2, 'reveal_phone' FROM patients WHERE id = ?3",
            params![now.timestamp(), actor, patient],
        )?)
    }

    /// Whether audit row `reveal` is `actor`'s reveal of this patient's number at or after
    /// `since`: a link can only show a number someone was shown, and only for a while.
    pub fn was_revealed(
        &self,
        patient: i64,
        reveal: i64,
        actor: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM audit_log WHERE id = ?1 AND patient_id = ?2 AND actor = ?3
                              AND action = 'reveal_phone' AND appointment_id IS NULL AND at >= ?4)",
            params![reveal, patient, actor, since.timestamp()],
            |r| r.get(0),
        )?)
    }

    /// One clinic's appointments starting in `[from, to)`, for the week view's counts.
    pub fn week(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WeekRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.starts_at, a.provider, a.status, a.response
             FROM appointments a JOIN clinics c ON c.id = a.clinic_id
             WHERE c.key = ?1 AND a.starts_at >= ?2 AND a.starts_at < ?3
             ORDER BY a.starts_at, a.id",
        )?;
        let rows = stmt.query_map(params![clinic, from.timestamp(), to.timestamp()], |r| {
            Ok(WeekRow {
                starts_at: from_unix(r.get(0)?),
                provider: r.get(1)?,
                status: r.get(2)?,
                response: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_read_as_name_words_phone_digits_or_an_id() {
        let t = SearchTerms::read("  Priya  PAT ");
        assert_eq!(t.words, ["priya", "pat"]);
        assert_eq!(t.digits, None);
        assert_eq!(t.id, "Priya  PAT");
        for (typed, digits) in [
            ("2345", "2345"),
            ("98200 12345", "9820012345"),
            ("098200 12345", "9820012345"),
            ("+91 98200 12345", "919820012345"),
            ("(646) 555-0199", "6465550199"),
        ] {
            let t = SearchTerms::read(typed);
            assert_eq!(t.digits.as_deref(), Some(digits), "{typed}");
            assert!(t.words.is_empty(), "{typed}");
        }
        assert!(SearchTerms::read("+91 98200 12345").whole);
        assert!(!SearchTerms::read("98200 12345").whole);
        let t = SearchTerms::read("MUM-1005");
        assert_eq!(
            (t.words, t.digits, t.id.as_str()),
            (vec!["mum-1005".to_string()], None, "MUM-1005")
        );
        assert!(SearchTerms::read("   ").is_empty());
        assert_eq!(SearchTerms::read("+").digits, None);
    }

    #[test]
    fn folding_ignores_case_and_latin_accents_only() {
        assert_eq!(fold("José HERNÁNDEZ Ñandú"), "jose hernandez nandu");
        assert_eq!(fold("प्रिया पाटील"), "प्रिया पाटील");
        assert!(holds("Priya PATIL", "patil") && holds("José Hernández", "jose"));
        assert!(holds("प्रिया पाटील", "पाटील") && !holds("Priya", "priyanka"));
    }

    /// Two clinics' patients (Priya at both, with the same number), appointments, messages,
    /// replies and staff actions, written as the rest of the store writes them.
    fn fixture() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("p.db")).expect("open");
        s.conn
            .execute_batch(
                "INSERT INTO clinics (id, key, display_name, time_zone, phone_region) VALUES
                    (1, 'mumbai', 'Mumbai', 'Asia/Kolkata', 'IN'), (2, 'nyc', 'NYC', 'America/New_York', 'US');
                 INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at) VALUES
                    (1, 1, 'P-1', 'Priya Patil', '+919876543210', 'mr', 0, 0),
                    (2, 1, 'P-2', 'Aarav Sharma', '+919820012345', 'en', 0, 0),
                    (3, 2, 'N-1', 'José Hernández', '+16465550199', 'es', 0, 0),
                    (4, 2, 'N-2', 'Priya Patel', '+919876543210', 'en', 0, 0);
                 INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status, status_at, response, created_at, updated_at) VALUES
                    (10, 1, 'MUM-1002', 1, 'Dr. Mehta', 1800000000, 15, 'booked', 0, 'confirmed', 0, 0),
                    (11, 1, 'MUM-0900', 1, 'Dr. Iyer', 1700000000, 15, 'no_show', 0, 'none', 0, 0),
                    (12, 1, 'MUM-1001', 2, 'Dr. Mehta', 1800000600, 15, 'booked', 0, 'none', 0, 0),
                    (13, 2, 'NYC-501', 3, NULL, 1800000000, 30, 'cancelled', 0, 'declined', 0, 0);
                 INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, last_error_code, request_at, created_at, updated_at) VALUES
                    (10, 'reminder', 'day-before', 1800000000, 1799913600, 1799985600, 'read', NULL, 1799913600, 0, 0),
                    (10, 'reminder', 'same-day', 1800000000, 1799992800, 1799998200, 'skipped', NULL, NULL, 0, 1799914000),
                    (11, 'reminder', 'day-before', 1700000000, 1699913600, 1699985600, 'failed', 131026, 1699913600, 0, 0);
                 INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, received_at) VALUES
                    ('w1', '+919876543210', 1, 10, 'text', 'yes', 'confirm', 'applied', 1799913700),
                    ('w2', '+919876543210', NULL, NULL, 'text', 'who is this?', 'unknown', 'needs_staff', 1799913800);
                 INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, reason) VALUES
                    (1799913650, 10, NULL, 'staff:asha', 'called', 'left a message'),
                    (1799913660, NULL, 1, 'patient', 'opt_out', NULL),
                    (1799913670, 12, NULL, 'staff:asha', 'note', 'someone else');",
            )
            .expect("fixture");
        (dir, s)
    }

    fn names(s: &Store, text: &str) -> Vec<(String, Matched)> {
        let now = from_unix(1_750_000_000);
        let found = s.find_patients(text, now, 10).expect("search");
        found
            .hits
            .into_iter()
            .map(|h| (h.name, h.matched))
            .collect()
    }

    #[test]
    fn search_finds_names_in_part_any_case_numbers_by_their_end_and_ids() {
        let (_dir, s) = fixture();
        let priyas = vec![
            ("Priya Patel".to_string(), Matched::Name),
            ("Priya Patil".to_string(), Matched::Name),
        ];
        assert_eq!(names(&s, "PRIYA pat"), priyas);
        assert_eq!(names(&s, "pat priya"), priyas, "words in any order");
        assert_eq!(
            names(&s, "patil"),
            [("Priya Patil".to_string(), Matched::Name)]
        );
        assert_eq!(names(&s, "jose hernandez")[0].0, "José Hernández");
        assert_eq!(names(&s, "3210").len(), 2, "one number, two clinics");
        for typed in [
            "2345",
            "98200 12345",
            "098200 12345",
            "+91 98200 12345",
            "+919820012345",
        ] {
            assert_eq!(
                names(&s, typed),
                [("Aarav Sharma".to_string(), Matched::Phone)],
                "{typed}"
            );
        }
        assert!(
            names(&s, "+1 98200 12345").is_empty(),
            "another country's code"
        );
        assert!(names(&s, "+9820012345").is_empty(), "a + number is whole");
        assert_eq!(
            names(&s, "mum-1002"),
            [(
                "Priya Patil".to_string(),
                Matched::Appointment("MUM-1002".into())
            )]
        );
        assert_eq!(
            names(&s, "n-1"),
            [("José Hernández".to_string(), Matched::PatientId)]
        );
        assert!(names(&s, "%").is_empty() && names(&s, "_").is_empty() && names(&s, "").is_empty());
        let found = s.find_patients("a", from_unix(0), 2).expect("search");
        assert_eq!((found.hits.len(), found.more), (2, true));
    }

    #[test]
    fn a_hit_names_the_next_booked_appointment() {
        let (_dir, s) = fixture();
        let found = s
            .find_patients("patil", from_unix(1_750_000_000), 10)
            .expect("search");
        let next = found.hits[0].next.as_ref().expect("next");
        assert_eq!(
            (next.appointment_id.as_str(), next.provider.as_deref()),
            ("MUM-1002", Some("Dr. Mehta"))
        );
        let later = s
            .find_patients("patil", from_unix(1_900_000_000), 10)
            .expect("search");
        assert_eq!(later.hits[0].next, None);
    }

    #[test]
    fn the_file_holds_the_patients_own_messages_replies_and_staff_actions_in_order() {
        let (_dir, mut s) = fixture();
        let f = s.patient_file(1).expect("read").expect("Priya");
        assert_eq!(
            (f.name.as_str(), f.clinic.as_str()),
            ("Priya Patil", "mumbai")
        );
        let ids: Vec<&str> = f
            .appointments
            .iter()
            .map(|a| a.appointment_id.as_str())
            .collect();
        assert_eq!(ids, ["MUM-0900", "MUM-1002"], "earliest first");
        let messages: Vec<(&str, &str)> = f
            .messages
            .iter()
            .map(|m| (m.rule.as_str(), m.state.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                ("day-before", "failed"),
                ("day-before", "read"),
                ("same-day", "skipped")
            ]
        );
        assert_eq!(f.messages[0].error_code, Some(131_026));
        let texts: Vec<Option<&str>> = f.replies.iter().map(|r| r.text.as_deref()).collect();
        assert_eq!(
            texts,
            [Some("yes"), Some("who is this?")],
            "her number's unmatched reply too"
        );
        let actions: Vec<(&str, &str)> = f
            .actions
            .iter()
            .map(|a| (a.who.as_str(), a.action.as_str()))
            .collect();
        assert_eq!(
            actions,
            [("asha", "called")],
            "staff only, her appointments only"
        );
        assert_eq!(s.patient_file(99).expect("read"), None);

        let t0 = from_unix(1_800_000_000);
        let reveal = s
            .reveal_patient_phone(1, "staff:asha", t0)
            .expect("audit")
            .expect("row");
        assert!(s.was_revealed(1, reveal, "staff:asha", t0).expect("check"));
        assert!(
            !s.was_revealed(1, reveal, "staff:ravi", t0).expect("check"),
            "another's reveal"
        );
        assert!(
            !s.was_revealed(2, reveal, "staff:asha", t0).expect("check"),
            "another patient"
        );
        assert!(
            !s.was_revealed(1, reveal, "staff:asha", t0 + chrono::TimeDelta::seconds(1))
                .expect("check"),
            "too old"
        );
        assert_eq!(
            s.reveal_patient_phone(99, "staff:asha", t0).expect("audit"),
            None
        );
        let f = s.patient_file(1).expect("read").expect("Priya");
        assert_eq!(
            f.actions.last().map(|a| a.action.as_str()),
            Some("reveal_phone")
        );
        assert_eq!(s.patient_of_appointment(12).expect("read"), Some(2));
    }

    #[test]
    fn stats_groups_add_up_to_the_totals() {
        let (_dir, s) = fixture();
        let st = s
            .stats(None, from_unix(0), from_unix(2_000_000_000))
            .expect("stats");
        let sum = |f: fn(&crate::store::RuleStats) -> i64| st.per_rule.iter().map(f).sum::<i64>();
        assert_eq!(st.appointments, 4);
        assert_eq!(sum(|r| r.appointments), st.appointments);
        assert_eq!(sum(|r| r.no_show), st.no_shows);
        assert_eq!(sum(|r| r.confirmed), st.confirmed);
        assert_eq!(sum(|r| r.cancelled), st.cancelled);
        assert_eq!((st.reminded, st.reminded_confirmed, st.no_shows), (1, 1, 1));
        assert_eq!(
            st.no_show_confirmed
                + st.no_show_unconfirmed
                + st.no_show_unreachable
                + st.no_show_not_reminded,
            st.no_shows
        );
        assert_eq!(st.no_show_unreachable, 1, "MUM-0900's only reminder failed");
        assert_eq!(
            st.per_rule
                .iter()
                .map(|r| r.rule.as_deref())
                .collect::<Vec<_>>(),
            [Some("day-before"), None]
        );
    }
}
