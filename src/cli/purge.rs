//! `reminderd purge`: the retention purge the daemon runs daily, now (or `--dry-run`: what it
//! would empty).

use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::Args;

use reminderd::jobs::purge;
use reminderd::time::{Clock, parse_instant};

use super::output::print_json;
use super::{admin_actor, exit, open};

/// `reminderd purge`'s arguments.
#[derive(Debug, Args)]
pub(super) struct PurgeArgs {
    /// Count what would be emptied, writing nothing
    #[arg(long)]
    dry_run: bool,
    /// Purge as if it were this RFC 3339 instant
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    now: Option<DateTime<Utc>>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub(super) fn run(config_path: &Path, db: Option<&Path>, args: &PurgeArgs) -> Result<u8> {
    let (config, mut store) = open(config_path, db)?;
    let now = Clock::from_option(args.now).now();
    let r = purge::run(&mut store, &config, now, &admin_actor(), args.dry_run)?;
    if args.json {
        print_json(&r)?;
        return Ok(exit::OK);
    }
    let c = r.counts;
    let verb = if args.dry_run {
        "would empty"
    } else {
        "emptied"
    };
    println!(
        "{verb}: {} webhook bodies, {} feed payloads and {} uploaded schedule files older than {} days; the words of {} messages, {} replies and {} answers older than {} days",
        c.webhook_bodies,
        c.feed_payloads,
        c.uploaded_files,
        config.privacy.raw_payloads.num_days(),
        c.message_texts,
        c.reply_texts,
        c.answer_texts,
        config.privacy.message_texts.num_days(),
    );
    if let Some(v) = r.vacuum {
        if v.converted {
            println!(
                "the database now gives freed space back after each purge (a one-time VACUUM rewrote it)"
            );
        }
        println!("{} free pages given back to the disk", v.pages_freed);
    }
    Ok(exit::OK)
}
