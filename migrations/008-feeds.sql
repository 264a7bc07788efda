-- Schema 7 → 8: schedule feeds (issue 15): HL7 v2 SIU and FHIR R4 beside the CSV.

-- Each appointment remembers its source: 'csv' (an upload or `reminderd import`) or the name
-- of the feed ([feeds.NAME]) that told us of it, unless that feed is configured to share the
-- CSV's ids. The same external id from two sources is two appointments, so the once-only key
-- becomes (clinic, source, external id). Changing a table's UNIQUE constraint means rebuilding
-- it (SQLite's 12-step procedure, as schema 6 did for the outbox): every id and column is
-- copied, so the outbox, replies and audit rows still name the same appointments.
CREATE TABLE new_appointments (
    id                INTEGER PRIMARY KEY,
    clinic_id         INTEGER NOT NULL REFERENCES clinics(id),
    source            TEXT NOT NULL DEFAULT 'csv',   -- 'csv' or a feed's name
    external_id       TEXT NOT NULL,      -- the source's appointment id (CSV id, SCH-2, FHIR id)
    patient_id        INTEGER NOT NULL REFERENCES patients(id),
    provider          TEXT,
    starts_at         INTEGER NOT NULL,
    duration_min      INTEGER NOT NULL CHECK (duration_min > 0),
    status            TEXT NOT NULL DEFAULT 'booked'
                      CHECK (status IN ('booked', 'cancelled', 'completed', 'no_show')),
    cancelled_by      TEXT CHECK (cancelled_by IN ('clinic', 'patient', 'source')),
    status_at         INTEGER NOT NULL,
    response          TEXT NOT NULL DEFAULT 'none'
                      CHECK (response IN ('none', 'confirmed', 'declined', 'reschedule_requested')),
    response_at       INTEGER,
    response_text     TEXT,               -- the reply (words or button payload) that set it
    source_import_id  INTEGER REFERENCES imports(id),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    arrived_at        INTEGER,            -- when the desk marked the patient arrived
    arrived_by        TEXT,               -- and who did
    UNIQUE (clinic_id, source, external_id)
);
INSERT INTO new_appointments (id, clinic_id, source, external_id, patient_id, provider, starts_at, duration_min, status, cancelled_by, status_at, response, response_at, response_text, source_import_id, created_at, updated_at, arrived_at, arrived_by)
SELECT id, clinic_id, 'csv', external_id, patient_id, provider, starts_at, duration_min, status, cancelled_by, status_at, response, response_at, response_text, source_import_id, created_at, updated_at, arrived_at, arrived_by FROM appointments;
DROP TABLE appointments;
ALTER TABLE new_appointments RENAME TO appointments;
CREATE INDEX appointments_starts_at ON appointments (starts_at);
CREATE INDEX appointments_patient ON appointments (patient_id);
CREATE INDEX appointments_created_at ON appointments (created_at);

-- Every message a feed delivered, exactly as received, stored before it is applied: an HL7 v2
-- message (its MSH-10 control id is message_id) or a FHIR Appointment with its Patient
-- (message_id: the resources' ids and versions). A message id seen before is acknowledged
-- and counted in `replays`, never applied twice. A refused message keeps why, and can be
-- applied again after a configuration fix.
CREATE TABLE feed_messages (
    id              INTEGER PRIMARY KEY,
    feed            TEXT NOT NULL,          -- [feeds.NAME]
    message_id      TEXT NOT NULL,          -- MSH-10, or the FHIR resources' ids and versions
    kind            TEXT NOT NULL,          -- 'SIU^S12', 'ADT^A01', 'Appointment', ...
    body            TEXT NOT NULL,          -- as received
    received_at     INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'received'
                    CHECK (state IN ('received', 'applied', 'refused')),
    outcome         TEXT,                   -- what applying did: new, updated, cancelled, ...
    error           TEXT,                   -- why it was refused, in words
    external_id     TEXT,                   -- the appointment's id in the source, once read
    appointment_id  INTEGER REFERENCES appointments(id),
    applied_at      INTEGER,
    replays         INTEGER NOT NULL DEFAULT 0,
    last_replay_at  INTEGER,
    UNIQUE (feed, message_id)
);
CREATE INDEX feed_messages_feed ON feed_messages (feed, state, received_at);

-- How each feed is doing: the freshness guard and the Feeds page read this.
CREATE TABLE feed_status (
    feed               TEXT PRIMARY KEY,    -- [feeds.NAME]
    last_message_at    INTEGER,             -- HL7: the last message received
    last_sync_at       INTEGER,             -- FHIR: the last sync attempt that ended
    last_success_at    INTEGER,             -- FHIR: the last sync that read everything
    last_full_sync_at  INTEGER,             -- FHIR: the last full sync of the horizon
    cursor             TEXT,                -- FHIR: the server's time of the last sync
    last_error         TEXT,
    last_error_at      INTEGER
);

-- Time slots a feed blocked (SIU S23) or opened (S24): kept for the waitlist.
CREATE TABLE slot_events (
    id            INTEGER PRIMARY KEY,
    feed          TEXT NOT NULL,
    message_id    INTEGER REFERENCES feed_messages(id),
    clinic_id     INTEGER NOT NULL REFERENCES clinics(id),
    kind          TEXT NOT NULL CHECK (kind IN ('blocked', 'opened')),
    starts_at     INTEGER NOT NULL,
    duration_min  INTEGER NOT NULL CHECK (duration_min > 0),
    provider      TEXT,
    location      TEXT,
    recorded_at   INTEGER NOT NULL
);
CREATE INDEX slot_events_clinic ON slot_events (clinic_id, starts_at);

-- What the practice system must be told of a patient's answer to an appointment that came
-- from a feed: written in the same transaction as the answer, then done by the feed's
-- write-back (FHIR, when on and allowed) or handed to staff ('staff': do it by hand in the
-- practice system) until settled at the desk.
CREATE TABLE source_updates (
    id               INTEGER PRIMARY KEY,
    appointment_id   INTEGER NOT NULL REFERENCES appointments(id),
    feed             TEXT NOT NULL,         -- the appointment's source
    action           TEXT NOT NULL CHECK (action IN ('confirm', 'cancel')),
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'done', 'staff', 'settled', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    error            TEXT,                  -- why it fell to staff, or the last failure
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    settled_by       TEXT,                  -- the staff member who did it by hand
    settled_at       INTEGER
);
CREATE INDEX source_updates_state ON source_updates (state, next_attempt_at);
CREATE INDEX source_updates_appointment ON source_updates (appointment_id);
