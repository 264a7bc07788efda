#!/usr/bin/env python3
"""Import benchmark for reminderd: `reminderd import` against sqlite3's `.import` baseline.

Standard library only. Run from anywhere:

    python3 bench/import.py                      # 100k (5 runs) and 1M (3 runs)
    python3 bench/import.py --sizes 100000 --runs 7
    python3 bench/import.py --quick              # 20k rows, 1 run: smoke test

See bench/README.md for what is measured and why.
"""

from __future__ import annotations

import argparse
import importlib.util
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
CONFIG = ROOT / "reminders.toml"

# Bump whenever the generator's output changes, so stale files in bench/data are rebuilt.
# 2: Indian mobiles beginning with 91 are written in every style again ("91667 33140"), now
#    that the importer reads them correctly (src/phone.rs, 7ecd733).
GENERATOR_VERSION = 2
SEED = 20270104

DEFAULT_SIZES = [100_000, 1_000_000]
QUICK_SIZE = 20_000
REIMPORT_MAX_SIZE = 100_000  # the "nothing changed" re-import is measured at sizes up to this

# Issue 19's goals: the import within 4x the bare `.import` (3x is the limit worth chasing),
# an unchanged re-import within 1.5x, and a peak RSS of at most 200 MB whatever the size.
GOAL_RATIO = 4.0
GOAL_REIMPORT_RATIO = 1.5
GOAL_PEAK_MB = 200.0


def default_runs(size: int) -> int:
    return 3 if size >= 1_000_000 else 5


def die(msg: str, code: int = 1) -> None:
    print(f"bench/import.py: error: {msg}", file=sys.stderr)
    sys.exit(code)


# ---- deterministic data -------------------------------------------------------------------
#
# Only Random.random() is used: Python guarantees its sequence for a given integer seed across
# versions, which it does not promise for randrange/choice/shuffle.

import random  # noqa: E402


class Rng:
    def __init__(self, seed: int) -> None:
        self._r = random.Random(seed)

    def below(self, n: int) -> int:
        return min(int(self._r.random() * n), n - 1)

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def chance(self, p: float) -> bool:
        return self._r.random() < p

    def weighted(self, pairs):
        x = self._r.random() * sum(w for _, w in pairs)
        for v, w in pairs:
            x -= w
            if x < 0:
                return v
        return pairs[-1][0]


IN_FIRST = (
    "Aarav Vihaan Aditya Arjun Sai Reyansh Krishna Ishaan Rohan Vikram Rahul Amit Suresh "
    "Ganesh Mahesh Prakash Sanjay Nikhil Omkar Tanvi Priya Ananya Sneha Pooja Kavya Diya "
    "Aditi Neha Sunita Meera Lakshmi Asha Rekha Farhan Imran Ayesha Zoya Sameer Jyoti Swati"
).split()
IN_LAST = (
    "Sharma Patil Gupta Kulkarni Singh Rao Qureshi Deshmukh Joshi Shah Mehta Iyer Nair "
    "Pawar Jadhav Shinde Chavan Desai Kapoor Verma Reddy Menon Pillai Bhosale Gaikwad "
    "More Naik Sawant Khan Shaikh D'Souza Fernandes"
).split()
US_FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Susan "
    "Maria José Carlos Lucía Sofía Luis Ana Miguel Wei Mei Hyun-woo Ji-yeon Aisha Kwame "
    "Emily Daniel Sarah Kevin Rachel Noah Olivia Liam Ava Chloé Seán Zoë"
).split()
US_LAST = (
    "Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Chen Wang Kim Park Nguyen Cohen Goldberg "
    "O'Brien Murphy Okafor Mensah Ramírez Peña Rivera Torres Kowalski Rossi Singh Patel"
).split()

# Indian mobile numbers are 10 digits starting 6-9, but not every prefix is allocated; these
# three-digit prefixes are all in libphonenumber's IN mobile pattern (…|9\d\d)\d{7} branch.
IN_PREFIXES = (
    [(p, 6.0) for p in range(900, 1000)]
    + [(p, 2.0) for p in list(range(700, 710)) + list(range(720, 730)) + list(range(740, 750))]
    + [(p, 2.0) for p in [800, 801, 805, 808, 809, 810, 811, 812, 813, 814, 815, 817, 818, 819]]
    + [(p, 2.0) for p in list(range(840, 860)) + [880, 881, 882, 885, 886, 887, 888, 889]]
    + [(p, 2.0) for p in [890, 892, 893, 894, 895, 896, 897, 898, 899]]
    + [(p, 1.0) for p in list(range(600, 610)) + list(range(690, 700)) + [620, 623, 626, 628, 629]]
    + [(p, 1.0) for p in [630, 635, 636, 637, 638, 639]]
)
# NYC area codes; exchanges are NXX (2-9 first) excluding N11, 555 and 950/958/959/976.
NYC_AREA = [("212", 3), ("646", 3), ("718", 3), ("917", 4), ("347", 2)]
BAD_EXCHANGES = {555, 950, 958, 959, 976} | {n * 100 + 11 for n in range(2, 10)}

PROVIDERS = {
    "mumbai": [("Dr. Mehta", 4), ("Dr. Iyer", 3), ("Dr. Kulkarni", 2), ("Physiotherapy", 1)],
    "nyc": [("Dr. Chen", 4), ("Dr. Okafor", 3), ("Dr. Rivera", 2), ("Lab", 1)],
}
LANGUAGES = {
    "mumbai": [("en", 3), ("hi", 4), ("mr", 3)],
    "nyc": [("en", 7), ("es", 3)],
}
START_DATE = dt.date(2027, 1, 4)  # a Monday
DAYS = [d for d in (START_DATE + dt.timedelta(days=i) for i in range(364)) if d.weekday() != 6]
SLOTS = [f"{8 + m // 60:02d}:{m % 60:02d}" for m in range(0, 10 * 60, 15)]  # 08:00 .. 17:45
HEADER = [
    "appointment_id", "patient_id", "patient_name", "phone", "language", "date", "time",
    "duration_min", "provider", "clinic", "status",
]


def indian_phone(rng: Rng) -> str:
    prefix = rng.weighted(IN_PREFIXES)
    digits = f"{prefix}{rng.below(10_000_000):07d}"
    style = rng.weighted([("spaced", 40), ("plus", 30), ("trunk", 20), ("plain", 10)])
    if style == "spaced":
        return f"{digits[:5]} {digits[5:]}"
    if style == "plus":
        return f"+91 {digits[:5]} {digits[5:]}"
    if style == "trunk":
        return f"0{digits}"
    return digits


def nyc_phone(rng: Rng) -> str:
    area = rng.weighted(NYC_AREA)
    while True:
        exchange = 200 + rng.below(800)
        if exchange not in BAD_EXCHANGES:
            break
    line = f"{rng.below(10_000):04d}"
    style = rng.weighted([("paren", 50), ("dash", 25), ("plus", 15), ("dot", 10)])
    if style == "paren":
        return f"({area}) {exchange}-{line}"
    if style == "dash":
        return f"{area}-{exchange}-{line}"
    if style == "plus":
        return f"+1 {area} {exchange} {line}"
    return f"{area}.{exchange}.{line}"


def make_patients(rng: Rng, clinic: str, count: int) -> list[tuple[str, str, str, str]]:
    first, last = (IN_FIRST, IN_LAST) if clinic == "mumbai" else (US_FIRST, US_LAST)
    prefix = "P-" if clinic == "mumbai" else "N-"
    phone = indian_phone if clinic == "mumbai" else nyc_phone
    out = []
    for i in range(count):
        out.append((
            f"{prefix}{100001 + i}",
            f"{rng.pick(first)} {rng.pick(last)}",
            phone(rng),
            rng.weighted(LANGUAGES[clinic]),
        ))
    return out


def generate(path: Path, rows: int) -> None:
    rng = Rng(SEED * 10_000_019 + rows)
    clinics = ["mumbai" if rng.chance(0.6) else "nyc" for _ in range(rows)]
    counts = {c: clinics.count(c) for c in ("mumbai", "nyc")}
    patients = {c: make_patients(rng, c, max(1, n // 4)) for c, n in counts.items()}
    next_id = {"mumbai": 1, "nyc": 1}
    out = []
    for clinic in clinics:
        pid, name, phone, lang = rng.pick(patients[clinic])
        n = next_id[clinic]
        next_id[clinic] += 1
        appt = f"MUM-{100000 + n}" if clinic == "mumbai" else f"NYC-{500000 + n}"
        day = rng.below(len(DAYS))
        slot = rng.below(len(SLOTS))
        out.append((
            day, slot, clinic, appt, pid, name, phone, lang,
            rng.weighted([("15", 50), ("30", 35), ("45", 15)]),
            rng.weighted(PROVIDERS[clinic]),
            "cancelled" if rng.chance(0.03) else "booked",
        ))
    # A schedule export is ordered by day and time.
    out.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        for day, slot, clinic, appt, pid, name, phone, lang, dur, prov, status in out:
            w.writerow([appt, pid, name, phone, lang, DAYS[day].isoformat(), SLOTS[slot],
                        dur, prov, clinic, status])
    tmp.replace(path)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset(rows: int) -> tuple[Path, dict]:
    """The CSV for `rows`, generated unless a file from this generator version is present."""
    path = DATA_DIR / f"appointments-{rows}.csv"
    meta_path = path.with_name(path.name + ".meta.json")
    want = {"generator_version": GENERATOR_VERSION, "seed": SEED, "rows": rows}
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
        if all(meta.get(k) == v for k, v in want.items()) and meta.get("bytes") == path.stat().st_size:
            print(f"  reusing {path.relative_to(ROOT)} ({meta['bytes'] / 1e6:.1f} MB)")
            return path, meta
    print(f"  generating {path.relative_to(ROOT)} ...", end="", flush=True)
    t = time.perf_counter()
    generate(path, rows)
    meta = dict(want, bytes=path.stat().st_size, sha256=sha256_of(path))
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f" {time.perf_counter() - t:.1f}s, {meta['bytes'] / 1e6:.1f} MB")
    return path, meta


# ---- running and timing -------------------------------------------------------------------


# Peak RSS comes from GNU time (%M), not from our own wait4(): Linux carries a process's
# high-water RSS across exec, so ru_maxrss of a child forked from this Python process is never
# below Python's own RSS (a /bin/true child of a Python holding 200 MB reports 213 MB).
# GNU time forks the command from a small process and reports the command's own peak.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def timed_wait4(cmd: list[str], stdin: Path | None = None) -> dict:
    """Runs cmd: wall time, user+sys CPU seconds (wait4) and peak RSS (GNU time, else None)."""
    out_f = DATA_DIR / ".stdout.tmp"
    err_f = DATA_DIR / ".stderr.tmp"
    rss_f = DATA_DIR / ".rss.tmp"
    rss_f.unlink(missing_ok=True)
    full = [GNU_TIME, "-f", "%M", "-o", str(rss_f), *cmd] if GNU_TIME else cmd
    with out_f.open("wb") as o, err_f.open("wb") as e, (
        stdin.open("rb") if stdin else open(os.devnull, "rb")
    ) as i:
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdin=i, stdout=o, stderr=e)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    max_rss_mb = None
    if GNU_TIME:
        try:
            max_rss_mb = int(rss_f.read_text().split()[-1]) / 1024  # KiB
        except (OSError, ValueError, IndexError):
            pass
        rss_f.unlink(missing_ok=True)
    res = {
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "max_rss_mb": max_rss_mb,
        "rc": p.returncode,
        "stdout": out_f.read_bytes(),
        "stderr": err_f.read_bytes(),
    }
    out_f.unlink()
    err_f.unlink()
    return res


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def sqlite_scalar(sqlite3: str, db: Path, sql: str) -> str:
    return subprocess.run([sqlite3, str(db), sql], capture_output=True, text=True,
                          check=True).stdout.strip()


def run_baseline(sqlite3: str, csv_path: Path, rows: int) -> dict:
    db = DATA_DIR / "bench-baseline.db"
    remove_db(db)
    r = timed_wait4([sqlite3, str(db), ".mode csv", f".import {csv_path} t"])
    if r["rc"] != 0 or r["stderr"].strip():
        die(f"sqlite3 .import failed (exit {r['rc']}): {r['stderr'].decode(errors='replace')[:2000]}")
    got = int(sqlite_scalar(sqlite3, db, "SELECT count(*) FROM t"))
    if got != rows:
        die(f"sqlite3 .import loaded {got} rows, expected {rows}")
    remove_db(db)
    return r


def run_reminderd(binary: Path, db: Path, csv_path: Path) -> tuple[dict, dict]:
    r = timed_wait4([str(binary), "--config", str(CONFIG), "--db", str(db),
                     "import", str(csv_path), "--json"])
    try:
        report = json.loads(r["stdout"])
    except ValueError:
        report = None
    if r["rc"] != 0 or report is None:
        msg = [f"reminderd import {csv_path.name} exited {r['rc']}"]
        if report and report.get("errors"):
            msg.append(f"{len(report['errors'])} row error(s); first ones:")
            msg += [f"  {json.dumps(e, ensure_ascii=False)}" for e in report["errors"][:10]]
        msg.append(r["stderr"].decode(errors="replace")[:2000])
        msg.append(r["stdout"].decode(errors="replace")[:2000] if report is None else "")
        die("\n".join(m for m in msg if m))
    return r, report


def expected_e164(clinic: str, written: str) -> str:
    """The E.164 form of a phone number as the generator writes it (see indian_phone/nyc_phone)."""
    digits = "".join(ch for ch in written if ch.isdigit())
    if clinic == "mumbai":
        if written.startswith("+"):
            return "+" + digits            # +91 98200 12345
        if len(digits) == 11 and digits.startswith("0"):
            return "+91" + digits[1:]      # 09820012345
        return "+91" + digits              # 98200 12345, 9820012345, 91667 33140
    return "+" + digits if written.startswith("+") else "+1" + digits


def check_phones(sqlite3: str, db: Path, csv_path: Path) -> int:
    """Every stored patient phone equals the E.164 form of what the CSV wrote. Returns the
    number of patients whose 10-digit mobile begins with 91 (the numbers the importer once
    misread), so a regression there cannot pass silently."""
    want = {}
    with csv_path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            want[(row["clinic"], row["patient_id"])] = expected_e164(row["clinic"], row["phone"])
    out = subprocess.run(
        [sqlite3, "-separator", "\t", str(db),
         "SELECT c.key, p.external_id, p.phone FROM patients p JOIN clinics c ON c.id = p.clinic_id"],
        capture_output=True, text=True, check=True).stdout
    got = dict(((k, e), ph) for k, e, ph in (line.split("\t") for line in out.splitlines()))
    wrong = [(k, want.get(k), got.get(k)) for k in want.keys() | got.keys()
             if want.get(k) != got.get(k)]
    if wrong:
        die(f"{len(wrong)} patient phone(s) stored wrongly; first ones (clinic/patient, "
            f"expected, stored): {wrong[:10]}")
    return sum(1 for (clinic, _), ph in want.items()
               if clinic == "mumbai" and ph.startswith("+9191"))


def summarize(runs: list[dict], rows: int) -> dict:
    walls = [r["wall_s"] for r in runs]
    med = statistics.median(walls)
    return {
        "runs_s": [round(w, 4) for w in walls],
        "median_s": round(med, 4),
        "min_s": round(min(walls), 4),
        "max_s": round(max(walls), 4),
        "rows_per_s": round(rows / med),
        "cpu_s": [round(r["cpu_s"], 3) for r in runs],
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "median_user_s": round(statistics.median(r["user_s"] for r in runs), 3),
        "median_sys_s": round(statistics.median(r["sys_s"] for r in runs), 3),
        "max_rss_mb": max_rss(runs),
    }


def max_rss(runs: list[dict]) -> float | None:
    rss = [r["max_rss_mb"] for r in runs if r["max_rss_mb"] is not None]
    return round(max(rss), 1) if rss else None


def fmt_rss(mb: float | None) -> str:
    return "n/a" if mb is None else f"{mb:.0f}"


def bench_size(rows: int, runs: int, sqlite3: str, binary: Path) -> dict:
    print(f"\n== {rows:,} rows, {runs} run(s) each")
    csv_path, meta = dataset(rows)

    base = []
    for i in range(runs):
        base.append(run_baseline(sqlite3, csv_path, rows))
        print(f"  baseline  sqlite3 .import   run {i + 1}: {base[-1]['wall_s']:.3f}s")

    db = DATA_DIR / "bench-reminderd.db"
    subj, report = [], None
    for i in range(runs):
        remove_db(db)
        r, report = run_reminderd(binary, db, csv_path)
        if report["new"] != rows or report["rows"] != rows or report["errors"]:
            die(f"expected new == rows == {rows}, got {json.dumps(report)[:500]}")
        subj.append(r)
        print(f"  subject   reminderd import  run {i + 1}: {r['wall_s']:.3f}s")
    stored = int(sqlite_scalar(sqlite3, db, "SELECT count(*) FROM appointments"))
    patients = int(sqlite_scalar(sqlite3, db, "SELECT count(*) FROM patients"))
    if stored != rows:
        die(f"database holds {stored} appointments after importing {rows} rows")
    prefix91 = check_phones(sqlite3, db, csv_path)
    print(f"  checked: {patients:,} patient phones stored as expected, {prefix91:,} of them "
          f"Indian mobiles beginning with 91")

    result = {
        "rows": rows,
        "csv": {"path": str(csv_path.relative_to(ROOT)), "bytes": meta["bytes"],
                "sha256": meta.get("sha256")},
        "distinct_patients": patients,
        "patients_with_91_mobiles": prefix91,
        "baseline": summarize(base, rows),
        "reminderd": summarize(subj, rows),
        "reminderd_report": report,
    }
    result["ratio"] = round(result["reminderd"]["median_s"] / result["baseline"]["median_s"], 2)

    if rows <= REIMPORT_MAX_SIZE:
        # The database now holds exactly this file: re-importing it changes nothing.
        re = []
        for i in range(runs):
            r, rep = run_reminderd(binary, db, csv_path)
            if rep["unchanged"] != rows or rep["new"] or rep["updated"] or rep["cancelled"]:
                die(f"re-import expected unchanged == {rows}, got {json.dumps(rep)[:500]}")
            re.append(r)
            print(f"  subject   re-import (same)  run {i + 1}: {r['wall_s']:.3f}s")
        result["reimport"] = summarize(re, rows)
        result["reimport"]["ratio"] = round(
            result["reimport"]["median_s"] / result["baseline"]["median_s"], 2)
    remove_db(db)
    return result


# ---- setup --------------------------------------------------------------------------------


def ensure_sqlite3() -> str:
    found = shutil.which("sqlite3")
    if found:
        return found
    print("sqlite3 not found; installing it with apt-get ...", flush=True)
    try:
        subprocess.run("apt-get update -qq && apt-get install -y -qq sqlite3", shell=True,
                       check=True)
    except (subprocess.CalledProcessError, OSError) as e:
        die(f"the sqlite3 command-line shell is missing and `apt-get install sqlite3` failed "
            f"({e}); install sqlite3 and run again", 2)
    found = shutil.which("sqlite3")
    if not found:
        die("apt-get reported success but sqlite3 is still not on PATH", 2)
    return found


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
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    binary = target / "release" / "reminderd"
    if not binary.exists():
        die(f"build succeeded but {binary} does not exist", 2)
    return binary


def git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        return None


def bundled_sqlite() -> str | None:
    """libsqlite3-sys version from Cargo.lock: reminderd links its own (bundled) SQLite."""
    try:
        lines = (ROOT / "Cargo.lock").read_text().splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines):
        if line == 'name = "libsqlite3-sys"' and i + 1 < len(lines):
            return lines[i + 1].split('"')[1]
    return None


# ---- report -------------------------------------------------------------------------------


def print_table(results: list[dict], cores: int, sqlite_version: str) -> None:
    head = ["size", "what", "baseline med s", "reminderd med s", "min s", "ratio",
            "rows/s", "cpu s", "peak RSS MB"]
    body = []
    for r in results:
        b, s = r["baseline"], r["reminderd"]
        body.append([f"{r['rows']:,}", "sqlite3 .import", f"{b['median_s']:.3f}", "",
                     f"{b['min_s']:.3f}", "", f"{b['rows_per_s']:,}", f"{b['median_cpu_s']:.2f}",
                     fmt_rss(b['max_rss_mb'])])
        body.append([f"{r['rows']:,}", "reminderd import", f"{b['median_s']:.3f}",
                     f"{s['median_s']:.3f}", f"{s['min_s']:.3f}", f"{r['ratio']:.2f}x",
                     f"{s['rows_per_s']:,}", f"{s['median_cpu_s']:.2f}", fmt_rss(s['max_rss_mb'])])
        if "reimport" in r:
            x = r["reimport"]
            body.append([f"{r['rows']:,}", "re-import, unchanged", f"{b['median_s']:.3f}",
                         f"{x['median_s']:.3f}", f"{x['min_s']:.3f}", f"{x['ratio']:.2f}x",
                         f"{x['rows_per_s']:,}", f"{x['median_cpu_s']:.2f}",
                         fmt_rss(x['max_rss_mb'])])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    fmt = lambda row: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                for i, (c, w) in enumerate(zip(row, widths)))
    print()
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for row in body:
        print(fmt(row))
    print()
    for line in goal_lines(results):
        print(line)
    print(f"\ncores: {cores}   sqlite3: {sqlite_version}   "
          "(ratio = reminderd median / baseline median; rows/s from the median; "
          "cpu = user+sys of the process)")


def goals(results: list[dict]) -> list[dict]:
    """Each figure against issue 19's goal: what, figure, goal, met."""
    out = []
    for r in results:
        n = f"{r['rows']:,}"
        out.append({"what": f"import {n} rows, ratio to .import", "figure": r["ratio"],
                    "goal": GOAL_RATIO, "met": r["ratio"] <= GOAL_RATIO})
        peak = r["reminderd"]["max_rss_mb"]
        if peak is not None:
            out.append({"what": f"import {n} rows, peak RSS MB", "figure": peak,
                        "goal": GOAL_PEAK_MB, "met": peak <= GOAL_PEAK_MB})
        if "reimport" in r:
            x = r["reimport"]["ratio"]
            out.append({"what": f"unchanged re-import {n} rows, ratio to .import", "figure": x,
                        "goal": GOAL_REIMPORT_RATIO, "met": x <= GOAL_REIMPORT_RATIO})
    return out


def goal_lines(results: list[dict]) -> list[str]:
    return [f"  goal {'met ' if g['met'] else 'MISSED'}  {g['what']}: {g['figure']} "
            f"(goal <= {g['goal']})" for g in goals(results)]


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                    help="comma-separated row counts (default: 100000,1000000)")
    ap.add_argument("--runs", type=int, help="runs per measurement (default: 5, or 3 at 1M+)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: {QUICK_SIZE} rows, 1 run")
    args = ap.parse_args()

    if args.quick:
        sizes, runs_override = [QUICK_SIZE], 1
    else:
        try:
            sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
        except ValueError:
            die(f"--sizes takes comma-separated integers, got {args.sizes!r}", 2)
        if not sizes or any(s < 1 for s in sizes):
            die("--sizes must list positive row counts", 2)
        runs_override = args.runs
    if runs_override is not None and runs_override < 1:
        die("--runs must be at least 1", 2)

    sqlite3 = ensure_sqlite3()
    sqlite_version = subprocess.run([sqlite3, "--version"], capture_output=True,
                                    text=True).stdout.strip()
    binary = build()
    # The commit and tree the binary was built from (others may commit while this runs).
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # Uncommitted changes to tracked files outside bench/: the binary is not exactly `commit`.
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 0

    results = [bench_size(n, runs_override or default_runs(n), sqlite3, binary) for n in sizes]

    print_table(results, cores, sqlite_version)
    out = {
        "benchmark": "import",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "uncommitted_changes_outside_bench": bool(status) if status is not None else None,
        "command": "python3 bench/import.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpu_count": cores,
            "platform": platform.platform(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "sqlite3_shell_version": sqlite_version,
        "peak_rss_from": "GNU time %M" if GNU_TIME else None,
        "reminderd_libsqlite3_sys": bundled_sqlite(),
        "generator": {"version": GENERATOR_VERSION, "seed": SEED},
        "baseline_command": "sqlite3 DB '.mode csv' '.import FILE t'",
        "subject_command": "reminderd --config reminders.toml --db DB import FILE --json",
        "results": results,
        "goals": goals(results),
    }
    # A smoke test must not overwrite the real figures.
    path = RESULTS_DIR / ("import-quick.json" if args.quick else "import.json")
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
