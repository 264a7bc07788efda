-- Schema 2 → 3: what arrives through the webhook, and what patients answered.

-- Every signed webhook body exactly as received, so a bug in processing can be replayed.
CREATE TABLE inbound_events (
    id            INTEGER PRIMARY KEY,
    received_at   INTEGER NOT NULL,
    body          TEXT NOT NULL,
    processed_at  INTEGER,
    outcome       TEXT                   -- 'applied', 'malformed', or the error that stopped it
);

-- One row per inbound message (deduplicated by the API's message id: Meta retries webhooks).
CREATE TABLE replies (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    event_id        INTEGER REFERENCES inbound_events(id),
    from_phone      TEXT NOT NULL,        -- E.164 as far as it can be read
    patient_id      INTEGER REFERENCES patients(id),
    appointment_id  INTEGER REFERENCES appointments(id),
    outbox_id       INTEGER REFERENCES outbox(id),   -- the message it answered, if known
    kind            TEXT NOT NULL,        -- button, interactive, text, or the API's type
    text            TEXT,                 -- what the patient typed or the button's payload
    intent          TEXT NOT NULL CHECK (intent IN ('confirm', 'cancel', 'reschedule', 'stop', 'start', 'unknown', 'none')),
    outcome         TEXT NOT NULL CHECK (outcome IN ('applied', 'needs_staff', 'ignored')),
    reason          TEXT,                 -- why it needs staff or was ignored
    handled_by      TEXT,                 -- the staff member who dealt with it
    received_at     INTEGER NOT NULL
);
CREATE INDEX replies_needs_staff ON replies (outcome, received_at);
CREATE INDEX replies_appointment ON replies (appointment_id);
