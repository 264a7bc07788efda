-- Schema 9 → 10: conversations and the WhatsApp account's health (issue 16).

-- The outbox learns staff messages (free-form text inside the patient's 24-hour window, the
-- clinic's "please call us" template outside it, a document from the clinic's library), who
-- wrote them, and what Meta bills for each message (the status webhook's pricing object, paid
-- for utility templates and service messages since 2026-10-01). A changed CHECK means
-- rebuilding the table, as 006 and 007 did: ids kept, indexes made again.
CREATE TABLE new_outbox (
    id               INTEGER PRIMARY KEY,
    appointment_id   INTEGER NOT NULL REFERENCES appointments(id),
    kind             TEXT NOT NULL CHECK (kind IN ('reminder', 'booking_confirmation', 'reply_ack',
                                                   'manual_reminder', 'staff_message',
                                                   'staff_template', 'staff_document')),
    rule             TEXT NOT NULL,      -- rule name; 'booking' for booking confirmations;
                                         -- 'press:<nonce>' for a manual reminder;
                                         -- 'staff:<nonce>' for a staff message (one per form)
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
INSERT INTO new_outbox (id, appointment_id, kind, rule, slot_start, send_at, latest_at, template, language, params, state, wamid, wa_id, attempts, next_attempt_at, last_error_code, last_error, reason, needs_staff, created_at, claimed_at, request_at, sent_at, delivered_at, read_at, failed_at, updated_at, channel, recipient, fallback_of)
SELECT id, appointment_id, kind, rule, slot_start, send_at, latest_at, template, language, params, state, wamid, wa_id, attempts, next_attempt_at, last_error_code, last_error, reason, needs_staff, created_at, claimed_at, request_at, sent_at, delivered_at, read_at, failed_at, updated_at, channel, recipient, fallback_of FROM outbox;
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

-- What Meta said of each template (message_template_status_update, _quality_update and
-- template_category_update webhooks), per name and language ('' when the event named none).
-- Dispatch holds messages whose template is paused, disabled, rejected or now marketing.
CREATE TABLE template_health (
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
    PRIMARY KEY (name, language)
) WITHOUT ROWID;

-- The WhatsApp Business account's standing (account_update webhooks): one row, absent until an
-- event arrives. A restriction or a disabled account stops sending with this reason.
CREATE TABLE account_health (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    event       TEXT NOT NULL,             -- the last account_update event, e.g. ACCOUNT_RESTRICTION
    blocked     INTEGER NOT NULL CHECK (blocked IN (0, 1)),  -- 1: sending must stop
    reason      TEXT,                      -- what Meta said, for staff and the admin
    until_at    INTEGER,                   -- a restriction's expiry, when Meta gave one
    event_id    INTEGER REFERENCES inbound_events(id),
    updated_at  INTEGER NOT NULL
);

-- A patient's business-scoped user id (BSUID, the webhook's user_id / from_user_id): a sender
-- with a username and no phone number is still recognised.
ALTER TABLE patients ADD COLUMN wa_user_id TEXT;
CREATE INDEX patients_wa_user_id ON patients (wa_user_id) WHERE wa_user_id IS NOT NULL;
