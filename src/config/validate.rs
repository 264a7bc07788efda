//! Validation of a parsed file: every section checked against what serde cannot know, every
//! problem named by its dotted key, references between sections, and the warnings for
//! settings that work but are risky.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::messaging::{validate_replies, validate_rules, validate_templates, validate_whatsapp};
use super::raw::{
    RawBooking, RawConfig, RawDesk, RawServer, default_body_limit, default_date_formats,
    default_header_timeout, default_max_connections, default_max_upload, default_min_body_rate,
    default_server_request_timeout, default_time_formats,
};
use super::values::{
    Bounds, DESK_IDLE, DESK_LOCKOUT, DESK_SESSION, FOLLOW_UP_DAYS, HEADER_TIMEOUT, MAX_IMPORT_AGE,
    SERVER_REQUEST_TIMEOUT, SHUTDOWN_GRACE, STALE_AFTER, check_cron, check_number, formats_cleanly,
    parse_quiet_hours,
};
use super::{
    Clinic, ColumnMap, Config, Daemon, Desk, ImportFormat, Problem, Server, WhatsApp, list_or_none,
};
use crate::phone::Region;

/// Whether `s` is usable as a key in CSV files and on the command line.
pub(super) fn is_valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub(super) fn validate(
    raw: RawConfig,
    path: &Path,
    now: DateTime<Utc>,
) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut push = |key: String, message: String| problems.push(Problem { key, message });

    let base = path.parent().unwrap_or(Path::new("."));
    let (database_path, database_url) = super::database::validate(raw.database, base, &mut push);

    let import = build_format(
        "import",
        raw.import.columns,
        raw.import.date_formats,
        raw.import.time_formats,
        &mut push,
    );
    let mut import_formats = BTreeMap::new();
    for (name, f) in raw.import.formats {
        let key = format!("import.formats.{}", super::seg(&name));
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
    let raw_fallback: BTreeMap<String, Option<bool>> = raw
        .clinics
        .iter()
        .map(|(k, c)| (k.clone(), c.sms_fallback))
        .collect();
    let raw_waitlists = raw
        .clinics
        .iter()
        .filter_map(|(k, c)| c.waitlist.clone().map(|w| (k.clone(), w)))
        .collect();
    for (key, c) in raw.clinics {
        // A key that is not a bare TOML key is named the way TOML writes it: quoted.
        let named = super::seg(&key).into_owned();
        let k = |field: &str| format!("clinics.{named}.{field}");
        if !is_valid_key(&key) {
            push(
                format!("clinics.{named}"),
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
        let default_language = match crate::model::normalize_language(&c.default_language) {
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
        check_number(
            &k("default_duration_min"),
            c.default_duration_min,
            &(1..=24 * 60),
            " minutes",
            &mut push,
        );
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
        let quiet_hours = c
            .quiet_hours
            .as_deref()
            .and_then(|q| match parse_quiet_hours(q) {
                Ok(q) => Some(q),
                Err(m) => {
                    push(k("quiet_hours"), m);
                    None
                }
            });
        let max_import_age =
            c.max_import_age
                .as_deref()
                .and_then(|v| match MAX_IMPORT_AGE.span(v) {
                    Ok(d) => Some(d),
                    Err(m) => {
                        push(k("max_import_age"), m);
                        None
                    }
                });
        for (field, pattern) in [
            ("date_format", &c.date_format),
            ("time_format", &c.time_format),
        ] {
            if !formats_cleanly(pattern) {
                push(
                    k(field),
                    format!("{pattern:?} is not a usable strftime pattern"),
                );
            }
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
                    date_order: c.date_order,
                    import_partial: c.import_partial,
                    quiet_hours,
                    max_import_age,
                    date_format: c.date_format,
                    time_format: c.time_format,
                    sms_provider: c.sms_provider,
                    // Settled below, once [sms] is read.
                    sms_fallback: c.sms_fallback.unwrap_or(true),
                    phone: c.phone.map(|p| p.trim().to_string()),
                    acks: c.acks != Some(super::AckChoice::Off),
                    whatsapp_number: c
                        .whatsapp_number
                        .unwrap_or_else(|| super::DEFAULT_NUMBER.into()),
                },
            );
        }
    }

    let whatsapp = raw.whatsapp.map(|w| validate_whatsapp(w, &mut push));
    super::numbers::check_clinics(&clinics, whatsapp.as_ref(), &mut push);
    let templates = validate_templates(raw.templates, &mut push);
    let (rules, feedback) = validate_rules(raw.rules, &clinics, &templates, &mut push);
    let booking_confirmation = match raw.booking_confirmation {
        Some(RawBooking {
            enabled: true,
            template: Some(t),
        }) => {
            if !templates.contains_key(&t) {
                push(
                    "booking_confirmation.template".into(),
                    format!(
                        "no template {t:?} under [templates]; configured: {}",
                        list_or_none(templates.keys())
                    ),
                );
            }
            Some(t)
        }
        Some(RawBooking {
            enabled: true,
            template: None,
        }) => {
            push(
                "booking_confirmation.template".into(),
                "is needed when enabled = true".into(),
            );
            None
        }
        _ => None,
    };
    if (!rules.is_empty() || booking_confirmation.is_some()) && whatsapp.is_none() {
        push(
            "whatsapp".into(),
            "rules are configured but there is no [whatsapp] section to send them with".into(),
        );
    }

    let server = {
        let srv = raw.server.unwrap_or_else(|| RawServer {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: default_body_limit(),
            header_timeout: default_header_timeout(),
            request_timeout: default_server_request_timeout(),
            max_connections: default_max_connections(),
            min_body_rate: default_min_body_rate(),
        });
        let listen = srv.listen.parse().unwrap_or_else(|_| {
            push(
                "server.listen".into(),
                format!("{:?} is not an address and port such as \"127.0.0.1:8080\" or \"0.0.0.0:8080\"", srv.listen),
            );
            std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        check_number(
            "server.max_body_bytes",
            srv.max_body_bytes,
            &(3 * 1024 * 1024..=100 * 1024 * 1024),
            " bytes: Meta batches webhook bodies of up to 3 MB",
            &mut push,
        );
        let mut timeout = |key: &str, text: &str, bounds: Bounds, fallback: u64| {
            bounds.std_span(text).unwrap_or_else(|m| {
                push(format!("server.{key}"), m);
                std::time::Duration::from_secs(fallback)
            })
        };
        let header_timeout = timeout("header_timeout", &srv.header_timeout, HEADER_TIMEOUT, 10);
        let request_timeout = timeout(
            "request_timeout",
            &srv.request_timeout,
            SERVER_REQUEST_TIMEOUT,
            60,
        );
        // tokio's semaphore panics above 2^61 permits; far fewer already exhaust descriptors.
        let max_connections = if check_number(
            "server.max_connections",
            srv.max_connections,
            &(1..=16_384),
            " (each is an open file; further ones wait in the kernel's queue)",
            &mut push,
        ) {
            srv.max_connections
        } else {
            default_max_connections()
        };
        let min_body_rate = if check_number(
            "server.min_body_rate",
            srv.min_body_rate,
            &(16..=100_000_000),
            " bytes a second",
            &mut push,
        ) {
            srv.min_body_rate
        } else {
            default_min_body_rate()
        };
        Server {
            listen,
            max_body_bytes: srv.max_body_bytes,
            header_timeout,
            request_timeout,
            max_connections,
            min_body_rate,
        }
    };
    let replies = validate_replies(raw.replies.unwrap_or_default(), &mut push);
    let d = raw.daemon.unwrap_or_default();
    for (key, expr) in [("daemon.plan", &d.plan), ("daemon.dispatch", &d.dispatch)] {
        if let Err(m) = check_cron(expr, now) {
            push(key.into(), m);
        }
    }
    let daemon = Daemon {
        stale_after: STALE_AFTER.span(&d.stale_after).unwrap_or_else(|m| {
            push("daemon.stale_after".into(), m);
            Duration::minutes(5)
        }),
        shutdown_grace: SHUTDOWN_GRACE
            .std_span(&d.shutdown_grace)
            .unwrap_or_else(|m| {
                push("daemon.shutdown_grace".into(), m);
                std::time::Duration::from_secs(10)
            }),
        plan: d.plan,
        dispatch: d.dispatch,
    };
    let desk = raw
        .desk
        .as_ref()
        .map(|d| validate_desk(d, &server, &mut push));

    let metrics_listen = raw.metrics.as_ref().map(|m| {
        let addr = m.listen.parse().unwrap_or_else(|_| {
            push(
                "metrics.listen".into(),
                format!(
                    "{:?} is not an address and port such as \"127.0.0.1:9100\"",
                    m.listen
                ),
            );
            std::net::SocketAddr::from(([127, 0, 0, 1], 9100))
        });
        if addr == server.listen && addr.port() != 0 {
            push(
                "metrics.listen".into(),
                format!("{addr} is also server.listen; metrics must not be served on the public webhook port"),
            );
        }
        addr
    });
    let sms = raw.sms.map(|s| super::sms::validate(s, &mut push));
    let sms_fallback_default = sms.as_ref().is_some_and(|s| s.fallback);
    for (key, clinic) in &mut clinics {
        if raw_fallback.get(key).copied().flatten().is_none() {
            clinic.sms_fallback = sms_fallback_default;
        }
    }
    if let Some(sms) = &sms {
        super::sms::check_against(
            sms,
            &clinics,
            &rules,
            &templates,
            booking_confirmation.as_deref(),
            &mut push,
        );
    } else if let Some((key, _)) = clinics.iter().find(|(_, c)| c.sms_provider.is_some()) {
        push(
            format!("clinics.{}.sms_provider", super::seg(key)),
            "there is no [sms] section: configure the provider under [sms.twilio] or [sms.msg91], or leave sms_provider out".into(),
        );
    }
    let feeds = {
        let mut taken = vec![("server.listen".to_string(), server.listen)];
        if let Some(d) = &desk {
            taken.push(("desk.listen".into(), d.listen));
        }
        if let Some(m) = metrics_listen {
            taken.push(("metrics.listen".into(), m));
        }
        super::feeds::validate(raw.feeds, &clinics, &taken, now, &mut push)
    };
    let conversations = super::conversations::validate(raw.conversations, &templates, &mut push);
    let booking = super::booking::validate(
        raw.booking,
        &super::booking::Context {
            clinics: clinics
                .iter()
                .map(|(k, c)| (k.as_str(), c.phone.is_some()))
                .collect(),
            fhir_write_back: feeds
                .values()
                .filter(|f| matches!(&f.kind, super::FeedKind::Fhir(x) if x.write_back))
                .flat_map(super::Feed::clinics)
                .collect(),
        },
        &mut push,
    );
    let documents = super::documents::validate_documents(raw.documents, base, &mut push);
    let prep_notes = super::documents::validate_prep_notes(raw.prep_notes, &mut push);
    let costs = raw
        .costs
        .map(|c| super::costs::validate_costs(&c, &mut push));
    let waitlist = super::waitlist::validate(raw.waitlist, raw_waitlists, &templates, &mut push);
    let report = super::report::validate(raw.report, &mut push);
    let privacy = super::privacy::validate(raw.privacy, now, &mut push);
    if problems.is_empty() {
        let warnings = warnings(desk.as_ref(), whatsapp.as_ref());
        Ok(Config {
            source: path.to_path_buf(),
            database_path,
            database_url,
            clinics,
            import,
            import_formats,
            whatsapp,
            rules,
            feedback,
            templates,
            booking_confirmation,
            server,
            replies,
            daemon,
            desk,
            metrics_listen,
            sms,
            feeds,
            conversations,
            booking,
            documents,
            prep_notes,
            costs,
            waitlist,
            report,
            privacy,
            warnings,
        })
    } else {
        Err(problems)
    }
}

/// Settings that work but expose something on the clinic's network.
fn warnings(desk: Option<&Desk>, whatsapp: Option<&WhatsApp>) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(d) = desk
        && !d.listen.ip().is_loopback()
        && !d.secure_cookies
    {
        out.push(Problem {
            key: "desk.secure_cookies".into(),
            message: format!(
                "is off while desk.listen = {} is reachable from other computers: staff passwords and sign-in cookies would travel in clear over the clinic's network; put TLS (an HTTPS reverse proxy) in front of the desk and set secure_cookies = true",
                d.listen
            ),
        });
    }
    if let Some(w) = whatsapp
        && let Some(m) = api_base_warning(&w.api_base)
    {
        out.push(Problem {
            key: "whatsapp.api_base".into(),
            message: m,
        });
    }
    out
}

/// Why `base` is risky, if it is: plain http to a host other than this computer would carry
/// the access token and patients' numbers unencrypted.
pub fn api_base_warning(base: &str) -> Option<String> {
    let url = reqwest::Url::parse(base).ok()?;
    let host = url.host_str()?;
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    let local = unbracketed.eq_ignore_ascii_case("localhost")
        || unbracketed
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (url.scheme() == "http" && !local).then(|| {
        format!(
            "{base:?} is plain http to {host}, another computer: the access token and patients' phone numbers would travel unencrypted; use https://"
        )
    })
}

fn validate_desk(d: &RawDesk, server: &Server, push: &mut impl FnMut(String, String)) -> Desk {
    let listen = d.listen.parse().unwrap_or_else(|_| {
        push(
            "desk.listen".into(),
            format!(
                "{:?} is not an address and port such as \"127.0.0.1:8081\" (this computer only) or \"192.168.1.10:8081\" (the clinic's network)",
                d.listen
            ),
        );
        std::net::SocketAddr::from(([127, 0, 0, 1], 8081))
    });
    if listen == server.listen && listen.port() != 0 {
        push(
            "desk.listen".into(),
            format!(
                "{listen} is also server.listen; the desk needs its own address so the public webhook port never exposes it"
            ),
        );
    }
    // Bounded so that `now + session` and `now + lockout` always fit in a timestamp.
    let mut span = |key: &str, text: &str, bounds: Bounds, fallback: Duration| {
        bounds.span(text).unwrap_or_else(|m| {
            push(format!("desk.{key}"), m);
            fallback
        })
    };
    let session = span("session", &d.session, DESK_SESSION, Duration::hours(13));
    let lockout = span("lockout", &d.lockout, DESK_LOCKOUT, Duration::minutes(15));
    let idle_timeout = span(
        "idle_timeout",
        &d.idle_timeout,
        DESK_IDLE,
        Duration::minutes(30),
    );
    check_number(
        "desk.max_failed_logins",
        d.max_failed_logins,
        &(1..=100),
        " wrong passwords in a row",
        push,
    );
    // The upper bound keeps the request limit (this plus room for the form) from wrapping.
    let max_upload_bytes = if check_number(
        "desk.max_upload_bytes",
        d.max_upload_bytes,
        &(1024..=100 * 1024 * 1024),
        " bytes; a day's schedule is usually a few hundred kilobytes",
        push,
    ) {
        d.max_upload_bytes
    } else {
        default_max_upload()
    };
    let mut count = |key: &str, value: u32, range: std::ops::RangeInclusive<u32>, why: &str| {
        if check_number(&format!("desk.{key}"), value, &range, why, push) {
            value
        } else {
            value.clamp(*range.start(), *range.end())
        }
    };
    let follow_up_days = count(
        "follow_up_days",
        d.follow_up_days,
        FOLLOW_UP_DAYS,
        " days after today (0: today only)",
    );
    let per_name_floor = d.max_failed_logins.clamp(1, 100);
    let max_failed_logins_per_name = count(
        "max_failed_logins_per_name",
        d.max_failed_logins_per_name,
        per_name_floor..=100_000,
        " (at least desk.max_failed_logins: it is the backstop across all addresses)",
    );
    let sign_ins_per_minute_per_address = count(
        "sign_ins_per_minute_per_address",
        d.sign_ins_per_minute_per_address,
        1..=10_000,
        " sign-in requests a minute from one address",
    );
    let sign_ins_per_minute = count(
        "sign_ins_per_minute",
        d.sign_ins_per_minute,
        1..=100_000,
        " sign-in requests a minute from all addresses together",
    );
    Desk {
        listen,
        secure_cookies: d.secure_cookies,
        session,
        idle_timeout,
        max_failed_logins: d.max_failed_logins.clamp(1, 100),
        max_failed_logins_per_name,
        lockout,
        sign_ins_per_minute_per_address,
        sign_ins_per_minute,
        max_upload_bytes,
        follow_up_days,
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

#[cfg(test)]
mod tests {
    use super::super::tests::GOOD;
    use super::super::{Config, ConfigError};
    use chrono::Duration;
    use std::path::Path;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text, Path::new("/etc/reminderd/reminders.toml")) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.into_iter().map(|p| p.to_string()).collect()
            }
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    #[test]
    fn a_clinic_key_toml_would_quote_is_named_quoted() {
        let text = GOOD.replace("[clinics.mumbai]", "[clinics.\".\"]");
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("clinics.\".\": clinic keys use")),
            "{found:?}"
        );
        assert!(
            !found.iter().any(|p| p.starts_with("clinics..")),
            "{found:?}"
        );
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
[server]
listen = "127.0.0.1:8080"
header_timeout = "0s"
request_timeout = "soon"
max_connections = 0
"#;
        let p = problems(text);
        let joined = p.join("\n");
        for needle in [
            "clinics.mumbai.time_zone: unknown time zone \"Asia/Bombay-ish\"",
            "clinics.mumbai.phone_region: unknown phone region \"ZZ\"",
            "clinics.mumbai.default_duration_min: 0 is out of range: must be between 1 and 1440 minutes",
            "clinics.nyc.display_name: \"same\" is also the display name of clinic \"mumbai\"",
            "clinics.nyc.import_format: unknown import format \"nope\"",
            "import.date_formats[0]: \"%Q\" is not a usable date pattern",
            "import.columns.date: header \"date\" is also mapped to \"phone\"",
            "server.header_timeout: \"0s\" is too short; give between 1s and 10m",
            "server.request_timeout: \"soon\" is not a duration",
            "server.max_connections: 0 is out of range: must be between 1 and 16384",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
        }
    }

    #[test]
    fn desk_follow_up_days_is_two_by_default_and_at_most_fourteen() {
        let desk = |keys: &str| format!("{GOOD}\n[desk]\nlisten = \"127.0.0.1:8081\"\n{keys}\n");
        let days = |keys: &str| {
            Config::from_toml(&desk(keys), Path::new("r.toml"))
                .expect("valid")
                .desk
                .expect("desk")
                .follow_up_days
        };
        assert_eq!(days(""), 2, "today, tomorrow and the day after");
        assert_eq!(days("follow_up_days = 0"), 0);
        assert_eq!(days("follow_up_days = 14"), 14);
        let p = problems(&desk("follow_up_days = 15"));
        assert!(
            p.iter()
                .any(|m| m
                    .contains("desk.follow_up_days: 15 is out of range: must be between 0 and 14")),
            "{p:?}"
        );
    }

    #[test]
    fn desk_sign_in_limits_and_idle_timeout_have_ranges() {
        let desk = |keys: &str| format!("{GOOD}\n[desk]\nlisten = \"127.0.0.1:8081\"\n{keys}\n");
        let c = Config::from_toml(
            &desk("idle_timeout = \"10m\"\nsign_ins_per_minute = 30\nsign_ins_per_minute_per_address = 3\nmax_failed_logins_per_name = 5"),
            Path::new("r.toml"),
        )
        .expect("valid");
        let d = c.desk.expect("desk");
        assert_eq!(d.idle_timeout, Duration::minutes(10));
        assert_eq!(
            (
                d.sign_ins_per_minute,
                d.sign_ins_per_minute_per_address,
                d.max_failed_logins_per_name
            ),
            (30, 3, 5)
        );
        let p = problems(&desk(
            "idle_timeout = \"2d\"\nsign_ins_per_minute = 0\nsign_ins_per_minute_per_address = 20000\nmax_failed_logins = 10\nmax_failed_logins_per_name = 9",
        ));
        for key in [
            "desk.idle_timeout",
            "desk.sign_ins_per_minute:",
            "desk.sign_ins_per_minute_per_address",
            "desk.max_failed_logins_per_name",
        ] {
            assert!(p.iter().any(|m| m.contains(key)), "{key} in {p:?}");
        }
        assert!(
            problems(&desk("idle_timeout = \"30s\""))
                .iter()
                .any(|m| m.contains("desk.idle_timeout")),
            "shorter than a minute"
        );
    }

    #[test]
    fn risky_settings_are_warnings_naming_their_key() {
        let with = |extra: &str| {
            Config::from_toml(&format!("{GOOD}{extra}"), Path::new("r.toml")).expect("valid")
        };
        assert!(with("").warnings.is_empty());
        assert!(
            with("[desk]\nlisten = \"127.0.0.1:8081\"\n")
                .warnings
                .is_empty()
        );
        assert!(
            with("[desk]\nlisten = \"[::1]:8081\"\n")
                .warnings
                .is_empty()
        );
        assert!(
            with("[desk]\nlisten = \"0.0.0.0:8081\"\nsecure_cookies = true\n")
                .warnings
                .is_empty()
        );
        let open = with("[desk]\nlisten = \"0.0.0.0:8081\"\n");
        assert_eq!(open.warnings.len(), 1, "{:?}", open.warnings);
        assert_eq!(open.warnings[0].key, "desk.secure_cookies");
        assert!(
            open.warnings[0]
                .message
                .contains("set secure_cookies = true")
        );

        let wa = |base: &str| {
            format!("[whatsapp]\napi_base = \"{base}\"\nphone_number_id = \"1\"\nwaba_id = \"2\"\n")
        };
        for quiet in [
            "https://graph.facebook.com",
            "https://10.0.0.5",
            "http://127.0.0.1:9000",
            "http://127.8.0.1",
            "http://LOCALHOST:9000",
            "http://[::1]:9000/",
        ] {
            assert!(with(&wa(quiet)).warnings.is_empty(), "{quiet}");
        }
        for loud in [
            "http://10.0.0.5",
            "http://graph.facebook.com",
            "http://[2001:db8::1]",
        ] {
            let w = with(&wa(loud)).warnings;
            assert_eq!(w.len(), 1, "{loud}");
            assert_eq!(w[0].key, "whatsapp.api_base");
            assert!(w[0].message.contains("use https://"), "{}", w[0].message);
        }
        let p = problems(&format!("{GOOD}{}", wa("ftp://x")));
        assert!(
            p.iter().any(|m| m.starts_with("whatsapp.api_base:")),
            "{p:?}"
        );
    }
}
