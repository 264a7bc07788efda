-- Schema 3 → 4: the front desk in a browser (staff accounts, sessions, upload previews).

-- Staff who sign in to /desk. Passwords are argon2id PHC strings, never the password.
CREATE TABLE staff_users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    failed_logins  INTEGER NOT NULL DEFAULT 0,   -- in a row; reset by a good sign-in
    locked_until   INTEGER,                      -- sign-in refused before this instant
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Signed-in browsers. The cookie holds a random token; only its sha256 is stored, so a copy
-- of the database does not sign anybody in.
CREATE TABLE staff_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,                  -- the token every form of this session carries
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
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

-- When a reply that needed a person was dealt with (handled_by says who).
ALTER TABLE replies ADD COLUMN handled_at INTEGER;
