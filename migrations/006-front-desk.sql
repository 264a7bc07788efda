-- Schema 5 → 6: the front desk's second pass (issue 13).

-- desk statuses: a patient marked arrived at the desk (when, and the staff member's name).
-- Arrival is not a schedule status: the patient is still booked until completed or a
-- no-show, and an upload never changes it.
ALTER TABLE appointments ADD COLUMN arrived_at INTEGER;
ALTER TABLE appointments ADD COLUMN arrived_by TEXT;
