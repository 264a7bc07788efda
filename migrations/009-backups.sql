-- Schema 8 → 9: backups taken while the daemon runs (issue 20).

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
