-- Schema 11 → 12: feedback after the visit, retention, a patient's data, roles (issue 18), and
-- booking a held opening through the practice system (issue 17's confirm = "fhir").

-- What a patient scored a visit (1–5), one per appointment: the first score counts; a later
-- comment goes to the staff replies like any other text.
CREATE TABLE feedback (
    appointment_id  INTEGER PRIMARY KEY REFERENCES appointments(id),
    patient_id      INTEGER NOT NULL REFERENCES patients(id),
    score           INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    outbox_id       INTEGER REFERENCES outbox(id),    -- the request it answered
    reply_id        INTEGER REFERENCES replies(id),   -- the reply that carried the score
    channel         TEXT NOT NULL DEFAULT 'whatsapp' CHECK (channel IN ('whatsapp', 'sms')),
    received_at     INTEGER NOT NULL
);
CREATE INDEX feedback_received ON feedback (received_at);

-- Consent per patient and channel, as a history: the newest row for (patient, channel) is the
-- standing answer. Sources: 'import:<file>' (the consent column), 'reply <message id>' (START,
-- STOP), 'staff:<name>'.
CREATE TABLE consents (
    id           INTEGER PRIMARY KEY,
    patient_id   INTEGER NOT NULL REFERENCES patients(id),
    channel      TEXT NOT NULL CHECK (channel IN ('whatsapp', 'sms')),
    given        INTEGER NOT NULL CHECK (given IN (0, 1)),
    source       TEXT NOT NULL,
    recorded_at  INTEGER NOT NULL
);
CREATE INDEX consents_patient ON consents (patient_id, channel, recorded_at);

-- An opt-out outlives the patient's erasure as the least needed to honour it: the SHA-256 of the
-- E.164 number (no name, no clinic data). A patient imported later with that number starts
-- opted out.
CREATE TABLE opt_outs (
    phone_sha256  TEXT NOT NULL,
    channel       TEXT NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'all')),
    since         INTEGER NOT NULL,
    PRIMARY KEY (phone_sha256, channel)
) WITHOUT ROWID;

-- That an erasure happened, never what was erased.
CREATE TABLE erasures (
    id            INTEGER PRIMARY KEY,
    clinic_id     INTEGER NOT NULL REFERENCES clinics(id),
    patient_id    INTEGER NOT NULL,      -- the row kept, emptied, for the statistics
    erased_by     TEXT NOT NULL,         -- 'staff:<name>' or 'cli'
    forced        INTEGER NOT NULL DEFAULT 0 CHECK (forced IN (0, 1)),  -- despite an upcoming appointment
    erased_at     INTEGER NOT NULL
);
ALTER TABLE patients ADD COLUMN erased_at INTEGER;

-- Retention: raw bodies and words are removed after their age; the rows, states and counts stay.
ALTER TABLE inbound_events ADD COLUMN purged_at INTEGER;
ALTER TABLE feed_messages ADD COLUMN purged_at INTEGER;
CREATE INDEX inbound_events_received ON inbound_events (received_at);
CREATE INDEX feed_messages_received ON feed_messages (received_at);

-- Roles on the desk: exports, erasure and per-patient drill-downs are for admins. Accounts that
-- exist could do all of that before, so they become admins; new ones are staff unless named.
ALTER TABLE staff_users ADD COLUMN role TEXT NOT NULL DEFAULT 'staff' CHECK (role IN ('staff', 'admin'));
UPDATE staff_users SET role = 'admin';

-- A reply can be a feedback score. Rebuilt for the CHECK, as the outbox is.
CREATE TABLE new_replies (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    event_id        INTEGER REFERENCES inbound_events(id),
    from_phone      TEXT NOT NULL,        -- E.164 as far as it can be read
    patient_id      INTEGER REFERENCES patients(id),
    appointment_id  INTEGER REFERENCES appointments(id),
    outbox_id       INTEGER REFERENCES outbox(id),   -- the message it answered, if known
    kind            TEXT NOT NULL,        -- button, interactive, text, or the API's type
    text            TEXT,                 -- what the patient typed or the button's payload
    intent          TEXT NOT NULL CHECK (intent IN ('confirm', 'cancel', 'reschedule', 'stop',
                                                    'start', 'feedback', 'unknown', 'none')),
    outcome         TEXT NOT NULL CHECK (outcome IN ('applied', 'needs_staff', 'ignored')),
    reason          TEXT,                 -- why it needs staff or was ignored
    handled_by      TEXT,                 -- the staff member who dealt with it
    received_at     INTEGER NOT NULL,
    handled_at      INTEGER,
    channel         TEXT NOT NULL DEFAULT 'whatsapp' CHECK (channel IN ('whatsapp', 'sms')),
    purged_at       INTEGER               -- text removed by the retention purge
);
INSERT INTO new_replies (id, message_id, event_id, from_phone, patient_id, appointment_id, outbox_id, kind, text, intent, outcome, reason, handled_by, received_at, handled_at, channel, purged_at)
SELECT id, message_id, event_id, from_phone, patient_id, appointment_id, outbox_id, kind, text, intent, outcome, reason, handled_by, received_at, handled_at, channel, NULL FROM replies;
DROP TABLE replies;
ALTER TABLE new_replies RENAME TO replies;
CREATE INDEX replies_needs_staff ON replies (outcome, received_at);
CREATE INDEX replies_appointment ON replies (appointment_id);
CREATE INDEX replies_received ON replies (received_at);

-- A held opening can be booked in the practice system by the FHIR write-back (confirm = "fhir"):
-- a 'book' update names the offer whose hold it books. Rebuilt for the CHECK.
CREATE TABLE new_source_updates (
    id               INTEGER PRIMARY KEY,
    appointment_id   INTEGER NOT NULL REFERENCES appointments(id),
    feed             TEXT NOT NULL,         -- the appointment's source
    action           TEXT NOT NULL CHECK (action IN ('confirm', 'cancel', 'book')),
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'done', 'staff', 'settled', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    error            TEXT,                  -- why it fell to staff, or the last failure
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    settled_by       TEXT,                  -- the staff member who did it by hand
    settled_at       INTEGER,
    offer_id         INTEGER UNIQUE REFERENCES offers(id)  -- a 'book': the accepted offer
);
INSERT INTO new_source_updates (id, appointment_id, feed, action, state, attempts, next_attempt_at, error, created_at, updated_at, settled_by, settled_at)
SELECT id, appointment_id, feed, action, state, attempts, next_attempt_at, error, created_at, updated_at, settled_by, settled_at FROM source_updates;
DROP TABLE source_updates;
ALTER TABLE new_source_updates RENAME TO source_updates;
CREATE INDEX source_updates_state ON source_updates (state, next_attempt_at);
CREATE INDEX source_updates_appointment ON source_updates (appointment_id);

-- The outbox learns feedback requests and keeps when its words were purged. Rebuilt as 011 did.
CREATE TABLE new_outbox (
    id               INTEGER PRIMARY KEY,
    appointment_id   INTEGER NOT NULL REFERENCES appointments(id),
    kind             TEXT NOT NULL CHECK (kind IN ('reminder', 'booking_confirmation', 'reply_ack',
                                                   'manual_reminder', 'staff_message',
                                                   'staff_template', 'staff_document',
                                                   'waitlist_offer', 'reschedule_offer',
                                                   'feedback')),
    rule             TEXT NOT NULL,      -- rule name; 'booking' for booking confirmations;
                                         -- 'press:<nonce>' for a manual reminder;
                                         -- 'staff:<nonce>' for a staff message (one per form);
                                         -- 'offer:<offers.id>' for a waitlist or reschedule offer;
                                         -- the rule's name for a feedback request
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
    purged_at        INTEGER,            -- params (the rendered words) removed by the retention purge
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

