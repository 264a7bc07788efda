//! `[database]`: the SQLite file one server keeps, or the PostgreSQL database several share.

use std::path::{Path, PathBuf};

/// Where the store is: the SQLite file (`database.path`, relative to the config's folder) or
/// a PostgreSQL URL (`database.url`), one or the other.
pub(super) fn validate(
    raw: super::raw::RawDatabase,
    base: &Path,
    push: &mut impl FnMut(String, String),
) -> (PathBuf, Option<String>) {
    match (raw.path, raw.url) {
        (Some(_), Some(_)) => {
            push(
                "database".into(),
                "gives both path (a SQLite file) and url (PostgreSQL); keep the one this server uses".into(),
            );
            (PathBuf::new(), None)
        }
        (None, None) => {
            push(
                "database".into(),
                "needs path (the SQLite file, e.g. \"/var/lib/reminderd/reminderd.db\") or url (a PostgreSQL database several servers share)".into(),
            );
            (PathBuf::new(), None)
        }
        (Some(p), None) => {
            if p.as_os_str().is_empty() {
                push(
                    "database.path".into(),
                    "must not be empty; give the SQLite file, e.g. \"/var/lib/reminderd/reminderd.db\"".into(),
                );
            }
            (base.join(p), None)
        }
        (None, Some(url)) => {
            if let Err(why) = check_database_url(&url) {
                push("database.url".into(), why);
            }
            (PathBuf::new(), Some(url))
        }
    }
}

/// A `postgres://` URL without a password in it (the password comes from
/// `$REMINDERD_DATABASE_PASSWORD` or the credential `database-password`).
fn check_database_url(url: &str) -> Result<(), String> {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return Err(format!(
            "\"{url}\" is not a PostgreSQL URL; write it as postgres://USER@HOST:5432/DATABASE"
        ));
    };
    let userinfo = rest.split(['/', '?']).next().unwrap_or_default();
    if userinfo
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
    {
        return Err("has a password in it; remove it from the URL (this file is not a secret) and give it as REMINDERD_DATABASE_PASSWORD or the credential database-password".into());
    }
    if let Err(e) = url.parse::<tokio_postgres::Config>() {
        return Err(format!(
            "cannot be read: {e}; write it as postgres://USER@HOST:5432/DATABASE"
        ));
    }
    Ok(())
}
