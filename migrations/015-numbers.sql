-- Schema 14 → 15: several WhatsApp numbers in several business accounts (issue 21).

-- The account's standing per WhatsApp Business Account: a group's numbers may belong to
-- several accounts, and one restricted account must not stop another's numbers. A row with
-- waba_id '' (an event that named no account, and the one row before schema 15) stops every
-- number.
ALTER TABLE account_health RENAME TO account_health_v14;
CREATE TABLE account_health (
    waba_id     TEXT PRIMARY KEY,          -- the business account; '' an event that named none
    event       TEXT NOT NULL,             -- the last account_update event, e.g. ACCOUNT_RESTRICTION
    blocked     INTEGER NOT NULL CHECK (blocked IN (0, 1)),  -- 1: sending must stop
    reason      TEXT,                      -- what Meta said, for staff and the admin
    until_at    INTEGER,                   -- a restriction's expiry, when Meta gave one
    event_id    INTEGER REFERENCES inbound_events(id),
    updated_at  INTEGER NOT NULL
);
INSERT INTO account_health (waba_id, event, blocked, reason, until_at, event_id, updated_at)
SELECT '', event, blocked, reason, until_at, event_id, updated_at FROM account_health_v14;
DROP TABLE account_health_v14;

-- Templates are approved per business account, and Meta pauses them per account: what it said
-- of a template is kept per account too. Rows before schema 15 named none ('').
ALTER TABLE template_health RENAME TO template_health_v14;
CREATE TABLE template_health (
    waba_id            TEXT NOT NULL DEFAULT '',  -- the business account; '' when the event named none
    name               TEXT NOT NULL,      -- the template's name at Meta
    language           TEXT NOT NULL DEFAULT '',
    status             TEXT,               -- APPROVED, PAUSED, DISABLED, REJECTED, FLAGGED, ...
    quality            TEXT,               -- GREEN, YELLOW, RED, UNKNOWN
    category           TEXT,               -- UTILITY, MARKETING, AUTHENTICATION (completed change)
    impending_category TEXT,               -- a change Meta announced and has not made yet
    category_change_at INTEGER,            -- when that change takes effect
    reason             TEXT,               -- Meta's reason, as given
    event_id           INTEGER REFERENCES inbound_events(id),
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (waba_id, name, language)
) WITHOUT ROWID;
INSERT INTO template_health (waba_id, name, language, status, quality, category, impending_category,
                             category_change_at, reason, event_id, updated_at)
SELECT '', name, language, status, quality, category, impending_category, category_change_at,
       reason, event_id, updated_at FROM template_health_v14;
DROP TABLE template_health_v14;

-- Each business number's standing as Meta last reported it (phone_number_quality_update).
CREATE TABLE number_health (
    display_phone_number TEXT PRIMARY KEY, -- the business number as Meta shows it (digits)
    waba_id     TEXT,                      -- the business account the event came in
    event       TEXT NOT NULL,             -- THROUGHPUT_UPGRADE, FLAGGED, UNFLAGGED, DOWNGRADE, ...
    messaging_limit TEXT,                  -- TIER_250 ... TIER_UNLIMITED, when Meta gave one
    event_id    INTEGER REFERENCES inbound_events(id),
    updated_at  INTEGER NOT NULL           -- when Meta says it happened (else when it arrived)
);

-- The business number a patient's file was sent to: the desk fetches it with that number's
-- token (a number in another business account may have its own).
ALTER TABLE reply_media ADD COLUMN phone_number_id TEXT;
