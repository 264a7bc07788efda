"""The webhook peer for bench/webhook.py: a minimal pywa 4.5 bot on FastAPI/uvicorn that checks
each delivery's X-Hub-Signature-256 with the app secret (pywa's own validation) and records
every message and status update in SQLite, as a small clinic bot written with pywa would.

Run by bench/webhook.py inside bench/.venv (pywa==4.5.0, fastapi, uvicorn); not by hand:

    bench/.venv/bin/python bench/pywa_peer.py --port P --db DB --app-secret S --verify-token V \
        --phone-id ID

pywa's FastAPI route answers 200 once the signature is valid and runs the handlers after the
answer (a FastAPI background task, in the thread pool): the row is written after the 200, so
the benchmark waits for the table to stop growing before it checks it.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import threading
import time

import fastapi
import uvicorn
from pywa import WhatsApp, types

SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,          -- 'message' or 'status'
    message_id  TEXT NOT NULL,          -- the message's id (a status: the id it is about)
    wa_id       TEXT,
    status      TEXT,                   -- a status update's status
    text        TEXT,                   -- a text message's body
    body_sha256 TEXT NOT NULL,          -- the delivery's raw body, for the benchmark's check
    received_at REAL NOT NULL
)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--app-secret", required=True)
    ap.add_argument("--verify-token", required=True)
    ap.add_argument("--phone-id", required=True)
    args = ap.parse_args()

    setup = sqlite3.connect(args.db)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute(SCHEMA)
    setup.commit()
    setup.close()

    # One connection per handler thread (sqlite3 connections are not shared between threads);
    # each update is committed in its own transaction, WAL, synchronous NORMAL (SQLite's usual
    # pairing: a commit survives a process crash, not a power cut).
    local = threading.local()

    def db() -> sqlite3.Connection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(args.db, timeout=30, isolation_level=None)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA busy_timeout = 30000")
            local.conn = conn
        return conn

    def record(kind: str, message_id: str, wa_id: str | None, status: str | None,
               text: str | None, raw: bytes) -> None:
        db().execute(
            "INSERT INTO updates (kind, message_id, wa_id, status, text, body_sha256, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, message_id, wa_id, status, text, hashlib.sha256(raw).hexdigest(),
             time.time()))

    app = fastapi.FastAPI()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    wa = WhatsApp(phone_id=args.phone_id, server=app, webhook_endpoint="/webhook",
                  verify_token=args.verify_token, app_secret=args.app_secret)

    @wa.on_message
    def on_message(_: WhatsApp, msg: types.Message) -> None:
        record("message", msg.id, msg.from_user.wa_id, None, msg.text, msg.raw.raw)

    @wa.on_message_status
    def on_status(_: WhatsApp, st: types.MessageStatus) -> None:
        record("status", st.id, st.from_user.wa_id, str(st.status), None, st.raw.raw)

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
