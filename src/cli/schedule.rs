//! The schedule and what staff read from it: import, appointments, replies, follow-ups,
//! set-status, stats, and check-config.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};

use reminderd::config::{self, Config};
use reminderd::import::{self, ApplyOptions, ImportError, ParseOptions};
use reminderd::secrets;
use reminderd::store::{AppointmentFilter, AppointmentView, Status, Store, StoreError};
use reminderd::time::{Clock, local_day_bounds};

use super::output::{
    AppointmentJson, print_appointments, print_costs, print_follow_ups, print_import, print_json,
    print_replies, print_stats, progress_bar, rfc3339,
};
use super::{
    AppointmentsArgs, FollowUpsArgs, ImportArgs, RepliesArgs, SetStatusArgs, StatsArgs, exit, fail,
    load_config, open,
};

pub(super) fn check_config(path: &Path, db: Option<&Path>) -> Result<u8> {
    let config = load_config(path, db)?;
    {
        let mut err = std::io::stderr().lock();
        for w in &config.warnings {
            writeln!(err, "warning: {w}")?;
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: OK", path.display())?;
    for c in config.clinics.values() {
        writeln!(
            out,
            "  clinic {:<10} {} ({}, phone region {}, language {})",
            c.key,
            c.display_name,
            c.time_zone.name(),
            c.phone_region,
            c.default_language
        )?;
    }
    for r in &config.rules {
        let before = match r.before {
            config::Offset::Days(n) => format!("{n}d (same wall time)"),
            config::Offset::Exact(d) => reminderd::plan::humanize(d),
        };
        writeln!(
            out,
            "  rule {:<12} {before} before, latest {} before, template {}{}, clinics {}",
            r.name,
            reminderd::plan::humanize(r.latest),
            r.template,
            if r.skip_if_confirmed {
                ", skips confirmed patients"
            } else {
                ""
            },
            r.clinics.join(", ")
        )?;
    }
    for (key, t) in &config.templates {
        let langs: Vec<&str> = t.languages.keys().map(String::as_str).collect();
        writeln!(out, "  template {key:<8} {} ({})", t.name, langs.join(", "))?;
    }
    if let Some(wa) = &config.whatsapp {
        let token = match secrets::ACCESS_TOKEN.load() {
            Ok(_) => "access token found".to_string(),
            Err(e) => format!("warning: {e}"),
        };
        writeln!(
            out,
            "  whatsapp {} {} phone number id {}, {} msg/s; {token}",
            wa.api_base, wa.api_version, wa.phone_number_id, wa.rate_limit_per_sec
        )?;
        if wa.numbers.len() > 1 {
            for n in wa.numbers.values() {
                let keys: Vec<&str> = config
                    .clinics_sending_from(&n.name)
                    .map(|c| c.key.as_str())
                    .collect();
                let token = match secrets::own_token(n) {
                    Ok(Some(_)) => format!(
                        "its own token found ({})",
                        secrets::number_token(&n.name).env
                    ),
                    Ok(None) => "the main access token".to_string(),
                    Err(e) => format!("warning: {e}"),
                };
                writeln!(
                    out,
                    "  number {:<10} phone number id {}, account {}, {} msg/s, for {}; {token}",
                    n.name,
                    n.phone_number_id,
                    n.waba_id,
                    n.rate_limit_per_sec,
                    if keys.is_empty() {
                        "no clinic".to_string()
                    } else {
                        keys.join(", ")
                    }
                )?;
            }
        }
    }
    if let Some(sms) = &config.sms {
        let found = |s: secrets::Secret| match s.load() {
            Ok(_) => format!("{} found", s.env),
            Err(e) => format!("warning: {e}"),
        };
        let clinics = |p: reminderd::sms::Provider| {
            let keys: Vec<&str> = config
                .clinics
                .values()
                .filter(|c| c.sms_provider == Some(p))
                .map(|c| c.key.as_str())
                .collect();
            if keys.is_empty() {
                "no clinic".to_string()
            } else {
                keys.join(", ")
            }
        };
        if let Some(t) = &sms.twilio {
            writeln!(
                out,
                "  sms twilio {} for {}, {} text/s, {} texts; webhooks at {}/twilio/status and /twilio/inbound; {}",
                t.api_base,
                clinics(reminderd::sms::Provider::Twilio),
                t.rate_limit_per_sec,
                t.texts.len(),
                t.public_url,
                found(secrets::TWILIO_AUTH_TOKEN)
            )?;
        }
        if let Some(m) = &sms.msg91 {
            writeln!(
                out,
                "  sms msg91 {} for {}, sender {}, {} texts (DLT); {}; {}",
                m.api_base,
                clinics(reminderd::sms::Provider::Msg91),
                m.sender,
                m.texts.len(),
                found(secrets::MSG91_AUTH_KEY),
                found(secrets::MSG91_WEBHOOK_TOKEN)
            )?;
        }
        writeln!(
            out,
            "  sms fallback {} (WhatsApp 131026, 130403, 132015, 132016); WhatsApp tried again after {} days",
            if sms.fallback { "on" } else { "off" },
            sms.retry_whatsapp_after.num_days()
        )?;
    }
    for f in config.feeds.values() {
        let clinics = f.clinics().join(", ");
        let ids = if f.source == config::CSV_SOURCE {
            "; ids shared with uploads"
        } else {
            ""
        };
        match &f.kind {
            config::FeedKind::Hl7(h) => writeln!(
                out,
                "  feed {} hl7 on {} (MLLP and POST /hl7) for {clinics}{ids}; {}",
                f.name,
                h.listen,
                h.max_silence
                    .map_or("no silence limit".to_string(), |d| format!(
                        "holds reminders after {} of silence",
                        reminderd::plan::humanize(d)
                    ))
            )?,
            config::FeedKind::Fhir(x) => writeln!(
                out,
                "  feed {} fhir {} for {clinics}{ids}; {} days ahead, write-back {}; {}",
                f.name,
                x.base_url,
                x.horizon_days,
                if x.write_back { "on" } else { "off" },
                x.max_import_age
                    .map_or("no sync age limit".to_string(), |d| format!(
                        "holds reminders when the last good sync is over {} old",
                        reminderd::plan::humanize(d)
                    ))
            )?,
        }
    }
    let db_path = &config.database_path;
    if config.has_database() {
        // Opening applies pending migrations, which is what the daemon would do at start.
        let key = if config.database_url.is_some() {
            "database.url"
        } else {
            "database.path"
        };
        let store = Store::open_configured(&config)
            .map_err(|e| fail(exit::CONFIG, format!("{key}: {e}")))?;
        let engine = match store.backend() {
            reminderd::store::sql::Backend::Sqlite => "schema version",
            reminderd::store::sql::Backend::Postgres => "PostgreSQL, schema version",
        };
        writeln!(
            out,
            "  database {} ({engine} {})",
            config.database_label(),
            store.schema_version()?
        )?;
        if !config.feeds.is_empty() {
            let now = Clock::System.now();
            for h in reminderd::feeds::holds(&config, &store.feed_statuses()?, now) {
                writeln!(
                    out,
                    "  warning: held: {} ({})",
                    h.reason,
                    h.clinics.join(", ")
                )?;
            }
        }
        // What Meta reported of the account and the configured templates (webhooks).
        let health = reminderd::dispatch::health::Health::read(&store, &config)?;
        if let Some((line, _)) = super::outbox::account_line(Some(&health)) {
            writeln!(out, "  {line}")?;
        }
        let configured = config
            .templates
            .values()
            .flat_map(|t| health.events_for(t, None, None))
            .collect::<Vec<_>>();
        let mut seen = std::collections::HashSet::new();
        for h in configured {
            if !seen.insert((&h.name, &h.language)) {
                continue;
            }
            let said = reminderd::dispatch::health::unusable(h)
                .map(|w| {
                    format!("{w}: its messages are held, or go by the alternate template or SMS")
                })
                .or_else(|| reminderd::dispatch::health::warning(h));
            if let Some(w) = said {
                writeln!(out, "  warning: {w}")?;
            }
        }
    } else {
        let parent = db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(fail(
                exit::CONFIG,
                format!(
                    "database.path: the folder {} does not exist; create it or point database.path elsewhere",
                    parent.display()
                ),
            ));
        }
        writeln!(
            out,
            "  database {} (will be created on first use)",
            db_path.display()
        )?;
    }
    Ok(exit::OK)
}

pub(super) fn import(config_path: &Path, db: Option<&Path>, args: &ImportArgs) -> Result<u8> {
    let (config, mut store) = open(config_path, db)?;
    let file = &args.file;
    // A CSV file is read as rows are imported, never whole: memory stays flat however long.
    let opened = import::Opened::open(file).map_err(|e| {
        fail(
            exit::NO_INPUT,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    let name = file.display().to_string();
    let now = Clock::from_option(args.now).now();
    let opts = ParseOptions {
        clinic: args.clinic.as_deref(),
        format: args.format.as_deref(),
        audience: import::Audience::Cli,
        now: Some(now),
    };
    let bar = progress_bar(
        args.json,
        "importing {bar:30} {percent:>3}% {msg} ({elapsed})",
    );
    let report = import::import_stream(
        &mut store,
        &config,
        opened.input(),
        &opts,
        &ApplyOptions {
            file_name: &name,
            complete: args.complete,
            dry_run: args.dry_run,
            imported_by: "cli",
            now,
        },
        &mut |p| {
            if let Some(bar) = &bar {
                bar.set_length(p.total);
                bar.set_position(p.done);
                bar.set_message(format!("{} rows", p.rows));
            }
        },
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report.map_err(|e| match e {
        ImportError::Options(m) => fail(exit::USAGE, m),
        ImportError::Store(e) => {
            anyhow::Error::from(e).context("import failed; nothing was written")
        }
    })?;
    if args.json {
        print_json(&report)?;
    } else {
        print_import(&config, &report)?;
        print_review(&config, &report)?;
    }
    // Rows left out of a partial import need fixing as much as a refused file does.
    Ok(if report.errors.is_empty() && report.left_out.is_empty() {
        exit::OK
    } else {
        exit::DATA
    })
}

/// What the preview on the desk warns about, for the terminal: the banners, what each change
/// undoes (with the patient's name), the booking messages, and the rows a partial import
/// left out.
fn print_review(config: &Config, r: &import::ImportReport) -> std::io::Result<()> {
    use import::review::{response_words, status_words};
    if !r.errors.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let zone_of = |clinic: &str| {
        config
            .clinic(clinic)
            .map_or(chrono_tz::UTC, |c| c.time_zone)
    };
    let first_zone = r
        .changes
        .first()
        .map_or(chrono_tz::UTC, |c| zone_of(&c.clinic));
    for w in &r.warnings {
        writeln!(out, "WARNING: {}", w.describe(first_zone))?;
    }
    // An appointment is named by the time staff know it by: before a move.
    let when = |c: &import::Change| {
        let at = match c.kind {
            import::ChangeKind::Rescheduled { from, .. } => from,
            _ => c.starts_at,
        };
        at.with_timezone(&zone_of(&c.clinic))
            .format("%a %-d %b %H:%M")
            .to_string()
    };
    let undoing: Vec<_> = r.changes.iter().filter(|c| !c.undoes.is_empty()).collect();
    if !undoing.is_empty() {
        writeln!(
            out,
            "{} this import undoes what people did:",
            if r.dry_run { "Confirming" } else { "Done:" }
        )?;
        for c in undoing {
            for u in &c.undoes {
                writeln!(
                    out,
                    "  {} ({}, {}/{}): {}",
                    c.patient,
                    when(c),
                    c.clinic,
                    c.appointment_id,
                    u.describe()
                )?;
            }
        }
    }
    for c in &r.changes {
        if let Some(k) = &c.kept {
            writeln!(
                out,
                "  {} ({}): kept {} as set at the desk by {}",
                c.patient,
                when(c),
                status_words(k.status),
                k.by
            )?;
        }
        if c.kind == import::ChangeKind::CancelledMissing {
            writeln!(
                out,
                "  {} ({}): cancelled, not in the file (answer: {})",
                c.patient,
                when(c),
                response_words(c.response)
            )?;
        }
    }
    match r.booking_messages {
        Some(n) if n > 0 => writeln!(
            out,
            "{n} {} a booking message{}",
            if n == 1 {
                "patient gets"
            } else {
                "patients get"
            },
            if r.dry_run { " once imported" } else { "" }
        )?,
        _ => {}
    }
    if !r.left_out.is_empty() {
        let rows = r
            .left_out
            .iter()
            .map(|e| e.row)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        writeln!(
            out,
            "{rows} row{} with a problem left out (their appointments are unchanged); fix them and import the file again:",
            if rows == 1 { "" } else { "s" }
        )?;
        for e in &r.left_out {
            let who = e
                .patient
                .as_deref()
                .map_or_else(String::new, |p| format!(" ({p})"));
            writeln!(
                out,
                "  row {}{who}, column {:?}: {}",
                e.row, e.column, e.message
            )?;
        }
    }
    Ok(())
}

pub(super) fn appointments(
    config_path: &Path,
    db: Option<&Path>,
    args: &AppointmentsArgs,
) -> Result<u8> {
    let (config, store) = open(config_path, db)?;
    let now = Clock::from_option(args.now).now();
    let list = list_appointments(
        &config,
        &store,
        args.from,
        args.to,
        args.clinic.as_deref(),
        args.status,
        now,
    )?;
    if args.json {
        print_json(
            &list
                .iter()
                .map(|(a, z)| AppointmentJson::new(a, *z))
                .collect::<Vec<_>>(),
        )?;
    } else {
        print_appointments(&list)?;
    }
    Ok(exit::OK)
}

/// Appointments with the zone of their clinic, merged across clinics in start order.
fn list_appointments(
    config: &Config,
    store: &Store,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    clinic: Option<&str>,
    status: Option<Status>,
    now: DateTime<Utc>,
) -> Result<Vec<(AppointmentView, chrono_tz::Tz)>> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(fail(exit::USAGE, format!("--from {f} is after --to {t}")));
    }
    let clinics: Vec<_> = match clinic {
        Some(k) => vec![
            config
                .clinic(k)
                .ok_or_else(|| fail(exit::USAGE, config.unknown_clinic(k)))?,
        ],
        None => config.clinics.values().collect(),
    };
    let mut all = Vec::new();
    for c in clinics {
        let zone = c.time_zone;
        let first = from.unwrap_or_else(|| now.with_timezone(&zone).date_naive());
        let start = local_day_bounds(zone, first).0;
        let end = to.map_or_else(
            || start + Duration::days(365 * 1000),
            |t| local_day_bounds(zone, t).1,
        );
        let filter = AppointmentFilter {
            from: start,
            to: end,
            clinic: Some(c.key.clone()),
            status,
        };
        all.extend(store.appointments(&filter)?.into_iter().map(|a| (a, zone)));
    }
    all.sort_by(|(a, _), (b, _)| {
        (a.starts_at, &a.clinic, &a.id).cmp(&(b.starts_at, &b.clinic, &b.id))
    });
    Ok(all)
}

pub(super) fn replies(config_path: &Path, db: Option<&Path>, args: &RepliesArgs) -> Result<u8> {
    let (_, store) = open(config_path, db)?;
    let rows = store.replies(args.needs_staff, args.since)?;
    if args.json {
        print_json(&rows)?;
    } else {
        print_replies(&rows)?;
    }
    Ok(exit::OK)
}

pub(super) fn follow_ups(
    config_path: &Path,
    db: Option<&Path>,
    args: &FollowUpsArgs,
) -> Result<u8> {
    let (config, store) = open(config_path, db)?;
    let now = Clock::from_option(args.now).now();
    let mut all = Vec::new();
    for c in clinics_for(&config, args.clinic.as_deref())? {
        let day = args
            .date
            .unwrap_or_else(|| now.with_timezone(&c.time_zone).date_naive());
        all.extend(
            reminderd::jobs::follow_ups_for(&store, &config, c, day)?
                .into_iter()
                .map(|f| (f, c.time_zone)),
        );
    }
    if args.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|(f, zone)| {
                serde_json::json!({
                    "appointment_id": f.appointment_id, "clinic": f.clinic,
                    "starts_at": rfc3339(f.starts_at),
                    "starts_at_local": f.starts_at.with_timezone(zone).to_rfc3339_opts(SecondsFormat::Secs, false),
                    "patient_name": f.patient_name, "phone": f.phone, "reasons": f.reasons,
                })
            })
            .collect();
        print_json(&rows)?;
    } else {
        print_follow_ups(&all)?;
    }
    Ok(exit::OK)
}

pub(super) fn set_status(
    config_path: &Path,
    db: Option<&Path>,
    args: &SetStatusArgs,
) -> Result<u8> {
    let (_, mut store) = open(config_path, db)?;
    let actor = format!(
        "staff:{}",
        std::env::var("USER").unwrap_or_else(|_| "cli".into())
    );
    let (appointment_id, status) = (&args.appointment_id, &args.status);
    // clap offers only the status-changing actions, so this parses.
    let action = reminderd::model::StaffAction::parse(status)
        .map_err(|e| fail(exit::USAGE, format!("unknown status: {e}")))?;
    match store.set_status(
        args.clinic.as_deref(),
        appointment_id,
        action,
        args.note.as_deref(),
        &actor,
        Clock::System.now(),
    ) {
        Ok(Some((key, old))) => {
            println!("{key}/{appointment_id}: {old} → {status}");
            Ok(exit::OK)
        }
        Ok(None) => Ok(exit::OK),
        Err(e @ (StoreError::NotFound(_) | StoreError::Ambiguous(_) | StoreError::Refused(_))) => {
            Err(fail(exit::DATA, e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn stats(config_path: &Path, db: Option<&Path>, args: &StatsArgs) -> Result<u8> {
    let (config, store) = open(config_path, db)?;
    let now = Clock::from_option(args.now).now();
    let clinic = &args.clinic;
    // One zone for the date range: the clinic's, or the first clinic's when all.
    let zone = clinics_for(&config, clinic.as_deref())?
        .first()
        .map_or(chrono_tz::UTC, |c| c.time_zone);
    let today = now.with_timezone(&zone).date_naive();
    let to = args.to.unwrap_or(today);
    let from = args.from.unwrap_or_else(|| reminderd::jobs::stats_from(to));
    let (start, end) = (local_day_bounds(zone, from).0, local_day_bounds(zone, to).1);
    let s = store.stats(clinic.as_deref(), start, end)?;
    let costs = reminderd::config::monthly(&config, &store.billed(clinic.as_deref(), start, end)?);
    if args.json {
        print_json(
            &serde_json::json!({ "from": from, "to": to, "clinic": clinic, "stats": s, "costs": costs }),
        )?;
    } else {
        print_stats(&s, from, to)?;
        print_costs(&costs)?;
    }
    Ok(exit::OK)
}

fn clinics_for<'c>(
    config: &'c Config,
    clinic: Option<&str>,
) -> Result<Vec<&'c reminderd::config::Clinic>> {
    match clinic {
        Some(k) => {
            Ok(vec![config.clinic(k).ok_or_else(|| {
                fail(exit::USAGE, config.unknown_clinic(k))
            })?])
        }
        None => Ok(config.clinics.values().collect()),
    }
}
