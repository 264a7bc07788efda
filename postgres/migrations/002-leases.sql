-- PostgreSQL schema 1 → 2 (SQLite's 16 → 17): leases for the work only one instance may do
-- at a time (issue 21). See migrations/017-leases.sql.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

INSERT INTO reminderd_schema (version, created_at) VALUES (2, extract(epoch FROM now())::bigint);
