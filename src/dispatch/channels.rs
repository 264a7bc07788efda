//! Dispatch's second channel: which WhatsApp failures SMS mends (the fallback policy), what an
//! SMS error means for its row, and the senders of each SMS provider under their rate limits.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use governor::DefaultDirectRateLimiter;
use secrecy::SecretString;

use crate::config::Config;
use crate::model::{Channel, Kind, Recipient};
use crate::sms::{Accepted, Outgoing, Provider, SmsClass, SmsError, msg91, twilio};
use crate::store::{DueRow, Fallback, Outcome};

/// WhatsApp errors after which an SMS may stand in: not on WhatsApp (131026), the patient
/// blocked the business (130403), the template paused or disabled (132015, 132016). Never
/// silence or a missing `read`: those are not failures.
pub const FALLBACK_CODES: &[i64] = &[131_026, 130_403, 132_015, 132_016];

/// The error that says a number is not on WhatsApp: the number then gets SMS for
/// `sms.retry_whatsapp_after`.
pub const NOT_ON_WHATSAPP: i64 = 131_026;

/// The error that says the patient blocked the clinic: no more WhatsApp to the number.
pub const BLOCKED: i64 = 130_403;

/// Whether this row's message may be replaced by an SMS when WhatsApp fails with `code`: the
/// clinic has an SMS provider, its policy (or the rule's) allows fallback, and the template has
/// an SMS text. Acknowledgements never fall back (each SMS costs money, and the patient is
/// already writing to us).
pub fn may_fall_back(config: &Config, row: &DueRow, code: i64) -> bool {
    if row.channel != Channel::WhatsApp
        || row.kind == Kind::ReplyAck
        || !FALLBACK_CODES.contains(&code)
    {
        return false;
    }
    let Some(sms) = &config.sms else { return false };
    let Some(clinic) = config.clinic(&row.clinic) else {
        return false;
    };
    let Some(texts) = clinic.sms_provider.and_then(|p| sms.texts(p)) else {
        return false;
    };
    let rule = config.rules.iter().find(|r| r.name == row.rule);
    let allowed = rule
        .and_then(|r| r.sms_fallback)
        .unwrap_or(clinic.sms_fallback);
    let texted = row_template(config, row).is_some_and(|k| texts.contains_key(&k));
    allowed && texted
}

/// The config template a row is sent with, on WhatsApp and as the key of its SMS text alike:
/// a caregiver gets the template's caregiver version (`contact_template`); `None` when the
/// row has no template or its caregiver version is not configured.
pub fn row_template(config: &Config, row: &DueRow) -> Option<String> {
    let key = row.template.as_deref()?;
    match row.recipient {
        Recipient::Patient => Some(key.to_string()),
        Recipient::Contact => config.templates.get(key)?.contact_template.clone(),
    }
}

/// A WhatsApp outcome, turned into a fallback when SMS can mend it: a terminal failure (or a
/// paused template's wait) with one of [`FALLBACK_CODES`].
pub fn with_fallback(
    config: &Config,
    row: &DueRow,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Outcome {
    let (code, error) = match &outcome {
        Outcome::Failed {
            code: Some(code),
            error,
            ..
        }
        | Outcome::Retry {
            code: Some(code),
            error,
            ..
        } => (*code, error.clone()),
        _ => return outcome,
    };
    if !may_fall_back(config, row, code) {
        // Blocked, and no text stands in: still no more WhatsApp to them; staff call.
        return match (outcome, off_whatsapp_until(config, row, code, now)) {
            (
                Outcome::Failed {
                    code,
                    error,
                    needs_staff,
                },
                Some(until),
            ) => Outcome::Blocked {
                code,
                error,
                needs_staff,
                until,
            },
            (outcome, _) => outcome,
        };
    }
    Outcome::FellBack {
        code: Some(code),
        error,
        fallback: fallback_for(config, code, now),
    }
}

/// The SMS a failure with `code` calls for: due now, and for "not on WhatsApp" the number
/// remembered as SMS-only for `sms.retry_whatsapp_after`.
pub fn fallback_for(config: &Config, code: i64, now: DateTime<Utc>) -> Fallback {
    Fallback {
        send_at: now,
        // A patient who blocked the clinic (130403) gets no more WhatsApp either.
        sms_only_until: matches!(code, NOT_ON_WHATSAPP | BLOCKED)
            .then(|| now + retry_whatsapp_after(config)),
    }
}

/// Until when a WhatsApp failure with `code` that no text replaces keeps the number off
/// WhatsApp: a patient who blocked the clinic (130403) gets no more WhatsApp, text or not
/// (`None` for any other code, for acknowledgements, and for rows that were not WhatsApp).
pub fn off_whatsapp_until(
    config: &Config,
    row: &DueRow,
    code: i64,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let blocked = code == BLOCKED && row.channel == Channel::WhatsApp && row.kind != Kind::ReplyAck;
    blocked.then(|| now + retry_whatsapp_after(config))
}

/// How long a number learned to be off WhatsApp stays so (`sms.retry_whatsapp_after`, 90
/// days without an `[sms]` section).
fn retry_whatsapp_after(config: &Config) -> Duration {
    config
        .sms
        .as_ref()
        .map_or(Duration::days(90), |s| s.retry_whatsapp_after)
}

/// What staff read when an SMS failed for good: both reasons when it replaced a WhatsApp
/// message.
pub fn sms_staff(row: &DueRow, why: &str) -> String {
    match &row.fallback_error {
        Some(wa) => format!(
            "WhatsApp could not deliver it ({wa}) and the text failed too ({why}): call them"
        ),
        None => format!("the text message failed ({why}): call them"),
    }
}

/// When a text reported undelivered for a reason that may pass (Twilio's 30003 unreachable
/// handset, 30008 unknown) is tried once more; `None`: it has had its second try, or there is
/// no time left before its latest moment.
pub fn retry_text_at(row: &DueRow, code: Option<i64>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let once_more = code.and_then(twilio::class_of_code) == Some(SmsClass::RetryOnce);
    let at = now + Duration::minutes(15);
    (once_more && row.attempts < 2 && at < row.latest_at && row.kind != Kind::ReplyAck)
        .then_some(at)
}

/// What a failed SMS send means for its row. `unit` is a random number in [0, 1) for jitter.
pub fn sms_outcome(
    err: &SmsError,
    class: SmsClass,
    row: &DueRow,
    config: &Config,
    now: DateTime<Utc>,
    unit: f64,
) -> Outcome {
    let attempts = row.attempts + 1;
    let code = err.code();
    let error = err.to_string();
    let (max_attempts, base, max) = config.whatsapp.as_ref().map_or(
        (6, StdDuration::from_secs(5), StdDuration::from_secs(900)),
        |w| (w.max_attempts, w.retry_base, w.retry_max),
    );
    let failed = |why: &str| Outcome::Failed {
        code,
        error: error.clone(),
        needs_staff: Some(sms_staff(row, why)),
    };
    let retry = |delay: StdDuration, limit: u32| {
        let at = now + Duration::from_std(delay).unwrap_or(Duration::hours(1));
        if at > row.latest_at {
            Outcome::Expired {
                reason: format!("could not be sent before its latest time; last error: {error}"),
            }
        } else if attempts >= limit {
            failed(&format!("gave up after {attempts} attempts: {error}"))
        } else {
            Outcome::Retry {
                at,
                code,
                error: error.clone(),
            }
        }
    };
    match (class, err) {
        (_, SmsError::Ambiguous(_)) => Outcome::Unknown { error },
        (SmsClass::Retry | SmsClass::Throttled, _) => {
            retry(super::backoff(attempts, base, max, unit), max_attempts)
        }
        (SmsClass::RetryOnce, _) => retry(StdDuration::from_secs(15 * 60), 2),
        // The SMS account is not WhatsApp's: its trouble must not stop WhatsApp sends, so the
        // text waits and is tried again, and after its attempts staff call.
        (SmsClass::Operator, _) => retry(StdDuration::from_secs(15 * 60), max_attempts),
        (SmsClass::OptedOut, _) => Outcome::Unsubscribed {
            code,
            needs_staff: sms_staff(row, "they unsubscribed from our texts"),
            error,
        },
        (SmsClass::BadNumber, _) => failed("the number cannot receive texts"),
        (SmsClass::Filtered, _) => failed("the carrier blocked the text"),
        (SmsClass::Terminal, _) => failed(&error),
    }
}

/// A provider's client with its own rate limit.
struct Sender<C> {
    client: C,
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// The SMS providers the config names, each with its client and rate limit.
#[derive(Clone, Default)]
pub struct SmsSenders {
    twilio: Option<Arc<Sender<twilio::Client>>>,
    msg91: Option<Arc<Sender<msg91::Client>>>,
}

impl SmsSenders {
    /// Clients for the providers configured under `[sms]`, with their secrets.
    pub fn new(
        config: &Config,
        secret: impl Fn(crate::secrets::Secret) -> Result<SecretString, String>,
    ) -> Result<Self, String> {
        let mut out = Self::default();
        let Some(sms) = &config.sms else {
            return Ok(out);
        };
        if let Some(t) = &sms.twilio {
            let token = secret(crate::secrets::TWILIO_AUTH_TOKEN)?;
            out.twilio = Some(Arc::new(Sender {
                client: twilio::Client::new(t, token)?,
                limiter: Arc::new(super::limiter_for(t.rate_limit_per_sec)),
            }));
        }
        if let Some(m) = &sms.msg91 {
            let key = secret(crate::secrets::MSG91_AUTH_KEY)?;
            out.msg91 = Some(Arc::new(Sender {
                client: msg91::Client::new(m, key)?,
                limiter: Arc::new(super::limiter_for(m.rate_limit_per_sec)),
            }));
        }
        Ok(out)
    }

    /// Waits for the provider's rate limit; `false` when the provider is not configured.
    pub async fn ready(&self, provider: Provider) -> bool {
        let limiter = match provider {
            Provider::Twilio => self.twilio.as_ref().map(|s| &s.limiter),
            Provider::Msg91 => self.msg91.as_ref().map(|s| &s.limiter),
        };
        match limiter {
            Some(l) => {
                l.until_ready().await;
                true
            }
            None => false,
        }
    }

    /// Sends one SMS through `provider`, and says what its error means.
    pub async fn send(
        &self,
        provider: Provider,
        msg: &Outgoing,
    ) -> Result<Accepted, (SmsError, SmsClass)> {
        let not_configured = || {
            let e = SmsError::Refused(format!("[sms.{provider}] is not configured"));
            (e, SmsClass::Operator)
        };
        match provider {
            Provider::Twilio => {
                let s = self.twilio.as_ref().ok_or_else(not_configured)?;
                s.client.send(msg).await.map_err(|e| {
                    let class = twilio::class(&e);
                    (e, class)
                })
            }
            Provider::Msg91 => {
                let s = self.msg91.as_ref().ok_or_else(not_configured)?;
                s.client.send(msg).await.map_err(|e| {
                    let class = msg91::class(&e);
                    (e, class)
                })
            }
        }
    }
}
