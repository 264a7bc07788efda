//! A patient's consent per channel as staff see and record it: the standing answer (the newest
//! `consents` row per channel) and what the patient told the desk, which stops or lifts
//! messages the same way a STOP or START reply does.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::super::inbound::{opt_in_sms, opt_in_whatsapp, opt_out_sms, opt_out_whatsapp};
use super::super::{Store, StoreError};
use super::consent_row;
use crate::model::Channel;
use crate::time::from_unix;

/// The standing consent answer on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentAnswer {
    /// The channel it is about.
    pub channel: Channel,
    /// Agreed (`true`) or withdrawn.
    pub given: bool,
    /// Where it came from: 'import:<file>', 'reply <message id>', 'staff:<name>', ...
    pub source: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

impl Store {
    /// Patient `id`'s standing consent per channel, WhatsApp first; a channel never answered
    /// is absent.
    pub fn consents(&self, id: i64) -> Result<Vec<ConsentAnswer>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT channel, given, source, recorded_at FROM consents c
             WHERE patient_id = ?1 AND id = (SELECT id FROM consents WHERE patient_id = ?1
                 AND channel = c.channel ORDER BY recorded_at DESC, id DESC LIMIT 1)
             ORDER BY channel = 'sms', channel",
        )?;
        let mut rows = stmt.query([id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(ConsentAnswer {
                channel: Channel::parse(&r.get::<_, String>(0)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                given: r.get(1)?,
                source: r.get(2)?,
                recorded_at: from_unix(r.get(3)?),
            });
        }
        Ok(out)
    }

    /// Records what patient `id` told staff `actor` ('staff:<name>') about messages on
    /// `channel`, in one transaction with its audit row: withdrawn sets the opt-out a STOP
    /// sets (and skips pending WhatsApp messages), agreed lifts it as START does. `false`:
    /// no such patient, or their data was erased.
    pub fn record_consent(
        &mut self,
        id: i64,
        channel: Channel,
        given: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let found: Option<(Option<String>, bool, bool)> = tx
            .prepare_cached("SELECT p.phone, p.opted_out_at IS NOT NULL,
                        EXISTS (SELECT 1 FROM numbers n WHERE n.phone = p.phone AND n.sms_opted_out_at IS NOT NULL)
                 FROM patients p WHERE p.id = ?1 AND p.erased_at IS NULL")?
            .query_row(
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((phone, whatsapp_out, sms_out)) = found else {
            return Ok(false);
        };
        let (action, was_out) = match (channel, given) {
            (Channel::WhatsApp, false) => {
                opt_out_whatsapp(&tx, id, t)?;
                ("opt_out", whatsapp_out)
            }
            (Channel::WhatsApp, true) => {
                opt_in_whatsapp(&tx, id, t)?;
                ("opt_in", whatsapp_out)
            }
            (Channel::Sms, false) => {
                if let Some(phone) = &phone {
                    opt_out_sms(&tx, phone, "staff", t)?;
                }
                ("sms_opt_out", sms_out)
            }
            (Channel::Sms, true) => {
                if let Some(phone) = &phone {
                    opt_in_sms(&tx, phone, t)?;
                }
                ("sms_opt_in", sms_out)
            }
        };
        let word = |out: bool| if out { "opted_out" } else { "opted_in" };
        tx.prepare_cached(
            "INSERT INTO audit_log (at, patient_id, actor, action, old_value, new_value, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'the patient told staff')",
        )?
        .execute(params![t, id, actor, action, word(was_out), word(!given)])?;
        consent_row(&tx, id, channel.as_str(), given, actor, t)?;
        tx.commit()?;
        Ok(true)
    }
}
