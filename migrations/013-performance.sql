-- Schema 12 → 13: performance (issue 19).

-- An offer's message by its rule ('offer:<id>'): a patient's reply finds the offers it may
-- answer from the sender's offers, at a cost independent of the outbox's size.
CREATE INDEX outbox_offer ON outbox (rule) WHERE kind IN ('waitlist_offer', 'reschedule_offer');
