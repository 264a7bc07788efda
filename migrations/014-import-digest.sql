-- Schema 13 → 14: an unchanged re-import does nothing (issue 19).

-- A digest of the file row that last set the appointment, through the command line's
-- streamed import; a row read again with the same digest is unchanged and is not compared,
-- nor its phone number parsed again. NULL when anything else changed the appointment or its
-- patient since (the triggers below), or before schema 14: then the row is compared in full.
ALTER TABLE appointments ADD COLUMN import_digest BLOB;
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
