//! A row's optional who-and-how columns: `channel`, `remind` and the caregiver's `contact_*`.
//! A column the file lacks says nothing (the stored value stays); an empty cell clears it.

use super::super::{Audience, Reach, Said};
use super::row::example_number;
use super::{Columns, Field, RawRow};
use crate::config::ImportFormat;
use crate::model::{ChannelChoice, RemindWhom};
use crate::phone::{E164, Region};

/// Longest caregiver's name accepted, as for the patient's.
const MAX_NAME: usize = 200;

/// Longest relation accepted: a word or two ("mother", "son", "neighbour").
const MAX_RELATION: usize = 40;

/// What reads a row's reach: its cells and where the errors go.
pub(super) struct ReachReader<'a> {
    pub(super) raw: &'a RawRow,
    pub(super) columns: &'a Columns,
    pub(super) format: &'a ImportFormat,
    /// The row's clinic's phone region (`None`: the clinic is unknown, already an error).
    pub(super) region: Option<Region>,
    pub(super) audience: Audience,
    pub(super) phones: &'a super::PhoneCache,
}

impl ReachReader<'_> {
    /// The row's reach; `None` when a cell has a problem (each one pushed through `err`).
    pub(super) fn read(&self, err: &mut impl FnMut(Field, &str, String)) -> Option<Reach> {
        let mut ok = true;
        let channel = self.cell(Field::Channel).map_or(Said::Nothing, |v| {
            channel(v).unwrap_or_else(|| {
                ok = false;
                err(
                    Field::Channel,
                    v,
                    "is not a way reminderd sends reminders; write whatsapp, sms (or text) or none (or no messages), or leave it empty for WhatsApp".into(),
                );
                Said::Cleared
            })
        });
        let remind = self.cell(Field::Remind).map(|v| {
            remind(v).unwrap_or_else(|| {
                ok = false;
                err(
                    Field::Remind,
                    v,
                    "is not someone reminderd can remind; write patient, contact (or caregiver) or both, or leave it empty for patient".into(),
                );
                RemindWhom::Patient
            })
        });
        let contact_name = self.text(Field::ContactName, MAX_NAME, &mut ok, err);
        let contact_relation = self.text(Field::ContactRelation, MAX_RELATION, &mut ok, err);
        let contact_phone = self.cell(Field::ContactPhone).map_or(Said::Nothing, |v| {
            if v.is_empty() {
                return Said::Cleared;
            }
            let Some(region) = self.region else {
                return Said::Cleared;
            };
            match self.phones.get(region, v) {
                Some(Ok(p)) => Said::Value(p),
                Some(Err(e)) => {
                    ok = false;
                    err(
                        Field::ContactPhone,
                        v,
                        format!(
                            "{}; write the caregiver's full mobile number, with the country code if it is not {} number (e.g. {})",
                            crate::phone::explain(v, region, &e),
                            crate::phone::region_article(region),
                            example_number(region)
                        ),
                    );
                    Said::Cleared
                }
                None => Said::Cleared,
            }
        });
        let needs_contact = matches!(remind, Some(RemindWhom::Contact | RemindWhom::Both));
        // A number written but unusable already has its own error: one is enough.
        let written = self
            .cell(Field::ContactPhone)
            .is_some_and(|v| !v.is_empty());
        if needs_contact && contact_phone.value().is_none() && !written {
            ok = false;
            let (phone, whom) = (
                self.columns.name(Field::ContactPhone, self.format),
                self.columns.name(Field::Remind, self.format),
            );
            let message = if self.columns.has(Field::ContactPhone) {
                format!(
                    "says to remind the contact, but {phone} is empty; add the caregiver's mobile number, or set {whom} to patient"
                )
            } else {
                format!(
                    "says to remind the contact, but the file has no {phone} column; add one with the caregiver's mobile number{}, or set {whom} to patient",
                    match self.audience {
                        Audience::Cli => " (or map it under [import.columns] in reminders.toml)",
                        Audience::Desk => "",
                    }
                )
            };
            err(
                Field::Remind,
                self.columns.get(Field::Remind, self.raw),
                message,
            );
        }
        ok.then_some(Reach {
            channel,
            remind,
            contact_name,
            contact_phone,
            contact_relation,
        })
    }

    /// The cell, trimmed; `None` when the file has no such column.
    fn cell(&self, f: Field) -> Option<&str> {
        self.columns.has(f).then(|| self.columns.get(f, self.raw))
    }

    /// A free-text cell, cleared when empty; too long or a control character is an error.
    fn text(
        &self,
        f: Field,
        max: usize,
        ok: &mut bool,
        err: &mut impl FnMut(Field, &str, String),
    ) -> Said<String> {
        let Some(v) = self.cell(f) else {
            return Said::Nothing;
        };
        if v.is_empty() {
            return Said::Cleared;
        }
        if v.chars().count() > max {
            *ok = false;
            let hint = if f == Field::ContactRelation {
                "say who the contact is in a word or two, e.g. mother, son or neighbour"
            } else {
                "is this the right column?"
            };
            err(f, v, format!("is longer than {max} characters; {hint}"));
            return Said::Cleared;
        }
        if v.chars().any(char::is_control) {
            *ok = false;
            err(
                f,
                v,
                "contains a line break or control character; remove it".into(),
            );
            return Said::Cleared;
        }
        Said::Value(v.to_string())
    }
}

/// The first of who-and-how a row says differently from an earlier row of the same patient:
/// (field, this row's value, the earlier row's), a number masked as every report masks one.
pub(super) fn differs(mine: &Reach, theirs: &Reach) -> Option<(Field, String, String)> {
    fn text<T>(v: &Said<T>, show: impl Fn(&T) -> String) -> String {
        v.value().map_or_else(String::new, show)
    }
    if mine.channel != theirs.channel {
        let show = |c: &ChannelChoice| c.as_str().to_string();
        return Some((
            Field::Channel,
            text(&mine.channel, show),
            text(&theirs.channel, show),
        ));
    }
    if mine.remind != theirs.remind {
        let show = |r: Option<RemindWhom>| r.map_or_else(String::new, |r| r.as_str().to_string());
        return Some((Field::Remind, show(mine.remind), show(theirs.remind)));
    }
    if mine.contact_phone != theirs.contact_phone {
        let show = |p: &E164| crate::phone::mask(p.as_str());
        return Some((
            Field::ContactPhone,
            text(&mine.contact_phone, show),
            text(&theirs.contact_phone, show),
        ));
    }
    for (field, a, b) in [
        (Field::ContactName, &mine.contact_name, &theirs.contact_name),
        (
            Field::ContactRelation,
            &mine.contact_relation,
            &theirs.contact_relation,
        ),
    ] {
        if a != b {
            return Some((field, text(a, String::clone), text(b, String::clone)));
        }
    }
    None
}

/// The words staff write in a row's channel cell, any case, spaces, hyphens or underscores
/// between words (an empty cell clears the channel); `None` for anything else.
fn channel(v: &str) -> Option<Said<ChannelChoice>> {
    Some(match words(v).as_str() {
        "" => Said::Cleared,
        "whatsapp" | "whats app" => Said::Value(ChannelChoice::WhatsApp),
        "sms" | "text" => Said::Value(ChannelChoice::Sms),
        "none" | "no messages" => Said::Value(ChannelChoice::None),
        _ => return None,
    })
}

/// Whom a row's remind cell names; an empty cell is the patient.
fn remind(v: &str) -> Option<RemindWhom> {
    Some(match words(v).as_str() {
        "" | "patient" => RemindWhom::Patient,
        "contact" | "caregiver" => RemindWhom::Contact,
        "both" => RemindWhom::Both,
        _ => return None,
    })
}

/// Lower case, words separated by one space.
fn words(v: &str) -> String {
    v.split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::super::{ParseOptions, ParsedFile};
    use super::*;
    use crate::config::Config;

    const HEADER: &str = "appointment_id,patient_id,patient_name,phone,date,time,clinic";
    const ROW: &str = "A1,P1,Aarav Sharma,98200 12345,2026-11-26,09:00,mumbai";

    fn config() -> Config {
        let text = r#"
[database]
path = "x.db"
[clinics.mumbai]
display_name = "Mumbai"
time_zone = "Asia/Kolkata"
phone_region = "IN"
[import.formats.suite.columns]
channel = "Send by"
contact_phone = "Guardian Mobile"
remind = "Remind whom"
"#;
        Config::from_toml(text, Path::new("r.toml")).expect("valid config")
    }

    /// A file of the default columns plus `extra` headers, one row (and patient) per `cells`
    /// (the extra cells of that row).
    fn file(extra: &str, cells: &[&str]) -> String {
        let rows = cells.iter().enumerate().map(|(i, c)| {
            let row = ROW.replacen("A1,P1", &format!("A{i},P{i}"), 1);
            format!("{row},{c}\n")
        });
        format!("{HEADER},{extra}\n{}", rows.collect::<String>())
    }

    fn read_as(text: &str, opts: &ParseOptions<'_>) -> ParsedFile {
        super::super::super::parse(text.as_bytes(), &config(), opts).expect("options are valid")
    }

    fn read(text: &str) -> ParsedFile {
        read_as(text, &ParseOptions::default())
    }

    /// (row, column, value) of every error.
    fn located(p: &ParsedFile) -> Vec<(usize, &str, &str)> {
        p.errors
            .iter()
            .map(|e| (e.row, e.column.as_str(), e.value.as_str()))
            .collect()
    }

    #[test]
    fn channel_and_remind_accept_the_words_staff_write_and_nothing_else() {
        for (written, read) in [
            ("", Some(Said::Cleared)),
            ("whatsapp", Some(Said::Value(ChannelChoice::WhatsApp))),
            ("WhatsApp", Some(Said::Value(ChannelChoice::WhatsApp))),
            ("Whats App", Some(Said::Value(ChannelChoice::WhatsApp))),
            ("SMS", Some(Said::Value(ChannelChoice::Sms))),
            ("Text", Some(Said::Value(ChannelChoice::Sms))),
            ("none", Some(Said::Value(ChannelChoice::None))),
            ("No messages", Some(Said::Value(ChannelChoice::None))),
            ("no_messages", Some(Said::Value(ChannelChoice::None))),
            ("email", None),
            ("sms please", None),
            ("w", None),
        ] {
            assert_eq!(channel(written), read, "{written:?}");
        }
        for (written, read) in [
            ("", Some(RemindWhom::Patient)),
            ("Patient", Some(RemindWhom::Patient)),
            ("contact", Some(RemindWhom::Contact)),
            ("Caregiver", Some(RemindWhom::Contact)),
            ("BOTH", Some(RemindWhom::Both)),
            ("mother", None),
            ("all", None),
        ] {
            assert_eq!(remind(written), read, "{written:?}");
        }
    }

    #[test]
    fn the_columns_are_read_and_a_file_without_them_says_nothing() {
        let p = read(&file(
            "channel,remind,contact_name,contact_phone,contact_relation",
            &[
                "SMS,caregiver,Sunita Sharma,98200 54321,Mother",
                // The caregiver's number may be the patient's own (a shared family phone).
                "No messages,both,,98200 12345,",
                ",,,,",
            ],
        ));
        assert_eq!(located(&p), vec![]);
        let reach: Vec<&Reach> = p.rows.iter().map(|r| &r.reach).collect();
        let number = |r: &Reach| r.contact_phone.value().map(ToString::to_string);
        assert_eq!(reach[0].channel, Said::Value(ChannelChoice::Sms));
        assert_eq!(reach[0].remind, Some(RemindWhom::Contact));
        assert_eq!(reach[0].contact_name, Said::Value("Sunita Sharma".into()));
        assert_eq!(number(reach[0]), Some("+919820054321".into()));
        assert_eq!(reach[0].contact_relation, Said::Value("Mother".into()));
        assert_eq!(reach[1].channel, Said::Value(ChannelChoice::None));
        assert_eq!(reach[1].remind, Some(RemindWhom::Both));
        assert_eq!(number(reach[1]), Some("+919820012345".into()));
        // Empty cells say "clear it": no channel, the patient reminded, no caregiver.
        assert_eq!(
            reach[2],
            &Reach {
                channel: Said::Cleared,
                remind: Some(RemindWhom::Patient),
                contact_name: Said::Cleared,
                contact_phone: Said::Cleared,
                contact_relation: Said::Cleared,
            }
        );

        // Without the columns a row says nothing about them: what is stored stays.
        let old = read(&format!("{HEADER}\n{ROW}\n"));
        assert_eq!(located(&old), vec![]);
        assert_eq!(old.rows[0].reach, Reach::default());
    }

    #[test]
    fn a_bad_channel_or_remind_is_an_error_naming_what_to_write() {
        let p = read(&file("channel,remind", &["email,patient", "sms,mother"]));
        assert_eq!(
            located(&p),
            vec![(2, "channel", "email"), (3, "remind", "mother")]
        );
        assert_eq!(
            p.errors[0].message,
            "is not a way reminderd sends reminders; write whatsapp, sms (or text) or none (or no messages), or leave it empty for WhatsApp"
        );
        assert_eq!(p.errors[0].patient.as_deref(), Some("Aarav Sharma"));
        assert_eq!(
            p.errors[1].message,
            "is not someone reminderd can remind; write patient, contact (or caregiver) or both, or leave it empty for patient"
        );
        assert!(p.rows.is_empty());
    }

    #[test]
    fn a_bad_contact_phone_is_an_error_in_the_clinics_words() {
        let p = read(&file("contact_phone", &["12345"]));
        assert_eq!(located(&p), vec![(2, "contact_phone", "12345")]);
        let m = &p.errors[0].message;
        assert!(m.contains("it has 5 digits"), "{m}");
        assert!(
            m.ends_with("write the caregiver's full mobile number, with the country code if it is not an Indian number (e.g. 98200 12345 or +91 98200 12345)"),
            "{m}"
        );
    }

    #[test]
    fn reminding_the_contact_needs_the_contacts_number() {
        let p = read(&file("remind,contact_phone", &["contact,", "both,  "]));
        assert_eq!(
            located(&p),
            vec![(2, "remind", "contact"), (3, "remind", "both")]
        );
        assert_eq!(
            p.errors[0].message,
            "says to remind the contact, but contact_phone is empty; add the caregiver's mobile number, or set remind to patient"
        );

        // Without the column at all, the administrator may map it; the desk is told plainly.
        let text = file("remind", &["Caregiver"]);
        let cli = read(&text);
        assert_eq!(located(&cli), vec![(2, "remind", "Caregiver")]);
        assert_eq!(
            cli.errors[0].message,
            "says to remind the contact, but the file has no contact_phone column; add one with the caregiver's mobile number (or map it under [import.columns] in reminders.toml), or set remind to patient"
        );
        let desk = read_as(
            &text,
            &ParseOptions {
                audience: Audience::Desk,
                ..ParseOptions::default()
            },
        );
        assert!(!desk.errors[0].message.contains("reminders.toml"));

        // A bad number is one error, not two.
        let bad = read(&file("remind,contact_phone", &["contact,12345"]));
        assert_eq!(located(&bad), vec![(2, "contact_phone", "12345")]);
    }

    #[test]
    fn names_and_relations_are_checked_and_shown_escaped() {
        let long = "a very close family friend from next door";
        assert_eq!(long.chars().count(), 41);
        let p = read(&file(
            "contact_name,contact_relation",
            &[&format!("Sunita,{long}"), "\"Sun\u{1b}[31mita\",mother"],
        ));
        assert_eq!(
            located(&p),
            vec![
                (
                    2,
                    "contact_relation",
                    "a very close family friend from next doo…"
                ),
                (3, "contact_name", "Sun\\u{1b}[31mita"),
            ]
        );
        assert_eq!(
            p.errors[0].message,
            "is longer than 40 characters; say who the contact is in a word or two, e.g. mother, son or neighbour"
        );
        let ok = read(&file("contact_relation", &[&long[..40]]));
        assert_eq!(located(&ok), vec![]);
    }

    #[test]
    fn a_format_maps_the_columns_and_errors_name_its_headers() {
        let text = "appointment_id,patient_id,patient_name,phone,date,time,clinic,Send by,Remind whom,Guardian Mobile\n\
                    A1,P1,Aarav Sharma,98200 12345,2026-11-26,09:00,mumbai,Text,caregiver,\n";
        let p = read_as(
            text,
            &ParseOptions {
                format: Some("suite"),
                ..ParseOptions::default()
            },
        );
        assert_eq!(located(&p), vec![(2, "Remind whom", "caregiver")]);
        assert_eq!(
            p.errors[0].message,
            "says to remind the contact, but Guardian Mobile is empty; add the caregiver's mobile number, or set Remind whom to patient"
        );
        let fixed = read_as(
            &text.replace("caregiver,", "caregiver,98200 54321"),
            &ParseOptions {
                format: Some("suite"),
                ..ParseOptions::default()
            },
        );
        assert_eq!(located(&fixed), vec![]);
        assert_eq!(fixed.rows[0].reach.channel, Said::Value(ChannelChoice::Sms));
        assert_eq!(fixed.rows[0].reach.remind, Some(RemindWhom::Contact));
    }

    #[test]
    fn one_patient_says_the_same_on_every_row() {
        let text = format!(
            "{HEADER},channel,contact_phone\n{ROW},sms,98200 54321\n{},whatsapp,98200 54321\n{},sms,98200 99999\n",
            ROW.replace("A1", "A2"),
            ROW.replace("A1", "A3")
        );
        let p = read(&text);
        assert_eq!(
            located(&p),
            vec![
                (3, "channel", "whatsapp"),
                (4, "contact_phone", "+91******9999")
            ]
        );
        assert_eq!(
            p.errors[0].message,
            "patient \"P1\" has sms on row 2; one patient must have the same channel, contact and remind on every row"
        );
        assert!(
            p.errors[1].message.contains("has +91******4321 on row 2"),
            "{}",
            p.errors[1].message
        );
    }
}
