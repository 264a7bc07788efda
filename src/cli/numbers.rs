//! `reminderd numbers`: each configured WhatsApp number, the clinics that send from it, its
//! cap and token, and its standing as Meta reports it now (quality rating, throughput, the
//! portfolio's messaging limit) and as its last `phone_number_quality_update` webhook said.
//! Also the clients every per-number command reads Meta with.

use std::io::Write as _;
use std::path::Path;

use anyhow::Result;
use reminderd::config::{Config, DEFAULT_NUMBER, Number};
use reminderd::secrets;
use reminderd::whatsapp::Client;
use reminderd::whatsapp::standing::Standing;
use serde::Serialize;

use super::output::{print_json, rfc3339};
use super::{exit, fail, load_config, open, runtime};

/// A client for each configured number, with that number's token; `Err` names a missing
/// token. The default number comes first.
pub(super) fn number_clients(config: &Config) -> Result<Vec<(Number, Client)>> {
    // `client` refuses a config without [whatsapp].
    let main = super::outbox::client(config)?;
    let mut numbers: Vec<&Number> = config
        .whatsapp
        .iter()
        .flat_map(|w| w.numbers.values())
        .collect();
    numbers.sort_by_key(|n| n.name != DEFAULT_NUMBER);
    let mut out = Vec::new();
    for n in numbers {
        let token = secrets::own_token(n).map_err(|e| fail(exit::CONFIG, e.to_string()))?;
        out.push((n.clone(), main.for_number(n, token)));
    }
    Ok(out)
}

/// One line of `reminderd numbers`.
#[derive(Serialize)]
struct NumberLine {
    number: String,
    phone_number_id: String,
    waba_id: String,
    rate_limit_per_sec: u32,
    clinics: Vec<String>,
    /// Meta's answer now; `None` when it could not be read (`error` says why).
    standing: Option<Standing>,
    error: Option<String>,
    /// The last `phone_number_quality_update` the daemon recorded for this number.
    last_event: Option<LastEvent>,
}

#[derive(Serialize)]
struct LastEvent {
    event: String,
    messaging_limit: Option<String>,
    at: String,
}

/// `reminderd numbers [--json]`: exit 0 when every number was read, 69 when one could not be.
pub(super) fn run(config_path: &Path, db: Option<&Path>, json: bool) -> Result<u8> {
    let config = load_config(config_path, db)?;
    let clients = number_clients(&config)?;
    // What the webhooks said, when there is a database to read.
    let recorded = if config.has_database() {
        open(config_path, db)?.1.number_health()?
    } else {
        Vec::new()
    };
    let standings = runtime()?.block_on(async {
        let mut out = Vec::new();
        for (_, client) in &clients {
            out.push(client.standing().await);
        }
        out
    });
    let mut lines = Vec::new();
    for ((n, _), standing) in clients.iter().zip(standings) {
        let (standing, error) = match standing {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let digits = standing.as_ref().and_then(Standing::digits);
        let last_event = recorded
            .iter()
            .find(|r| Some(&r.display_phone_number) == digits.as_ref())
            .map(|r| LastEvent {
                event: r.event.clone(),
                messaging_limit: r.messaging_limit.clone(),
                at: rfc3339(r.updated_at),
            });
        lines.push(NumberLine {
            number: n.name.clone(),
            phone_number_id: n.phone_number_id.clone(),
            waba_id: n.waba_id.clone(),
            rate_limit_per_sec: n.rate_limit_per_sec,
            clinics: config
                .clinics_sending_from(&n.name)
                .map(|c| c.key.clone())
                .collect(),
            standing,
            error,
            last_event,
        });
    }
    if json {
        print_json(&lines)?;
    } else {
        print(&lines)?;
    }
    Ok(if lines.iter().all(|l| l.error.is_none()) {
        exit::OK
    } else {
        exit::UNAVAILABLE
    })
}

fn print(lines: &[NumberLine]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        let clinics = if l.clinics.is_empty() {
            "no clinic".to_string()
        } else {
            l.clinics.join(", ")
        };
        writeln!(
            out,
            "{} (phone number id {}, account {}): {} msg/s, for {clinics}",
            l.number, l.phone_number_id, l.waba_id, l.rate_limit_per_sec
        )?;
        match (&l.standing, &l.error) {
            (Some(s), _) => {
                let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "not given".into());
                writeln!(
                    out,
                    "  {} {}: quality {}, throughput {}, messaging limit {}",
                    or(&s.display_phone_number),
                    s.verified_name
                        .as_deref()
                        .map(|v| format!("({v})"))
                        .unwrap_or_default(),
                    or(&s.quality_rating),
                    or(&s.throughput),
                    or(&s.messaging_limit)
                )?;
            }
            (None, Some(e)) => writeln!(out, "  cannot read it from Meta: {e}")?,
            (None, None) => {}
        }
        if let Some(e) = &l.last_event {
            writeln!(
                out,
                "  last webhook: {}{} ({})",
                e.event,
                e.messaging_limit
                    .as_deref()
                    .map(|m| format!(", limit {m}"))
                    .unwrap_or_default(),
                e.at
            )?;
        }
    }
    Ok(())
}
