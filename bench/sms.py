#!/usr/bin/env python3
"""SMS send-throughput benchmark for reminderd: `reminderd send --once` texting through the
simulated Twilio API (100 ms latency) at several `[sms.twilio] rate_limit_per_sec` caps, against
the WhatsApp dispatch of the same appointments at the same cap, measured in the same run.

Standard library only; it reuses bench/dispatch.py's helpers (build, simulator, timing, window
analysis). Run from anywhere:

    python3 bench/sms.py                      # caps 10, 50, 200; N = min(2000, 30 s at the cap)
    python3 bench/sms.py --caps 1 --messages 30 --output /tmp/sms-1.json   # a US long code
    python3 bench/sms.py --messages 2000      # the same N at every cap
    python3 bench/sms.py --quick              # cap 200, 300 messages: CI smoke test (~5 s)

Per cap and channel: a fresh database with N appointments at the Twilio clinic (`nyc`), one per
patient, every row's `channel` column `sms` (or empty, for the WhatsApp baseline); `plan` must
leave exactly N pending; a fresh simulator; `send --once` timed (wall, CPU, peak RSS). Checks:

    * send reports sent = N, and the outbox holds N rows, all `sent` on the expected channel;
    * the simulator recorded exactly N sends on that channel and none on the other: each
      patient's number once, and its message ids are exactly the outbox's (none missing,
      none twice);
    * no 1-second window of the simulator's received_at stamps holds more than the cap.

Any failed check makes the exit status 1 (after the table and the JSON are written). From the
stamps, as dispatch.py: achieved = (N - 1) / (last - first), its ratio to the cap, the busiest
1-second window, stalls. SMS/WhatsApp = achieved SMS rate / achieved WhatsApp rate.

Results go to bench/results/sms.json (bench/results/sms-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dispatch as d  # noqa: E402  (bench/dispatch.py: build, Simulator, timed, analyse, ...)

ROOT, RESULTS_DIR = d.ROOT, d.RESULTS_DIR
DEFAULT_CAPS = [10, 50, 200]
DEFAULT_MESSAGES = 2000
MAX_SECONDS = 30  # N = min(--messages, cap * 30): the low caps would otherwise take minutes
QUICK_CAP, QUICK_N = 200, 300
SEED = 20270309

# What `reminderd simulate` accepts for Twilio (src/sim/mod.rs, SimConfig::default()).
SIM_ACCOUNT_SID = "ACs1m00000000000000000000000000000"
SIM_TWILIO_TOKEN = "sim-twilio-token"

# Every appointment is at the New York clinic on Wednesday 10 March 2027, 12:00-17:59 local
# (EST). At --now = Tuesday 9 March 19:30 EST every day-before reminder (due 12:00-17:59 on the
# 9th, latest 4 h before the start) is due and no same-day one is.
APPT_DATE = "2027-03-10"
NOW = "2027-03-10T00:30:00Z"
CLINIC = "nyc"
HEADER = ("appointment_id,patient_id,patient_name,phone,language,date,time,duration_min,"
          "provider,clinic,status,channel")
FIRST = "Olivia Liam Emma Noah Ava Mateo Sofia Lucas Mia Ethan Camila Aiden".split()
LAST = "Smith Garcia Chen Okafor Rivera Cohen Patel Kim Russo Murphy Díaz O'Brien".split()
NYC_AREAS = ["212", "646", "718", "917", "347"]
BAD_EXCHANGES = {555, 950, 958, 959, 976} | {n * 100 + 11 for n in range(2, 10)}


def die(msg: str, code: int = 1) -> None:
    print(f"bench/sms.py: error: {msg}", file=sys.stderr)
    sys.exit(code)


# dispatch.py's helpers stop through its `die`; name this script in their messages.
d.die = die


# ---- inputs -------------------------------------------------------------------------------


def write_config(path: Path, cap: int, callback_port: int) -> str:
    """dispatch.py's config (the [whatsapp] cap, no quiet hours, no booking confirmations), and
    Twilio pointed at the simulator's account with the same cap. Status callbacks go to a
    loopback port nothing listens on: `send --once` runs no webhook server, and the simulator
    posts each callback once and drops it when refused."""
    text = d.write_config(path, cap, None)
    out, section, edited = [], "", set()
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s
        if section == "[sms.twilio]":
            for key, value in (("account_sid", f'"{SIM_ACCOUNT_SID}"'),
                               ("rate_limit_per_sec", str(cap)),
                               ("public_url", f'"http://127.0.0.1:{callback_port}"')):
                if re.match(rf"{key}\s*=", s):
                    line = f"{key} = {value}"
                    edited.add(key)
        elif section == f"[clinics.{CLINIC}]" and re.match(r"sms_provider\s*=", s):
            if s.split("=", 1)[1].strip() != '"twilio"':
                die(f"{d.CONFIG}: clinic {CLINIC} no longer texts through Twilio")
            edited.add("sms_provider")
        out.append(line)
    missing = {"account_sid", "rate_limit_per_sec", "public_url", "sms_provider"} - edited
    if missing:
        die(f"{d.CONFIG} has no {', '.join(sorted(missing))} line to edit "
            f"([sms.twilio] and [clinics.{CLINIC}])")
    text = "\n".join(out) + "\n"
    path.write_text(text)
    return text


def phones(n: int) -> list[str]:
    """n distinct valid NANP numbers in New York area codes, as E.164 (+1AAAEEELLLL)."""
    rng = random.Random(SEED)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        exchange = 200 + rng.randrange(800)
        if exchange in BAD_EXCHANGES:
            continue
        num = f"+1{NYC_AREAS[rng.randrange(len(NYC_AREAS))]}{exchange}{rng.randrange(10_000):04d}"
        if num not in seen:
            seen.add(num)
            out.append(num)
    return out


def write_csv(path: Path, nums: list[str], channel: str) -> None:
    """One appointment per patient; `channel` is the column's value for every row."""
    rng = random.Random(SEED + len(nums))
    lines = [HEADER]
    for i, ph in enumerate(nums):
        minute = i % 360  # 12:00 .. 17:59
        name = f"{FIRST[rng.randrange(len(FIRST))]} {LAST[rng.randrange(len(LAST))]}"
        if "," in name or '"' in name:
            name = f'"{name}"'
        lines.append(
            f"BENCH-{i + 1:06d},BP-{i + 1:06d},{name},({ph[2:5]}) {ph[5:8]}-{ph[8:]},en,"
            f"{APPT_DATE},{12 + minute // 60:02d}:{minute % 60:02d},30,Dr. Chen,{CLINIC},booked,"
            f"{channel}")
    path.write_text("\n".join(lines) + "\n")


# ---- processes ----------------------------------------------------------------------------


def env() -> dict:
    """dispatch.py's environment: the simulator's WhatsApp token and SMS secrets."""
    e = d.env()
    if e.get("TWILIO_AUTH_TOKEN") != SIM_TWILIO_TOKEN:
        die("bench/dispatch.py no longer gives TWILIO_AUTH_TOKEN the simulator's token")
    return e


class Simulator(d.Simulator):
    """dispatch.py's simulator, which also serves Twilio; `sms()` is what Twilio accepted."""

    def sms(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.base}/_sim/sms", timeout=60) as r:
            return json.loads(r.read())


def outbox(base: list[str]) -> list[dict]:
    p = subprocess.run([*base, "outbox", "--json"], capture_output=True, text=True, env=env())
    try:
        rows = json.loads(p.stdout)
    except ValueError:
        rows = None
    if p.returncode != 0 or not isinstance(rows, list):
        die(f"outbox --json exited {p.returncode}:\n{p.stderr[-2000:]}\n{p.stdout[-2000:]}")
    return rows


def digits(s: str) -> str:
    return re.sub(r"\D", "", s or "")


# ---- one run ------------------------------------------------------------------------------


def one_run(binary: Path, cap: int, n: int, channel: str, tmp: Path) -> dict:
    """Sends N reminders on `channel` ("sms" or "whatsapp") at `cap`; returns the figures and
    `problems`, the checks that failed (empty when all held)."""
    work = tmp / f"{channel}-cap{cap}-{time.monotonic_ns()}"
    work.mkdir()
    cfg, db, csv_path = work / "reminders.toml", work / "bench.db", work / "schedule.csv"
    write_config(cfg, cap, d.free_port())
    nums = phones(n)
    write_csv(csv_path, nums, "sms" if channel == "sms" else "")
    base = [str(binary), "--config", str(cfg), "--db", str(db)]

    p = subprocess.run([*base, "import", str(csv_path)], capture_output=True, text=True,
                       env=env())
    if p.returncode != 0:
        die(f"import exited {p.returncode}:\n{p.stderr[-2000:]}\n{p.stdout[-2000:]}")
    planned = d.run_json([*base, "plan", "--now", NOW, "--json"], "plan", env())
    if planned.get("pending") != n:
        die(f"plan --now {NOW} left {planned.get('pending')} pending, expected {n}: {planned}")

    # A stall must end the run, not hang it: allow three times the limiter's time, plus 30 s.
    limit = int(3 * n / d.limiter_params(cap)["steady_per_s"]) + 30
    sim = Simulator(binary, cfg, work)
    try:
        r = d.timed(["timeout", "-k", "5", str(limit), *base, "send", "--once", "--now", NOW,
                     "--json"],
                    {**env(), "REMINDERD_API_BASE": sim.base}, work)
        texts, whatsapp = sim.sms(), sim.messages()
    finally:
        sim.stop()
    if r["rc"] == 124:
        die(f"{channel} at cap {cap}: send --once was still running after {limit} s (a stall); "
            f"the simulator had {len(texts)} texts and {len(whatsapp)} WhatsApp messages; "
            f"stderr:\n{r['stderr'][-2000:]}")
    if r["rc"] != 0:
        die(f"{channel} at cap {cap}: send --once exited {r['rc']}:\n{r['stderr'][-2000:]}\n"
            f"{r['stdout'][-2000:]}")
    try:
        report = json.loads(r["stdout"])
    except ValueError:
        die(f"send --once --json printed no JSON: {r['stdout'][-2000:]}")

    # The simulator's record against the outbox: every row sent once, nothing else.
    mine, other = (texts, whatsapp) if channel == "sms" else (whatsapp, texts)
    ids = [m["sid"] if channel == "sms" else m["wamid"] for m in mine]
    to = [digits(m["to"] if channel == "sms" else m["body"].get("to")) for m in mine]
    rows = outbox(base)
    sent_rows = [x for x in rows if x["state"] == "sent" and x["channel"] == channel]
    problems = []
    if report.get("sent") != n:
        problems.append(f"send --once reported {report}, expected sent = {n}")
    if len(rows) != n or len(sent_rows) != n:
        states: dict[str, int] = {}
        for x in rows:
            k = f"{x['channel']}/{x['state']}"
            states[k] = states.get(k, 0) + 1
        problems.append(f"the outbox holds {len(rows)} rows ({states}), expected {n} "
                        f"{channel}/sent")
    if other:
        problems.append(f"{len(other)} message(s) went by the other channel")
    if len(mine) != n:
        problems.append(f"the simulator accepted {len(mine)} {channel} messages, expected {n}")
    if len(set(to)) != len(to):
        problems.append(f"{len(to) - len(set(to))} number(s) got more than one message")
    if set(to) != {digits(x) for x in nums}:
        problems.append(f"{len({digits(x) for x in nums} - set(to))} patient(s) got nothing, "
                        f"{len(set(to) - {digits(x) for x in nums})} unknown number(s) got one")
    if set(ids) != {x["wamid"] for x in sent_rows} or len(set(ids)) != len(ids):
        problems.append("the simulator's message ids are not exactly the outbox's: "
                        f"{len(set(ids) - {x['wamid'] for x in sent_rows})} unrecorded, "
                        f"{len({x['wamid'] for x in sent_rows} - set(ids))} never accepted")

    ts = sorted(d.unix_ns(m["received_at"]) for m in mine)
    a = d.analyse(ts, cap) if len(ts) >= 2 else {"max_in_1s": len(ts), "windows_over_cap": 0,
                                                 "achieved_per_s": None, "ratio": None}
    if a["max_in_1s"] > cap:
        problems.append(f"{a['windows_over_cap']} one-second window(s) over the cap: up to "
                        f"{a['max_in_1s']} against {cap}, first at +{a['first_over_cap_at_s']} s"
                        f" (none if windows were {a['fits_if_shortened_ms']} ms shorter)")
    shutil.rmtree(work, ignore_errors=True)
    return {
        "channel": channel,
        "n": n,
        "wall_s": r["wall_s"],
        "per_s_by_wall": n / r["wall_s"],
        "cpu_s": r["cpu_s"],
        "cpu_s_per_1000": r["cpu_s"] / n * 1000,
        "max_rss_mb": r["max_rss_mb"],
        "report": report,
        "plan": planned,
        "problems": problems,
        **a,
    }


# ---- output -------------------------------------------------------------------------------


def print_table(results: list[dict], cores: int) -> None:
    head = ["cap", "N", "channel", "ceiling", "achieved/s", "achieved/cap", "max in 1s",
            "wall s", "N/wall", "cpu s/1000", "SMS/WhatsApp", "checks"]
    body = []
    for r in results:
        for ch in ("sms", "whatsapp"):
            x = r[ch]
            body.append([
                str(r["cap"]), f"{r['n']:,}", ch, f"{r['limiter']['steady_ratio']:.3f}",
                d.fmt(x["achieved_per_s"], ".1f"), d.fmt(x["ratio"], ".3f"),
                str(x["max_in_1s"]), f"{x['wall_s']:.2f}", f"{x['per_s_by_wall']:.1f}",
                f"{x['cpu_s_per_1000']:.3f}",
                d.fmt(r["sms_over_whatsapp"], ".3f") if ch == "sms" else "(baseline)",
                "ok" if not x["problems"] else "FAILED",
            ])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    line = lambda row: "  ".join(c.rjust(w) for c, w in zip(row, widths))  # noqa: E731
    print()
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for row in body:
        print(line(row))
    print(f"\ncores: {cores}   simulator latency: {d.LATENCY_MS} ms   checks: every outbox row "
          "sent once on its channel, none missing,\nand no 1 s window of arrivals over the cap "
          "(achieved = (N-1)/(last-first arrival); ceiling = the limiter's\nsteady rate / cap; "
          "N/wall includes process start; SMS/WhatsApp = ratio of achieved rates)")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--caps", type=int, nargs="+", default=DEFAULT_CAPS,
                    help="[sms.twilio] rate_limit_per_sec values (default: 10 50 200)")
    ap.add_argument("--messages", type=int, default=None,
                    help=f"appointments per run (default: min({DEFAULT_MESSAGES}, "
                         f"{MAX_SECONDS} s at the cap))")
    ap.add_argument("--quick", action="store_true",
                    help=f"cap {QUICK_CAP}, {QUICK_N} messages (smoke test)")
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--output", type=Path, default=None,
                    help="results file (default: bench/results/sms.json, sms-quick.json with "
                         "--quick)")
    args = ap.parse_args()
    if args.quick:
        args.caps, args.messages = [QUICK_CAP], QUICK_N
    if any(c < 1 or c > 1000 for c in args.caps):
        die("each cap must be in 1..1000 (what [sms.twilio] rate_limit_per_sec allows)", 2)
    if args.messages is not None and args.messages < 2:
        die("--messages must be at least 2 (the rate is measured between arrivals)", 2)
    if shutil.which("timeout") is None:
        die("needs coreutils' `timeout` (to stop a stalled send)", 2)

    if args.no_build:
        binary = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/reminderd"
        binary = binary if binary.is_absolute() else ROOT / binary
        if not binary.exists():
            die(f"{binary} does not exist; build it or drop --no-build", 2)
    else:
        binary = d.build()
    cores = os.cpu_count() or 0

    results = []
    with tempfile.TemporaryDirectory(prefix="reminderd-sms-") as tmp:
        tmp = Path(tmp)
        for cap in args.caps:
            n = args.messages or min(DEFAULT_MESSAGES, cap * MAX_SECONDS)
            lim = d.limiter_params(cap)
            print(f"cap {cap}/s: {n:,} appointments, limiter steady {lim['steady_per_s']}/s, "
                  f"in flight {d.effective_max_in_flight(cap, None)}")
            r = {"cap": cap, "n": n, "limiter": lim,
                 "max_in_flight": d.effective_max_in_flight(cap, None)}
            for ch in ("sms", "whatsapp"):
                x = one_run(binary, cap, n, ch, tmp)
                r[ch] = x
                print(f"  {ch:>8}: {x['report'].get('sent')} sent in {x['wall_s']:.2f} s, "
                      f"achieved {d.fmt(x['achieved_per_s'], '.1f')}/s = "
                      f"{d.fmt(x['ratio'], '.3f')} of cap, max {x['max_in_1s']} in 1 s, "
                      f"cpu {x['cpu_s']:.2f} s"
                      + "".join(f"\n    FAILED: {p}" for p in x["problems"]))
            sw, ww = r["sms"]["achieved_per_s"], r["whatsapp"]["achieved_per_s"]
            r["sms_over_whatsapp"] = sw / ww if sw and ww else None
            r["sms_over_whatsapp_wall"] = r["whatsapp"]["wall_s"] / r["sms"]["wall_s"]
            results.append(r)
        config_text = write_config(tmp / "shown.toml", args.caps[0], 9)

    print_table(results, cores)
    problems = [f"cap {r['cap']} {ch}: {p}" for r in results for ch in ("sms", "whatsapp")
                for p in r[ch]["problems"]]
    status = d.git("status", "--porcelain")
    out = {
        "benchmark": "sms",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": d.git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "git_dirty_paths": status.splitlines() if status else [],
        "binary": str(binary),
        "machine": {"cores": cores, "platform": platform.platform(),
                    "python": platform.python_version()},
        "method": {
            "latency_ms": d.LATENCY_MS, "now": NOW,
            "appointments": f"{CLINIC}, {APPT_DATE} 12:00-17:59 local, one per patient, "
                            "channel column sms (WhatsApp baseline: empty)",
            "messages": "day-before reminders only (booking confirmations off)",
            "simulator": f"--latency-ms {d.LATENCY_MS} --pair-limit-secs 0; Twilio status "
                         "callbacks refused (no server runs)",
            "achieved": "(N-1)/(last received_at - first received_at)",
            "max_in_1s": "most received_at stamps in any [t, t+1s) window",
            "baseline": "WhatsApp dispatch of the same appointments at the same cap "
                        "([whatsapp] rate_limit_per_sec = cap), same run",
            "checks": "send reports N sent; outbox N rows sent on the channel; simulator: N "
                      "sends on that channel, none on the other, each number once, ids equal "
                      "to the outbox's; no 1 s window over the cap",
        },
        "config": {
            "changes": ["[whatsapp] rate_limit_per_sec = CAP", "[sms.twilio] rate_limit_per_sec "
                        "= CAP", f'[sms.twilio] account_sid = "{SIM_ACCOUNT_SID}"',
                        '[sms.twilio] public_url = "http://127.0.0.1:PORT" (closed)',
                        "quiet_hours removed", 'max_import_age = "3650d"',
                        "[booking_confirmation] enabled = false"],
            f"text_for_cap_{args.caps[0]}": config_text,
        },
        "problems": problems,
        "results": results,
    }
    path = args.output or RESULTS_DIR / ("sms-quick.json" if args.quick else "sms.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if problems:
        print(f"\n{len(problems)} check(s) failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
