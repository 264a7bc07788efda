-- Schema 15 → 16: claims that several instances can share (issue 21).

-- Who claimed a row being sent, and how many times it has been claimed: each claim adds one,
-- and a send writes its request and its outcome only while the row still carries the number
-- it was claimed with, so a claim another instance took over (its holder presumed dead after
-- the grace period) can never also be sent, or have its outcome written, by the stale one.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claim_epoch INTEGER NOT NULL DEFAULT 0;

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
