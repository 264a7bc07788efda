-- Schema 4 → 5: hardening.

-- A replayed webhook body (Meta retries; an attacker may replay a captured one) is recognised
-- by its sha256 and counted, not stored again. Bodies from before v5 have no hash.
ALTER TABLE inbound_events ADD COLUMN body_sha256 TEXT;
ALTER TABLE inbound_events ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbound_events ADD COLUMN last_replay_at INTEGER;
CREATE UNIQUE INDEX inbound_events_body ON inbound_events (body_sha256);
