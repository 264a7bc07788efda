#!/usr/bin/env python3
"""SIU feed benchmark for reminderd: HL7 v2 SIU messages applied per second (each ACKed only
after its transaction committed) over MLLP to `reminderd run` on loopback, release build.

Standard library only. Run from anywhere:

    python3 bench/siu.py                 # 3 runs of 3,000 messages
    python3 bench/siu.py --runs 5 --messages 10000
    python3 bench/siu.py --quick         # a few seconds: CI smoke test
    python3 bench/siu.py --no-build      # use the existing release binary

Workload: N distinct appointments in Mumbai 2-6 days ahead (real clock), each an S12 (new
booking) then an S13 (a move 30 minutes later): 2N messages, MSH-10 unique, sent one at a
time over one MLLP connection (the way an interface engine's channel sends: the next message
waits for the previous ACK). Each ACK must be MSA|AA.

Baseline, same run, same daemon and connection: the same 2N messages sent again. Each is a
replay: stored (the replay counter is bumped in a transaction: one write, one fsync-free WAL
commit like the real one), answered AA, and not applied. So the ratio is the cost of reading
the message and applying it through the upload's rules (decide, audit, re-plan) over the
fixed cost of framing, storing and answering; it is the part of the path a feed adds.

After each run the database must hold 2N feed_messages, all applied, replays = 1 each, and N
appointments; anything else exits non-zero. Results go to bench/results/siu.json
(bench/results/siu-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def hl7_time(t: dt.datetime) -> str:
    return (t + dt.timedelta(hours=5, minutes=30)).strftime("%Y%m%d%H%M%S")


def messages(n: int) -> list[tuple[str, bytes]]:
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    out = []
    for step, event in ((0, "S12"), (1, "S13")):
        for i in range(n):
            start = now + dt.timedelta(days=2 + i % 4, minutes=15 * (i % 40) + 30 * step)
            mid = f"B{i}-{step}"
            body = "\r".join(
                [
                    f"MSH|^~\\&|EHR|OPD|RD|RD|{hl7_time(now)}||SIU^{event}^SIU_S12|{mid}|P|2.5.1",
                    f"SCH||BA{i}|||||||30|MIN||||||||||||||||Booked",
                    f"TQ1|1||||||{hl7_time(start)}",
                    f"PID|1||BP{i}||Patient^Number {i}||||||||^PRN^CP^^^^^^^^^98{10_000_000 + i:08d}||en",
                    "RGS|1",
                    "AIP|1||D7^Rao^Vikram^^^Dr|D",
                ]
            )
            out.append((mid, b"\x0b" + body.encode() + b"\x1c\x0d"))
    return out


def send_all(port: int, msgs: list[tuple[str, bytes]]) -> float:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    buf = b""
    for mid, frame in msgs:
        sock.sendall(frame)
        while b"\x1c\x0d" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                sys.exit(f"connection closed waiting for the ACK of {mid}")
            buf += chunk
        ack, _, buf = buf.partition(b"\x1c\x0d")
        if f"MSA|AA|{mid}".encode() not in ack:
            sys.exit(f"not AA for {mid}: {ack!r}")
    elapsed = time.perf_counter() - t0
    sock.close()
    return elapsed


def run_once(binary: Path, n: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        port = free_port()
        shipped = (ROOT / "reminders.toml").read_text()
        config = (
            shipped.replace('path = "reminderd.db"', 'path = "bench.db"')
            .replace('listen = "127.0.0.1:8081"', 'listen = "127.0.0.1:0"')
            .replace("enabled = true", "enabled = false")
        )
        config += f'\n[feeds.ehr]\nkind = "hl7"\nclinic = "mumbai"\nlisten = "127.0.0.1:{port}"\n'
        (d / "reminders.toml").write_text(config)
        env = dict(os.environ)
        env.update(
            WHATSAPP_ACCESS_TOKEN="tok",
            WHATSAPP_APP_SECRET="secret",
            WHATSAPP_VERIFY_TOKEN="verify",
            TWILIO_AUTH_TOKEN="t",
            MSG91_AUTH_KEY="k",
            MSG91_WEBHOOK_TOKEN="msg91-webhook-token-for-bench",
            REMINDERD_API_BASE="http://127.0.0.1:9",
        )
        env.pop("RUST_LOG", None)
        daemon = subprocess.Popen(
            [str(binary), "--config", str(d / "reminders.toml"), "run", "--listen", f"127.0.0.1:{free_port()}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(d / "daemon.log", "w"),
        )
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.05)
            msgs = messages(n)
            applied = send_all(port, msgs)
            replayed = send_all(port, msgs)
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
        db = sqlite3.connect(d / "bench.db")
        total, ok, replays = db.execute(
            "SELECT count(*), sum(state = 'applied'), sum(replays) FROM feed_messages"
        ).fetchone()
        appts = db.execute("SELECT count(*) FROM appointments").fetchone()[0]
        if (total, ok, replays, appts) != (2 * n, 2 * n, 2 * n, n):
            sys.exit(f"database check failed: {total} messages, {ok} applied, {replays} replays, {appts} appointments")
    m = 2 * n
    return {
        "messages": m,
        "applied_per_sec": round(m / applied, 1),
        "replayed_per_sec": round(m / replayed, 1),
        "applied_ms_each": round(1000 * applied / m, 3),
        "replayed_ms_each": round(1000 * replayed / m, 3),
        "ratio": round((m / applied) / (m / replayed), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages", type=int, default=3000, help="appointments (2 messages each)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.messages = 1, 200
    given = os.environ.get("REMINDERD_BENCH_BINARY")
    if given:
        # A smoke test's binary (CI passes the debug build): not for figures.
        binary = (ROOT / given) if not Path(given).is_absolute() else Path(given)
        if not binary.exists():
            sys.exit(f"REMINDERD_BENCH_BINARY={given}: {binary} does not exist")
        print(f"using {binary} (REMINDERD_BENCH_BINARY; for smoke tests, not figures)", flush=True)
    else:
        if not args.no_build:
            subprocess.run(["cargo", "build", "--locked", "--release", "--quiet"], cwd=ROOT, check=True)
        binary = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/reminderd"
    runs = []
    for r in range(args.runs):
        res = run_once(binary, args.messages)
        runs.append(res)
        print(
            f"run {r + 1}: {res['messages']} SIU messages applied at {res['applied_per_sec']}/s "
            f"({res['applied_ms_each']} ms each); the same replayed (stored, ACKed, not applied) "
            f"at {res['replayed_per_sec']}/s ({res['replayed_ms_each']} ms); ratio {res['ratio']}"
        )
    best = max(runs, key=lambda x: x["applied_per_sec"])
    out = {
        "date": dt.date.today().isoformat(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "cores": os.cpu_count(),
        "baseline": "the same messages replayed over the same connection: stored (replay counted), ACKed AA, not applied",
        "runs": runs,
        "best": best,
    }
    name = "siu-quick.json" if args.quick else "siu.json"
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results" / name).write_text(json.dumps(out, indent=2) + "\n")
    print(f"best: {best['applied_per_sec']} applied/s against {best['replayed_per_sec']} replayed/s (ratio {best['ratio']}); bench/results/{name}")


if __name__ == "__main__":
    main()
