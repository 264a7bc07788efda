-- Schema 5 → 6: the front desk's second pass (issue 13).

-- desk statuses: a patient marked arrived at the desk (when, and the staff member's name).
-- Arrival is not a schedule status: the patient is still booked until completed or a
-- no-show, and an upload never changes it.
ALTER TABLE appointments ADD COLUMN arrived_at INTEGER;
ALTER TABLE appointments ADD COLUMN arrived_by TEXT;

-- reply media:
-- The file a patient sent (a photo, voice note, video, document or sticker): WhatsApp's media
-- id and what the webhook said of the file. The bytes are never stored: the desk fetches them
-- through the Cloud API when staff open them, and this row goes with its reply. The caption is
-- the reply's text.
CREATE TABLE reply_media (
    reply_id   INTEGER PRIMARY KEY REFERENCES replies(id) ON DELETE CASCADE,
    media_id   TEXT NOT NULL,         -- the Cloud API's id (downloadable about 30 days)
    mime_type  TEXT,                  -- as the webhook gave it, e.g. audio/ogg; codecs=opus
    sha256     TEXT,                  -- as the webhook gave it (base64); checked on download
    filename   TEXT,                  -- a document's name on the patient's phone
    voice      INTEGER NOT NULL DEFAULT 0 CHECK (voice IN (0, 1))  -- a recorded voice note
);

-- remind now:
-- Staff send a reminder on demand ("Remind now"): an outbox row of its own kind,
-- 'manual_reminder'. Widening the kind's CHECK constraint means rebuilding the table (SQLite's
-- 12-step procedure: store::migrate runs the steps with foreign keys off and checks them before
-- it commits). Every id and column is copied, so replies.outbox_id and the Cloud API's callback
-- data (the outbox id) still name the same messages; both indexes are made again. The rename
-- leaves the table's name quoted in sqlite_schema, as schema.sql writes it.
CREATE TABLE new_outbox (
    id               INTEGER PRIMARY KEY,
    appointment_id   INTEGER NOT NULL REFERENCES appointments(id),
    kind             TEXT NOT NULL CHECK (kind IN ('reminder', 'booking_confirmation', 'reply_ack',
                                                   'manual_reminder')),
    rule             TEXT NOT NULL,      -- rule name; 'booking' for booking confirmations;
                                         -- 'press:<nonce>' for a manual reminder
    slot_start       INTEGER NOT NULL,   -- the appointment start it was planned for
    send_at          INTEGER NOT NULL,   -- when it is due (after quiet hours)
    latest_at        INTEGER NOT NULL,   -- not sent after this: expired instead
    template         TEXT,               -- config key of the template
    language         TEXT,               -- language it was rendered in
    params           TEXT,               -- rendered parameters, JSON array
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'delivered', 'read',
                                      'failed', 'unknown', 'skipped', 'expired')),
    wamid            TEXT UNIQUE,        -- the Cloud API's message id once accepted
    wa_id            TEXT,               -- the recipient's WhatsApp id as the API reported it
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    last_error_code  INTEGER,
    last_error       TEXT,
    reason           TEXT,               -- why skipped / expired / held
    needs_staff      TEXT,               -- set when a person must act, with what to do
    created_at       INTEGER NOT NULL,
    claimed_at       INTEGER,
    request_at       INTEGER,            -- when its request went out; NULL: claimed, not yet sent
    sent_at          INTEGER,
    delivered_at     INTEGER,
    read_at          INTEGER,
    failed_at        INTEGER,
    updated_at       INTEGER NOT NULL,
    UNIQUE (appointment_id, kind, rule, slot_start)
);
INSERT INTO new_outbox (id, appointment_id, kind, rule, slot_start, send_at, latest_at, template, language, params, state, wamid, wa_id, attempts, next_attempt_at, last_error_code, last_error, reason, needs_staff, created_at, claimed_at, request_at, sent_at, delivered_at, read_at, failed_at, updated_at)
SELECT id, appointment_id, kind, rule, slot_start, send_at, latest_at, template, language, params, state, wamid, wa_id, attempts, next_attempt_at, last_error_code, last_error, reason, needs_staff, created_at, claimed_at, request_at, sent_at, delivered_at, read_at, failed_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE new_outbox RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, send_at);
CREATE INDEX outbox_appointment ON outbox (appointment_id);
-- One manual reminder per press and appointment, whatever happens to the appointment between
-- a press and its resubmission.
CREATE UNIQUE INDEX outbox_press ON outbox (appointment_id, rule) WHERE kind = 'manual_reminder';
