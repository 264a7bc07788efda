//! Leases: the work only one instance may do at a time (the waitlist's offer rounds), held by
//! one instance until it lapses, with an epoch that fences a holder who stalled past it.

use chrono::{DateTime, Utc};

use super::sql::{OptionalExtension as _, TransactionBehavior, params};
use super::{Store, StoreError};

/// A lease this instance holds: its name and the epoch it was taken with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What it is for.
    pub name: String,
    /// How many times it had changed hands when this instance took it.
    pub epoch: i64,
}

impl Store {
    /// Takes or renews the lease `name` until `now + ttl`: `Some` when this instance holds it
    /// (newly, with its epoch one up, or still, with the same one), `None` while another
    /// instance's has not lapsed.
    pub fn take_lease(
        &mut self,
        name: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        let (t, until) = (now.timestamp(), (now + ttl).timestamp());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held: Option<(String, i64, i64)> = tx
            .query_row(
                "SELECT holder, epoch, expires_at FROM leases WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let epoch = match held {
            None => {
                tx.execute(
                    "INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?1, ?2, 1, ?3)",
                    params![name, self.instance, until],
                )?;
                1
            }
            Some((holder, epoch, _)) if holder == self.instance => {
                tx.execute(
                    "UPDATE leases SET expires_at = ?2 WHERE name = ?1",
                    params![name, until],
                )?;
                epoch
            }
            Some((_, epoch, expires_at)) if expires_at <= t => {
                tx.execute(
                    "UPDATE leases SET holder = ?2, epoch = ?3, expires_at = ?4 WHERE name = ?1",
                    params![name, self.instance, epoch + 1, until],
                )?;
                epoch + 1
            }
            Some(_) => return Ok(None),
        };
        tx.commit()?;
        Ok(Some(Lease {
            name: name.to_string(),
            epoch,
        }))
    }

    /// Runs `f` all or nothing, and only while `lease` is still this instance's with the same
    /// epoch (checked in the same transaction, so no other instance can take it over in
    /// between): `None`, with nothing written, once another instance has taken it.
    pub fn under_lease<T>(
        &mut self,
        lease: &Lease,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.atomically(|s| {
            let ours: bool = s.conn.query_row(
                "SELECT count(*) > 0 FROM leases WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
                params![lease.name, s.instance, lease.epoch],
                |r| r.get(0),
            )?;
            if !ours {
                return Ok(None);
            }
            f(s).map(Some)
        })
    }

    /// Gives up this instance's leases (at shutdown, or at the end of a command), so another
    /// instance takes the work at its next run rather than after the lapse.
    pub fn release_leases(&mut self) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE leases SET expires_at = 0 WHERE holder = ?1",
            [&self.instance],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("instant")
    }

    #[test]
    fn one_instance_holds_a_lease_until_it_lapses_and_a_stale_holder_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = Store::open_for_test(dir.path());
        let mut b = a.reopen_for_test();
        let ttl = chrono::Duration::seconds(60);
        let la = a
            .take_lease("waitlist", ttl, at(0))
            .expect("take")
            .expect("free");
        assert_eq!(la.epoch, 1);
        assert_eq!(b.take_lease("waitlist", ttl, at(30)).expect("take"), None);
        // Renewed by its holder: same epoch, later expiry.
        assert_eq!(
            a.take_lease("waitlist", ttl, at(50)).expect("take"),
            Some(la.clone())
        );
        assert_eq!(b.take_lease("waitlist", ttl, at(100)).expect("take"), None);
        // A stalls past the lapse; B takes over with the next epoch.
        let lb = b
            .take_lease("waitlist", ttl, at(111))
            .expect("take")
            .expect("lapsed");
        assert_eq!(lb.epoch, 2);
        let write = |s: &mut Store, what: &str| {
            s.conn
                .execute(
                    "INSERT INTO cron_runs (task, run_at) VALUES (?1, 1)",
                    [what],
                )
                .map_err(StoreError::from)
        };
        assert_eq!(
            a.under_lease(&la, |s| write(s, "stale")).expect("run"),
            None
        );
        assert_eq!(
            b.under_lease(&lb, |s| write(s, "fresh")).expect("run"),
            Some(1)
        );
        let tasks: Vec<String> = a
            .conn
            .prepare("SELECT task FROM cron_runs ORDER BY task")
            .expect("prepare")
            .query_map((), |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(tasks, ["fresh"], "the stale holder wrote nothing");
        // Released at shutdown: A takes it at once, with a third epoch.
        b.release_leases().expect("release");
        let again = a
            .take_lease("waitlist", ttl, at(112))
            .expect("take")
            .expect("free");
        assert_eq!(again.epoch, 3);
        assert_eq!(b.under_lease(&lb, |s| write(s, "late")).expect("run"), None);
    }

    #[test]
    fn a_postgres_database_at_schema_1_gains_the_leases_when_a_newer_build_connects() {
        let Some(pg) = crate::store::sql::testing::fresh_database() else {
            return;
        };
        let old = crate::store::sql::Conn::postgres(&pg).expect("connect");
        old.execute_batch(crate::store::PG_SCHEMA_SQL)
            .expect("schema 1");
        drop(old);
        let mut store = Store::connect(&pg).expect("upgrade");
        assert_eq!(store.schema_version().expect("version"), 2);
        assert!(
            store
                .take_lease("waitlist", chrono::Duration::seconds(60), at(0))
                .expect("take")
                .is_some()
        );
        // Connecting again finds it current and changes nothing.
        let again = Store::connect(&pg).expect("again");
        assert_eq!(again.schema_version().expect("version"), 2);
    }
}
