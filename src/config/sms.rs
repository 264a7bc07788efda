//! The `[sms]` section, typed: the fallback policy, the providers and the SMS texts.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::Duration;

/// SMS settings (no secrets: Twilio's auth token and MSG91's auth key come from the
/// environment or systemd credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    /// Fall back to SMS after a terminal WhatsApp failure, unless a clinic or rule says
    /// otherwise.
    pub fallback: bool,
    /// After "not on WhatsApp" (131026) a number gets SMS for this long, then WhatsApp is
    /// tried again.
    pub retry_whatsapp_after: Duration,
    /// The most segments one SMS may take (each is billed).
    pub max_segments: u32,
    /// Acknowledge an applied SMS reply with an SMS (each costs money; off by default).
    pub acknowledge: bool,
    /// Twilio, if configured.
    pub twilio: Option<Twilio>,
    /// MSG91, if configured.
    pub msg91: Option<Msg91>,
}

impl Sms {
    /// The texts `provider` sends, by template key (`None`: the provider is not configured).
    pub fn texts(&self, provider: crate::sms::Provider) -> Option<&BTreeMap<String, SmsText>> {
        match provider {
            crate::sms::Provider::Twilio => self.twilio.as_ref().map(|t| &t.texts),
            crate::sms::Provider::Msg91 => self.msg91.as_ref().map(|m| &m.texts),
        }
    }
}

/// Twilio Programmable Messaging (`[sms.twilio]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Twilio {
    /// Base URL, `https://api.twilio.com` (the simulator's in tests and the demo).
    pub api_base: String,
    /// The account SID (`AC…`), not a secret.
    pub account_sid: String,
    /// The sending number (E.164), or `None` when a Messaging Service sends.
    pub from: Option<String>,
    /// The Messaging Service SID (`MG…`), instead of `from`.
    pub messaging_service_sid: Option<String>,
    /// The webhook server's address as Twilio reaches it (`https://reminders.example.org`,
    /// through the reverse proxy): status callbacks go to `{public_url}/twilio/status` and
    /// inbound texts are configured at `{public_url}/twilio/inbound`. Signatures are computed
    /// over this URL, never the internal one.
    pub public_url: String,
    /// Messages per second (a US long code takes 1).
    pub rate_limit_per_sec: u32,
    /// Time allowed to connect.
    pub connect_timeout: StdDuration,
    /// Time allowed for a whole request.
    pub request_timeout: StdDuration,
    /// Texts by template key (the same keys as `[templates]`): what a text says in place of
    /// that WhatsApp template. Two-way: they may ask for a digit.
    pub texts: BTreeMap<String, SmsText>,
}

/// MSG91's flow API (`[sms.msg91]`), for India's DLT rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg91 {
    /// Base URL, `https://control.msg91.com`.
    pub api_base: String,
    /// The DLT sender header (3 to 6 letters, e.g. `SUNRSE`).
    pub sender: String,
    /// Messages per second.
    pub rate_limit_per_sec: u32,
    /// Time allowed to connect.
    pub connect_timeout: StdDuration,
    /// Time allowed for a whole request.
    pub request_timeout: StdDuration,
    /// Texts by template key, each matching a registered DLT template. One-way: they give the
    /// clinic's number and never ask for a reply.
    pub texts: BTreeMap<String, SmsText>,
}

/// An SMS text for one template key, per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsText {
    /// By language code (`en`, `hi`).
    pub languages: BTreeMap<String, SmsLanguage>,
}

/// The SMS text in one language. Placeholders: `{first_name}`, `{patient_name}`, `{clinic}`,
/// `{date}`, `{time}`, `{provider}`, `{clinic_phone}`; for a caregiver, `{contact_name}` too.
/// For a DLT provider the registered template is this text with each placeholder written
/// `{#var#}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsLanguage {
    /// The text with its placeholders.
    pub text: String,
    /// The DLT Content Template ID (for MSG91).
    pub dlt_template_id: Option<String>,
    /// The template exactly as registered on the DLT portal, `{#var#}` for each variable:
    /// `text` must match it (placeholders for slots) or nothing is sent.
    pub registered: Option<String>,
}

// ---- reading `[sms]` ------------------------------------------------------------------------

/// `[sms]` as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSms {
    #[serde(default = "yes")]
    fallback: bool,
    #[serde(default = "default_retry_whatsapp")]
    retry_whatsapp_after: String,
    #[serde(default = "default_max_segments")]
    max_segments: u32,
    #[serde(default)]
    acknowledge: bool,
    twilio: Option<RawTwilio>,
    msg91: Option<RawMsg91>,
}

type RawTexts = BTreeMap<String, BTreeMap<String, RawSmsLanguage>>;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTwilio {
    #[serde(default = "default_twilio_base")]
    api_base: String,
    account_sid: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    public_url: String,
    #[serde(default = "one")]
    rate_limit_per_sec: u32,
    #[serde(default = "default_connect")]
    connect_timeout: String,
    #[serde(default = "default_request")]
    request_timeout: String,
    #[serde(default)]
    texts: RawTexts,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMsg91 {
    #[serde(default = "default_msg91_base")]
    api_base: String,
    sender: String,
    #[serde(default = "ten")]
    rate_limit_per_sec: u32,
    #[serde(default = "default_connect")]
    connect_timeout: String,
    #[serde(default = "default_request")]
    request_timeout: String,
    #[serde(default)]
    texts: RawTexts,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmsLanguage {
    text: String,
    dlt_template_id: Option<String>,
    registered: Option<String>,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn ten() -> u32 {
    10
}
fn default_retry_whatsapp() -> String {
    "90d".into()
}
fn default_max_segments() -> u32 {
    3
}
fn default_twilio_base() -> String {
    "https://api.twilio.com".into()
}
fn default_msg91_base() -> String {
    "https://control.msg91.com".into()
}
fn default_connect() -> String {
    "5s".into()
}
fn default_request() -> String {
    "15s".into()
}

/// Words carriers and Twilio treat as opt-out keywords: a reply made of one unsubscribes the
/// patient from every text of the clinic's number, so no SMS text may ask for one.
pub const OPT_OUT_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];

/// Words that ask for an answer, in the shipped languages: a text sent through a one-way
/// provider (an Indian DLT header cannot be replied to) must not contain them.
const REPLY_WORDS: &[&str] = &[
    "reply",
    "respond",
    "text back",
    "responda",
    "responde",
    "जवाब",
    "उत्तर",
];

/// Whether `text` asks the reader to answer by text.
pub fn asks_for_reply(text: &str) -> bool {
    let lower = text.to_lowercase();
    REPLY_WORDS.iter().any(|w| lower.contains(w))
}

/// The opt-out keywords `text` presents as something to type: whole words written in capitals
/// (`Reply CANCEL`), which is how a text names a keyword. "Reply 2 to cancel" names none, and
/// STOP is allowed: its meaning (no more texts) is what a text that names it offers.
pub fn opt_out_words(text: &str) -> Vec<&'static str> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    OPT_OUT_WORDS
        .iter()
        .copied()
        .filter(|k| *k != "STOP" && words.iter().any(|w| w == k))
        .collect()
}

/// Checks `[sms]` as far as it stands alone; the checks that need clinics, rules and
/// templates are in [`check_against`].
pub(super) fn validate(raw: RawSms, push: &mut impl FnMut(String, String)) -> Sms {
    use super::values::{API_REQUEST_TIMEOUT, CONNECT_TIMEOUT, RETRY_WHATSAPP, check_number};
    let retry_whatsapp_after = RETRY_WHATSAPP
        .span(&raw.retry_whatsapp_after)
        .unwrap_or_else(|m| {
            push("sms.retry_whatsapp_after".into(), m);
            Duration::days(90)
        });
    check_number(
        "sms.max_segments",
        raw.max_segments,
        &(1..=10),
        " segments (each is billed)",
        push,
    );
    let mut timeouts = |section: &str, c: &str, r: &str| {
        let connect = CONNECT_TIMEOUT.std_span(c).unwrap_or_else(|m| {
            push(format!("sms.{section}.connect_timeout"), m);
            StdDuration::from_secs(5)
        });
        let request = API_REQUEST_TIMEOUT.std_span(r).unwrap_or_else(|m| {
            push(format!("sms.{section}.request_timeout"), m);
            StdDuration::from_secs(15)
        });
        (connect, request)
    };
    let twilio = raw.twilio.map(|t| {
        let (connect_timeout, request_timeout) =
            timeouts("twilio", &t.connect_timeout, &t.request_timeout);
        (t, connect_timeout, request_timeout)
    });
    let msg91 = raw.msg91.map(|m| {
        let (connect_timeout, request_timeout) =
            timeouts("msg91", &m.connect_timeout, &m.request_timeout);
        (m, connect_timeout, request_timeout)
    });
    let twilio = twilio.map(|(t, connect_timeout, request_timeout)| {
        check_url("sms.twilio.api_base", &t.api_base, push);
        check_url("sms.twilio.public_url", &t.public_url, push);
        let sid_ok = t.account_sid.len() == 34
            && t.account_sid.starts_with("AC")
            && t.account_sid[2..].chars().all(|c| c.is_ascii_alphanumeric());
        if !sid_ok {
            push(
                "sms.twilio.account_sid".into(),
                format!(
                    "{:?} is not an account SID: it is \"AC\" and 32 letters and digits, shown on the Twilio console's home page",
                    t.account_sid
                ),
            );
        }
        match (&t.from, &t.messaging_service_sid) {
            (None, None) | (Some(_), Some(_)) => push(
                "sms.twilio.from".into(),
                "give either from (the sending number, e.g. \"+12125550100\") or messaging_service_sid (\"MG…\"), not both".into(),
            ),
            (Some(f), None) if !is_international(f) => push(
                "sms.twilio.from".into(),
                format!("{f:?} is not a phone number in international form, e.g. \"+12125550100\""),
            ),
            _ => {}
        }
        check_number(
            "sms.twilio.rate_limit_per_sec",
            t.rate_limit_per_sec,
            &(1..=1000),
            " (a US long code takes 1 a second, a toll-free number 3, a short code 100)",
            push,
        );
        Twilio {
            api_base: t.api_base.trim_end_matches('/').to_string(),
            account_sid: t.account_sid,
            from: t.from,
            messaging_service_sid: t.messaging_service_sid,
            public_url: t.public_url.trim_end_matches('/').to_string(),
            rate_limit_per_sec: t.rate_limit_per_sec,
            connect_timeout,
            request_timeout,
            texts: texts(t.texts),
        }
    });
    let msg91 = msg91.map(|(m, connect_timeout, request_timeout)| {
        check_url("sms.msg91.api_base", &m.api_base, push);
        let header_ok = (3..=6).contains(&m.sender.len())
            && m.sender.chars().all(|c| c.is_ascii_alphanumeric());
        if !header_ok {
            push(
                "sms.msg91.sender".into(),
                format!(
                    "{:?} is not a DLT sender header: 3 to 6 letters or digits, as registered on the DLT portal",
                    m.sender
                ),
            );
        }
        check_number(
            "sms.msg91.rate_limit_per_sec",
            m.rate_limit_per_sec,
            &(1..=1000),
            "",
            push,
        );
        Msg91 {
            api_base: m.api_base.trim_end_matches('/').to_string(),
            sender: m.sender,
            rate_limit_per_sec: m.rate_limit_per_sec,
            connect_timeout,
            request_timeout,
            texts: texts(m.texts),
        }
    });
    Sms {
        fallback: raw.fallback,
        retry_whatsapp_after,
        max_segments: raw.max_segments,
        acknowledge: raw.acknowledge,
        twilio,
        msg91,
    }
}

fn texts(raw: RawTexts) -> BTreeMap<String, SmsText> {
    raw.into_iter()
        .map(|(key, langs)| {
            let languages = langs
                .into_iter()
                .map(|(lang, l)| {
                    (
                        lang,
                        SmsLanguage {
                            text: l.text,
                            dlt_template_id: l.dlt_template_id,
                            registered: l.registered,
                        },
                    )
                })
                .collect();
            (key, SmsText { languages })
        })
        .collect()
}

/// Whether `number` is written in E.164 form (`+` and 8 to 15 digits). A syntax check, not
/// the numbering plan's: loading the plan's metadata costs most of a second, and every command
/// reads the config (found by bench/plan.py: 0.7 s per `plan` run).
fn is_international(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
    })
}

fn check_url(key: &str, url: &str, push: &mut impl FnMut(String, String)) {
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 10 {
        push(
            key.into(),
            format!("{url:?} is not a web address starting with https://"),
        );
    }
}

/// The checks of `[sms]` that need the rest of the config: every clinic's provider is
/// configured, and every template a clinic's rules send has a text its provider can carry
/// (within `max_segments`; no opt-out keyword as an answer; on the one-way DLT provider, no
/// request for a reply, the registered template and its id, and variables that fit).
pub(super) fn check_against(
    sms: &Sms,
    clinics: &BTreeMap<String, super::Clinic>,
    rules: &[super::Rule],
    templates: &BTreeMap<String, super::Template>,
    booking: Option<&str>,
    push: &mut impl FnMut(String, String),
) {
    use crate::sms::Provider;
    let mut longest = std::collections::HashMap::new();
    for provider in Provider::ALL.iter().copied() {
        let Some(texts) = sms.texts(provider) else {
            continue;
        };
        let dlt_clinics: Vec<&super::Clinic> = clinics
            .values()
            .filter(|c| c.sms_provider == Some(provider) && provider == Provider::Msg91)
            .collect();
        for (key, text) in texts {
            if !templates.contains_key(key) {
                push(
                    format!("sms.{provider}.texts.{}", super::seg(key)),
                    format!(
                        "no template {key:?} under [templates]: a text stands in for the WhatsApp template of the same key"
                    ),
                );
            }
            for (lang, l) in &text.languages {
                let at = format!(
                    "sms.{provider}.texts.{}.{}",
                    super::seg(key),
                    super::seg(lang)
                );
                check_text(&at, l, sms.max_segments, push);
                if provider != Provider::Msg91 {
                    continue;
                }
                if asks_for_reply(&l.text) {
                    push(
                        format!("{at}.text"),
                        "asks for a reply, but MSG91's DLT sender header cannot be answered; give the clinic's number instead ({clinic_phone})".into(),
                    );
                }
                match (&l.dlt_template_id, &l.registered) {
                    (Some(id), Some(registered)) => {
                        if !(id.len() >= 10 && id.chars().all(|c| c.is_ascii_digit())) {
                            push(
                                format!("{at}.dlt_template_id"),
                                format!("{id:?} is not a DLT Content Template ID (19 digits, from the DLT portal)"),
                            );
                        }
                        if let Err(e) = crate::sms::dlt::matches(&l.text, registered) {
                            push(format!("{at}.registered"), e.to_string());
                        }
                    }
                    _ => push(
                        at.clone(),
                        "needs dlt_template_id and registered (the template exactly as registered on the DLT portal): MSG91 sends nothing else".into(),
                    ),
                }
                for clinic in &dlt_clinics {
                    if l.text.contains("{clinic_phone}") && clinic.phone.is_none() {
                        push(
                            format!("clinics.{}.phone", super::seg(&clinic.key)),
                            format!(
                                "is needed: {at}.text gives the clinic's number ({{clinic_phone}})"
                            ),
                        );
                    }
                    if let Err(e) = fixed_variables_fit(&l.text, lang, clinic, &mut longest) {
                        push(
                            format!("{at}.text"),
                            format!("at clinic {}: {e}", clinic.key),
                        );
                    }
                }
            }
        }
    }
    for (ckey, clinic) in clinics {
        let Some(provider) = clinic.sms_provider else {
            continue;
        };
        let Some(texts) = sms.texts(provider) else {
            push(
                format!("clinics.{}.sms_provider", super::seg(ckey)),
                format!("{provider} is not configured: add [sms.{provider}]"),
            );
            continue;
        };
        let used = rules
            .iter()
            .filter(|r| r.clinics.contains(ckey))
            .map(|r| (format!("rule {:?}", r.name), r.template.as_str()))
            .chain(booking.map(|b| ("the booking confirmation".to_string(), b)))
            // A name not under [templates] (empty, or a typo) is one problem at its own key;
            // asking for a text keyed by it would only repeat it.
            .filter(|(_, template)| templates.contains_key(*template));
        for (what, template) in used {
            let missing = |key: &str| match texts.get(key) {
                None => true,
                Some(t) => !t.languages.contains_key(&clinic.default_language),
            };
            if missing(template) {
                push(
                    format!("sms.{provider}.texts.{}", super::seg(template)),
                    format!(
                        "clinic {ckey} sends texts through {provider}, but {what}'s template {template:?} has no text in {} (the clinic's default language): add [sms.{provider}.texts.{template}.{}]",
                        clinic.default_language, clinic.default_language
                    ),
                );
            }
            if let Some(contact) = templates
                .get(template)
                .and_then(|t| t.contact_template.as_deref())
                && missing(contact)
            {
                push(
                    format!("sms.{provider}.texts.{}", super::seg(contact)),
                    format!(
                        "clinic {ckey} sends texts through {provider}, but caregivers' template {contact:?} has no text in {}",
                        clinic.default_language
                    ),
                );
            }
        }
    }
}

/// The checks of one text that hold for every provider.
fn check_text(at: &str, l: &SmsLanguage, max_segments: u32, push: &mut impl FnMut(String, String)) {
    if let Err(e) = crate::sms::dlt::placeholders(&l.text) {
        push(format!("{at}.text"), e.to_string());
    }
    let words = opt_out_words(&l.text);
    if !words.is_empty() {
        push(
            format!("{at}.text"),
            format!(
                "names {}: carriers treat it as an opt-out keyword, and a patient who answers with it is unsubscribed from every text of your number; ask for a digit instead (\"Reply 2 to cancel\")",
                words.join(", ")
            ),
        );
    }
    let cost = crate::sms::text::cost(&l.text);
    if cost.segments > max_segments {
        push(
            format!("{at}.text"),
            format!(
                "takes {} segments before its placeholders are filled, more than sms.max_segments ({max_segments}); shorten it",
                cost.segments
            ),
        );
    }
}

/// The longest a DLT variable may be (MSG91 allows 40; 30 leaves room, as Simple does).
pub const DLT_VARIABLE_CAP: usize = 30;

/// The variables that are never trimmed (a date, a time, a phone number) must fit the DLT
/// cap however the clinic's formats render them: checked with the longest date (in the text's
/// language) and time the formats give over a year, found once per clinic and language.
fn fixed_variables_fit(
    text: &str,
    lang: &str,
    clinic: &super::Clinic,
    longest: &mut std::collections::HashMap<(String, String), [String; 2]>,
) -> Result<(), String> {
    let [date, time] = longest
        .entry((clinic.key.clone(), lang.to_string()))
        .or_insert_with(|| longest_renderings(lang, clinic))
        .clone();
    let phone = clinic.phone.clone().unwrap_or_default();
    for (placeholder, sample) in [("date", date), ("time", time), ("clinic_phone", phone)] {
        if text.contains(&format!("{{{placeholder}}}")) {
            crate::sms::dlt::check_fixed(placeholder, &[sample], DLT_VARIABLE_CAP)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The longest date (in `lang`) and time a clinic's formats render over a year of days and
/// times of day.
fn longest_renderings(lang: &str, clinic: &super::Clinic) -> [String; 2] {
    use chrono::TimeZone as _;
    use std::fmt::Write as _;
    let locale = crate::template::locale_for(lang, &clinic.phone_region.to_string());
    let mut longest = [String::new(), String::new()];
    let Some(start) = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single() else {
        return longest;
    };
    let mut keep = |i: usize, s: String| {
        if s.chars().count() > longest[i].chars().count() {
            longest[i] = s;
        }
    };
    for day in 0..366 {
        let at = (start + Duration::days(day) + Duration::minutes(day * 37 % 1440))
            .with_timezone(&clinic.time_zone);
        // A pattern chrono cannot render is reported on its own key (`formats_cleanly`);
        // here it only has no longest rendering (`to_string` would panic on it).
        let mut date = String::new();
        if write!(date, "{}", at.format_localized(&clinic.date_format, locale)).is_ok() {
            keep(0, date);
        }
        let mut time = String::new();
        if write!(time, "{}", at.format(&clinic.time_format)).is_ok() {
            keep(1, time);
        }
    }
    longest
}
