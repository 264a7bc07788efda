-- Schema 10 → 11: the waitlist, openings and offers (issue 17).

-- Patients waiting for an earlier slot. An entry names what would suit them; offers go to the
-- entries an opening suits, in priority order (earliest wanted date, then longest waiting).
CREATE TABLE waitlist_entries (
    id              INTEGER PRIMARY KEY,
    clinic_id       INTEGER NOT NULL REFERENCES clinics(id),
    patient_id      INTEGER NOT NULL REFERENCES patients(id),
    appointment_id  INTEGER REFERENCES appointments(id),  -- the booked one an earlier slot replaces
    provider        TEXT,                  -- NULL: any provider
    earliest        TEXT NOT NULL,         -- local date 'YYYY-MM-DD' (the clinic's zone)
    latest          TEXT,                  -- local date; NULL: open-ended
    days            TEXT NOT NULL DEFAULT '1234567',  -- ISO weekdays that suit (1 = Monday)
    time_from       TEXT,                  -- local 'HH:MM'; NULL: from opening time
    time_to         TEXT,                  -- local 'HH:MM'; NULL: to closing time
    expires_at      INTEGER,               -- the entry lapses after this
    max_offers      INTEGER NOT NULL DEFAULT 3 CHECK (max_offers > 0),
    offers_sent     INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'active'
                    CHECK (state IN ('active', 'booked', 'expired', 'removed')),
    source          TEXT NOT NULL,         -- 'staff:<name>', 'import:<file>', 'reply <message id>'
    external_id     TEXT,                  -- a waitlist file's row id: a re-import updates, never adds
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (clinic_id, external_id)
);
CREATE INDEX waitlist_entries_active ON waitlist_entries (clinic_id, state);
CREATE INDEX waitlist_entries_patient ON waitlist_entries (patient_id);

-- A slot that became free and may be offered: freed by a patient's cancellation (reply or
-- feed), opened by the practice system (SIU S24, FHIR Slot free) or by staff. Never a clinic's
-- cancellation or a closed day. The claim is one statement on `state`: open → held.
CREATE TABLE openings (
    id              INTEGER PRIMARY KEY,
    clinic_id       INTEGER NOT NULL REFERENCES clinics(id),
    provider        TEXT,
    starts_at       INTEGER NOT NULL,
    duration_min    INTEGER NOT NULL CHECK (duration_min > 0),
    source          TEXT NOT NULL CHECK (source IN ('patient_cancel', 'practice', 'staff')),
    appointment_id  INTEGER UNIQUE REFERENCES appointments(id),  -- the cancelled appointment it came from
    slot_event_id   INTEGER UNIQUE REFERENCES slot_events(id),    -- the S24 / free Slot it came from
    opened_by       TEXT NOT NULL,         -- 'patient', 'feed:<name>', 'staff:<name>'
    opened_at       INTEGER NOT NULL,
    offers_from     INTEGER NOT NULL,      -- after the grace period an "oops" cancel can undo
    state           TEXT NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'held', 'filled', 'expired', 'withdrawn')),
    round           INTEGER NOT NULL DEFAULT 0,  -- offer rounds sent so far
    next_round_at   INTEGER,               -- when the next round may go out
    held_by_offer   INTEGER REFERENCES offers(id),
    hold_expires_at INTEGER,
    reason          TEXT,                  -- why withdrawn / expired / not offered
    updated_at      INTEGER NOT NULL
);
CREATE INDEX openings_state ON openings (state, next_round_at);
CREATE INDEX openings_clinic_start ON openings (clinic_id, starts_at);

-- One offer of one opening to one patient: a waitlist round's, or one of the choices sent to a
-- patient who asked to reschedule. Its message is an outbox row (rule 'offer:<id>').
CREATE TABLE offers (
    id              INTEGER PRIMARY KEY,
    opening_id      INTEGER NOT NULL REFERENCES openings(id),
    patient_id      INTEGER NOT NULL REFERENCES patients(id),
    entry_id        INTEGER REFERENCES waitlist_entries(id),     -- a waitlist offer's entry
    appointment_id  INTEGER REFERENCES appointments(id),         -- the appointment it would replace
    kind            TEXT NOT NULL CHECK (kind IN ('waitlist', 'reschedule')),
    round           INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'offered'
                    CHECK (state IN ('offered', 'accepted', 'lost', 'declined', 'expired', 'withdrawn')),
    answered_at     INTEGER,
    UNIQUE (opening_id, patient_id)
);
CREATE INDEX offers_patient ON offers (patient_id, state);
CREATE INDEX offers_opening ON offers (opening_id, state);

-- The outbox learns offers: a waitlist offer (an approved template with Accept / No buttons)
-- and a reschedule offer (a list of openings). Rebuilt as 010 did.
CREATE TABLE new_outbox (
    id               INTEGER PRIMARY KEY,
    appointment_id   INTEGER NOT NULL REFERENCES appointments(id),
    kind             TEXT NOT NULL CHECK (kind IN ('reminder', 'booking_confirmation', 'reply_ack',
                                                   'manual_reminder', 'staff_message',
                                                   'staff_template', 'staff_document',
                                                   'waitlist_offer', 'reschedule_offer')),
    rule             TEXT NOT NULL,      -- rule name; 'booking' for booking confirmations;
                                         -- 'press:<nonce>' for a manual reminder;
                                         -- 'staff:<nonce>' for a staff message (one per form);
                                         -- 'offer:<offers.id>' for a waitlist or reschedule offer
    slot_start       INTEGER NOT NULL,   -- the appointment start it was planned for
    send_at          INTEGER NOT NULL,   -- when it is due (after quiet hours)
    latest_at        INTEGER NOT NULL,   -- not sent after this: expired instead
    template         TEXT,               -- config key of the template
    language         TEXT,               -- language it was rendered in
    params           TEXT,               -- rendered parameters, JSON array
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'delivered', 'read',
                                      'failed', 'unknown', 'skipped', 'expired')),
    wamid            TEXT UNIQUE,        -- the provider's message id once accepted (a wamid,
                                         -- a Twilio SM… sid, an MSG91 request id)
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
    channel          TEXT NOT NULL DEFAULT 'whatsapp' CHECK (channel IN ('whatsapp', 'sms')),
    recipient        TEXT NOT NULL DEFAULT 'patient' CHECK (recipient IN ('patient', 'contact')),
    fallback_of      INTEGER REFERENCES new_outbox(id),  -- the WhatsApp message whose failure it replaces
    sent_by          TEXT,               -- 'staff:<name>' for a message staff wrote or chose
    pricing_category TEXT,               -- from the status webhook's pricing: utility, service, ...
    pricing_type     TEXT,               -- regular, free_customer_service, free_entry_point, ...
    billable         INTEGER CHECK (billable IN (0, 1)),
    UNIQUE (appointment_id, kind, rule, slot_start, recipient, channel)
);
INSERT INTO new_outbox (id, appointment_id, kind, rule, slot_start, send_at, latest_at, template, language, params, state, wamid, wa_id, attempts, next_attempt_at, last_error_code, last_error, reason, needs_staff, created_at, claimed_at, request_at, sent_at, delivered_at, read_at, failed_at, updated_at, channel, recipient, fallback_of, sent_by, pricing_category, pricing_type, billable)
SELECT id, appointment_id, kind, rule, slot_start, send_at, latest_at, template, language, params, state, wamid, wa_id, attempts, next_attempt_at, last_error_code, last_error, reason, needs_staff, created_at, claimed_at, request_at, sent_at, delivered_at, read_at, failed_at, updated_at, channel, recipient, fallback_of, sent_by, pricing_category, pricing_type, billable FROM outbox;
DROP TABLE outbox;
ALTER TABLE new_outbox RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, send_at);
CREATE INDEX outbox_appointment ON outbox (appointment_id);
-- One manual reminder per press, appointment, recipient and channel.
CREATE UNIQUE INDEX outbox_press ON outbox (appointment_id, rule, recipient, channel) WHERE kind = 'manual_reminder';
-- One staff message per form: a double-click or a resubmitted form finds its row.
CREATE UNIQUE INDEX outbox_staff ON outbox (rule, recipient, channel) WHERE kind IN ('staff_message', 'staff_template', 'staff_document');
-- The conversation on a patient's page and the month's billable messages.
CREATE INDEX outbox_sent_at ON outbox (sent_at);
-- One SMS per failed WhatsApp message: a fallback is written once, whatever retries or crashes.
CREATE UNIQUE INDEX outbox_fallback ON outbox (fallback_of) WHERE fallback_of IS NOT NULL;

