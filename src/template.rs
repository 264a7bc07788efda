//! Rendering: a configured template plus an appointment becomes the parameters, button
//! payloads and preview text of one message. Pure: no I/O, no clock.
//!
//! Parameters are checked against the Cloud API's rules *before* sending (no line breaks or
//! tabs, no runs of 4+ spaces, not empty, hydrated body ≤ 1024 characters): a violation is a
//! clear error on the outbox row, never a request the API would reject.

use chrono::{DateTime, Locale, Utc};

use crate::config::{Clinic, Field, Template};
use crate::model::Intent;

/// Longest hydrated body the Cloud API accepts.
pub const MAX_BODY: usize = 1024;

/// What a message is rendered from.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The clinic (zone, name, formats).
    pub clinic: &'a Clinic,
    /// The patient's full name.
    pub patient_name: &'a str,
    /// The patient's language.
    pub patient_language: &'a str,
    /// Appointment start.
    pub starts_at: DateTime<Utc>,
    /// Who it is with.
    pub provider: Option<&'a str>,
    /// The outbox row, named in button payloads so a tap finds its message.
    pub outbox_id: i64,
    /// The caregiver's name, for a message to the caregiver.
    pub contact_name: Option<&'a str>,
    /// The preparation note for the appointment's provider (`config::prep_note_for`).
    pub prep_note: Option<&'a crate::config::PrepNote>,
}

/// A quick-reply button as sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Button {
    /// What a tap does.
    pub action: Intent,
    /// `confirm:<outbox id>`.
    pub payload: String,
    /// The label the patient sees.
    pub label: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rendered {
    /// Cloud API template name.
    pub template_name: String,
    /// Language code sent.
    pub language: String,
    /// Body parameters `{{1}}`.. in order.
    pub params: Vec<String>,
    /// Quick-reply buttons in template order.
    pub buttons: Vec<Button>,
    /// The body exactly as the patient will read it.
    pub text: String,
}

impl Rendered {
    /// The message as a person will see it on the phone: body, then the buttons.
    pub fn preview(&self) -> String {
        if self.buttons.is_empty() {
            return self.text.clone();
        }
        let buttons: Vec<String> = self
            .buttons
            .iter()
            .map(|b| format!("[ {} ]", b.label))
            .collect();
        format!("{}\n\n{}", self.text, buttons.join("  "))
    }
}

/// Why a message cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// An SMS text cannot be filled or breaks its provider's rules (a DLT mismatch, a value
    /// over its cap).
    #[error("SMS text {key:?}: {problem}")]
    Sms {
        /// The text's config key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// Neither the patient's nor the clinic's language is configured for the template.
    #[error(
        "template {template:?} has no text in {tried} (configured: {available}); add the language under [templates.{template}.languages]"
    )]
    NoLanguage {
        /// Template config key.
        template: String,
        /// The languages tried, in order.
        tried: String,
        /// The languages it has.
        available: String,
    },
    /// A value breaks the Cloud API's parameter rules.
    #[error("parameter {{{{{index}}}}} ({field}) {problem}: {value:?}")]
    BadParam {
        /// 1-based placeholder number.
        index: usize,
        /// Where the value came from.
        field: String,
        /// The value.
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The hydrated body is too long.
    #[error("the message would be {len} characters; WhatsApp allows {MAX_BODY}")]
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// The language a patient gets: theirs, then its base language (`es` for `es_MX`), then the
/// clinic's default and its base.
pub fn choose_language(template: &Template, patient: &str, clinic_default: &str) -> Option<String> {
    let base = |l: &str| l.split('_').next().unwrap_or(l).to_string();
    [
        patient.to_string(),
        base(patient),
        clinic_default.to_string(),
        base(clinic_default),
    ]
    .into_iter()
    .find(|l| template.languages.contains_key(l))
}

/// Renders `template` (config key `key`) for one appointment.
pub fn render(key: &str, template: &Template, input: &Input<'_>) -> Result<Rendered, RenderError> {
    let clinic = input.clinic;
    let language = choose_language(template, input.patient_language, &clinic.default_language)
        .ok_or_else(|| RenderError::NoLanguage {
            template: key.to_string(),
            tried: format!("{} or {}", input.patient_language, clinic.default_language),
            available: template
                .languages
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let text = &template.languages[&language];
    let locale = locale_for(&language, &clinic.phone_region.to_string());
    let local = input.starts_at.with_timezone(&clinic.time_zone);

    let mut params = Vec::with_capacity(template.params.len());
    for (i, field) in template.params.iter().enumerate() {
        let value = match field {
            Field::PatientFirstName => first_name(input.patient_name).to_string(),
            Field::PatientName => input.patient_name.trim().to_string(),
            Field::AppointmentDate => local
                .format_localized(&clinic.date_format, locale)
                .to_string(),
            // Not localised: several locales (es_US among them) carry empty AM/PM markers,
            // and clock times read the same in every language we serve.
            Field::AppointmentTime => local.format(&clinic.time_format).to_string(),
            Field::AppointmentProvider => input.provider.unwrap_or_default().trim().to_string(),
            Field::ClinicName => clinic.display_name.clone(),
            Field::ContactName => input.contact_name.unwrap_or_default().trim().to_string(),
            Field::PrepNotes => prep_text(input, &language),
        };
        if let Err(problem) = check_param(&value) {
            return Err(RenderError::BadParam {
                index: i + 1,
                field: field_name(*field).to_string(),
                value,
                problem,
            });
        }
        params.push(value);
    }
    let body = hydrate(&text.body, &params);
    let len = body.chars().count();
    if len > MAX_BODY {
        return Err(RenderError::TooLong { len });
    }
    let buttons = template
        .buttons
        .iter()
        .enumerate()
        .map(|(i, action)| Button {
            action: *action,
            // A feedback template's five buttons are the scores 1 to 5, in order.
            payload: if *action == crate::model::Intent::Feedback {
                format!("{}:{}:{}", crate::replies::SCORE, i + 1, input.outbox_id)
            } else {
                format!("{}:{}", action.as_str(), input.outbox_id)
            },
            label: text
                .buttons
                .get(i)
                .cloned()
                .unwrap_or_else(|| action.as_str().to_string()),
        })
        .collect();
    Ok(Rendered {
        template_name: template.name.clone(),
        language,
        params,
        buttons,
        text: body,
    })
}

/// An SMS as it will be sent: its language, the text, and for a DLT gateway the template id
/// and the variables in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedSms {
    /// The language chosen.
    pub language: String,
    /// The whole text.
    pub text: String,
    /// For a DLT provider, what is sent instead of free text.
    pub dlt: Option<crate::sms::DltFilled>,
}

/// Renders SMS text `key` for one recipient. With `dlt_cap` (a DLT provider) the text must
/// match its registered template and carry a template id, and each variable is trimmed to
/// the cap (names) or refused (dates, times, numbers); without, placeholders are filled as
/// they are.
pub fn render_sms(
    key: &str,
    sms: &crate::config::SmsText,
    input: &Input<'_>,
    dlt_cap: Option<usize>,
) -> Result<RenderedSms, RenderError> {
    let clinic = input.clinic;
    let base = |l: &str| l.split('_').next().unwrap_or(l).to_string();
    let language = [
        input.patient_language.to_string(),
        base(input.patient_language),
        clinic.default_language.clone(),
        base(&clinic.default_language),
    ]
    .into_iter()
    .find(|l| sms.languages.contains_key(l))
    .ok_or_else(|| RenderError::NoLanguage {
        template: key.to_string(),
        tried: format!("{} or {}", input.patient_language, clinic.default_language),
        available: sms.languages.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    let text = &sms.languages[&language];
    let locale = locale_for(&language, &clinic.phone_region.to_string());
    let local = input.starts_at.with_timezone(&clinic.time_zone);
    let values = |name: &str| -> Option<String> {
        Some(match name {
            "first_name" => first_name(input.patient_name).to_string(),
            "patient_name" => input.patient_name.trim().to_string(),
            "contact_name" => input.contact_name?.trim().to_string(),
            "clinic" => clinic.display_name.clone(),
            "date" => local
                .format_localized(&clinic.date_format, locale)
                .to_string(),
            "time" => local.format(&clinic.time_format).to_string(),
            "provider" => input.provider?.trim().to_string(),
            "clinic_phone" => clinic.phone.clone()?,
            "prep_notes" => prep_text(input, &language),
            _ => return None,
        })
    };
    let problem = |problem: String| RenderError::Sms {
        key: format!("{key}.{language}"),
        problem,
    };
    let dlt = match dlt_cap {
        None => None,
        Some(_) => {
            let registered = text
                .registered
                .as_deref()
                .ok_or_else(|| problem("has no registered DLT template".into()))?;
            crate::sms::dlt::matches(&text.text, registered).map_err(|e| problem(e.to_string()))?;
            Some(
                text.dlt_template_id
                    .clone()
                    .ok_or_else(|| problem("has no dlt_template_id".into()))?,
            )
        }
    };
    let filled = crate::sms::dlt::fill(&text.text, &values, dlt_cap.unwrap_or(usize::MAX))
        .map_err(|e| problem(e.to_string()))?;
    Ok(RenderedSms {
        language,
        text: filled.text,
        dlt: dlt.map(|template_id| crate::sms::DltFilled {
            template_id,
            variables: filled.variables,
        }),
    })
}

/// The appointment's preparation note in `language` (else the clinic's), or a dash: WhatsApp
/// rejects an empty parameter.
fn prep_text(input: &Input<'_>, language: &str) -> String {
    input
        .prep_note
        .and_then(|n| n.text_for(language, &input.clinic.default_language))
        .unwrap_or(crate::config::NO_PREP_NOTE)
        .to_string()
}

/// The Cloud API's rules for one text parameter.
pub fn check_param(value: &str) -> Result<(), &'static str> {
    if value.trim().is_empty() {
        return Err("is empty, which WhatsApp rejects");
    }
    if value.contains(['\n', '\r', '\t']) {
        return Err("contains a line break or tab, which WhatsApp rejects");
    }
    if value.contains("    ") {
        return Err("contains 4 or more spaces in a row, which WhatsApp rejects");
    }
    Ok(())
}

/// Substitutes `{{n}}` placeholders.
pub fn hydrate(body: &str, params: &[String]) -> String {
    let mut out = body.to_string();
    // Highest first, so {{1}} never eats the start of {{10}}.
    for (i, p) in params.iter().enumerate().rev() {
        out = out.replace(&format!("{{{{{}}}}}", i + 1), p);
    }
    out
}

/// The first word of a name, as patients are greeted.
pub fn first_name(full: &str) -> &str {
    full.split_whitespace().next().unwrap_or(full)
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::PatientFirstName => "patient.first_name",
        Field::PatientName => "patient.name",
        Field::AppointmentDate => "appointment.date",
        Field::AppointmentTime => "appointment.time",
        Field::AppointmentProvider => "appointment.provider",
        Field::ClinicName => "clinic.name",
        Field::ContactName => "contact.name",
        Field::PrepNotes => "appointment.prep_notes",
    }
}

/// The locale for day and month names: the language in the clinic's country if the locale
/// data has it (`hi_IN`, `es_US`), else the language's main locale.
pub fn locale_for(language: &str, region: &str) -> Locale {
    let base = language.split('_').next().unwrap_or(language);
    let candidates = [
        language.to_string(),
        format!("{base}_{region}"),
        match base {
            "en" => "en_US",
            "es" => "es_ES",
            "pt" => "pt_BR",
            "fr" => "fr_FR",
            "zh" => "zh_CN",
            "ar" => "ar_SA",
            other => other,
        }
        .to_string(),
        format!("{base}_IN"),
    ];
    candidates
        .iter()
        .find_map(|c| Locale::try_from(c.as_str()).ok())
        .unwrap_or(Locale::POSIX)
}

/// The acknowledgement text for an applied reply, in the patient's language (else the
/// clinic's, else English), with `{first_name}`, `{date}`, `{time}` and `{clinic}` filled in.
pub fn ack_text(
    acks: &std::collections::BTreeMap<String, crate::config::Acks>,
    intent: crate::replies::Intent,
    clinic: &Clinic,
    patient_name: &str,
    language: &str,
    starts_at: DateTime<Utc>,
) -> Option<String> {
    // A clinic with `acks = "off"` saves the billed service message.
    if !clinic.acks {
        return None;
    }
    let base = |l: &str| l.split('_').next().unwrap_or(l).to_string();
    let lang = [
        language.to_string(),
        base(language),
        clinic.default_language.clone(),
        "en".to_string(),
    ]
    .into_iter()
    .find(|l| acks.contains_key(l))?;
    let text = acks[&lang].for_intent(intent)?;
    let local = starts_at.with_timezone(&clinic.time_zone);
    let locale = locale_for(&lang, &clinic.phone_region.to_string());
    Some(
        text.replace("{first_name}", first_name(patient_name))
            .replace(
                "{date}",
                &local
                    .format_localized(&clinic.date_format, locale)
                    .to_string(),
            )
            .replace("{time}", &local.format(&clinic.time_format).to_string())
            .replace("{clinic}", &clinic.display_name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config() -> Config {
        Config::example().expect("the shipped reminders.toml is valid")
    }

    fn input<'a>(
        c: &'a Config,
        clinic: &str,
        name: &'a str,
        lang: &'a str,
        starts: &str,
    ) -> Input<'a> {
        Input {
            clinic: c.clinic(clinic).expect("clinic"),
            patient_name: name,
            patient_language: lang,
            starts_at: crate::time::parse_instant(starts).expect("instant"),
            provider: Some("Dr. Mehta"),
            outbox_id: 42,
            contact_name: None,
            prep_note: None,
        }
    }

    #[test]
    fn english_reminder_in_mumbai() {
        let c = config();
        let r = render(
            "reminder",
            &c.templates["reminder"],
            &input(&c, "mumbai", "Aarav Sharma", "en", "2026-11-26T04:30:00Z"),
        )
        .expect("render");
        assert_eq!(r.template_name, "appointment_reminder");
        assert_eq!(r.language, "en");
        assert_eq!(
            r.params,
            [
                "Aarav",
                "Sunrise Family Clinic, Andheri",
                "Thursday 26 November",
                "10:00"
            ]
        );
        assert_eq!(
            r.text,
            "Hello Aarav, this is a reminder of your appointment at Sunrise Family Clinic, Andheri on Thursday 26 November at 10:00. Please tap a button to let us know."
        );
        let payloads: Vec<&str> = r.buttons.iter().map(|b| b.payload.as_str()).collect();
        assert_eq!(payloads, ["confirm:42", "cancel:42", "reschedule:42"]);
        assert!(
            r.preview()
                .ends_with("[ Confirm ]  [ Cancel ]  [ Reschedule ]")
        );
    }

    #[test]
    fn hindi_and_marathi_dates_are_localised() {
        let c = config();
        let r = render(
            "reminder",
            &c.templates["reminder"],
            &input(&c, "mumbai", "Rohan Gupta", "hi", "2026-11-26T04:30:00Z"),
        )
        .expect("render");
        assert_eq!(r.language, "hi");
        assert_eq!(r.params[2], "गुरुवार 26 नवंबर");
        assert!(r.text.starts_with("नमस्ते Rohan,"), "{}", r.text);
        let r = render(
            "reminder",
            &c.templates["reminder"],
            &input(&c, "mumbai", "Priya Patil", "mr", "2026-11-26T04:30:00Z"),
        )
        .expect("render");
        assert_eq!(r.params[2], "गुरुवार 26 नोव्हेंबर");
    }

    #[test]
    fn new_york_spanish_and_twelve_hour_time() {
        let c = config();
        let r = render(
            "reminder",
            &c.templates["reminder"],
            &input(&c, "nyc", "Maria Gonzalez", "es_MX", "2026-11-26T13:30:00Z"),
        )
        .expect("render");
        assert_eq!(r.language, "es", "es_MX falls back to es");
        assert_eq!(r.params[2], "jueves, noviembre 26");
        assert_eq!(r.params[3], "8:30 AM");
    }

    #[test]
    fn the_providers_preparation_note_is_a_parameter_in_the_patients_language() {
        let c = config();
        let notes = vec![crate::config::PrepNote {
            provider: "Dr. Mehta".into(),
            text: std::collections::BTreeMap::from([
                ("en".to_string(), "Fast for 8 hours".to_string()),
                ("hi".to_string(), "8 घंटे उपवास रखें".to_string()),
            ]),
        }];
        let mut t = c.templates["reminder"].clone();
        t.params.push(Field::PrepNotes);
        t.languages
            .values_mut()
            .for_each(|l| l.body.push_str(" {{5}}"));
        let mut i = input(&c, "mumbai", "Aarav", "hi", "2026-11-26T04:30:00Z");
        i.prep_note = crate::config::prep_note_for(&notes, i.provider);
        let r = render("reminder", &t, &i).expect("render");
        assert_eq!(r.params[4], "8 घंटे उपवास रखें");
        assert!(r.text.ends_with("8 घंटे उपवास रखें"), "{}", r.text);
        // A language without the note: the clinic's default language's.
        let mut i = input(&c, "mumbai", "Aarav", "mr", "2026-11-26T04:30:00Z");
        i.prep_note = crate::config::prep_note_for(&notes, i.provider);
        assert_eq!(
            render("reminder", &t, &i).expect("render").params[4],
            "Fast for 8 hours"
        );
        // Another provider's appointment: no note, a dash (WhatsApp refuses an empty one).
        let mut i = input(&c, "mumbai", "Aarav", "en", "2026-11-26T04:30:00Z");
        i.provider = Some("Dr. Rao");
        i.prep_note = crate::config::prep_note_for(&notes, i.provider);
        let r = render("reminder", &t, &i).expect("render");
        assert_eq!(r.params[4], "-");
        assert!(!r.text.contains("Fast"), "{}", r.text);
    }

    #[test]
    fn acknowledgements_are_not_written_for_a_clinic_that_turned_them_off() {
        let mut c = config();
        let start = crate::time::parse_instant("2026-11-26T04:30:00Z").expect("instant");
        let clinic = c.clinics.get_mut("mumbai").expect("clinic");
        assert!(
            ack_text(
                &c.replies.acks,
                Intent::Confirm,
                clinic,
                "Aarav",
                "en",
                start
            )
            .is_some(),
            "on by default"
        );
        clinic.acks = false;
        assert_eq!(
            ack_text(
                &c.replies.acks,
                Intent::Confirm,
                clinic,
                "Aarav",
                "en",
                start
            ),
            None
        );
    }

    #[test]
    fn unknown_language_falls_back_to_the_clinic_default() {
        let c = config();
        let r = render(
            "reminder",
            &c.templates["reminder"],
            &input(&c, "mumbai", "Kavya", "ta", "2026-11-26T04:30:00Z"),
        )
        .expect("render");
        assert_eq!(r.language, "en");
    }

    #[test]
    fn parameters_breaking_cloud_api_rules_are_errors_not_sends() {
        assert!(check_param("Dr.    Mehta").is_err());
        assert!(check_param("a\tb").is_err());
        assert!(check_param("line\nbreak").is_err());
        assert!(check_param(" ").is_err());
        assert!(
            check_param("Dr.   Mehta").is_ok(),
            "three spaces are allowed"
        );
        let c = config();
        let mut t = c.templates["reminder"].clone();
        t.params[0] = Field::AppointmentProvider;
        let mut i = input(&c, "mumbai", "Aarav", "en", "2026-11-26T04:30:00Z");
        i.provider = None;
        let err = render("reminder", &t, &i).expect_err("empty provider");
        assert!(
            err.to_string()
                .contains("parameter {{1}} (appointment.provider) is empty"),
            "{err}"
        );
        let long = "x".repeat(1100);
        i.provider = Some(&long);
        assert!(matches!(
            render("reminder", &t, &i),
            Err(RenderError::TooLong { .. })
        ));
    }

    #[test]
    fn hydrate_handles_double_digit_placeholders() {
        let params: Vec<String> = (1..=10).map(|n| format!("p{n}")).collect();
        assert_eq!(hydrate("{{1}}-{{10}}", &params), "p1-p10");
    }
}
