-- Schema 6 → 7: channels (issue 14): SMS beside WhatsApp, caregivers, what a number taught us.

-- Who is reminded and how, as the schedule says (NULL channel: WhatsApp, falling back to SMS
-- as the clinic's policy allows; 'none': no automated message, staff call). A caregiver
-- (contact_*) is reminded instead of or beside the patient, as `remind` says.
ALTER TABLE patients ADD COLUMN channel TEXT CHECK (channel IN ('whatsapp', 'sms', 'none'));
ALTER TABLE patients ADD COLUMN contact_name TEXT;
ALTER TABLE patients ADD COLUMN contact_phone TEXT;
ALTER TABLE patients ADD COLUMN contact_relation TEXT;
ALTER TABLE patients ADD COLUMN remind TEXT NOT NULL DEFAULT 'patient'
    CHECK (remind IN ('patient', 'contact', 'both'));
CREATE INDEX patients_contact_phone ON patients (contact_phone);

-- What a phone number taught us, whoever's it is (a patient's or a caregiver's, in any
-- clinic): WhatsApp said it is not on WhatsApp, so it gets SMS until sms_only_until; it
-- opted out of SMS (STOP by SMS, or the provider refused it as unsubscribed).
CREATE TABLE numbers (
    phone              TEXT PRIMARY KEY,   -- E.164
    sms_only_since     INTEGER,
    sms_only_until     INTEGER,            -- WhatsApp is tried again after this
    sms_only_reason    TEXT,
    sms_opted_out_at   INTEGER,
    sms_opt_out_source TEXT,               -- 'reply', 'twilio 21610', ...
    updated_at         INTEGER NOT NULL
) WITHOUT ROWID;

-- The channel a reply came by, and what sent a webhook body.
ALTER TABLE replies ADD COLUMN channel TEXT NOT NULL DEFAULT 'whatsapp'
    CHECK (channel IN ('whatsapp', 'sms'));
ALTER TABLE inbound_events ADD COLUMN source TEXT NOT NULL DEFAULT 'whatsapp';

-- The outbox gains its channel, its recipient and the WhatsApp message an SMS replaces; the
-- once-only key becomes (appointment, kind, rule, slot start, recipient, channel). A changed
-- UNIQUE constraint means rebuilding the table, as 006 did: ids kept, indexes made again.
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
    UNIQUE (appointment_id, kind, rule, slot_start, recipient, channel)
);
INSERT INTO new_outbox (id, appointment_id, kind, rule, slot_start, send_at, latest_at, template, language, params, state, wamid, wa_id, attempts, next_attempt_at, last_error_code, last_error, reason, needs_staff, created_at, claimed_at, request_at, sent_at, delivered_at, read_at, failed_at, updated_at)
SELECT id, appointment_id, kind, rule, slot_start, send_at, latest_at, template, language, params, state, wamid, wa_id, attempts, next_attempt_at, last_error_code, last_error, reason, needs_staff, created_at, claimed_at, request_at, sent_at, delivered_at, read_at, failed_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE new_outbox RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, send_at);
CREATE INDEX outbox_appointment ON outbox (appointment_id);
-- One manual reminder per press, appointment, recipient and channel.
CREATE UNIQUE INDEX outbox_press ON outbox (appointment_id, rule, recipient, channel) WHERE kind = 'manual_reminder';
-- One SMS per failed WhatsApp message: a fallback is written once, whatever retries or crashes.
CREATE UNIQUE INDEX outbox_fallback ON outbox (fallback_of) WHERE fallback_of IS NOT NULL;
