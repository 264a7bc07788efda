-- Schema 4 → 5: hardening.

-- The front desk's sign-in (issue 11). Failed sign-ins are counted per (name as typed, client
-- address) and per name from all addresses together, for names that exist and names that do
-- not alike, so the answers never tell which accounts exist. The counts move to their own
-- table; staff_users no longer keeps them.
CREATE TABLE sign_in_attempts (
    name          TEXT NOT NULL COLLATE NOCASE,  -- the name as typed, known or not
    client        TEXT NOT NULL,                 -- the client's IP address; '*' for all of them
    attempts      INTEGER NOT NULL,              -- counted before the password is checked
    window_start  INTEGER NOT NULL,              -- the count restarts desk.lockout after this
    locked_until  INTEGER,                       -- sign-in paused before this instant
    PRIMARY KEY (name, client)
) WITHOUT ROWID;
ALTER TABLE staff_users DROP COLUMN failed_logins;
ALTER TABLE staff_users DROP COLUMN locked_until;
-- A disabled account cannot sign in (`reminderd user disable`); NULL: enabled.
ALTER TABLE staff_users ADD COLUMN disabled_at INTEGER;
-- The last request of a session (written at most once a minute), for desk.idle_timeout.
ALTER TABLE staff_sessions ADD COLUMN last_seen_at INTEGER;

-- A replayed webhook body (Meta retries; an attacker may replay a captured one) is recognised
-- by its sha256 and counted, not stored again. Bodies from before v5 have no hash.
ALTER TABLE inbound_events ADD COLUMN body_sha256 TEXT;
ALTER TABLE inbound_events ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbound_events ADD COLUMN last_replay_at INTEGER;
CREATE UNIQUE INDEX inbound_events_body ON inbound_events (body_sha256);
