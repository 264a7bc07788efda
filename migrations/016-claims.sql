-- Schema 15 → 16: claims that several instances can share (issue 21).

-- Who claimed a row being sent, and how many times it has been claimed: each claim adds one,
-- and a send writes its request and its outcome only while the row still carries the number
-- it was claimed with, so a claim another instance took over (its holder presumed dead after
-- the grace period) can never also be sent, or have its outcome written, by the stale one.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claim_epoch INTEGER NOT NULL DEFAULT 0;
