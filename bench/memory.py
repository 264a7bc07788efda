#!/usr/bin/env python3
"""Memory benchmark for the long-running daemon: `reminderd run`'s resident memory idle and
while it dispatches 10,000 reminders to the Cloud API simulator (100 ms latency, signed status
webhooks back to the daemon).

Standard library only. Run from anywhere:

    python3 bench/memory.py                 # idle 10 s, 4 rounds of 10,000, then the 1M phase
    python3 bench/memory.py --rounds 1 --no-big   # one round only
    python3 bench/memory.py --quick         # 2 rounds of 1,000, 2 s idle: CI smoke test (< 30 s)

One daemon and one simulator for the whole run:

1. The repo's reminders.toml, copied with the jobs ticking every second, no quiet hours,
   max_import_age 3650d, rate_limit_per_sec 1000 and booking confirmations off (so exactly one
   message, the day-before reminder, is due per appointment).
2. `reminderd simulate --latency-ms 100 --pair-limit-secs 0 --webhook .../webhook` and
   `reminderd --db DB run` on an empty database; wait for GET /healthz = 200. The daemon
   gets the `Environment=` settings of systemd/reminderd.service (MALLOC_ARENA_MAX=2), as
   when installed; `--default-malloc` leaves them out.
3. idle: sample the daemon's /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile, Threads) every
   50 ms for 10 s while its plan and dispatch jobs tick on the empty database.
4. per round: write N appointments for N new distinct patients starting 20-23 h from now (the
   day-before reminder is due now, like `reminderd demo`'s shifted schedule), run
   `reminderd import` from a second process while the daemon runs, and keep sampling until the
   outbox holds N rows that the simulator accepted (sent/delivered/read) and every one has
   reached `read` (the simulator's status webhooks have settled). Then keep sampling for the
   `after` period to see whether memory comes back down. Checks: the import created N, the
   outbox holds exactly N rows, the simulator's log holds exactly N messages with N distinct
   biz_opaque_callback_data (each outbox id once); the log is then cleared for the next round.
   A second round (different patients) tells memory the allocator keeps from memory that
   grows with every batch.
5. SIGTERM to the daemon (it must exit 0 within shutdown_grace + 5 s), SIGINT to the
   simulator.

Progress is counted with a read-only SQLite connection on the daemon's database (stdlib
sqlite3: no process, no HTTP request to the daemon being measured); the simulator's whole
message log is fetched once per round, for the checks.

Per phase the peak is exact: VmHWM is reset at each phase start (`echo 5 >
/proc/PID/clear_refs`, Linux >= 4.0) and read at its end; the lifetime peak is the largest of
them. Baselines from the same run: the peak RSS of `reminderd --version` (GNU time %M: the
process floor of this binary) and the simulator's RSS while idle (the same binary running a
tokio runtime and an HTTP server holding nothing).

The 1M phase (full runs; --big with --quick): a second daemon on a copy of a database holding
bench/import.py's 1,000,000-row schedule (plan.py's, or imported once into bench/data), 5 s
idle, then one round of 10,000 new patients. Goals (issue 19, rows of "goals" in the results):
the last round's peak <= 1.2x the first's; the 1M phase's peak < 100 MB.

Results go to bench/results/memory.json (bench/results/memory-quick.json with --quick).
Exits non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/goals.py, however loaded
import goals as G  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CONFIG = ROOT / "reminders.toml"

_spec = importlib.util.spec_from_file_location("bench_dispatch", BENCH_DIR / "dispatch.py")
D = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(D)  # build(), git(), free_port(), unix_ns(), CONFIG edits' style

LATENCY_MS = 100
RATE_CAP = 1000
INTERVAL = 0.05
N_FULL, N_QUICK = 10_000, 1_000
IDLE_FULL, IDLE_QUICK = 10.0, 2.0
AFTER_FULL, AFTER_QUICK = 10.0, 1.0
ROUNDS_FULL, ROUNDS_QUICK = 4, 2
BIG = 1_000_000  # appointments stored for the big phase (full runs)
GROWTH_GOAL = 1.2  # issue 19: the last round's peak <= 1.2x the first round's
BIG_TIMEOUT_S = 300  # the big round may send slowly; memory is what it measures
BIG_GOAL_MB = 100.0  # issue 19: < 100 MB with 1M appointments stored, planning and sending
SEED = 20270311
TOKEN, APP_SECRET, VERIFY = "sim-token", "s", "v"
CLINIC = "mumbai"
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))  # Asia/Kolkata: no DST, fixed offset
HEADER = ("appointment_id,patient_id,patient_name,phone,language,date,time,duration_min,"
          "provider,clinic,status")
OTHER_BENCHES = r"bench/(webhook|dispatch|import|plan)\.py"
ACCEPTED = ("sent", "delivered", "read")
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
MB = 1024.0  # /proc reports kB

CONFIG_CHANGES = [
    '[daemon] plan = "*/1 * * * * *" (was "0 * * * * *")',
    '[daemon] dispatch = "*/1 * * * * *" (was "*/15 * * * * *")',
    "quiet_hours lines removed",
    'max_import_age = "3650d"',
    f"[whatsapp] rate_limit_per_sec = {RATE_CAP}",
    "[booking_confirmation] enabled = false (one message per appointment: the day-before "
    "reminder; the same-day one is not due yet)",
]

failures: list[str] = []


def die(msg: str, code: int = 1) -> None:
    print(f"bench/memory.py: error: {msg}", file=sys.stderr)
    sys.exit(code)


def check(ok: bool, msg: str) -> bool:
    if not ok:
        failures.append(msg)
        print(f"  CHECK FAILED: {msg}", flush=True)
    return ok


# ---- inputs -------------------------------------------------------------------------------


def write_config(path: Path) -> str:
    text = CONFIG.read_text()
    out, section = [], ""
    edits = {"plan": 0, "dispatch": 0, "rate": 0, "booking": 0, "age": 0}
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s
        if s.startswith("quiet_hours") and "=" in s:
            continue
        key = s.split("=", 1)[0].strip() if "=" in s and not s.startswith("#") else None
        if key == "max_import_age":
            line, edits["age"] = 'max_import_age = "3650d"', edits["age"] + 1
        elif section == "[daemon]" and key == "plan":
            line, edits["plan"] = 'plan = "*/1 * * * * *"', 1
        elif section == "[daemon]" and key == "dispatch":
            line, edits["dispatch"] = 'dispatch = "*/1 * * * * *"', 1
        elif section == "[whatsapp]" and key == "rate_limit_per_sec":
            line, edits["rate"] = f"rate_limit_per_sec = {RATE_CAP}", 1
        elif section == "[booking_confirmation]" and key == "enabled":
            line, edits["booking"] = "enabled = false", 1
        elif section == "[desk]" and key == "listen":
            line = 'listen = "127.0.0.1:0"'  # any free port: benchmarks may run side by side
        out.append(line)
    missing = [k for k, v in edits.items() if not v]
    if missing:
        die(f"{CONFIG}: could not find the line(s) to edit: {missing}")
    text = "\n".join(out) + "\n"
    path.write_text(text)
    return text


def all_phones(n: int) -> list[str]:
    """n distinct Indian mobiles, 98xxx xxxxx (inside libphonenumber's IN mobile range)."""
    return [f"98{x:08d}" for x in random.Random(SEED).sample(range(100_000_000), n)]


def write_csv(path: Path, rnd: int, phones: list[str], now: dt.datetime) -> dict:
    """One appointment per phone, starting 20 h to 22 h 59 m from `now` (clinic-local wall
    time, minute steps): the day-before reminder (1d before, latest 4 h before) is due now,
    the same-day one (2 h before) is not."""
    first = now + dt.timedelta(hours=20)
    names = "Aarav Priya Rohan Ananya Farhan Meera Kavya Arjun".split()
    lines = [HEADER]
    for i, ph in enumerate(phones):
        start = (first + dt.timedelta(minutes=i % 180)).astimezone(IST)
        lines.append(
            f"MEM{rnd}-{i + 1:06d},MP{rnd}-{i + 1:06d},{names[i % len(names)]} Patil,"
            f"{ph[:5]} {ph[5:]},en,{start:%Y-%m-%d},{start:%H:%M},15,Dr. Mehta,{CLINIC},booked")
    path.write_text("\n".join(lines) + "\n")
    return {"first_start": first.isoformat(timespec="seconds"),
            "last_start": (first + dt.timedelta(minutes=179)).isoformat(timespec="seconds")}


# ---- /proc ----------------------------------------------------------------------------------


STATUS_KEYS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads")


def proc_status(pid: int) -> dict | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in STATUS_KEYS:
            out[k] = int(v.split()[0])
    return out


def proc_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def reset_hwm(pid: int) -> bool:
    """VmHWM := current VmRSS (Linux >= 4.0), so the next read is this phase's peak."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """Reads /proc/PID/status of each named process every INTERVAL, tagging each sample with
    the current phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.phase = "startup"
        self.samples: dict[str, list[tuple]] = {k: [] for k in pids}  # (t, phase, status)
        self.stop_ev = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            now = time.monotonic()
            for name, pid in self.pids.items():
                st = proc_status(pid)
                if st:
                    self.samples[name].append((now - self.t0, self.phase, st))
            nxt += INTERVAL
            delay = nxt - time.monotonic()
            if delay < 0:
                nxt = time.monotonic()
                delay = 0
            self.stop_ev.wait(delay)

    def of(self, name: str, phase: str) -> list[tuple]:
        return [s for s in self.samples[name] if s[1] == phase]

    def stop(self) -> None:
        self.stop_ev.set()
        self.join(timeout=2)


def summarize_rss(samples: list[tuple]) -> dict | None:
    if not samples:
        return None
    rss = [s[2]["VmRSS"] / MB for s in samples]
    anon = [s[2].get("RssAnon", 0) / MB for s in samples]
    srt = sorted(rss)
    return {
        "samples": len(samples),
        "duration_s": round(samples[-1][0] - samples[0][0], 3),
        "rss_mb": {"first": rss[0], "min": srt[0], "median": statistics.median(srt),
                   "p95": srt[min(len(srt) - 1, int(0.95 * len(srt)))], "max": srt[-1],
                   "last": rss[-1]},
        "rss_anon_mb": {"first": anon[0], "max": max(anon), "last": anon[-1]},
        "threads_max": max(s[2].get("Threads", 0) for s in samples),
    }


def series(samples: list[tuple], every_s: float = 0.5) -> list[list]:
    """[t_s, VmRSS_MB] about every `every_s`, plus the sample at the phase's maximum."""
    out, last = [], None
    top = max(samples, key=lambda s: s[2]["VmRSS"]) if samples else None
    for s in samples:
        if last is None or s[0] - last >= every_s or s is top or s is samples[-1]:
            out.append([round(s[0], 2), round(s[2]["VmRSS"] / MB, 2)])
            last = s[0]
    return out


# ---- processes ----------------------------------------------------------------------------


def base_env() -> dict:
    e = dict(os.environ)
    for k in ("RUST_LOG", "REMINDERD_CONFIG", "NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY"):
        e.pop(k, None)
    # The SMS providers under [sms] need their secrets for the daemon to start; the
    # simulator's values (nothing here texts).
    e["TWILIO_AUTH_TOKEN"] = "sim-twilio-token"
    e["MSG91_AUTH_KEY"] = "sim-msg91-key"
    e["MSG91_WEBHOOK_TOKEN"] = "bench-msg91-webhook-token"
    return e


UNIT = ROOT / "systemd" / "reminderd.service"


def unit_env() -> dict:
    """The `Environment=` settings of the systemd unit the daemon ships with: the daemon is
    measured as it runs when installed (today MALLOC_ARENA_MAX=2, which bounds the memory
    glibc keeps per thread). --default-malloc measures it without them."""
    env = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            for item in line[len("Environment="):].split():
                k, _, v = item.strip('"').partition("=")
                env[k] = v
    return env


DAEMON_ENV: dict = {}  # set in main(): unit_env(), or empty with --default-malloc


def http_get(url: str, timeout: float = 60) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_listening(proc: subprocess.Popen, url: str, what: str, log: Path,
                   want_200: bool, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode} while starting:\n"
                               f"{log.read_text(errors='replace')[-2000:]}")
        try:
            code, _ = http_get(url, timeout=1)
            if code == 200 or not want_200:
                return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} with 200 within {timeout:.0f} s")
        time.sleep(0.05)


def stop_proc(proc: subprocess.Popen, sig: int, grace: float) -> dict:
    """Sends `sig`, waits up to `grace` s; SIGKILL after that. Returns how it ended."""
    if proc.poll() is not None:
        return {"signal": None, "rc": proc.returncode, "seconds": 0.0, "killed": False,
                "note": "had already exited"}
    t0 = time.monotonic()
    proc.send_signal(sig)
    killed = False
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        killed = True
    return {"signal": signal.Signals(sig).name, "rc": proc.returncode,
            "seconds": round(time.monotonic() - t0, 3), "killed": killed}


def version_floor(binary: Path) -> dict:
    """Peak RSS of `reminderd --version` under GNU time (a child forked from this Python
    process would inherit its high-water mark in ru_maxrss; GNU time's own child does not)."""
    if not GNU_TIME:
        return {"peak_rss_mb": None, "how": "GNU time not installed"}
    vals = []
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
        for _ in range(3):
            subprocess.run([GNU_TIME, "-f", "%M", "-o", f.name, str(binary), "--version"],
                           capture_output=True, check=True)
            vals.append(int(Path(f.name).read_text().split()[-1]) / MB)
    return {"peak_rss_mb": statistics.median(vals), "runs_mb": vals,
            "how": "GNU time %M of `reminderd --version`, median of 3"}


def outbox_counts(conn: sqlite3.Connection) -> dict:
    return dict(conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())


def log_levels(path: Path) -> dict:
    """Counts of WARN/ERROR lines in the daemon's JSON log, with the first few."""
    counts, first = {"WARN": 0, "ERROR": 0}, []
    for line in path.read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level")
        except ValueError:
            level = "ERROR" if " ERROR " in line else ("WARN" if " WARN " in line else None)
        if level in counts:
            counts[level] += 1
            if len(first) < 5:
                first.append(line[:400])
        continue
    return {"warn": counts["WARN"], "error": counts["ERROR"], "first": first}


# ---- the run ------------------------------------------------------------------------------


def wait_for_other_benches(max_wait: float = 3600) -> float:
    t0 = time.monotonic()
    told = False
    while True:
        p = subprocess.run(["pgrep", "-f", OTHER_BENCHES], capture_output=True, text=True)
        others = [x for x in p.stdout.split() if x and int(x) != os.getpid()]
        if not others:
            return time.monotonic() - t0
        if not told:
            print(f"waiting for other benchmarks to finish (pids {' '.join(others)})", flush=True)
            told = True
        if time.monotonic() - t0 > max_wait:
            die(f"other benchmarks still running after {max_wait:.0f} s: {others}")
        time.sleep(5)


def one_round(rnd: int, n: int, phones: list[str], binary: Path, cfg: Path, db: Path,
              work: Path, sampler: Sampler, daemon: subprocess.Popen, sim_base: str,
              conn: sqlite3.Connection, after_s: float, timeout_s: float) -> dict:
    name = f"dispatch-{rnd}"
    print(f"round {rnd}: {n:,} appointments for {n:,} new patients, imported while the "
          "daemon runs", flush=True)
    now = dt.datetime.now(dt.timezone.utc)
    csv_path = work / f"round{rnd}.csv"
    window = write_csv(csv_path, rnd, phones, now)
    before = sum(outbox_counts(conn).values())

    reset_hwm(daemon.pid)
    cpu0 = proc_cpu_s(daemon.pid)
    sampler.phase = name
    t_import = time.monotonic()
    wall_import = time.time()
    p = subprocess.run([str(binary), "--config", str(cfg), "--db", str(db), "import",
                        str(csv_path), "--json"], capture_output=True, text=True, env=base_env())
    import_s = time.monotonic() - t_import
    try:
        report = json.loads(p.stdout)
    except ValueError:
        report = {}
    check(p.returncode == 0 and report.get("new") == n and not report.get("errors"),
          f"round {rnd}: import exited {p.returncode}, new={report.get('new')} (want {n}), "
          f"errors={len(report.get('errors') or [])}: {p.stderr[-500:]}")

    t_planned = t_accepted = t_settled = None
    counts: dict = {}
    last_print = 0.0
    while True:
        time.sleep(0.25)
        t = time.monotonic() - t_import
        counts = outbox_counts(conn)
        total = sum(counts.values()) - before
        accepted = sum(counts.get(s, 0) for s in ACCEPTED) - before
        read = counts.get("read", 0) - before
        if t_planned is None and total >= n:
            t_planned = t
        if t_accepted is None and accepted >= n:
            t_accepted = t
        if read >= n:
            t_settled = t
            break
        if daemon.poll() is not None:
            check(False, f"round {rnd}: the daemon exited {daemon.returncode} mid-round")
            break
        if t - last_print >= 5:
            print(f"  +{t:4.1f}s outbox {counts}", flush=True)
            last_print = t
        if t > timeout_s:
            check(False, f"round {rnd}: not settled after {timeout_s:.0f} s: {counts}")
            break
    hwm = (proc_status(daemon.pid) or {}).get("VmHWM")
    cpu1 = proc_cpu_s(daemon.pid)
    print(f"  accepted +{t_accepted if t_accepted is None else round(t_accepted, 2)}s, "
          f"settled +{t_settled if t_settled is None else round(t_settled, 2)}s: {counts}",
          flush=True)

    # After: does the memory come back down?
    reset_hwm(daemon.pid)
    sampler.phase = f"after-{rnd}"
    time.sleep(after_s)
    hwm_after = (proc_status(daemon.pid) or {}).get("VmHWM")

    # Checks against the outbox and the simulator's log.
    counts = outbox_counts(conn)
    check(sum(counts.values()) - before == n,
          f"round {rnd}: the outbox grew by {sum(counts.values()) - before}, want {n} "
          f"(one reminder per appointment): {counts}")
    check(counts.get("read", 0) - before == n, f"round {rnd}: {counts.get('read', 0) - before}"
          f" of {n} reached read: {counts}")
    code, body = http_get(f"{sim_base}/_sim/messages", timeout=120)
    msgs = json.loads(body) if code == 200 else []
    cbs = [(m.get("body") or {}).get("biz_opaque_callback_data") for m in msgs]
    distinct = len(set(c for c in cbs if c is not None))
    check(len(msgs) == n, f"round {rnd}: the simulator accepted {len(msgs)} messages, want {n}")
    check(distinct == len(msgs) and None not in cbs,
          f"round {rnd}: {distinct} distinct biz_opaque_callback_data among {len(cbs)} "
          f"messages ({cbs.count(None)} without one): some outbox id sent more than once")
    ts = sorted(D.unix_ns(m["received_at"]) for m in msgs if m.get("received_at"))
    span = (ts[-1] - ts[0]) / 1e9 if len(ts) > 1 else None
    first_after_import = (ts[0] / 1e9 - wall_import) if ts else None
    last_after_import = (ts[-1] / 1e9 - wall_import) if ts else None
    urllib.request.urlopen(urllib.request.Request(f"{sim_base}/_sim/messages",
                                                  method="DELETE"), timeout=30).close()

    return {
        "round": rnd,
        "n": n,
        "appointments": window,
        "import": {"rc": p.returncode, "seconds": round(import_s, 3),
                   "new": report.get("new"), "rows": report.get("rows")},
        "seconds_from_import_start": {
            "planned": t_planned, "first_accepted": first_after_import,
            "all_accepted": t_accepted, "last_accepted_sim": last_after_import,
            "settled_all_read": t_settled},
        "send_span_s": span,
        "achieved_per_s": (len(ts) - 1) / span if span else None,
        "achieved_rule": "(N-1) / (last - first simulator received_at)",
        "simulator_accepted": len(msgs),
        "distinct_callback_data": distinct,
        "outbox_states_end": counts,
        "daemon_cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        "peak_vmhwm_mb": hwm / MB if hwm else None,
        "after_peak_vmhwm_mb": hwm_after / MB if hwm_after else None,
        "rss": summarize_rss(sampler.of("daemon", name)),
        "rss_after": summarize_rss(sampler.of("daemon", f"after-{rnd}")),
        "series": series(sampler.of("daemon", name)),
        "series_after": series(sampler.of("daemon", f"after-{rnd}"), 1.0),
    }


def run(binary: Path, n: int, rounds: int, idle_s: float, after_s: float, work: Path,
        seed_db: Path | None = None, timeout_s: float | None = None) -> dict:
    cfg, db = work / "reminders.toml", work / "memory.db"
    config_text = write_config(cfg)
    phones = all_phones(n * rounds)
    if seed_db is not None:
        # The big phase: the daemon starts on a copy of a database holding BIG appointments;
        # its new patients are numbers that database does not hold.
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        shutil.copyfile(seed_db, db)
        c = sqlite3.connect(db)
        taken = {r[0] for r in c.execute("SELECT phone FROM patients")}
        c.close()
        pool = all_phones(n * 2 + 1000)[n:]
        phones = [p for p in pool if f"+91{p}" not in taken][:n]
    daemon_port, sim_port = D.free_port(), D.free_port()
    while sim_port == daemon_port:
        sim_port = D.free_port()
    sim_base = f"http://127.0.0.1:{sim_port}"
    daemon_base = f"http://127.0.0.1:{daemon_port}"
    sim_log, daemon_log = work / "sim.log", work / "daemon.log"
    floor = version_floor(binary)

    procs: dict[str, subprocess.Popen] = {}
    sampler: Sampler | None = None
    conn: sqlite3.Connection | None = None
    out: dict = {"baseline": {"version": floor}}
    try:
        with sim_log.open("wb") as sl:
            procs["simulator"] = subprocess.Popen(
                [str(binary), "--config", str(cfg), "simulate", "--listen",
                 f"127.0.0.1:{sim_port}", "--latency-ms", str(LATENCY_MS),
                 "--pair-limit-secs", "0", "--webhook", f"{daemon_base}/webhook"],
                stdout=sl, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**base_env(), "WHATSAPP_APP_SECRET": APP_SECRET})
        wait_listening(procs["simulator"], f"{sim_base}/_sim/messages", "the simulator",
                       sim_log, want_200=True)
        t_start = time.monotonic()
        with daemon_log.open("wb") as dl:
            procs["daemon"] = subprocess.Popen(
                [str(binary), "--config", str(cfg), "--db", str(db), "run", "--listen",
                 f"127.0.0.1:{daemon_port}"],
                stdout=dl, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**base_env(), **DAEMON_ENV, "WHATSAPP_ACCESS_TOKEN": TOKEN,
                     "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY,
                     "REMINDERD_API_BASE": sim_base, "REMINDERD_LOG_FORMAT": "json"})
        daemon = procs["daemon"]
        sampler = Sampler({"daemon": daemon.pid, "simulator": procs["simulator"].pid})
        sampler.start()
        wait_listening(daemon, f"{daemon_base}/healthz", "the daemon", daemon_log,
                       want_200=True)
        out["daemon_healthy_after_s"] = round(time.monotonic() - t_start, 3)
        startup_hwm = (proc_status(daemon.pid) or {}).get("VmHWM")
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)

        # Idle: empty database, jobs ticking every second.
        print(f"idle: sampling the daemon for {idle_s:.0f} s on an empty database", flush=True)
        out["hwm_reset_supported"] = reset_hwm(daemon.pid)
        cpu0 = proc_cpu_s(daemon.pid)
        sampler.phase = "idle"
        time.sleep(idle_s)
        idle_hwm = (proc_status(daemon.pid) or {}).get("VmHWM")
        cpu1 = proc_cpu_s(daemon.pid)
        check(sum(outbox_counts(conn).values()) == 0, "idle: the outbox is not empty")
        out["idle"] = {
            "seconds": idle_s,
            "startup_peak_vmhwm_mb": startup_hwm / MB if startup_hwm else None,
            "peak_vmhwm_mb": idle_hwm / MB if idle_hwm else None,
            "daemon_cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
            "rss": summarize_rss(sampler.of("daemon", "idle")),
            "series": series(sampler.of("daemon", "idle"), 1.0),
        }
        out["baseline"]["simulator_idle"] = summarize_rss(sampler.of("simulator", "idle"))
        i = out["idle"]["rss"]["rss_mb"]
        print(f"  steady RSS {i['median']:.1f} MB (min {i['min']:.1f}, max {i['max']:.1f}), "
              f"peak (VmHWM) {out['idle']['peak_vmhwm_mb']:.1f} MB", flush=True)

        timeout_s = timeout_s or 60 + n / RATE_CAP * 6
        out["rounds"] = []
        for rnd in range(1, rounds + 1):
            r = one_round(rnd, n, phones[(rnd - 1) * n: rnd * n], binary, cfg, db, work,
                          sampler, daemon, sim_base, conn, after_s, timeout_s)
            r["simulator_rss"] = summarize_rss(sampler.of("simulator", f"dispatch-{rnd}"))
            out["rounds"].append(r)
        conn.close()
        conn = None

        # Stop: the daemon must exit 0 on SIGTERM.
        sampler.stop()
        grace = 10 + 5  # shutdown_grace in reminders.toml is 10s
        out["daemon_stop"] = stop_proc(daemon, signal.SIGTERM, grace)
        check(out["daemon_stop"]["rc"] == 0 and not out["daemon_stop"]["killed"],
              f"the daemon did not exit 0 on SIGTERM: {out['daemon_stop']}")
        out["simulator_stop"] = stop_proc(procs["simulator"], signal.SIGINT, 5)
        check(out["simulator_stop"]["rc"] == 0 and not out["simulator_stop"]["killed"],
              f"the simulator did not exit 0 on SIGINT: {out['simulator_stop']}")
        out["daemon_log"] = log_levels(daemon_log)
        out["config_text"] = config_text
        return out
    except RuntimeError as e:
        check(False, str(e))
        out["error"] = str(e)
        return out
    finally:
        if conn is not None:
            conn.close()
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        for name, p in procs.items():
            if p.poll() is None:
                sig = signal.SIGTERM if name == "daemon" else signal.SIGINT
                stop_proc(p, sig, 15)


def big_db(binary: Path) -> tuple[Path | None, str]:
    """A database holding bench/import.py's 1M-row schedule, imported by this binary: plan.py's
    (bench/data/plan-1000000.db) when it is newer than the binary, else our own cached copy,
    imported now if missing or older than the binary."""
    data = BENCH_DIR / "data"
    data.mkdir(exist_ok=True)
    built = binary.stat().st_mtime
    for cand in (data / f"plan-{BIG}.db", data / f"memory-{BIG}.db"):
        if cand.exists() and cand.stat().st_mtime > built:
            return cand, f"reused {cand.relative_to(ROOT)}"
    spec = importlib.util.spec_from_file_location("bench_import", BENCH_DIR / "import.py")
    imp = importlib.util.module_from_spec(spec)
    sys.dont_write_bytecode = True
    spec.loader.exec_module(imp)
    csv_path, _ = imp.dataset(BIG)
    db = data / f"memory-{BIG}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    print(f"big phase: importing {BIG:,} appointments into {db.relative_to(ROOT)}", flush=True)
    t0 = time.monotonic()
    p = subprocess.run([str(binary), "--config", str(CONFIG), "--db", str(db), "import",
                        str(csv_path), "--json"], capture_output=True, text=True, env=base_env())
    if p.returncode != 0:
        return None, f"reminderd import of {csv_path.name} exited {p.returncode}: {p.stderr[-300:]}"
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return db, f"imported now in {time.monotonic() - t0:.0f} s"


def goals(out: dict, big: dict | None, big_why: str | None) -> list[dict]:
    """Issue 19's memory rows: the figures against their goals."""
    rows = []
    rounds = out.get("rounds") or []
    peaks = [r["peak_vmhwm_mb"] for r in rounds]
    what = f"daemon peak over {len(rounds)} rounds of {rounds[0]['n']:,}" if rounds else \
        "daemon peak over rounds"
    if len(peaks) >= 2 and all(peaks):
        ratio = peaks[-1] / peaks[0]
        rows.append(G.goal(what, " -> ".join(f"{x:.1f}" for x in peaks) + " MB",
                           f"round 1 {peaks[0]:.1f} MB", ratio,
                           f"last <= {GROWTH_GOAL}x round 1", ratio <= GROWTH_GOAL,
                           value=peaks[-1]))
    else:
        rows.append(G.not_measured(what, f"last <= {GROWTH_GOAL}x round 1",
                                   "needs two rounds or more"))
    idle = (out.get("idle") or {}).get("rss") or {}
    v = ((out.get("baseline") or {}).get("version") or {}).get("peak_rss_mb")
    if idle:
        med = idle["rss_mb"]["median"]
        rows.append(G.goal("  daemon idle, empty database", f"{med:.1f} MB",
                           f"reminderd --version {fmt(v)} MB", med / v if v else None,
                           value=med))
    what = f"daemon peak, {BIG:,} appointments stored, planning and sending"
    if big and big.get("rounds"):
        r = big["rounds"][0]
        peak = max(x for x in [r["peak_vmhwm_mb"], (big.get("idle") or {}).get("peak_vmhwm_mb")]
                   if x)
        rows.append(G.goal(what, f"{peak:.1f} MB", f"empty database, round 1 "
                           f"{fmt(peaks[0] if peaks else None)} MB",
                           peak / peaks[0] if peaks and peaks[0] else None,
                           f"< {BIG_GOAL_MB:g} MB", peak < BIG_GOAL_MB, value=peak,
                           note=f"{r['n']:,} new patients sent on top of the stored ones"))
    else:
        rows.append(G.not_measured(what, f"< {BIG_GOAL_MB:g} MB", big_why or "not run"))
    return rows


# ---- report -------------------------------------------------------------------------------


def fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_table(out: dict, cores: int) -> None:
    head = ["phase", "N", "secs", "samples", "RSS min", "RSS median", "RSS max", "peak VmHWM",
            "RSS end", "threads", "daemon cpu s"]
    rows = []

    def row(label, n, secs, s, hwm, cpu):
        r = (s or {}).get("rss_mb", {})
        rows.append([label, n, fmt(secs, ".1f"), str((s or {}).get("samples", "-")),
                     fmt(r.get("min")), fmt(r.get("median")), fmt(r.get("max")), fmt(hwm),
                     fmt(r.get("last")), str((s or {}).get("threads_max", "-")),
                     fmt(cpu, ".2f")])

    idle = out.get("idle")
    if idle:
        row("daemon idle", "0", idle["seconds"], idle["rss"], idle["peak_vmhwm_mb"],
            idle["daemon_cpu_s"])
    for r in out.get("rounds", []):
        row(f"daemon dispatching (round {r['round']})", f"{r['n']:,}",
            r["seconds_from_import_start"]["settled_all_read"], r["rss"], r["peak_vmhwm_mb"],
            r["daemon_cpu_s"])
        row(f"daemon after round {r['round']}", "", r["rss_after"] and
            r["rss_after"]["duration_s"], r["rss_after"], r["after_peak_vmhwm_mb"], None)
    sim = out.get("baseline", {}).get("simulator_idle")
    if sim:
        row("baseline: simulator idle", "", sim["duration_s"], sim, None, None)
    widths = [max([len(h), *(len(x[i]) for x in rows)]) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    print()
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for x in rows:
        print(line(x))
    v = out.get("baseline", {}).get("version", {}).get("peak_rss_mb")
    print(f"\nbaseline: `reminderd --version` peak RSS {fmt(v)} MB (process floor, GNU time)")
    if idle and v:
        print(f"daemon idle steady / --version floor = {idle['rss']['rss_mb']['median'] / v:.2f}"
              + (f";  / simulator idle = {idle['rss']['rss_mb']['median'] / sim['rss_mb']['median']:.2f}"
                 if sim else ""))
    for r in out.get("rounds", []):
        s = r["seconds_from_import_start"]
        ratio = (r["peak_vmhwm_mb"] / idle["rss"]["rss_mb"]["median"]
                 if idle and r["peak_vmhwm_mb"] else None)
        print(f"round {r['round']}: {r['simulator_accepted']:,} accepted "
              f"({r['distinct_callback_data']:,} distinct ids), all accepted "
              f"+{fmt(s['all_accepted'], '.1f')} s and all read +"
              f"{fmt(s['settled_all_read'], '.1f')} s after import start; sending took "
              f"{fmt(r['send_span_s'], '.2f')} s = {fmt(r['achieved_per_s'], '.0f')} msgs/s "
              f"(cap {RATE_CAP}); peak / idle steady = {fmt(ratio, '.2f')}")
    ds, ss = out.get("daemon_stop"), out.get("simulator_stop")
    if ds:
        print(f"daemon SIGTERM: exit {ds['rc']} after {ds['seconds']:.2f} s"
              f"{' (KILLED)' if ds['killed'] else ''};  simulator SIGINT: exit "
              f"{ss['rc']} after {ss['seconds']:.2f} s")
    lg = out.get("daemon_log")
    if lg:
        print(f"daemon log: {lg['warn']} WARN, {lg['error']} ERROR lines")
    print(f"cores: {cores}   RSS/VmHWM in MB (MiB, /proc kB / 1024), sampled every "
          f"{INTERVAL * 1000:.0f} ms; peak VmHWM is per phase (reset at its start); "
          f"simulator latency {LATENCY_MS} ms; rate cap {RATE_CAP}/s")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=None, help=f"per round (default {N_FULL:,})")
    ap.add_argument("--rounds", type=int, default=None, help=f"default {ROUNDS_FULL}")
    ap.add_argument("--idle-secs", type=float, default=None, help=f"default {IDLE_FULL:.0f}")
    ap.add_argument("--after-secs", type=float, default=None,
                    help=f"sampling after each round settles (default {AFTER_FULL:.0f})")
    ap.add_argument("--quick", action="store_true",
                    help=f"{N_QUICK:,} messages, {ROUNDS_QUICK} round, {IDLE_QUICK:.0f} s idle")
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--no-wait", action="store_true",
                    help="do not wait for other bench/*.py runs to finish")
    ap.add_argument("--big", action="store_true",
                    help=f"with --quick: also the {BIG:,}-appointment phase (full runs always)")
    ap.add_argument("--no-big", action="store_true",
                    help=f"skip the {BIG:,}-appointment phase")
    ap.add_argument("--default-malloc", action="store_true",
                    help="run the daemon without the systemd unit's Environment= settings "
                         "(MALLOC_ARENA_MAX): glibc's default arenas")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    q = args.quick
    n = args.messages or (N_QUICK if q else N_FULL)
    rounds = args.rounds or (ROUNDS_QUICK if q else ROUNDS_FULL)
    idle_s = args.idle_secs if args.idle_secs is not None else (IDLE_QUICK if q else IDLE_FULL)
    after_s = (args.after_secs if args.after_secs is not None
               else (AFTER_QUICK if q else AFTER_FULL))
    if n < 2 or rounds < 1 or n * rounds > 1_000_000:
        die("--messages must be >= 2, --rounds >= 1, messages x rounds <= 1,000,000", 2)

    if args.no_build:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        binary = (target if target.is_absolute() else ROOT / target) / "release" / "reminderd"
        if not binary.exists():
            die(f"{binary} does not exist; build it or drop --no-build", 2)
    else:
        binary = D.build()
    # The tree the binary was built from: taken now, not after the run (others may commit or
    # edit meanwhile).
    status = D.git("status", "--porcelain")
    commit = D.git("rev-parse", "--short", "HEAD")
    built = dt.datetime.fromtimestamp(binary.stat().st_mtime, dt.timezone.utc)
    waited = 0.0 if args.no_wait else wait_for_other_benches()
    cores = os.cpu_count() or 0

    DAEMON_ENV.clear()
    if not args.default_malloc:
        DAEMON_ENV.update(unit_env())
    print("daemon environment from systemd/reminderd.service: "
          + (" ".join(f"{k}={v}" for k, v in DAEMON_ENV.items()) or "none (--default-malloc)"),
          flush=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reminderd-memory-") as tmp:
        out = run(binary, n, rounds, idle_s, after_s, Path(tmp))
    big, big_why = None, None
    if (args.big or not q) and not args.no_big:
        seed, how = big_db(binary)
        if seed is None:
            big_why = how
            check(False, f"big phase: {how}")
        else:
            print(f"big phase: the daemon on {BIG:,} stored appointments ({how}), one round of "
                  f"{N_FULL:,}", flush=True)
            with tempfile.TemporaryDirectory(prefix="reminderd-memory-big-",
                                             dir=BENCH_DIR / "data") as tmp:
                big = run(binary, N_FULL, 1, min(idle_s, 5.0), min(after_s, 2.0), Path(tmp),
                          seed_db=seed, timeout_s=BIG_TIMEOUT_S)
            big.pop("config_text", None)
            big["seed_db"] = how
    else:
        big_why = "full runs only (--quick: only with --big)"
    elapsed = time.monotonic() - t0

    print_table(out, cores)
    if big:
        print(f"\nbig phase ({BIG:,} appointments stored):")
        print_table(big, cores)
    goal_rows = goals(out, big, big_why)
    G.print_table(goal_rows, "memory goals (issue 19)")
    result = {
        "benchmark": "memory",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": commit,
        "binary_built": built.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_dirty": bool(status) if status is not None else None,
        "git_dirty_paths": status.splitlines() if status else [],
        "machine": {"cores": cores, "platform": platform.platform(),
                    "python": platform.python_version(),
                    "waited_for_other_benches_s": round(waited, 1)},
        "method": {
            "messages_per_round": n, "rounds": rounds, "idle_s": idle_s, "after_s": after_s,
            "sample_interval_ms": INTERVAL * 1000,
            "rss": "/proc/PID/status VmRSS (kB/1024 = MiB); peak = VmHWM, reset per phase "
                   "with /proc/PID/clear_refs 5",
            "simulator": f"--latency-ms {LATENCY_MS} --pair-limit-secs 0 --webhook "
                         "(signed sent/delivered/read statuses)",
            "appointments": "Mumbai, 20h..22h59m after the round starts, one per new patient; "
                            "day-before reminder due now",
            "settled": "every new outbox row in state read",
            "progress": "read-only sqlite3 connection: SELECT state, count(*) FROM outbox",
            "baselines": "`reminderd --version` peak RSS (GNU time %M); simulator RSS idle",
            "daemon_env": dict(DAEMON_ENV),
            "run_seconds": round(elapsed, 1),
        },
        "config": {"changes": CONFIG_CHANGES, "text": out.pop("config_text", None)},
        **out,
        "big": big,
        "goals": goal_rows,
        "checks_failed": failures,
        "ok": not failures,
    }
    path = args.output or RESULTS_DIR / ("memory-quick.json" if q else "memory.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
          f"({elapsed:.1f} s)")
    if failures:
        print(f"\n{len(failures)} check(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
