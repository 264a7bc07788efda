//! Several WhatsApp business numbers: `[whatsapp.numbers.NAME]` and each clinic's
//! `whatsapp_number`. A hospital group sends from one number per clinic or brand, and Meta caps
//! each number on its own, so each keeps its own rate and its own recipients' spacing.

use std::collections::BTreeMap;

use super::raw::RawNumber;
use super::validate::is_valid_key;
use super::values::check_number;
use super::{Clinic, Config, WhatsApp};

/// The name of the number `[whatsapp]` itself configures.
pub const DEFAULT_NUMBER: &str = "default";

/// One WhatsApp business number reminderd sends from, with Meta's limits kept for it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// Its name in the config (`default`, or the key of `[whatsapp.numbers.NAME]`).
    pub name: String,
    /// The business phone number's id (not the number).
    pub phone_number_id: String,
    /// The WhatsApp Business Account it belongs to (its template catalogue).
    pub waba_id: String,
    /// Messages per second this number may send (Meta caps each number on its own).
    pub rate_limit_per_sec: u32,
    /// Its business account has its own access token
    /// (`$REMINDERD_WHATSAPP_TOKEN_<NAME>` or credential `whatsapp-token-<name>`); otherwise
    /// the main token is used.
    pub own_token: bool,
}

impl WhatsApp {
    /// The number named `name`, if configured.
    pub fn number(&self, name: &str) -> Option<&Number> {
        self.numbers.get(name)
    }
}

impl Config {
    /// The WhatsApp number clinic `key` sends from (`None`: no such clinic, or no `[whatsapp]`).
    pub fn number_of(&self, key: &str) -> Option<&Number> {
        let clinic = self.clinic(key)?;
        self.whatsapp.as_ref()?.number(&clinic.whatsapp_number)
    }

    /// The clinics that send from the number named `number`.
    pub fn clinics_sending_from<'a>(&'a self, number: &'a str) -> impl Iterator<Item = &'a Clinic> {
        self.clinics
            .values()
            .filter(move |c| c.whatsapp_number == number)
    }

    /// The keys of the clinics that send from the number whose id is `phone_number_id`
    /// (`None`: no configured number has that id).
    pub fn clinics_on(&self, phone_number_id: &str) -> Option<Vec<&str>> {
        let number = self
            .whatsapp
            .as_ref()?
            .numbers
            .values()
            .find(|n| n.phone_number_id == phone_number_id)?;
        Some(
            self.clinics_sending_from(&number.name)
                .map(|c| c.key.as_str())
                .collect(),
        )
    }
}

/// Whether `id` looks like one of Meta's numeric ids.
pub(super) fn is_numeric_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_digit())
}

/// Every number: `default` (from `[whatsapp]` itself) and each `[whatsapp.numbers.NAME]`, a
/// problem for each bad name, id, rate or id used twice.
pub(super) fn validate(
    default: Number,
    raw: BTreeMap<String, RawNumber>,
    push: &mut impl FnMut(String, String),
) -> BTreeMap<String, Number> {
    let mut out = BTreeMap::new();
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    by_id.insert(default.phone_number_id.clone(), "whatsapp".into());
    for (name, n) in raw {
        let k = |f: &str| format!("whatsapp.numbers.{}.{f}", super::seg(&name));
        if name == DEFAULT_NUMBER {
            push(
                format!("whatsapp.numbers.{name}"),
                "\"default\" is the number [whatsapp] itself sets; give this one another name"
                    .into(),
            );
            continue;
        }
        if !is_valid_key(&name) {
            push(
                format!("whatsapp.numbers.{}", super::seg(&name)),
                "a number's name uses lower-case letters, digits, - and _ (it names the number's token: $REMINDERD_WHATSAPP_TOKEN_<NAME>)".into(),
            );
            continue;
        }
        let mut ok = true;
        if !is_numeric_id(&n.phone_number_id) {
            push(
                k("phone_number_id"),
                format!(
                    "{:?} is not a numeric id; copy it from WhatsApp Manager → API setup",
                    n.phone_number_id
                ),
            );
            ok = false;
        } else if let Some(first) = by_id.get(&n.phone_number_id) {
            push(
                k("phone_number_id"),
                format!(
                    "{} is already the phone_number_id of {first}; each number is configured once (clinics share a number by naming it in whatsapp_number)",
                    n.phone_number_id
                ),
            );
            ok = false;
        }
        if let Some(w) = n.waba_id.as_deref().filter(|w| !is_numeric_id(w)) {
            push(
                k("waba_id"),
                format!(
                    "{w:?} is not a numeric id; copy it from WhatsApp Manager → API setup, or leave it out when the number is in [whatsapp]'s business account"
                ),
            );
            ok = false;
        }
        let rate = n.rate_limit_per_sec.unwrap_or(default.rate_limit_per_sec);
        if !check_number(
            &k("rate_limit_per_sec"),
            rate,
            &(1..=1000),
            " (Meta allows a number 80 a second by default, 1000 after an upgrade)",
            push,
        ) {
            ok = false;
        }
        if ok {
            by_id.insert(
                n.phone_number_id.clone(),
                format!("whatsapp.numbers.{}", super::seg(&name)),
            );
            out.insert(
                name.clone(),
                Number {
                    name,
                    phone_number_id: n.phone_number_id,
                    waba_id: n.waba_id.unwrap_or_else(|| default.waba_id.clone()),
                    rate_limit_per_sec: rate,
                    own_token: n.own_token,
                },
            );
        }
    }
    out.insert(DEFAULT_NUMBER.into(), default);
    out
}

/// Each clinic's `whatsapp_number` names a configured number.
pub(super) fn check_clinics(
    clinics: &BTreeMap<String, Clinic>,
    whatsapp: Option<&WhatsApp>,
    push: &mut impl FnMut(String, String),
) {
    for (key, clinic) in clinics {
        let named = &clinic.whatsapp_number;
        let problem = match whatsapp {
            Some(w) if w.numbers.contains_key(named) => continue,
            Some(w) => format!(
                "there is no WhatsApp number {named:?}: add [whatsapp.numbers.{}] or name one of: {}",
                super::seg(named),
                w.numbers.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            None if named == DEFAULT_NUMBER => continue,
            None => format!(
                "there is no [whatsapp] section, so no number {named:?}: configure [whatsapp] and [whatsapp.numbers.{}]",
                super::seg(named)
            ),
        };
        push(
            format!("clinics.{}.whatsapp_number", super::seg(key)),
            problem,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, DEFAULT_NUMBER};

    /// The shipped example with `extra` tables after `[whatsapp]`'s and `clinic_line` in
    /// `[clinics.mumbai]`; its problems as (key, message).
    fn with(extra: &str, clinic_line: &str) -> Result<Config, Vec<(String, String)>> {
        let text = include_str!("../../reminders.toml")
            .replacen(
                "[clinics.mumbai]\n",
                &format!("[clinics.mumbai]\n{clinic_line}\n"),
                1,
            )
            .replacen("[[rules]]", &format!("{extra}\n[[rules]]"), 1);
        match Config::from_toml(&text, std::path::Path::new("r.toml")) {
            Ok(c) => Ok(c),
            Err(ConfigError::Invalid { problems, .. }) => {
                Err(problems.into_iter().map(|p| (p.key, p.message)).collect())
            }
            Err(e) => panic!("not a list of problems: {e}"),
        }
    }

    #[test]
    fn a_clinic_sends_from_the_number_it_names_with_that_numbers_own_cap() {
        let config = with(
            "[whatsapp.numbers.brand-b]\nphone_number_id = \"300000000000003\"\nrate_limit_per_sec = 20\nown_token = true\n",
            "whatsapp_number = \"brand-b\"",
        )
        .expect("valid");
        let n = config.number_of("mumbai").expect("mumbai's number");
        assert_eq!(n.name, "brand-b");
        assert_eq!(n.phone_number_id, "300000000000003");
        assert_eq!(n.rate_limit_per_sec, 20);
        assert!(n.own_token);
        let wa = config.whatsapp.as_ref().expect("[whatsapp]");
        // The business account is [whatsapp]'s unless the number names its own.
        assert_eq!(n.waba_id, wa.waba_id);
        let default = wa.number(DEFAULT_NUMBER).expect("default number");
        assert_eq!(default.phone_number_id, wa.phone_number_id);
        assert_eq!(default.rate_limit_per_sec, wa.rate_limit_per_sec);
        // The run's slots are sized for every number's cap together (max_in_flight unset).
        assert_eq!(wa.max_in_flight, (wa.rate_limit_per_sec as usize + 20) / 4);
        assert_eq!(
            config.clinics_on("300000000000003"),
            Some(vec!["mumbai"]),
            "a reply to brand-b's number is about mumbai"
        );
        assert_eq!(config.clinics_on("999"), None);
    }

    #[test]
    fn without_a_choice_every_clinic_sends_from_the_default_number() {
        let config = with("", "").expect("valid");
        for clinic in config.clinics.values() {
            assert_eq!(clinic.whatsapp_number, DEFAULT_NUMBER);
        }
        let wa = config.whatsapp.as_ref().expect("[whatsapp]");
        assert_eq!(wa.numbers.len(), 1);
    }

    #[test]
    fn each_bad_number_setting_is_one_problem_at_its_key() {
        let problems = with(
            "[whatsapp.numbers.default]\nphone_number_id = \"5\"\n\
             [whatsapp.numbers.copy]\nphone_number_id = \"106540352242922\"\n\
             [whatsapp.numbers.bad-id]\nphone_number_id = \"12ab\"\nwaba_id = \"x\"\n\
             [whatsapp.numbers.fast]\nphone_number_id = \"400000000000004\"\nrate_limit_per_sec = 5000\n\
             [whatsapp.numbers.\"Brand B\"]\nphone_number_id = \"500000000000005\"\n",
            "whatsapp_number = \"brand-c\"",
        )
        .expect_err("invalid");
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        for key in [
            "whatsapp.numbers.default",
            "whatsapp.numbers.copy.phone_number_id",
            "whatsapp.numbers.bad-id.phone_number_id",
            "whatsapp.numbers.bad-id.waba_id",
            "whatsapp.numbers.fast.rate_limit_per_sec",
            "whatsapp.numbers.\"Brand B\"",
            "clinics.mumbai.whatsapp_number",
        ] {
            assert!(keys.contains(&key), "{key} not in {problems:?}");
        }
        let (_, why) = problems
            .iter()
            .find(|(k, _)| k == "whatsapp.numbers.copy.phone_number_id")
            .expect("copy");
        assert!(
            why.contains("already the phone_number_id of whatsapp"),
            "{why}"
        );
        let (_, why) = problems
            .iter()
            .find(|(k, _)| k == "clinics.mumbai.whatsapp_number")
            .expect("clinic");
        assert!(
            why.contains("\"brand-c\"") && why.contains("[whatsapp.numbers.brand-c]"),
            "{why}"
        );
    }
}
