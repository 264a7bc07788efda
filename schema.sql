-- reminderd schema: the single source. Applied to a new database on open; PRAGMA user_version
-- records which version a database is at, and src/store.rs migrates older ones step by step.
-- All instants are UTC unix seconds (INTEGER). Ids are INTEGER PRIMARY KEY.

PRAGMA user_version = 17;

-- Clinics as configured in reminders.toml, synced on every open so rows can reference them.
CREATE TABLE clinics (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    time_zone     TEXT NOT NULL,          -- IANA name, e.g. Asia/Kolkata
    phone_region  TEXT NOT NULL           -- ISO 3166 alpha-2, e.g. IN
);

-- One row per imported file (dry-runs and rejected files write nothing).
CREATE TABLE imports (
    id            INTEGER PRIMARY KEY,
    file_name     TEXT NOT NULL,
    checksum      TEXT NOT NULL,          -- sha256 of the file's bytes, hex
    rows          INTEGER NOT NULL,
    new           INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    cancelled     INTEGER NOT NULL,
    unchanged     INTEGER NOT NULL,
    complete      INTEGER NOT NULL CHECK (complete IN (0, 1)),
    imported_by   TEXT NOT NULL,          -- 'cli' or a staff user name
    imported_at   INTEGER NOT NULL
);

-- Which clinics an import covered: the stale-schedule guard reads the latest per clinic.
CREATE TABLE import_clinics (
    import_id     INTEGER NOT NULL REFERENCES imports(id),
    clinic_id     INTEGER NOT NULL REFERENCES clinics(id),
    PRIMARY KEY (import_id, clinic_id)
) WITHOUT ROWID;

CREATE TABLE patients (
    id             INTEGER PRIMARY KEY,
    clinic_id      INTEGER NOT NULL REFERENCES clinics(id),
    external_id    TEXT NOT NULL,         -- the clinic system's patient id
    name           TEXT NOT NULL,
    phone          TEXT NOT NULL,         -- E.164
    language       TEXT NOT NULL,         -- e.g. en, hi, mr, es
    opted_out_at   INTEGER,
    consent_source TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL, channel TEXT CHECK (channel IN ('whatsapp', 'sms', 'none')), contact_name TEXT, contact_phone TEXT, contact_relation TEXT, remind TEXT NOT NULL DEFAULT 'patient'
    CHECK (remind IN ('patient', 'contact', 'both')), wa_user_id TEXT, erased_at INTEGER,
    UNIQUE (clinic_id, external_id)
);
-- (channel, contact_* and remind were added by schema 7's ALTER TABLE: who is reminded and
-- how, as the schedule says. A NULL channel is WhatsApp, falling back to SMS as the clinic's
-- policy allows; 'none' is no automated message. A caregiver (contact_*) is reminded instead
-- of or beside the patient, as `remind` says.)
CREATE INDEX patients_phone ON patients (phone);
CREATE INDEX patients_contact_phone ON patients (contact_phone);
-- (wa_user_id, schema 10: the patient's business-scoped user id, so a username-only sender
-- is recognised.)
CREATE INDEX patients_wa_user_id ON patients (wa_user_id) WHERE wa_user_id IS NOT NULL;
-- (erased_at, schema 12: `reminderd patient erase` emptied the row; it stays for the counts.)

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

-- The schedule's status and the patient's response are separate facts: a re-import sets
-- status, a reply sets response, and neither overwrites the other.
CREATE TABLE "appointments" (
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
    arrived_by        TEXT, import_digest BLOB,               -- and who did
    UNIQUE (clinic_id, source, external_id)
);
CREATE INDEX appointments_starts_at ON appointments (starts_at);
CREATE INDEX appointments_patient ON appointments (patient_id);
-- (import_digest, schema 14: the file row that last set the appointment; see
-- migrations/014-import-digest.sql. The triggers clear it when anything else changes the
-- appointment or its patient.)
CREATE TRIGGER appointments_digest_stale
AFTER UPDATE OF patient_id, provider, starts_at, duration_min, status, cancelled_by ON appointments
WHEN OLD.import_digest IS NOT NULL AND NEW.import_digest IS OLD.import_digest
BEGIN
    UPDATE appointments SET import_digest = NULL WHERE id = NEW.id;
END;
CREATE TRIGGER patients_digest_stale
AFTER UPDATE OF name, phone, language, channel, remind, contact_name, contact_phone,
    contact_relation, erased_at ON patients
BEGIN
    UPDATE appointments SET import_digest = NULL
    WHERE patient_id = NEW.id AND import_digest IS NOT NULL;
END;

-- Who or what changed an appointment or patient, and why.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    appointment_id  INTEGER REFERENCES appointments(id),
    patient_id      INTEGER REFERENCES patients(id),
    actor           TEXT NOT NULL,        -- 'import:<file>', 'patient', 'staff:<name>'
    action          TEXT NOT NULL,        -- 'reschedule', 'cancel', 'reinstate', ...
    old_value       TEXT,
    new_value       TEXT,
    reason          TEXT
);
CREATE INDEX audit_log_appointment ON audit_log (appointment_id);

-- One row per message: its unique key (appointment, kind, rule, slot start, recipient,
-- channel) is what makes a re-plan, a restart or a crash unable to produce a second message.
-- An SMS is written either as planned (the recipient's channel is SMS) or as the fallback of
-- one failed WhatsApp message (fallback_of, unique). A manual reminder's rule is the one-time
-- nonce of the desk's press ('press:<nonce>'), so a press resubmitted finds its row. (The name
-- is quoted as SQLite writes it after schemas 6 and 7 rebuilt the table.)
CREATE TABLE "outbox" (
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
    fallback_of      INTEGER REFERENCES "outbox"(id),  -- the WhatsApp message whose failure it replaces
    sent_by          TEXT,               -- 'staff:<name>' for a message staff wrote or chose
    pricing_category TEXT,               -- from the status webhook's pricing: utility, service, ...
    pricing_type     TEXT,               -- regular, free_customer_service, free_entry_point, ...
    billable         INTEGER CHECK (billable IN (0, 1)),
    purged_at        INTEGER, claimed_by TEXT, claim_epoch INTEGER NOT NULL DEFAULT 0,            -- params (the rendered words) removed by the retention purge
    UNIQUE (appointment_id, kind, rule, slot_start, recipient, channel)
);
-- (claimed_by and claim_epoch, schema 16: who claimed a row being sent, and how many claims it
-- has had; a send writes only while the row carries its claim's number, so a claim another
-- instance took over is never also sent by the stale one.)
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
-- An offer's message by its rule (schema 13): a reply finds its offers from the sender's.
CREATE INDEX outbox_offer ON outbox (rule) WHERE kind IN ('waitlist_offer', 'reschedule_offer');
-- Booking confirmations look for appointments that appeared recently.
CREATE INDEX appointments_created_at ON appointments (created_at);

-- Every signed webhook body exactly as received, so a bug in processing can be replayed. The
-- body is TEXT, or a BLOB when it is not UTF-8. A replayed body (same sha256) is counted in
-- `replays`, not stored again; bodies from before schema v5 have no hash.
CREATE TABLE inbound_events (
    id            INTEGER PRIMARY KEY,
    received_at   INTEGER NOT NULL,
    body          TEXT NOT NULL,
    processed_at  INTEGER,
    outcome       TEXT                   -- 'applied', 'malformed', or the error that stopped it
, body_sha256 TEXT, replays INTEGER NOT NULL DEFAULT 0, last_replay_at INTEGER, source TEXT NOT NULL DEFAULT 'whatsapp', purged_at INTEGER);
-- (source, schema 7: 'whatsapp', 'twilio' or 'msg91', what sent the body.)
CREATE UNIQUE INDEX inbound_events_body ON inbound_events (body_sha256);
-- (purged_at, schema 12: the body was emptied by the retention purge; the hash stays, so a
-- replay is still known.)
CREATE INDEX inbound_events_received ON inbound_events (received_at);

-- One row per inbound message (deduplicated by the API's message id: Meta retries webhooks).
CREATE TABLE "replies" (
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
-- (schema 12 rebuilt the table so that a reply can be a feedback score; purged_at: the text
-- was emptied by the retention purge, the row and its intent stay for the counts.)
CREATE INDEX replies_needs_staff ON replies (outcome, received_at);
CREATE INDEX replies_appointment ON replies (appointment_id);
CREATE INDEX replies_received ON replies (received_at);

-- The file a patient sent (a photo, voice note, video, document or sticker): WhatsApp's media
-- id and what the webhook said of the file. The bytes are never stored: the desk fetches them
-- through the Cloud API when staff open them, and this row goes with its reply. The caption is
-- the reply's text. phone_number_id (schema 15, added last as SQLite writes an added column):
-- the business number it was sent to, whose token fetches it.
CREATE TABLE reply_media (
    reply_id   INTEGER PRIMARY KEY REFERENCES replies(id) ON DELETE CASCADE,
    media_id   TEXT NOT NULL,         -- the Cloud API's id (downloadable about 30 days)
    mime_type  TEXT,                  -- as the webhook gave it, e.g. audio/ogg; codecs=opus
    sha256     TEXT,                  -- as the webhook gave it (base64); checked on download
    filename   TEXT,                  -- a document's name on the patient's phone
    voice      INTEGER NOT NULL DEFAULT 0 CHECK (voice IN (0, 1))  -- a recorded voice note
, phone_number_id TEXT);

-- Staff who sign in to /desk. Passwords are argon2id PHC strings, never the password.
-- disabled_at: set by `reminderd user disable` (NULL: may sign in). The table is written as
-- SQLite stores it after schema 5's ALTER TABLE (two columns dropped, one added), so that new
-- and migrated databases match; failed sign-ins are counted in sign_in_attempts.
CREATE TABLE staff_users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
, disabled_at INTEGER, role TEXT NOT NULL DEFAULT 'staff' CHECK (role IN ('staff', 'admin')));
-- (role, schema 12: exports, erasure and per-patient drill-downs are for admins.)

-- Signed-in browsers. The cookie holds a random token; only its sha256 is stored, so a copy
-- of the database does not sign anybody in. last_seen_at (schema 5's ALTER TABLE) is the
-- session's latest request, written at most once a minute, for desk.idle_timeout.
CREATE TABLE staff_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,                  -- the token every form of this session carries
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
, last_seen_at INTEGER) WITHOUT ROWID;
CREATE INDEX staff_sessions_user ON staff_sessions (user_id);

-- An uploaded schedule between its preview and the staff member's decision: the file is kept
-- so that confirming imports exactly what was previewed, and only once.
CREATE TABLE import_previews (
    id          INTEGER PRIMARY KEY,
    token       TEXT NOT NULL UNIQUE,           -- random; names the preview in the confirm form
    user_id     INTEGER NOT NULL REFERENCES staff_users(id),
    clinic      TEXT,                           -- clinic chosen for rows that name none
    file_name   TEXT NOT NULL,
    body        BLOB NOT NULL,
    complete    INTEGER NOT NULL CHECK (complete IN (0, 1)),
    summary     TEXT NOT NULL,                  -- the previewed counts, JSON
    created_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    decision    TEXT CHECK (decision IN ('confirmed', 'discarded', 'changed')),
    import_id   INTEGER REFERENCES imports(id)
);

-- Sign-in attempts counted before each password is checked, per (name as typed, client
-- address) and per name from all addresses ('*'), for unknown names too, so that a burst of
-- guesses is checked at most desk.max_failed_logins times and answers never tell which
-- accounts exist. Rows whose window and pause have passed are deleted.
CREATE TABLE sign_in_attempts (
    name          TEXT NOT NULL COLLATE NOCASE,  -- the name as typed, known or not
    client        TEXT NOT NULL,                 -- the client's IP address; '*' for all of them
    attempts      INTEGER NOT NULL,              -- counted before the password is checked
    window_start  INTEGER NOT NULL,              -- the count restarts desk.lockout after this
    locked_until  INTEGER,                       -- sign-in paused before this instant
    PRIMARY KEY (name, client)
) WITHOUT ROWID;

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
    last_replay_at  INTEGER, purged_at INTEGER,
    UNIQUE (feed, message_id)
);
CREATE INDEX feed_messages_feed ON feed_messages (feed, state, received_at);
-- (purged_at, schema 12: the body was emptied by the retention purge.)
CREATE INDEX feed_messages_received ON feed_messages (received_at);

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
CREATE TABLE "source_updates" (
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
CREATE INDEX source_updates_state ON source_updates (state, next_attempt_at);
CREATE INDEX source_updates_appointment ON source_updates (appointment_id);

-- Each copy `reminderd backup` wrote and checked, so /metrics and `reminderd check-db` can say
-- how old the newest one is. A row is written only after the copy passed its integrity check
-- and was renamed into place; pruned copies keep their rows (the history of backups taken).
CREATE TABLE backups (
    id          INTEGER PRIMARY KEY,
    taken_at    INTEGER NOT NULL,       -- the instant of the copy's snapshot
    path        TEXT NOT NULL,          -- where the copy was written
    bytes       INTEGER NOT NULL
);
CREATE INDEX backups_taken ON backups (taken_at);

-- What Meta said of each template (message_template_status_update, _quality_update and
-- template_category_update webhooks), per business account, name and language ('' when the
-- event named none: such a row concerns the template in every account). Dispatch holds
-- messages whose template is paused, disabled, rejected or now marketing in their number's
-- account.
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

-- Each WhatsApp Business account's standing (account_update webhooks): a row per account,
-- absent until an event arrives. A restriction or a disabled account stops its numbers' sending
-- with this reason; the row '' (an event that named no account) stops every number.
CREATE TABLE account_health (
    waba_id     TEXT PRIMARY KEY,          -- the business account; '' an event that named none
    event       TEXT NOT NULL,             -- the last account_update event, e.g. ACCOUNT_RESTRICTION
    blocked     INTEGER NOT NULL CHECK (blocked IN (0, 1)),  -- 1: sending must stop
    reason      TEXT,                      -- what Meta said, for staff and the admin
    until_at    INTEGER,                   -- a restriction's expiry, when Meta gave one
    event_id    INTEGER REFERENCES inbound_events(id),
    updated_at  INTEGER NOT NULL
);

-- Each business number's standing as Meta last reported it (phone_number_quality_update).
CREATE TABLE number_health (
    display_phone_number TEXT PRIMARY KEY, -- the business number as Meta shows it (digits)
    waba_id     TEXT,                      -- the business account the event came in
    event       TEXT NOT NULL,             -- THROUGHPUT_UPGRADE, FLAGGED, UNFLAGGED, DOWNGRADE, ...
    messaging_limit TEXT,                  -- TIER_250 ... TIER_UNLIMITED, when Meta gave one
    event_id    INTEGER REFERENCES inbound_events(id),
    updated_at  INTEGER NOT NULL           -- when Meta says it happened (else when it arrived)
);

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

-- The instances sending from this database, each as last seen: a number's rate cap is shared
-- between the live ones (schema 16).
CREATE TABLE instances (
    name     TEXT PRIMARY KEY,          -- pid and a random part, new each start
    seen_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Scheduled work already taken, by task and the second it was due: of several instances whose
-- schedule fires at once, the one whose row goes in does the work (schema 16).
CREATE TABLE cron_runs (
    task    TEXT NOT NULL,             -- 'plan'
    run_at  INTEGER NOT NULL,          -- the tick's second (unix)
    PRIMARY KEY (task, run_at)
) WITHOUT ROWID;

-- A singleton's lease: who holds it, until when, and how many times it has changed hands.
-- The holder renews it at each run; another instance takes it only once it has expired, and
-- the epoch then goes up by one. Each write done under it checks, in its own transaction,
-- that the lease still carries the holder and the epoch it was taken with (schema 17).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,      -- 'waitlist'
    holder      TEXT NOT NULL,         -- the instance's name, as in instances
    epoch       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL       -- unix seconds
) WITHOUT ROWID;
