//! `reminders.toml`: the typed configuration and its validation.
//!
//! Loading is two steps: serde parses the TOML (unknown keys are errors, so a typo never
//! silently disables a setting), then [`Config::validate`] checks what serde cannot (time
//! zones, regions, references between sections) and reports *every* problem, each naming the
//! key it concerns.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use crate::phone::Region;

/// Where the config file is looked for when neither `--config` nor `$REMINDERD_CONFIG` is set.
pub const DEFAULT_CONFIG_PATH: &str = "reminders.toml";

/// The whole configuration, as validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path of the file it was read from; relative paths inside it resolve against its folder.
    pub source: PathBuf,
    /// The SQLite database file.
    pub database_path: PathBuf,
    /// Clinics by key, in key order.
    pub clinics: BTreeMap<String, Clinic>,
    /// The default CSV import format.
    pub import: ImportFormat,
    /// Other named CSV export formats (`[import.formats.NAME]`).
    pub import_formats: BTreeMap<String, ImportFormat>,
}

/// One clinic: where it is and how its numbers and times are read.
#[derive(Debug, Clone)]
pub struct Clinic {
    /// The short key used in CSV files and on the command line (`mumbai`).
    pub key: String,
    /// The name patients see.
    pub display_name: String,
    /// The IANA zone all local times of this clinic are in.
    pub time_zone: Tz,
    /// The region used to read phone numbers written without a country code.
    pub phone_region: Region,
    /// Language used when a patient's own language is not given.
    pub default_language: String,
    /// Appointment length when the CSV does not give one.
    pub default_duration_min: u32,
    /// Name of the import format this clinic's exports use (`None`: the default).
    pub import_format: Option<String>,
}

/// How a CSV export names its columns and writes dates and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFormat {
    /// Header name in the file for each field.
    pub columns: ColumnMap,
    /// `strftime` patterns tried in order for the date column.
    pub date_formats: Vec<String>,
    /// `strftime` patterns tried in order for the time column.
    pub time_formats: Vec<String>,
}

/// The header name used in the file for each field reminderd reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct ColumnMap {
    pub appointment_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub phone: String,
    pub language: String,
    pub date: String,
    pub time: String,
    pub duration_min: String,
    pub provider: String,
    pub clinic: String,
    pub status: String,
}

impl Default for ColumnMap {
    fn default() -> Self {
        Self {
            appointment_id: "appointment_id".into(),
            patient_id: "patient_id".into(),
            patient_name: "patient_name".into(),
            phone: "phone".into(),
            language: "language".into(),
            date: "date".into(),
            time: "time".into(),
            duration_min: "duration_min".into(),
            provider: "provider".into(),
            clinic: "clinic".into(),
            status: "status".into(),
        }
    }
}

impl ColumnMap {
    /// Every (field name, header name) pair, in the order of the default CSV layout.
    pub fn pairs(&self) -> [(&'static str, &str); 11] {
        [
            ("appointment_id", &self.appointment_id),
            ("patient_id", &self.patient_id),
            ("patient_name", &self.patient_name),
            ("phone", &self.phone),
            ("language", &self.language),
            ("date", &self.date),
            ("time", &self.time),
            ("duration_min", &self.duration_min),
            ("provider", &self.provider),
            ("clinic", &self.clinic),
            ("status", &self.status),
        ]
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the line and key.
        message: String,
    },
    /// The file parsed, but some values are wrong.
    #[error("{path}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, each naming its key.
        problems: Vec<Problem>,
    },
}

/// One validation problem: the dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key path, e.g. `clinics.mumbai.time_zone`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

// ---- raw serde shapes -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: RawDatabase,
    #[serde(default)]
    clinics: BTreeMap<String, RawClinic>,
    #[serde(default)]
    import: RawImport,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClinic {
    display_name: String,
    time_zone: String,
    phone_region: String,
    #[serde(default = "default_language")]
    default_language: String,
    #[serde(default = "default_duration")]
    default_duration_min: u32,
    import_format: Option<String>,
}

fn default_language() -> String {
    "en".into()
}

fn default_duration() -> u32 {
    30
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    #[serde(default)]
    columns: ColumnMap,
    date_formats: Option<Vec<String>>,
    time_formats: Option<Vec<String>>,
    #[serde(default)]
    formats: BTreeMap<String, RawFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormat {
    #[serde(default)]
    columns: ColumnMap,
    date_formats: Option<Vec<String>>,
    time_formats: Option<Vec<String>>,
}

fn default_date_formats() -> Vec<String> {
    vec!["%Y-%m-%d".into()]
}

fn default_time_formats() -> Vec<String> {
    vec!["%H:%M".into(), "%H:%M:%S".into(), "%I:%M %p".into()]
}

// ---- loading -------------------------------------------------------------------------------

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` is used for messages and relative paths.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        validate(raw, path).map_err(|problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// The clinic with this key, if configured.
    pub fn clinic(&self, key: &str) -> Option<&Clinic> {
        self.clinics.get(key)
    }

    /// The import format a file is read with: `--format` if given, else the clinic's own
    /// format, else the default.
    pub fn import_format(
        &self,
        format: Option<&str>,
        clinic: Option<&str>,
    ) -> Result<&ImportFormat, String> {
        let named = format.map(str::to_string).or_else(|| {
            clinic
                .and_then(|c| self.clinics.get(c))
                .and_then(|c| c.import_format.clone())
        });
        match named {
            None => Ok(&self.import),
            Some(name) => self.import_formats.get(&name).ok_or_else(|| {
                format!(
                    "unknown import format {name:?}; configured formats: {}",
                    list_or_none(self.import_formats.keys())
                )
            }),
        }
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// Whether `s` is usable as a key in CSV files and on the command line.
fn is_valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn validate(raw: RawConfig, path: &Path) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut push = |key: String, message: String| problems.push(Problem { key, message });

    if raw.database.path.as_os_str().is_empty() {
        push(
            "database.path".into(),
            "must not be empty; give the SQLite file, e.g. \"/var/lib/reminderd/reminderd.db\""
                .into(),
        );
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let database_path = base.join(&raw.database.path);

    let import = build_format(
        "import",
        raw.import.columns,
        raw.import.date_formats,
        raw.import.time_formats,
        &mut push,
    );
    let mut import_formats = BTreeMap::new();
    for (name, f) in raw.import.formats {
        let key = format!("import.formats.{name}");
        if !is_valid_key(&name) {
            push(
                key.clone(),
                "format names use lower-case letters, digits, '-' and '_'".into(),
            );
        }
        let fmt = build_format(&key, f.columns, f.date_formats, f.time_formats, &mut push);
        import_formats.insert(name, fmt);
    }

    if raw.clinics.is_empty() {
        push(
            "clinics".into(),
            "no clinic is configured; add a [clinics.KEY] table".into(),
        );
    }
    let mut clinics = BTreeMap::new();
    let mut display_names: BTreeMap<String, String> = BTreeMap::new();
    for (key, c) in raw.clinics {
        let k = |field: &str| format!("clinics.{key}.{field}");
        if !is_valid_key(&key) {
            push(
                format!("clinics.{key}"),
                "clinic keys use lower-case letters, digits, '-' and '_' (e.g. \"mumbai\")".into(),
            );
        }
        if c.display_name.trim().is_empty() {
            push(k("display_name"), "must not be empty".into());
        } else if let Some(other) =
            display_names.insert(c.display_name.trim().to_lowercase(), key.clone())
        {
            push(
                k("display_name"),
                format!(
                    "{:?} is also the display name of clinic {other:?}; patients could not tell them apart",
                    c.display_name
                ),
            );
        }
        let tz = match c.time_zone.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                push(
                    k("time_zone"),
                    format!(
                        "unknown time zone {:?}; use an IANA name such as \"Asia/Kolkata\" or \"America/New_York\"",
                        c.time_zone
                    ),
                );
                None
            }
        };
        let region = match c.phone_region.parse::<Region>() {
            Ok(r) => Some(r),
            Err(()) => {
                push(
                    k("phone_region"),
                    format!(
                        "unknown phone region {:?}; use a two-letter country code such as \"IN\" or \"US\"",
                        c.phone_region
                    ),
                );
                None
            }
        };
        let default_language = match crate::import::normalize_language(&c.default_language) {
            Some(l) => l,
            None => {
                push(
                    k("default_language"),
                    format!(
                        "{:?} is not a language code; use one like \"en\", \"hi\" or \"es_MX\"",
                        c.default_language
                    ),
                );
                String::new()
            }
        };
        if c.default_duration_min == 0 || c.default_duration_min > 24 * 60 {
            push(
                k("default_duration_min"),
                "must be between 1 and 1440 minutes".into(),
            );
        }
        if let Some(f) = &c.import_format
            && !import_formats.contains_key(f)
        {
            push(
                k("import_format"),
                format!(
                    "unknown import format {f:?}; define it as [import.formats.{f}] (configured: {})",
                    list_or_none(import_formats.keys())
                ),
            );
        }
        if let (Some(time_zone), Some(phone_region)) = (tz, region) {
            clinics.insert(
                key.clone(),
                Clinic {
                    key,
                    display_name: c.display_name.trim().to_string(),
                    time_zone,
                    phone_region,
                    default_language,
                    default_duration_min: c.default_duration_min,
                    import_format: c.import_format,
                },
            );
        }
    }

    if problems.is_empty() {
        Ok(Config {
            source: path.to_path_buf(),
            database_path,
            clinics,
            import,
            import_formats,
        })
    } else {
        Err(problems)
    }
}

fn build_format(
    key: &str,
    columns: ColumnMap,
    date_formats: Option<Vec<String>>,
    time_formats: Option<Vec<String>>,
    push: &mut impl FnMut(String, String),
) -> ImportFormat {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (field, header) in columns.pairs() {
        let norm = header.trim().to_lowercase();
        if norm.is_empty() {
            push(
                format!("{key}.columns.{field}"),
                "must not be empty; give the header name your export uses".into(),
            );
        } else if let Some(other) = seen.insert(norm, field) {
            push(
                format!("{key}.columns.{field}"),
                format!(
                    "header {header:?} is also mapped to {other:?}; each field needs its own column"
                ),
            );
        }
    }
    let date_formats = date_formats.unwrap_or_else(default_date_formats);
    let time_formats = time_formats.unwrap_or_else(default_time_formats);
    check_patterns(&format!("{key}.date_formats"), &date_formats, true, push);
    check_patterns(&format!("{key}.time_formats"), &time_formats, false, push);
    ImportFormat {
        columns,
        date_formats,
        time_formats,
    }
}

/// Rejects patterns chrono cannot use, by formatting a known value and parsing it back.
fn check_patterns(
    key: &str,
    patterns: &[String],
    date: bool,
    push: &mut impl FnMut(String, String),
) {
    use chrono::{NaiveDate, NaiveTime};
    if patterns.is_empty() {
        push(key.into(), "needs at least one pattern".into());
    }
    for (i, p) in patterns.iter().enumerate() {
        let ok = if date {
            let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default();
            let mut s = String::new();
            std::fmt::write(&mut s, format_args!("{}", d.format(p))).is_ok()
                && NaiveDate::parse_from_str(&s, p) == Ok(d)
        } else {
            let t = NaiveTime::from_hms_opt(14, 35, 0).unwrap_or_default();
            let mut s = String::new();
            std::fmt::write(&mut s, format_args!("{}", t.format(p))).is_ok()
                && NaiveTime::parse_from_str(&s, p) == Ok(t)
        };
        if !ok {
            push(
                format!("{key}[{i}]"),
                format!(
                    "{p:?} is not a usable {} pattern; use strftime codes such as {}",
                    if date { "date" } else { "time" },
                    if date {
                        "\"%Y-%m-%d\" or \"%d/%m/%Y\""
                    } else {
                        "\"%H:%M\" or \"%I:%M %p\""
                    }
                ),
            );
        }
    }
}

/// Picks the config file: `--config`, then `$REMINDERD_CONFIG`, then `./reminders.toml`.
pub fn resolve_path(flag: Option<PathBuf>, env: Option<String>) -> PathBuf {
    flag.or_else(|| env.filter(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[database]
path = "x.db"
[clinics.mumbai]
display_name = "Mumbai"
time_zone = "Asia/Kolkata"
phone_region = "IN"
"#;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text, Path::new("/etc/reminderd/reminders.toml")) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.into_iter().map(|p| p.to_string()).collect()
            }
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = Config::from_toml(GOOD, Path::new("/etc/reminderd/reminders.toml"))
            .expect("valid config");
        assert_eq!(c.database_path, Path::new("/etc/reminderd/x.db"));
        let m = c.clinic("mumbai").expect("clinic");
        assert_eq!(m.time_zone, chrono_tz::Asia::Kolkata);
        assert_eq!(m.default_language, "en");
        assert_eq!(m.default_duration_min, 30);
        assert_eq!(c.import.columns.phone, "phone");
        assert_eq!(c.import.date_formats, vec!["%Y-%m-%d"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
[database]
path = "x.db"
[clinics.mumbai]
display_name = "Same"
time_zone = "Asia/Bombay-ish"
phone_region = "ZZ"
default_duration_min = 0
[clinics.nyc]
display_name = "same"
time_zone = "America/New_York"
phone_region = "US"
import_format = "nope"
[import]
date_formats = ["%Q"]
[import.columns]
phone = "Date"
date = "date"
"#;
        let p = problems(text);
        let joined = p.join("\n");
        for needle in [
            "clinics.mumbai.time_zone: unknown time zone \"Asia/Bombay-ish\"",
            "clinics.mumbai.phone_region: unknown phone region \"ZZ\"",
            "clinics.mumbai.default_duration_min: must be between 1 and 1440",
            "clinics.nyc.display_name: \"same\" is also the display name of clinic \"mumbai\"",
            "clinics.nyc.import_format: unknown import format \"nope\"",
            "import.date_formats[0]: \"%Q\" is not a usable date pattern",
            "import.columns.date: header \"date\" is also mapped to \"phone\"",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
        }
    }

    #[test]
    fn unknown_keys_and_duplicate_clinics_are_parse_errors() {
        let typo = GOOD.replace("phone_region", "phone_regoin");
        let err = Config::from_toml(&typo, Path::new("r.toml")).expect_err("typo");
        assert!(
            err.to_string().contains("unknown field `phone_regoin`"),
            "{err}"
        );

        let dup = format!("{GOOD}\n[clinics.mumbai]\ndisplay_name = \"x\"\n");
        let err = Config::from_toml(&dup, Path::new("r.toml")).expect_err("duplicate");
        assert!(err.to_string().contains("mumbai"), "{err}");
    }

    #[test]
    fn config_path_precedence() {
        assert_eq!(
            resolve_path(Some("a.toml".into()), Some("b.toml".into())),
            PathBuf::from("a.toml")
        );
        assert_eq!(
            resolve_path(None, Some("b.toml".into())),
            PathBuf::from("b.toml")
        );
        assert_eq!(
            resolve_path(None, Some(String::new())),
            PathBuf::from("reminders.toml")
        );
        assert_eq!(resolve_path(None, None), PathBuf::from("reminders.toml"));
    }
}
