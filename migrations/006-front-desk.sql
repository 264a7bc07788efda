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
