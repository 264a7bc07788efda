-- PostgreSQL schema 1 → 2 (SQLite's 16 → 17): what several servers on one database need
-- beyond schema 1 (issue 21).

-- Leases for the work only one instance may do at a time (migrations/017-leases.sql).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Wake-ups: a message that becomes due now (planned, queued as an answer, put back after a
-- crash) notifies every server listening, at the commit that made it so, and the one whose
-- recipients it is sends it at once rather than at its next dispatch tick. PostgreSQL folds
-- the notifications of one transaction into one. (SQLite has one server, which polls.)
CREATE FUNCTION outbox_due_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('reminderd_outbox_due', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_due_notify
AFTER INSERT OR UPDATE OF state, next_attempt_at ON outbox
FOR EACH ROW
WHEN (NEW.state = 'pending'
      AND NEW.send_at <= extract(epoch FROM now())
      AND coalesce(NEW.next_attempt_at, 0) <= extract(epoch FROM now()))
EXECUTE FUNCTION outbox_due_notify();

INSERT INTO reminderd_schema (version, created_at) VALUES (2, extract(epoch FROM now())::bigint);
