-- Schema 16 → 17: leases for the work only one instance may do at a time (issue 21).

-- A singleton's lease: who holds it, until when, and how many times it has changed hands.
-- The holder renews it at each run; another instance takes it only once it has expired, and
-- the epoch then goes up by one. Each write done under it checks, in its own transaction,
-- that the lease still carries the holder and the epoch it was taken with, so a holder that
-- stalled past the expiry and woke up changes nothing (schema 17).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,      -- 'waitlist'
    holder      TEXT NOT NULL,         -- the instance's name, as in instances
    epoch       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL       -- unix seconds
) WITHOUT ROWID;
