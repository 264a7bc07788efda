#!/usr/bin/env python3
"""Webhook-ingest benchmark for reminderd: signed POST /webhook bodies (delivery statuses and
patients' text replies) against `reminderd serve` on loopback, with the same server's
GET /healthz under the same load generator as the baseline.

Standard library only. Run from anywhere:

    python3 bench/webhook.py                  # 3 runs: 16 and 64 connections, 200 req/s
    python3 bench/webhook.py --runs 5 --duration 20
    python3 bench/webhook.py --perf           # also profile the server (perf record) once
    python3 bench/webhook.py --quick          # a few seconds: CI smoke test (no pywa peer)
    python3 bench/webhook.py --quick --peer   # the smoke test with the pywa peer

Side by side (issue 19): the same signed bodies to reminderd and to a pywa 4.5 bot on
FastAPI/uvicorn (bench/pywa_peer.py, installed into bench/.venv by this script), each under
`wrk -t2 -c16 -d15s --latency` (bench/wrk_bodies.lua); req/s, p50 and p99 of both and the
ratio (goal >= 20x). Each goal is a row of "goals" in the results (bench/goals.py).

Database: N patients (40,000; 3,000 with --quick), one appointment each 2-6 days ahead in Mumbai
(real clock), imported with `reminderd import`, each with a sent day-before reminder in the
outbox (wamid 'wamid.b<appointment id>'). The prepared file is copied afresh for every server
session, so every session starts from the same state.

Payload mix (one message per body, compact JSON as Meta sends it, signed with
X-Hub-Signature-256): 70% status updates, 30% inbound text replies. Statuses walk the outbox
rows in a shuffled order, 'delivered' first and then 'read', so each one moves a row forward
(after 2N statuses they would be stale; the run says so). Replies come from existing patients,
each patient at most once per session (after N they would repeat), each with a unique
message id; texts: yes/ok/haan (confirm) 70%, no (cancel) 10%, 3 (reschedule) 10%, a question
(needs staff) 10%.

Load generator: one asyncio process, raw HTTP/1.1 keep-alive connections, one request in
flight per connection, requests pre-built (and pre-signed) before the clock starts.
  closed loop  C connections each sending its next request as soon as the previous answer
               arrives, for D seconds; then in-flight requests finish: every request sent is
               answered and counted.  throughput = answers / elapsed.
  open loop    R requests/s on a fixed schedule for D seconds (32 connections); latency is
               measured from the scheduled send time, so queueing counts (no coordinated
               omission).
Per session (one server, one fresh database): 0.5 s of /healthz warm-up, then the /healthz
phase, then the /webhook phase at the same concurrency or rate. Before a session the script
waits (up to --max-wait) for the machine to be idle; a session during which other processes
used more than 0.3 cores is repeated (at most 3 attempts; the last one is kept and flagged).

Every answer must be 200. After each session the database must hold exactly the bodies sent
(inbound_events, compared by sha256, every one with outcome 'applied'), one `replies` row per
reply sent with the expected outcome (applied for confirm/cancel/reschedule, needs_staff for
the question), and outbox states matching the statuses sent. Any failure exits non-zero.

Also measured: a raw SQLite floor (Python's sqlite3 inserting the same bodies into a bare
table, WAL, synchronous=NORMAL, one transaction per body; and insert + update as two
transactions, which is what reminderd's record_event/finish_event amount to).

Results go to bench/results/webhook.json (bench/results/webhook-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import importlib.util
import asyncio
import collections
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/goals.py, however loaded
import goals as G  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CONFIG = ROOT / "reminders.toml"

SECRET = "bench-app-secret"
VERIFY = "bench-verify-token"
SEED = 20270405
N_PATIENTS, QUICK_N = 40_000, 3_000
DURATION, QUICK_DURATION = 10.0, 1.0
CONCURRENCIES, QUICK_CONCURRENCIES = [16, 64], [16]
RATES, QUICK_RATES, OPEN_LOOP_CONNS = [200, 1000, 3000], [200, 1000], 32
RUNS = 3
STATUS_SHARE = 0.7
SQLITE_FLOOR_N, QUICK_SQLITE_FLOOR_N = 20_000, 500
WARMUP_S = 0.5
DISTURBED, MAX_ATTEMPTS = 0.3, 3  # repeat a session when other processes used > 0.3 cores
CLINIC = "mumbai"
TZ_IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
HEADER = ("appointment_id,patient_id,patient_name,phone,language,date,time,duration_min,"
          "provider,clinic,status")
FIRST = "Aarav Vihaan Aditya Arjun Rohan Priya Ananya Sneha Pooja Kavya Meera Farhan".split()
LAST = "Sharma Patil Gupta Kulkarni Singh Rao Joshi Shah Mehta Iyer Nair Desai".split()
# (text, intent, expected replies.outcome, weight)
REPLY_TEXTS = [
    ("yes", "confirm", "applied", 50),
    ("Ok 👍", "confirm", "applied", 10),
    ("haan", "confirm", "applied", 10),
    ("no", "cancel", "applied", 10),
    ("3", "reschedule", "applied", 10),
    ("Is there parking near the clinic?", "unknown", "needs_staff", 10),
]
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def die(msg: str, code: int = 1) -> None:
    print(f"bench/webhook.py: error: {msg}", file=sys.stderr)
    sys.exit(code)


def git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        return None


def build() -> Path:
    """The binary to measure, built as dispatch.py builds it (release, or the one named by
    REMINDERD_BENCH_BINARY for smoke runs)."""
    spec = importlib.util.spec_from_file_location("bench_dispatch", BENCH_DIR / "dispatch.py")
    dispatch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dispatch)
    return dispatch.build()
    print("building: cargo build --release --locked", flush=True)
    try:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    except FileNotFoundError:
        die("cargo is not on PATH", 2)
    except subprocess.CalledProcessError as e:
        die(f"cargo build --release --locked failed (exit {e.returncode})", 2)
    return binary_path(must_exist=True)


def binary_path(must_exist: bool) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    binary = target / "release" / "reminderd"
    if must_exist and not binary.exists():
        die(f"{binary} does not exist; build it or drop --no-build", 2)
    return binary


def server_env() -> dict:
    e = dict(os.environ)
    e.pop("RUST_LOG", None)  # reminderd's default level (warn), as in production
    e["WHATSAPP_APP_SECRET"] = SECRET
    e["WHATSAPP_VERIFY_TOKEN"] = VERIFY
    # The SMS providers under [sms] need their secrets for the server to start; the
    # simulator's values (nothing here texts).
    e["TWILIO_AUTH_TOKEN"] = "sim-twilio-token"
    e["MSG91_AUTH_KEY"] = "sim-msg91-key"
    e["MSG91_WEBHOOK_TOKEN"] = "bench-msg91-webhook-token"
    return e


# ---- the database -------------------------------------------------------------------------


def phones(n: int) -> list[str]:
    """n distinct Indian mobiles 98xxxxxxxx (inside libphonenumber's IN mobile range)."""
    rng = random.Random(SEED)
    return [f"98{x:08d}" for x in rng.sample(range(100_000_000), n)]


def write_csv(path: Path, n: int) -> None:
    rng = random.Random(SEED + n)
    today = dt.datetime.now(TZ_IST).date()
    lines = [HEADER]
    for i, ph in enumerate(phones(n)):
        day = today + dt.timedelta(days=2 + i % 5)  # 2..6 days ahead: replies apply
        minute = (i // 5) % 540  # 09:00 .. 17:59
        name = f"{FIRST[rng.randrange(len(FIRST))]} {LAST[rng.randrange(len(LAST))]}"
        lines.append(
            f"WH-{i + 1:06d},WP-{i + 1:06d},{name},{ph[:5]} {ph[5:]},en,{day.isoformat()},"
            f"{9 + minute // 60:02d}:{minute % 60:02d},15,Dr. Mehta,{CLINIC},booked")
    path.write_text("\n".join(lines) + "\n")


def prepare_template(binary: Path, tmp: Path, n: int) -> tuple[Path, list[tuple[int, str, str]]]:
    """Imports n appointments, marks each reminded; returns the db and (outbox id, wamid,
    patient wa_id) per row."""
    csv_path, db = tmp / "appointments.csv", tmp / "template.db"
    write_csv(csv_path, n)
    p = subprocess.run([str(binary), "--config", str(tmp / "reminders.toml"), "--db", str(db),
                        "import", str(csv_path), "--json"],
                       capture_output=True, text=True, env=server_env())
    if p.returncode != 0:
        die(f"reminderd import exited {p.returncode}:\n{p.stderr[-2000:]}\n{p.stdout[-2000:]}")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, "
            "template, state, wamid, attempts, sent_at, created_at, updated_at) "
            "SELECT id, 'reminder', 'day-before', starts_at, starts_at - 86400, "
            "starts_at - 14400, 'reminder', 'sent', 'wamid.b' || id, 1, starts_at - 86400, 0, 0 "
            "FROM appointments")
    rows = conn.execute(
        "SELECT o.id, o.wamid, substr(p.phone, 2) FROM outbox o "
        "JOIN appointments a ON a.id = o.appointment_id JOIN patients p ON p.id = a.patient_id "
        "ORDER BY o.id").fetchall()
    booked = conn.execute("SELECT count(*) FROM appointments WHERE status = 'booked' "
                          "AND starts_at > strftime('%s','now') + 86400").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if len(rows) != n or booked != n:
        die(f"prepared database has {len(rows)} reminded rows and {booked} future bookings, "
            f"expected {n}")
    return db, rows


# ---- the workload -------------------------------------------------------------------------


def envelope(value: dict) -> dict:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}]}


def bsuid(wa_id: str) -> str:
    """The patient's business-scoped user id, as Meta's webhooks carry it beside wa_id in
    `contacts` (pywa 4.5 requires it; reminderd reads it)."""
    return f"IN.{int(hashlib.sha256(wa_id.encode()).hexdigest()[:12], 16):015d}"


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


class Workload:
    """The session's sequence of signed webhook requests, built ahead; counts what was taken
    (every request taken is sent)."""

    def __init__(self, rows: list[tuple[int, str, str]], tag: str, port: int, seed: int) -> None:
        self.rows, self.tag, self.n = rows, tag, len(rows)
        self.host = f"127.0.0.1:{port}".encode()
        rng = random.Random(seed)
        self.rng = rng
        self.status_order = list(range(self.n))
        rng.shuffle(self.status_order)
        self.reply_order = list(range(self.n))
        rng.shuffle(self.reply_order)
        self.weights = [t[3] for t in REPLY_TEXTS]
        self.statuses = self.replies = 0
        self.built: list[tuple[str, bytes, bytes, dict]] = []
        self.taken = 0

    def _make(self) -> tuple[str, bytes, bytes, dict]:
        ts = str(int(time.time()))
        if self.rng.random() < STATUS_SHARE:
            k = self.statuses
            self.statuses += 1
            lap = k // self.n
            oid, wamid, wa_id = self.rows[self.status_order[k % self.n]]
            st = "delivered" if lap == 0 else "read"
            value = {"messaging_product": "whatsapp",
                     "metadata": {"display_phone_number": "15550000000",
                                  "phone_number_id": PHONE_NUMBER_ID},
                     "contacts": [{"wa_id": wa_id, "user_id": bsuid(wa_id)}],
                     "statuses": [{"id": wamid, "status": st, "timestamp": ts,
                                   "recipient_id": wa_id,
                                   "conversation": {"id": f"conv{oid}",
                                                    "origin": {"type": "utility"}},
                                   "pricing": {"billable": True, "pricing_model": "PMP",
                                               "category": "utility"},
                                   "biz_opaque_callback_data": str(oid)}]}
            meta = {"kind": "status", "row": oid, "status": st, "stale": lap >= 2}
        else:
            k = self.replies
            self.replies += 1
            oid, _, wa_id = self.rows[self.reply_order[k % self.n]]
            text, intent, outcome, _ = self.rng.choices(REPLY_TEXTS, self.weights)[0]
            mid = f"wamid.in.{self.tag}.{k:08d}"
            value = {"messaging_product": "whatsapp",
                     "metadata": {"display_phone_number": "15550000000",
                                  "phone_number_id": PHONE_NUMBER_ID},
                     "contacts": [{"profile": {"name": "Patient"}, "wa_id": wa_id,
                                   "user_id": bsuid(wa_id)}],
                     "messages": [{"from": wa_id, "id": mid, "timestamp": ts, "type": "text",
                                   "text": {"body": text}}]}
            meta = {"kind": "reply", "row": oid, "id": mid, "intent": intent,
                    "outcome": outcome, "repeat": k >= self.n}
        body = json.dumps(envelope(value), separators=(",", ":"), ensure_ascii=False).encode()
        req = (b"POST /webhook HTTP/1.1\r\nHost: " + self.host
               + b"\r\nContent-Type: application/json\r\nX-Hub-Signature-256: "
               + sign(body).encode() + b"\r\nContent-Length: " + str(len(body)).encode()
               + b"\r\n\r\n" + body)
        return meta["kind"], req, body, meta

    def prebuild(self, count: int) -> None:
        while len(self.built) < count:
            self.built.append(self._make())

    def take(self) -> bytes:
        if self.taken >= len(self.built):  # ran past the pre-built pool: build on the fly
            self.built.append(self._make())
        self.taken += 1
        return self.built[self.taken - 1][1]

    def sent(self) -> list[tuple[str, bytes, bytes, dict]]:
        return self.built[:self.taken]


def healthz_source(port: int):
    req = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    return lambda: req


# ---- the load generator -------------------------------------------------------------------


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.fut: asyncio.Future | None = None
        self.transport = None
        self.need = -1
        self.head_end = 0
        self.lost: Exception | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(self.buf[:i]).lower()
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            if not m:
                self._fail(ConnectionError(f"answer without content-length: {head[:300]!r}"))
                return
            self.head_end = i + 4
            self.need = self.head_end + int(m[1])
        if len(self.buf) >= self.need:
            raw = bytes(self.buf[:self.need])
            del self.buf[:self.need]
            self.need = -1
            fut, self.fut = self.fut, None
            if fut is not None and not fut.done():
                fut.set_result((int(raw[9:12]), raw))

    def _fail(self, exc: Exception) -> None:
        self.lost = exc
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(exc)

    def connection_lost(self, exc) -> None:
        self._fail(ConnectionError(f"connection closed by the server: {exc}"))

    def request(self, data: bytes) -> asyncio.Future:
        if self.lost:
            raise self.lost
        self.fut = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.fut


async def connect(port: int, n: int) -> list[Conn]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        _, proto = await loop.create_connection(Conn, "127.0.0.1", port)
        out.append(proto)
    return out


class Tally:
    def __init__(self) -> None:
        self.lat_ns: list[int] = []
        self.codes: collections.Counter = collections.Counter()
        self.failures: list[dict] = []

    def record(self, req: bytes, code: int, raw: bytes, lat_ns: int) -> None:
        self.lat_ns.append(lat_ns)
        self.codes[code] += 1
        if code != 200 and len(self.failures) < 10:
            self.failures.append({"request": req.decode(errors="replace")[:4000],
                                  "status": code, "response": raw.decode(errors="replace")[:2000]})


async def closed_loop(port: int, conc: int, duration: float, source) -> tuple[Tally, float]:
    conns = await connect(port, conc)
    tally = Tally()
    pc = time.perf_counter_ns

    async def worker(c: Conn) -> None:
        while time.perf_counter() < stop_at:
            req = source()
            t = pc()
            code, raw = await c.request(req)
            tally.record(req, code, raw, pc() - t)

    t0 = time.perf_counter()
    stop_at = t0 + duration
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.transport.close()
    return tally, elapsed


def open_loop_conns(rate: float) -> int:
    """Enough connections that queueing at the client stays out of the figure: 32, or 64 above
    1,000 req/s (at 3,000 req/s and 10 ms, 30 requests are in flight)."""
    return OPEN_LOOP_CONNS if rate <= 1000 else 2 * OPEN_LOOP_CONNS


async def open_loop(port: int, rate: float, duration: float, source) -> tuple[Tally, float]:
    conns = await connect(port, open_loop_conns(rate))
    idle: asyncio.Queue = asyncio.Queue()
    for c in conns:
        idle.put_nowait(c)
    loop = asyncio.get_running_loop()
    tally = Tally()
    n = int(rate * duration)

    async def one(sched: float) -> None:
        c = await idle.get()
        req = source()
        code, raw = await c.request(req)
        tally.record(req, code, raw, int((loop.time() - sched) * 1e9))
        idle.put_nowait(c)

    tasks = []
    t0 = loop.time() + 0.02
    for i in range(n):
        sched = t0 + i / rate
        delay = sched - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(sched)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - t0
    for c in conns:
        c.transport.close()
    return tally, elapsed


# ---- measurement --------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def machine_busy() -> tuple[int, int]:
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def idle_check(max_wait: float) -> dict:
    """Samples the machine for 1 s until it is idle (< 15% busy, no other bench/*.py), at most
    max_wait seconds; returns the last sample."""
    t_end, said = time.monotonic() + max_wait, False
    while True:
        b0, t0 = machine_busy()
        time.sleep(1)
        b1, t1 = machine_busy()
        frac = (b1 - b0) / max(1, t1 - t0)
        others = subprocess.run(["pgrep", "-f", "bench/(dispatch|import|plan).py"],
                                capture_output=True, text=True).stdout.split()
        if (frac < 0.15 and not others) or time.monotonic() >= t_end:
            return {"busy_frac": round(frac, 3), "other_benchmarks": others,
                    "idle": frac < 0.15 and not others}
        if not said:
            print(f"    waiting for the machine to be idle ({frac:.0%} busy"
                  f"{', other benchmarks: ' + ' '.join(others) if others else ''})")
            said = True


def pct(sorted_ns: list[int], q: float) -> float | None:
    if not sorted_ns:
        return None
    i = min(len(sorted_ns) - 1, max(0, int(round(q * len(sorted_ns) + 0.5)) - 1))
    return sorted_ns[i] / 1e6


def run_phase(coro_fn, server_pid: int) -> dict:
    s0, c0, (b0, t0) = proc_cpu_s(server_pid), time.process_time(), machine_busy()
    tally, elapsed = asyncio.run(coro_fn())
    s1, c1, (b1, t1) = proc_cpu_s(server_pid), time.process_time(), machine_busy()
    lat = sorted(tally.lat_ns)
    n = len(lat)
    return {
        "requests": n,
        "elapsed_s": round(elapsed, 4),
        "req_per_s": round(n / elapsed, 1) if elapsed else None,
        "status_codes": {str(k): v for k, v in sorted(tally.codes.items())},
        "non_200": n - tally.codes.get(200, 0),
        "latency_ms": {"p50": pct(lat, 0.50), "p90": pct(lat, 0.90), "p99": pct(lat, 0.99),
                       "p999": pct(lat, 0.999), "max": lat[-1] / 1e6 if lat else None,
                       "mean": statistics.fmean(lat) / 1e6 if lat else None},
        "server_cpu_s": round(s1 - s0, 3),
        "server_cpu_ms_per_req": round((s1 - s0) * 1000 / n, 4) if n else None,
        "server_cores_busy": round((s1 - s0) / elapsed, 3) if elapsed else None,
        "client_cpu_s": round(c1 - c0, 3),
        "client_cores_busy": round((c1 - c0) / elapsed, 3) if elapsed else None,
        "machine_busy_frac": round((b1 - b0) / (t1 - t0), 3) if t1 > t0 else None,
        "other_cores_busy": round((b1 - b0) / (t1 - t0) * CORES - (s1 - s0 + c1 - c0) / elapsed,
                                  3) if t1 > t0 and elapsed else None,
        "failures": tally.failures,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: Path, config: Path, db: Path, workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / f"serve-{self.port}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(binary), "--config", str(config), "--db", str(db), "serve", "--listen",
             f"127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=server_env())
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                die(f"reminderd serve exited {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                            timeout=1) as r:
                    if r.status == 200 and json.loads(r.read()).get("status") == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                die(f"reminderd serve did not answer /healthz within 20 s: "
                    f"{self.log_text()[-2000:]}")
            time.sleep(0.05)

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            # SIGINT: `serve` shuts down gracefully on Ctrl-C only (SIGTERM kills it at once).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


# ---- verification -------------------------------------------------------------------------


def verify(db: Path, sent: list[tuple[str, bytes, bytes, dict]]) -> dict:
    """The database against what was sent: returns figures and a list of problems."""
    conn = sqlite3.connect(db)
    problems = []
    stored = conn.execute("SELECT body, outcome FROM inbound_events").fetchall()
    want = collections.Counter(hashlib.sha256(b).hexdigest() for _, _, b, _ in sent)
    got = collections.Counter(hashlib.sha256(b.encode()).hexdigest() for b, _ in stored)
    outcomes = collections.Counter(o for _, o in stored)
    if len(stored) != len(sent):
        problems.append(f"inbound_events holds {len(stored)} bodies, {len(sent)} were sent")
    if want != got:
        problems.append(f"stored bodies differ from those sent: {sum((want - got).values())} "
                        f"sent but not stored, {sum((got - want).values())} stored but not sent")
    if set(outcomes) - {"applied"}:
        problems.append(f"inbound_events outcomes: {dict(outcomes)}")

    replies_sent = [m for k, _, _, m in sent if k == "reply"]
    rows = dict((r[0], r[1:]) for r in conn.execute(
        "SELECT message_id, intent, outcome, reason FROM replies"))
    if len(rows) != len(replies_sent):
        problems.append(f"replies holds {len(rows)} rows, {len(replies_sent)} replies were sent")
    wrong = []
    for m in replies_sent:
        r = rows.get(m["id"])
        if r is None:
            wrong.append({"id": m["id"], "problem": "missing"})
        elif not m["repeat"] and (r[0], r[1]) != (m["intent"], m["outcome"]):
            wrong.append({"id": m["id"], "expected": [m["intent"], m["outcome"]], "got": list(r)})
    if wrong:
        problems.append(f"{len(wrong)} replies missing or not as expected, e.g. {wrong[:3]}")

    statuses = [m for k, _, _, m in sent if k == "status"]
    best: dict[int, str] = {}
    for m in statuses:
        if best.get(m["row"]) != "read":
            best[m["row"]] = m["status"]
    exp = collections.Counter(best.values())
    got_states = dict(conn.execute(
        "SELECT state, count(*) FROM outbox WHERE kind = 'reminder' GROUP BY state").fetchall())
    for st in ("delivered", "read"):
        if got_states.get(st, 0) != exp.get(st, 0):
            problems.append(f"outbox reminders in state {st}: {got_states.get(st, 0)}, "
                            f"expected {exp.get(st, 0)} from the statuses sent")
    acks = conn.execute("SELECT count(*) FROM outbox WHERE kind = 'reply_ack'").fetchone()[0]
    reply_outcomes = dict(conn.execute(
        "SELECT intent || ':' || outcome, count(*) FROM replies GROUP BY 1").fetchall())
    audit = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    conn.close()
    return {
        "inbound_events": len(stored), "webhook_requests_sent": len(sent),
        "statuses_sent": len(statuses), "stale_statuses_sent": sum(m["stale"] for m in statuses),
        "replies_sent": len(replies_sent), "repeat_replies_sent":
            sum(m["repeat"] for m in replies_sent),
        "replies_stored": len(rows), "reply_intent_outcome": reply_outcomes,
        "reminder_states": got_states, "reply_acks_queued": acks, "audit_rows": audit,
        "problems": problems,
    }


# ---- sessions -----------------------------------------------------------------------------


def session(binary, cfg, template, rows, tmp, label, mode, value, duration, seed,
            perf: bool = False, max_wait: float = 0) -> dict:
    """One server on a fresh copy of the database: /healthz, then /webhook, at `value`
    connections (mode 'closed') or requests/s (mode 'open')."""
    before = idle_check(max_wait)
    db = tmp / f"{label}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copyfile(template, db)
    srv = Server(binary, cfg, db, tmp)
    wl = Workload(rows, label, srv.port, seed)
    expect = int(value * duration) if mode == "open" else int(10_000 * duration)
    prebuilt = min(expect + 1000, int(2 * len(rows) / STATUS_SHARE))
    wl.prebuild(prebuilt)

    def phase(source):
        if mode == "open":
            return lambda: open_loop(srv.port, value, duration, source)
        return lambda: closed_loop(srv.port, value, duration, source)

    hz = healthz_source(srv.port)
    out = {"label": label, "mode": mode, "value": value, "machine_before": before}
    try:
        asyncio.run(closed_loop(srv.port, min(value, 16), WARMUP_S, hz))
        out["healthz"] = run_phase(phase(hz), srv.proc.pid)
        perf_proc = None
        if perf:
            perf_data = tmp / "perf.data"
            perf_proc = subprocess.Popen(
                ["perf", "record", "-F", "499", "--call-graph", "dwarf,8192", "-p",
                 str(srv.proc.pid), "-o",
                 str(perf_data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        out["webhook"] = run_phase(phase(wl.take), srv.proc.pid)
        if perf_proc:
            perf_proc.send_signal(signal.SIGINT)
            perf_proc.wait()
            out["perf"] = perf_summary(tmp / "perf.data")
    finally:
        rss = None
        try:
            m = re.search(r"VmHWM:\s*(\d+)", Path(f"/proc/{srv.proc.pid}/status").read_text())
            rss = int(m[1]) / 1024 if m else None
        except OSError:
            pass
        rc = srv.stop()
    log = srv.log_path.read_text(errors="replace")
    out["server"] = {"exit_code": rc, "peak_rss_mb": rss,
                     "log_lines": len(log.splitlines()),
                     "log_errors": [ln for ln in log.splitlines()
                                    if " ERROR " in ln or " WARN " in ln][:10]}
    out["prebuilt"] = prebuilt
    out["built_on_the_fly"] = max(0, wl.taken - prebuilt)
    out["check"] = verify(db, wl.sent())
    if not perf:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    return out


PERF_FUNCS = [
    "reminderd::server::webhook", "reminderd::jobs::process_webhook",
    "reminderd::store::Store::record_event", "reminderd::store::Store::apply_status",
    "reminderd::store::Store::reply_candidates", "reminderd::store::Store::commit_reply",
    "reminderd::server::verify", "serde_json::de::from_trait", "reminderd::template::ack_text",
    "rusqlite::transaction::Transaction::commit", "sqlite3_step", "sqlite3_prepare_v3",
    "walCheckpoint", "pagerWalFrames", "__x64_sys_pwrite64", "__x64_sys_fsync",
    "__x64_sys_futex", "<std::sys::sync::mutex::futex::Mutex>::lock_contended",
    "hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_write", "__x64_sys_epoll_wait",
]


def perf_summary(data: Path) -> dict:
    def report(*args):
        p = subprocess.run(["perf", "report", "-i", str(data), "--stdio", *args],
                           capture_output=True, text=True)
        return [re.sub(r"\s+", " ", ln).strip() for ln in p.stdout.splitlines()
                if ln.strip() and not ln.startswith("#")]

    by_dso = report("--no-children", "--sort", "dso", "-g", "none", "--percent-limit", "1")
    by_sym = report("--no-children", "--sort", "dso,symbol", "-g", "none",
                    "--percent-limit", "0.7")
    inclusive = {}
    for ln in report("--children", "--sort", "symbol", "-g", "none"):
        m = re.match(r"([\d.]+)% [\d.]+% \[[.k]\] (.*)$", ln)
        if m and m[2] in PERF_FUNCS and m[2] not in inclusive:
            inclusive[m[2]] = float(m[1])
    return {"self_by_dso": by_dso[:10], "self_by_symbol": by_sym[:30],
            "inclusive_pct": dict(sorted(inclusive.items(), key=lambda kv: -kv[1]))}


def sqlite_floor(bodies: list[bytes], tmp: Path) -> dict:
    out = {}
    for variant in ("insert", "insert+update"):
        db = tmp / f"floor-{variant}.db"
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE inbound_events (id INTEGER PRIMARY KEY, received_at INTEGER "
                     "NOT NULL, body TEXT NOT NULL, processed_at INTEGER, outcome TEXT)")
        texts = [b.decode() for b in bodies]
        t0 = time.perf_counter()
        c0 = time.process_time()
        for t in texts:
            now = int(time.time())
            cur = conn.execute("INSERT INTO inbound_events (received_at, body) VALUES (?, ?)",
                               (now, t))
            if variant == "insert+update":
                conn.execute("UPDATE inbound_events SET processed_at = ?, outcome = 'applied' "
                             "WHERE id = ?", (now, cur.lastrowid))
        el = time.perf_counter() - t0
        cpu = time.process_time() - c0
        conn.close()
        out[variant] = {"bodies": len(texts), "elapsed_s": round(el, 4),
                        "per_s": round(len(texts) / el, 1), "cpu_s": round(cpu, 3),
                        "transactions_per_body": 1 if variant == "insert" else 2}
    return out


# ---- side by side with pywa, under wrk ------------------------------------------------------

VENV = BENCH_DIR / ".venv"
PYWA_PIN = "pywa==4.5.0"
PEER_PACKAGES = [PYWA_PIN, "fastapi", "uvicorn"]
WRK = shutil.which("wrk")
WRK_THREADS, WRK_CONNS, WRK_DURATION, QUICK_WRK_DURATION = 2, 16, 15.0, 2.0
# 20x pywa's ~800 req/s for 15 s is 240,000 requests: enough distinct bodies that none is sent
# twice (a repeat is a replay, which reminderd answers from a cheaper path).
WRK_BODIES, QUICK_WRK_BODIES = 320_000, 5_000


def peer_python() -> tuple[Path | None, str]:
    """bench/.venv's python with pywa 4.5.0, FastAPI and uvicorn, installing them when absent
    (pip honours PIP_FIND_LINKS and PIP_INDEX_URL). Returns (python, what happened) or (None,
    why not)."""
    py = VENV / "bin" / "python"
    probe = [str(py), "-c", "import pywa, fastapi, uvicorn; print(pywa.__version__, "
             "fastapi.__version__, uvicorn.__version__)"]

    def versions() -> str | None:
        if not py.exists():
            return None
        p = subprocess.run(probe, capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else None

    have = versions()
    if have and have.split()[0] == PYWA_PIN.split("==")[1]:
        return py, f"bench/.venv: pywa, fastapi, uvicorn {have}"
    print(f"installing the peer into bench/.venv: pip install {' '.join(PEER_PACKAGES)}",
          flush=True)
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True,
                           capture_output=True, text=True, timeout=300)
        p = subprocess.run([str(py), "-m", "pip", "install", "--quiet", *PEER_PACKAGES],
                           capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"could not create bench/.venv: {e}"
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return None, f"pip install {' '.join(PEER_PACKAGES)} failed: {tail[0][:300]}"
    have = versions()
    if not have:
        return None, "bench/.venv has no importable pywa after pip install"
    return py, f"installed now: pywa, fastapi, uvicorn {have}"


class PeerServer:
    """bench/pywa_peer.py under uvicorn on a free port, recording into its own SQLite file."""

    def __init__(self, python: Path, db: Path, workdir: Path) -> None:
        self.port = free_port()
        self.db = db
        self.log_path = workdir / f"pywa-{self.port}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(python), str(BENCH_DIR / "pywa_peer.py"), "--port", str(self.port), "--db",
             str(db), "--app-secret", SECRET, "--verify-token", VERIFY, "--phone-id",
             PHONE_NUMBER_ID], stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the pywa peer exited {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                            timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the pywa peer did not answer /healthz within 30 s")
            time.sleep(0.1)

    def rows(self) -> int:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute("SELECT count(*) FROM updates").fetchone()[0]
        finally:
            conn.close()

    def settle(self, timeout: float = 300) -> float:
        """Waits until the table stops growing (pywa writes after its 200); returns the wait."""
        t0, last, still = time.monotonic(), -1, 0
        while time.monotonic() - t0 < timeout:
            n = self.rows()
            still = still + 1 if n == last else 0
            if still >= 4:
                break
            last = n
            time.sleep(0.25)
        return time.monotonic() - t0

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def write_bodies(path: Path, bodies: list[bytes]) -> None:
    with path.open("wb") as f:
        for b in bodies:
            f.write(sign(b).encode() + b"\t" + b + b"\n")


def run_wrk(port: int, bodies_file: Path, duration: float, pid: int) -> dict:
    cmd = [WRK, f"-t{WRK_THREADS}", f"-c{WRK_CONNS}", f"-d{duration:g}s", "--latency",
           "-s", str(BENCH_DIR / "wrk_bodies.lua"), f"http://127.0.0.1:{port}", "--",
           str(bodies_file), str(WRK_THREADS)]
    s0, (b0, t0) = proc_cpu_s(pid), machine_busy()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    s1, (b1, t1) = proc_cpu_s(pid), machine_busy()
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk exited {p.returncode}: {p.stderr[-1000:]} {p.stdout[-1000:]}")
    w = json.loads(line[len("WRKJSON "):])
    secs = w["duration_us"] / 1e6
    lat = {k: round(v / 1000, 3) for k, v in w["latency_us"].items()}
    return {"command": " ".join(cmd[:6]) + " -s bench/wrk_bodies.lua URL",
            "requests": w["requests"], "seconds": round(secs, 3),
            "req_per_s": round(w["requests"] / secs, 1) if secs else None,
            "latency_ms": lat, "errors": w["errors"], "threads": w["threads"],
            "answered_200": sum(t["ok"] for t in w["threads"]),
            "answered_other": sum(t["bad"] for t in w["threads"]),
            "server_cpu_s": round(s1 - s0, 3),
            "server_cpu_ms_per_req": round((s1 - s0) * 1000 / w["requests"], 4)
            if w["requests"] else None,
            "machine_busy_frac": round((b1 - b0) / (t1 - t0), 3) if t1 > t0 else None,
            "wrk_text": p.stdout.split("WRKJSON")[0].strip().splitlines()}


def sent_by_wrk(w: dict, hashes: list[str]) -> tuple[set, bool]:
    """The bodies wrk built requests from (thread k sends hashes[k::T] in order, cycling), and
    whether any thread came round to its first body again."""
    sent, wrapped = set(), False
    for t in w["threads"]:
        mine = hashes[t["id"]::WRK_THREADS]
        sent.update(mine[:t["sent"]])
        wrapped |= t["sent"] > len(mine)
    return sent, wrapped


def check_stored(name: str, w: dict, stored: list[str], hashes: list[str]) -> dict:
    """Every delivery wrk had answered 200 is stored once: the stored bodies are all among
    those sent, none twice, and those missing are at most the requests cut off in flight when
    wrk stopped (one per connection)."""
    sent, wrapped = sent_by_wrk(w, hashes)
    got = collections.Counter(stored)
    twice = sum(1 for c in got.values() if c > 1)
    unknown = sum(1 for h in got if h not in sent)
    missing = len(sent - set(got))
    problems = []
    if w["answered_other"] or w["errors"]["status"]:
        problems.append(f"{name}: {w['answered_other']} answers were not 200")
    if twice:
        problems.append(f"{name}: {twice} bodies stored more than once")
    if unknown:
        problems.append(f"{name}: {unknown} stored bodies were never sent")
    if missing > WRK_CONNS:
        problems.append(f"{name}: {missing} bodies sent but not stored (more than the "
                        f"{WRK_CONNS} requests in flight when wrk stopped)")
    return {"distinct_sent": len(sent), "stored": len(stored), "stored_twice": twice,
            "stored_not_sent": unknown, "sent_not_stored": missing,
            "pool_wrapped": wrapped, "problems": problems}


def side_by_side(binary: Path, cfg: Path, template: Path, rows, tmp: Path, quick: bool,
                 peer: bool, duration: float, pool_n: int) -> dict:
    """wrk against reminderd and against the pywa peer with the same signed bodies."""
    out: dict = {"wrk": WRK, "threads": WRK_THREADS, "connections": WRK_CONNS,
                 "duration_s": duration, "bodies": pool_n}
    if not WRK:
        out["reminderd"] = out["pywa"] = None
        out["not_measured"] = "wrk is not installed (apt-get install wrk)"
        print(f"side by side: not measured: {out['not_measured']}")
        return out
    wl = Workload(rows, "wrk", 0, SEED + 7)
    wl.prebuild(pool_n)
    # Statuses past their second lap can repeat a body built in the same second: keep each once.
    bodies, hashes, seen, kinds = [], [], set(), collections.Counter()
    for k, _, b, _ in wl.built:
        h = hashlib.sha256(b).hexdigest()
        if h not in seen:
            seen.add(h)
            bodies.append(b)
            hashes.append(h)
            kinds[k] += 1
    del wl, seen
    bfile = tmp / "wrk-bodies.txt"
    write_bodies(bfile, bodies)
    del bodies
    out["bodies"] = len(hashes)
    out["body_mix"] = dict(kinds)
    problems: list[str] = []

    db = tmp / "wrk-reminderd.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copyfile(template, db)
    srv = Server(binary, cfg, db, tmp)
    try:
        asyncio.run(closed_loop(srv.port, WRK_CONNS, WARMUP_S, healthz_source(srv.port)))
        r = run_wrk(srv.port, bfile, duration, srv.proc.pid)
    finally:
        rc = srv.stop()
    conn = sqlite3.connect(db)
    stored = [hashlib.sha256(b.encode()).hexdigest()
              for (b,) in conn.execute("SELECT body FROM inbound_events")]
    r["replays_answered"] = conn.execute(
        "SELECT coalesce(sum(replays), 0) FROM inbound_events").fetchone()[0]
    conn.close()
    r["check"] = check_stored("reminderd", r, stored, hashes)
    r["server_exit"] = rc
    problems += r["check"]["problems"]
    out["reminderd"] = r
    print(f"  wrk reminderd: {r['req_per_s']:,.0f} req/s, p50 {r['latency_ms']['p50']:.2f} ms, "
          f"p99 {r['latency_ms']['p99']:.2f} ms; {r['check']['stored']:,} stored, "
          f"{r['replays_answered']:,} replays answered")

    if not peer:
        out["pywa"] = None
        out["not_measured"] = "the pywa peer runs in full runs (--quick: only with --peer)"
        print(f"  wrk pywa: not measured: {out['not_measured']}")
    else:
        py, how = peer_python()
        out["peer_install"] = how
        if py is None:
            out["pywa"] = None
            out["not_measured"] = f"the pywa peer could not be installed: {how}"
            print(f"  wrk pywa: not measured: {out['not_measured']}")
        else:
            pdb = tmp / "wrk-pywa.db"
            try:
                ps = PeerServer(py, pdb, tmp)
            except RuntimeError as e:
                ps = None
                out["pywa"] = None
                out["not_measured"] = f"the pywa peer did not start: {e}"
                problems.append(out["not_measured"])
            if ps is not None:
                try:
                    urls = [f"http://127.0.0.1:{ps.port}/healthz"] * 20
                    for u in urls:  # warm-up
                        urllib.request.urlopen(u, timeout=5).close()
                    p = run_wrk(ps.port, bfile, duration, ps.proc.pid)
                    p["settle_s"] = round(ps.settle(), 2)
                finally:
                    prc = ps.stop()
                conn = sqlite3.connect(pdb)
                pstored = [h for (h,) in conn.execute("SELECT body_sha256 FROM updates")]
                conn.close()
                p["check"] = check_stored("pywa", p, pstored, hashes)
                if p["check"]["pool_wrapped"]:
                    # pywa drops a body it has seen (skip_duplicate_updates): repeats are not
                    # stored, so "stored once" holds by construction; say so.
                    p["check"]["note"] = "the body pool wrapped: repeats were answered, not stored"
                p["server_exit"] = prc
                p["log_tail"] = ps.log_path.read_text(errors="replace").splitlines()[-5:]
                problems += p["check"]["problems"]
                out["pywa"] = p
                print(f"  wrk pywa:      {p['req_per_s']:,.0f} req/s, p50 "
                      f"{p['latency_ms']['p50']:.2f} ms, p99 {p['latency_ms']['p99']:.2f} ms; "
                      f"{p['check']['stored']:,} stored ({p['settle_s']} s after wrk ended)")
    out["problems"] = problems
    if out.get("reminderd") and out.get("pywa"):
        out["ratio_req_per_s"] = round(out["reminderd"]["req_per_s"] / out["pywa"]["req_per_s"], 2)
    return out


# ---- output -------------------------------------------------------------------------------


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def summarize(sessions: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = collections.defaultdict(list)
    for s in sessions:
        groups[(s["mode"], s["value"])].append(s)
    rows = []
    for (mode, value), ss in groups.items():
        h = [s["healthz"] for s in ss]
        w = [s["webhook"] for s in ss]
        r = {"mode": mode, "value": value, "runs": len(ss)}
        for name, ph in (("healthz", h), ("webhook", w)):
            r[name] = {
                "req_per_s": med([p["req_per_s"] for p in ph]),
                "req_per_s_min": min(p["req_per_s"] for p in ph),
                "req_per_s_max": max(p["req_per_s"] for p in ph),
                "p50_ms": med([p["latency_ms"]["p50"] for p in ph]),
                "p99_ms": med([p["latency_ms"]["p99"] for p in ph]),
                "max_ms": max(p["latency_ms"]["max"] or 0 for p in ph),
                "server_cpu_ms_per_req": med([p["server_cpu_ms_per_req"] for p in ph]),
                "server_cores_busy": med([p["server_cores_busy"] for p in ph]),
                "client_cores_busy": med([p["client_cores_busy"] for p in ph]),
                "machine_busy_frac": med([p["machine_busy_frac"] for p in ph]),
                "other_cores_busy": med([p["other_cores_busy"] for p in ph]),
                "non_200": sum(p["non_200"] for p in ph),
                "requests": sum(p["requests"] for p in ph),
            }
        hr, wr = r["healthz"]["req_per_s"], r["webhook"]["req_per_s"]
        r["throughput_ratio_webhook_over_healthz"] = round(wr / hr, 4) if hr and wr else None
        hp, wp = r["healthz"]["p50_ms"], r["webhook"]["p50_ms"]
        r["p50_ratio_webhook_over_healthz"] = round(wp / hp, 2) if hp and wp else None
        hc, wc = r["healthz"]["server_cpu_ms_per_req"], r["webhook"]["server_cpu_ms_per_req"]
        r["cpu_per_req_ratio"] = round(wc / hc, 2) if hc and wc else None
        rows.append(r)
    return rows


def goals(summary: list[dict], sbs: dict) -> list[dict]:
    """Issue 19's webhook rows: the figures against their goals."""
    rows = []
    r, p = sbs.get("reminderd"), sbs.get("pywa")
    what = f"webhook vs pywa (wrk -t{WRK_THREADS} -c{WRK_CONNS} -d{sbs['duration_s']:g}s)"
    if r and p:
        ratio = r["req_per_s"] / p["req_per_s"] if p["req_per_s"] else None
        rows.append(G.goal(what, f"{r['req_per_s']:,.0f} req/s", f"pywa {p['req_per_s']:,.0f} "
                           "req/s", ratio, ">= 20x pywa", ratio is not None and ratio >= 20,
                           value=r["req_per_s"]))
        for q in ("p50", "p99"):
            a, b = r["latency_ms"][q], p["latency_ms"][q]
            rows.append(G.goal(f"  {q} latency, same runs", f"{a:.2f} ms", f"pywa {b:.2f} ms",
                               a / b if b else None, value=a))
    elif r:
        rows.append(G.goal(what, f"{r['req_per_s']:,.0f} req/s", "pywa not measured", None,
                           ">= 20x pywa", None, note=sbs.get("not_measured"),
                           value=r["req_per_s"]))
    else:
        rows.append(G.not_measured(what, ">= 20x pywa", sbs.get("not_measured", "")))
    by = {(s["mode"], s["value"]): s for s in summary}
    for conc in sorted(v for m, v in by if m == "closed"):
        s = by[("closed", conc)]
        ratio = s["throughput_ratio_webhook_over_healthz"]
        rows.append(G.goal(f"webhook, own workload, {conc:g} connections",
                           f"{s['webhook']['req_per_s']:,.0f} req/s",
                           f"GET /healthz {s['healthz']['req_per_s']:,.0f} req/s", ratio,
                           ">= 0.3x healthz", ratio is not None and ratio >= 0.3,
                           value=s["webhook"]["req_per_s"]))
    for rate, limit in ((200, 5.0), (1000, 10.0), (3000, 10.0)):
        what = f"webhook p99 at {rate:,} req/s offered"
        s = by.get(("open", float(rate))) or by.get(("open", rate))
        if not s:
            rows.append(G.not_measured(what, f"<= {limit:g} ms", "rate not in this run"))
            continue
        w, h = s["webhook"], s["healthz"]
        achieved = w["req_per_s"] or 0
        ok = w["p99_ms"] is not None and w["p99_ms"] <= limit and achieved >= 0.95 * rate
        rows.append(G.goal(what, f"{w['p99_ms']:.2f} ms", f"GET /healthz p99 {h['p99_ms']:.2f} ms",
                           w["p99_ms"] / h["p99_ms"] if h["p99_ms"] else None,
                           f"<= {limit:g} ms", ok, value=w["p99_ms"],
                           note=None if achieved >= 0.95 * rate else
                           f"only {achieved:,.0f} req/s achieved"))
    return rows


def print_table(summary: list[dict], floor: dict, cores: int, runs: int, duration: float) -> None:
    head = ["load", "endpoint", "req/s (median)", "min..max", "p50 ms", "p99 ms", "max ms",
            "srv CPU ms/req", "srv cores", "client cores", "other cores", "non-200"]
    body = []
    for r in summary:
        load = f"{r['value']} conns" if r["mode"] == "closed" else f"{r['value']} req/s offered"
        for name in ("healthz", "webhook"):
            p = r[name]
            body.append([load, "GET /healthz" if name == "healthz" else "POST /webhook",
                         fmt(p["req_per_s"], ",.0f"),
                         f"{p['req_per_s_min']:,.0f}..{p['req_per_s_max']:,.0f}",
                         fmt(p["p50_ms"], ".2f"), fmt(p["p99_ms"], ".2f"), fmt(p["max_ms"], ".1f"),
                         fmt(p["server_cpu_ms_per_req"], ".3f"), fmt(p["server_cores_busy"], ".2f"),
                         fmt(p["client_cores_busy"], ".2f"),
                         fmt(p["other_cores_busy"], ".2f"),
                         str(p["non_200"])])
        body.append([load, "webhook/healthz",
                     fmt(r["throughput_ratio_webhook_over_healthz"], ".3f"), "",
                     fmt(r["p50_ratio_webhook_over_healthz"], ".1f") + "x", "", "",
                     fmt(r["cpu_per_req_ratio"], ".1f") + "x", "", "", "", ""])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    line = lambda row: "  ".join(c.rjust(w) for c, w in zip(row, widths))  # noqa: E731
    print()
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for row in body:
        print(line(row))
    print(f"\ncores: {cores}   runs: {runs} x {duration:g} s per phase   payload mix: "
          f"{STATUS_SHARE:.0%} statuses / {1 - STATUS_SHARE:.0%} text replies, one per body")
    for k, v in floor.items():
        print(f"raw SQLite floor ({k}, {v['transactions_per_body']} txn/body, WAL, "
              f"synchronous=NORMAL, Python sqlite3): {v['per_s']:,.0f} bodies/s")
    print("(load generator and server share the machine; srv/client cores = CPU seconds / wall "
          "seconds;\nother cores = the rest of the machine's busy time (other processes, "
          "kernel softirq); open-loop latency\nis from the scheduled send time)")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=RUNS, help=f"runs (default: {RUNS})")
    ap.add_argument("--duration", type=float, default=None,
                    help=f"seconds per phase (default: {DURATION:g})")
    ap.add_argument("--concurrency", type=int, nargs="+", default=None,
                    help=f"closed-loop connection counts (default: {CONCURRENCIES})")
    ap.add_argument("--rates", type=float, nargs="+", default=None,
                    help=f"open-loop offered rates, requests/s; 0 to skip (default: {RATES}; "
                         f"{QUICK_RATES} with --quick)")
    ap.add_argument("--peer", action="store_true",
                    help="with --quick: also run the pywa peer (full runs always do)")
    ap.add_argument("--no-peer", action="store_true", help="skip the pywa peer")
    ap.add_argument("--wrk-duration", type=float, default=None,
                    help=f"seconds of each wrk run (default: {WRK_DURATION:g}; "
                         f"{QUICK_WRK_DURATION:g} with --quick)")
    ap.add_argument("--wrk-bodies", type=int, default=None,
                    help=f"distinct signed bodies wrk cycles through (default: {WRK_BODIES:,}; "
                         f"{QUICK_WRK_BODIES:,} with --quick)")
    ap.add_argument("--patients", type=int, default=None,
                    help=f"patients/appointments/outbox rows (default: {N_PATIENTS:,})")
    ap.add_argument("--perf", action="store_true",
                    help="after the runs, one more session at the highest concurrency with "
                         "`perf record` on the server during the webhook phase")
    ap.add_argument("--max-wait", type=float, default=None,
                    help="before each session wait up to this many seconds for the machine to "
                         "be idle (default: 300; 0 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a few seconds: CI smoke test")
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--output", type=Path, default=None,
                    help="results file (default: bench/results/webhook.json, "
                         "webhook-quick.json with --quick)")
    args = ap.parse_args()
    if args.quick:
        args.runs = 1
        args.duration = args.duration or QUICK_DURATION
        args.concurrency = args.concurrency or QUICK_CONCURRENCIES
        args.patients = args.patients or QUICK_N
    duration = args.duration or DURATION
    rates = [r for r in (args.rates or (QUICK_RATES if args.quick else RATES)) if r > 0]
    peer = (args.peer or not args.quick) and not args.no_peer
    wrk_duration = args.wrk_duration or (QUICK_WRK_DURATION if args.quick else WRK_DURATION)
    wrk_bodies = args.wrk_bodies or (QUICK_WRK_BODIES if args.quick else WRK_BODIES)
    if args.max_wait is None:
        args.max_wait = 0 if args.quick else 300
    concs = args.concurrency or CONCURRENCIES
    n = args.patients or N_PATIENTS
    if args.runs < 1 or duration <= 0 or n < 10 or any(c < 1 for c in concs):
        die("--runs >= 1, --duration > 0, --patients >= 10, concurrency >= 1", 2)

    binary = binary_path(True) if args.no_build else build()
    busy = subprocess.run(["pgrep", "-f", "bench/(dispatch|import|plan).py"],
                          capture_output=True, text=True).stdout.split()
    if busy:
        print(f"warning: other benchmarks are running (pids {' '.join(busy)}); "
              "figures will be disturbed", file=sys.stderr)
    cores = os.cpu_count() or 0
    t_start = time.monotonic()
    sessions, problems, discarded = [], [], []
    with tempfile.TemporaryDirectory(prefix="reminderd-webhook-") as tmp:
        tmp = Path(tmp)
        cfg = tmp / "reminders.toml"
        # The desk takes any free port: benchmarks may run side by side.
        cfg.write_text(CONFIG.read_text().replace('listen = "127.0.0.1:8081"',
                                                  'listen = "127.0.0.1:0"'))
        print(f"preparing: {n:,} patients, appointments and sent reminders")
        template, rows = prepare_template(binary, tmp, n)
        plan = [("closed", c) for c in concs] + [("open", r) for r in rates]
        for run in range(args.runs):
            for mode, value in plan:
                label = f"r{run + 1}-{mode}{value:g}"
                for attempt in range(1, MAX_ATTEMPTS + 1):
                    s = session(binary, cfg, template, rows, tmp, label, mode, value, duration,
                                SEED + run * 100 + int(value), max_wait=args.max_wait)
                    other = max(s["healthz"]["other_cores_busy"] or 0,
                                s["webhook"]["other_cores_busy"] or 0)
                    s["attempt"] = attempt
                    if other <= DISTURBED or attempt == MAX_ATTEMPTS or args.quick:
                        break
                    print(f"    {label}: other processes used {other:.2f} cores during the "
                          f"measurement; repeating (attempt {attempt + 1} of {MAX_ATTEMPTS})")
                    problems_seen = s["check"]["problems"] + [
                        f"{w}: {s[w]['non_200']} non-200" for w in ("healthz", "webhook")
                        if s[w]["non_200"]]
                    problems += [f"{label} (discarded attempt {attempt}): {p}"
                                 for p in problems_seen]
                    discarded.append(s)
                sessions.append(s)
                h, w, ck = s["healthz"], s["webhook"], s["check"]
                print(f"  run {run + 1} {value:g} {'conns' if mode == 'closed' else 'req/s'}: "
                      f"healthz {h['req_per_s']:,.0f}/s p50 {h['latency_ms']['p50']:.2f} ms | "
                      f"webhook {w['req_per_s']:,.0f}/s p50 {w['latency_ms']['p50']:.2f} ms "
                      f"p99 {w['latency_ms']['p99']:.2f} ms, {w['requests']:,} sent "
                      f"({ck['statuses_sent']:,} statuses, {ck['replies_sent']:,} replies), "
                      f"non-200 {h['non_200'] + w['non_200']}, "
                      f"stored {ck['inbound_events']:,}, "
                      f"{'ok' if not ck['problems'] else 'PROBLEMS'}")
                for where in ("healthz", "webhook"):
                    if s[where]["non_200"]:
                        problems.append(f"{label} {where}: {s[where]['non_200']} non-200 "
                                        f"answers, e.g. {s[where]['failures'][:1]}")
                problems += [f"{label}: {p}" for p in ck["problems"]]
                if s["server"]["exit_code"] not in (0, None):
                    problems.append(f"{label}: reminderd serve exited {s['server']['exit_code']}")
                if ck["stale_statuses_sent"] or ck["repeat_replies_sent"]:
                    print(f"    note: the workload wrapped ({ck['stale_statuses_sent']} stale "
                          f"statuses, {ck['repeat_replies_sent']} repeat replies): raise "
                          "--patients")
        perf = None
        if args.perf:
            print(f"profiling: perf record on the server, webhook at {max(concs)} connections")
            p = session(binary, cfg, template, rows, tmp, "perf", "closed", max(concs),
                        duration, SEED + 999, perf=True, max_wait=args.max_wait)
            perf = {"concurrency": max(concs), "webhook": p["webhook"], "profile": p.get("perf"),
                    "note": "perf record -F 999 -g on the server; figures under perf are not "
                            "part of the results"}
            problems += [f"perf session: {x}" for x in p["check"]["problems"]]
        print(f"side by side: wrk -t{WRK_THREADS} -c{WRK_CONNS} -d{wrk_duration:g}s, "
              f"{wrk_bodies:,} signed bodies, reminderd then the pywa peer")
        sbs = side_by_side(binary, cfg, template, rows, tmp, args.quick, peer, wrk_duration,
                           wrk_bodies)
        problems += sbs["problems"]
        # The raw storage floor: the bodies one session sent.
        flo_wl = Workload(rows, "floor", 0, SEED)
        flo_wl.prebuild(QUICK_SQLITE_FLOOR_N if args.quick else SQLITE_FLOOR_N)
        floor = sqlite_floor([b for _, _, b, _ in flo_wl.built], tmp)

    summary = summarize(sessions)
    print_table(summary, floor, cores, args.runs, duration)
    goal_rows = goals(summary, sbs)
    G.print_table(goal_rows, "webhook goals (issue 19)")
    status = git("status", "--porcelain")
    body_sizes = [len(b) for _, _, b, _ in flo_wl.built]
    out = {
        "benchmark": "webhook",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python3 bench/webhook.py " + " ".join(sys.argv[1:]),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "git_dirty_paths": status.splitlines() if status else [],
        "machine": {"cores": cores, "platform": platform.platform(),
                    "python": platform.python_version(),
                    "sqlite3_python": sqlite3.sqlite_version},
        "binary": {"path": str(binary), "built_now": not args.no_build,
                   "mtime": dt.datetime.fromtimestamp(binary.stat().st_mtime, dt.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "sha256": hashlib.sha256(binary.read_bytes()).hexdigest()},
        "other_benchmarks_running_at_start": busy,
        "sessions_started_on_a_busy_machine": [s["label"] for s in sessions
                                               if not s["machine_before"]["idle"]],
        "sessions_disturbed": [s["label"] for s in sessions
                               if max(s["healthz"]["other_cores_busy"] or 0,
                                      s["webhook"]["other_cores_busy"] or 0) > DISTURBED],
        "method": {
            "patients": n, "runs": args.runs, "duration_s": duration,
            "closed_loop_connections": concs, "open_loop_rates": rates,
            "open_loop_connections": {str(r): open_loop_conns(r) for r in rates},
            "warmup_s": WARMUP_S,
            "payload_mix": {"statuses": STATUS_SHARE, "text_replies": round(1 - STATUS_SHARE, 2),
                            "status_sequence": "delivered then read, shuffled outbox rows",
                            "reply_texts": [{"text": t, "intent": i, "expected": o, "weight": w}
                                            for t, i, o, w in REPLY_TEXTS],
                            "messages_per_body": 1,
                            "body_bytes": {"min": min(body_sizes), "max": max(body_sizes),
                                           "mean": round(statistics.fmean(body_sizes), 1)}},
            "load_generator": "Python asyncio, raw HTTP/1.1 keep-alive, one request in flight "
                              "per connection, requests pre-built and pre-signed",
            "baseline": "GET /healthz of the same server (HTTP + mutex + PRAGMA user_version "
                        "via spawn_blocking, JSON answer; no signature, no write)",
            "server": "reminderd serve, default log level (warn), stderr to a file; fresh copy "
                      "of the prepared database per session",
            "latency": "closed loop: write to full answer; open loop: scheduled send time to "
                       "full answer",
            "verification": "inbound_events bodies == bodies sent (sha256 multiset), all "
                            "outcome 'applied'; one replies row per reply with the expected "
                            "intent/outcome; outbox reminder states == statuses sent",
        },
        "summary": summary,
        "side_by_side": sbs,
        "goals": goal_rows,
        "sqlite_floor": floor,
        "perf": perf,
        "problems": problems,
        "sessions": sessions,
        "discarded_sessions": [{k: v for k, v in d.items() if k in
                                ("label", "attempt", "healthz", "webhook", "check")}
                               for d in discarded],
        "elapsed_s": round(time.monotonic() - t_start, 1),
    }
    path = args.output or RESULTS_DIR / ("webhook-quick.json" if args.quick else "webhook.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if problems:
        print("\nFAILED:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
