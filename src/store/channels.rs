//! How staff see a patient's channels: the schedule's choice and caregiver, and what the
//! patient's and the caregiver's numbers taught us (texts only for a while, opted out of texts).

use crate::store::sql::OptionalExtension;
use chrono::{DateTime, Utc};

use super::{PatientReach, Store, StoreError};
use crate::model::{ChannelChoice, RemindWhom};
use crate::phone::E164;
use crate::time::from_unix;

/// What a number taught us, whoever's it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberFacts {
    /// Not on WhatsApp: it gets texts until then (stored as learned; it may have passed).
    pub sms_only_until: Option<DateTime<Utc>>,
    /// When it opted out of text messages.
    pub sms_opted_out_at: Option<DateTime<Utc>>,
}

/// Who gets a patient's reminders and how, as the schedule and their numbers say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientChannels {
    /// The schedule's channel, caregiver and whom to remind.
    pub reach: PatientReach,
    /// What the patient's number taught us.
    pub patient_number: NumberFacts,
    /// What the caregiver's number taught us.
    pub contact_number: NumberFacts,
}

impl Store {
    /// How patient `id` is reached (`None`: no such patient).
    pub fn patient_channels(&self, id: i64) -> Result<Option<PatientChannels>, StoreError> {
        let facts = |until: Option<i64>, out: Option<i64>| NumberFacts {
            sms_only_until: until.map(from_unix),
            sms_opted_out_at: out.map(from_unix),
        };
        let row = self
            .conn
            .prepare_cached(
                "SELECT p.channel, p.remind, p.contact_name, p.contact_phone, p.contact_relation,
                        np.sms_only_until, np.sms_opted_out_at, nc.sms_only_until, nc.sms_opted_out_at
                 FROM patients p LEFT JOIN numbers np ON np.phone = p.phone
                 LEFT JOIN numbers nc ON nc.phone = p.contact_phone
                 WHERE p.id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    (
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ),
                    facts(r.get(5)?, r.get(6)?),
                    facts(r.get(7)?, r.get(8)?),
                ))
            })
            .optional()?;
        let Some(((channel, remind, name, phone, relation), patient_number, contact_number)) = row
        else {
            return Ok(None);
        };
        Ok(Some(PatientChannels {
            reach: PatientReach {
                channel: channel.as_deref().map(ChannelChoice::parse).transpose()?,
                remind: RemindWhom::parse(&remind)?,
                contact_name: name,
                contact_phone: phone.map(E164::from_stored),
                contact_relation: relation,
            },
            patient_number,
            contact_number,
        }))
    }
}
