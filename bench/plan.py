#!/usr/bin/env python3
"""Planning benchmark for reminderd: `reminderd plan` over 100k and 1M stored appointments,
against the same window read and inserted by bare SQL in sqlite3.

Standard library only. Run from anywhere:

    python3 bench/plan.py                 # 100k and 1M appointments, 5 runs each
    python3 bench/plan.py --runs 9
    python3 bench/plan.py --quick         # 100k only, 1 run, a one-day simulation

See bench/README.md for what is measured and why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
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


def _load_import_bench():
    """bench/import.py as a module (its name is a Python keyword, so no plain `import`): the
    data generator, the build and the environment helpers are shared with it."""
    sys.dont_write_bytecode = True  # no bench/__pycache__ left behind
    spec = importlib.util.spec_from_file_location("bench_import", BENCH_DIR / "import.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


imp = _load_import_bench()
ROOT, DATA_DIR, RESULTS_DIR, CONFIG = imp.ROOT, imp.DATA_DIR, imp.RESULTS_DIR, imp.CONFIG

DEFAULT_SIZES = [100_000, 1_000_000]
QUICK_SIZES = [100_000]
DEFAULT_RUNS = 5

# The single-run scenario: Monday 1 March 2027, 06:00 UTC = 11:30 in Mumbai, 01:00 in New York.
T_DUE = "2027-03-01T06:00:00Z"
# A --now whose window holds no appointment (the schedule starts on 2027-01-04): the fixed cost
# of a plan run, to see whether it grows with the table.
T_EMPTY = "2026-12-01T06:00:00Z"
# The simulated week: every 15 minutes from Monday 8 March 00:00 UTC to Monday 15 March 00:00
# UTC. New York springs forward on Sunday 14 March 2027, so the week crosses a DST change.
WEEK_START = "2027-03-08T00:00:00Z"
WEEK_DAYS, QUICK_WEEK_DAYS = 7, 1
STEP = dt.timedelta(minutes=15)
# The import stamps created_at with the real clock. It is pinned to this instant, more than
# 24 h before every --now above, so that no booking confirmation is due and the figures do not
# depend on the day the benchmark runs (run in 2027, the real import time would fall inside
# the simulated window and make every appointment a booking-confirmation candidate).
CREATED_AT = "2026-11-01T00:00:00Z"

# reminderd reads candidates starting in (now, now + horizon]: plan::horizon() is the longest
# rule offset (day-before: 1d ≈ 24 h) plus 26 h. The baseline reads the same window.
HORIZON_S = (24 + 26) * 3600
# The rules in reminders.toml, as naive offsets in seconds: (name, before, latest).
RULES = [("day-before", 86_400, 4 * 3600), ("same-day", 2 * 3600, 30 * 60)]


def die(msg: str, code: int = 1) -> None:
    print(f"bench/plan.py: error: {msg}", file=sys.stderr)
    sys.exit(code)


def unix(instant: str) -> int:
    return int(dt.datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp())


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- running and timing -------------------------------------------------------------------


def run(cmd: list[str], stdin: Path | None = None) -> dict:
    """Runs cmd to completion: wall time, CPU time (wait4) and peak RSS (GNU time; see
    import.py for why not wait4's ru_maxrss)."""
    r = imp.timed_wait4(cmd, stdin)
    r["stdout"] = r["stdout"].decode(errors="replace")
    r["stderr"] = r["stderr"].decode(errors="replace")
    return r


def plan(binary: Path, db: Path, now: str) -> tuple[dict, dict]:
    r = run([str(binary), "--config", str(CONFIG), "--db", str(db), "plan", "--now", now,
             "--json"])
    try:
        report = json.loads(r["stdout"])
    except ValueError:
        report = None
    if r["rc"] != 0 or not isinstance(report, dict):
        die(f"reminderd plan --now {now} exited {r['rc']}:\n{r['stderr'][:2000]}\n"
            f"{r['stdout'][:2000]}")
    for key in ("due", "pending", "expired", "existing"):
        if not isinstance(report.get(key), int):
            die(f"reminderd plan --json printed no integer {key!r}: {r['stdout'][:500]}")
    if report["due"] != report["pending"] + report["expired"] + report["existing"]:
        die(f"plan --now {now}: due != pending + expired + existing: {report}")
    return r, report


def sql(sqlite3: str, db: Path, text: str) -> str:
    p = subprocess.run([sqlite3, "-bail", str(db)], input=text, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        die(f"sqlite3 failed (exit {p.returncode}): {p.stderr[:2000]}\nSQL:\n{text[:2000]}")
    return p.stdout.strip()


def outbox_count(sqlite3: str, db: Path) -> int:
    return int(sql(sqlite3, db, "SELECT count(*) FROM outbox;"))


def fresh_copy(pristine: Path, work: Path) -> None:
    imp.remove_db(work)
    shutil.copyfile(pristine, work)


# ---- the baseline -------------------------------------------------------------------------

CANDIDATES_SQL = """\
SELECT a.id, c.key, a.starts_at, a.created_at, a.status, a.response, p.opted_out_at IS NOT NULL
  FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
 WHERE a.status = 'booked' AND a.starts_at > {now} AND a.starts_at <= {until}"""

RULES_CTE = "WITH r(name, before_s, latest_s) AS (VALUES {})".format(
    ", ".join(f"('{n}', {b}, {lt})" for n, b, lt in RULES))


def baseline_script(now: int, limit: int) -> str:
    """The planning work as bare SQL: read the window's appointments with their patient and
    clinic (as reminderd does), then insert `limit` outbox rows with naive send times."""
    until = now + HORIZON_S
    return f"""\
PRAGMA foreign_keys = ON;
PRAGMA synchronous = NORMAL;
.output /dev/null
{CANDIDATES_SQL.format(now=now, until=until)};
.output stdout
BEGIN IMMEDIATE;
{RULES_CTE}
INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state,
                    reason, created_at, updated_at)
SELECT a.id, 'reminder', r.name, a.starts_at, a.starts_at - r.before_s, a.starts_at - r.latest_s,
       'reminder',
       CASE WHEN {now} > a.starts_at - r.latest_s THEN 'expired' ELSE 'pending' END,
       CASE WHEN {now} > a.starts_at - r.latest_s THEN 'not sent in time' END,
       {now}, {now}
  FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
       CROSS JOIN r
 WHERE a.status = 'booked' AND p.opted_out_at IS NULL
   AND a.starts_at > {now} AND a.starts_at <= {until}
 ORDER BY a.starts_at - r.before_s, a.id, r.name
 LIMIT {limit}
ON CONFLICT (appointment_id, kind, rule, slot_start, recipient, channel) DO NOTHING;
SELECT changes();
COMMIT;
"""


def naive_due(sqlite3: str, db: Path, now: int) -> int:
    """How many messages naive offsets (no time zones, no quiet hours) would call due."""
    return int(sql(sqlite3, db, f"""\
{RULES_CTE}
SELECT count(*) FROM appointments a JOIN patients p ON p.id = a.patient_id CROSS JOIN r
 WHERE a.status = 'booked' AND p.opted_out_at IS NULL
   AND a.starts_at > {now} AND a.starts_at <= {now + HORIZON_S}
   AND a.starts_at - r.before_s <= {now};"""))


def window_candidates(sqlite3: str, db: Path, now: int) -> int:
    return int(sql(sqlite3, db, f"SELECT count(*) FROM ({CANDIDATES_SQL.format(now=now, until=now + HORIZON_S)});"))


def quiet_hours() -> dict | None:
    """Each clinic's (time zone, quiet start, quiet end) from reminders.toml, or None."""
    try:
        import tomllib
        from zoneinfo import ZoneInfo
    except ImportError:  # Python < 3.11, or no tz database
        return None
    cfg = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    out = {}
    for key, c in cfg.get("clinics", {}).items():
        if "quiet_hours" in c:
            a, b = c["quiet_hours"].split("-")
            out[key] = (ZoneInfo(c["time_zone"]), dt.time.fromisoformat(a),
                        dt.time.fromisoformat(b))
    return out


def planned_inside_quiet(sqlite3: str, db: Path, since: int) -> dict | None:
    """Pending rows planned (created_at) after `since` at an instant already inside the
    clinic's quiet hours, where those quiet hours end after the row's latest_at. Dispatch can
    only expire these ("quiet hours last until after its latest time")."""
    q = quiet_hours()
    if q is None:
        return None
    rows = sql(sqlite3, db, f"""SELECT c.key, o.rule, o.send_at, o.created_at, o.latest_at
  FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
 WHERE o.state = 'pending' AND o.created_at > {since};""").splitlines()
    doomed, examples = {}, []
    for line in rows:
        key, rule, send_at, planned, latest = line.split("|")
        if key not in q:
            continue
        zone, start, end = q[key]
        local = dt.datetime.fromtimestamp(int(planned), zone)
        t = local.time()
        inside = (t >= start or t < end) if start > end else (start <= t < end)
        if not inside:
            continue
        end_day = local.date() + dt.timedelta(days=1) if start > end and t >= start else local.date()
        quiet_end = dt.datetime.combine(end_day, end, zone)
        if quiet_end.timestamp() > int(latest):
            doomed[f"{key}/{rule}"] = doomed.get(f"{key}/{rule}", 0) + 1
            if len(examples) < 3:
                fmt = lambda x: dt.datetime.fromtimestamp(int(x), zone).strftime(  # noqa: E731
                    "%Y-%m-%d %H:%M %Z")
                examples.append({"clinic": key, "rule": rule, "send_at": fmt(send_at),
                                 "planned_at": fmt(planned), "latest_at": fmt(latest),
                                 "quiet_ends": quiet_end.strftime("%Y-%m-%d %H:%M %Z")})
    return {"total": sum(doomed.values()), "by_clinic_rule": doomed, "examples": examples}


# ---- one database size --------------------------------------------------------------------


def summarize(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    return {
        "runs_s": [round(w, 4) for w in walls],
        "median_s": round(statistics.median(walls), 4),
        "min_s": round(min(walls), 4),
        "max_s": round(max(walls), 4),
        "cpu_s": [round(r["cpu_s"], 3) for r in runs],
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "max_rss_mb": imp.max_rss(runs),
    }


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def setup(size: int, sqlite3: str, binary: Path) -> tuple[Path, dict]:
    """A database holding the generated schedule of `size` rows, imported by reminderd."""
    csv_path, meta = imp.dataset(size)
    db = DATA_DIR / f"plan-{size}.db"
    imp.remove_db(db)
    r = run([str(binary), "--config", str(CONFIG), "--db", str(db), "import", str(csv_path),
             "--json"])
    try:
        report = json.loads(r["stdout"])
    except ValueError:
        report = {}
    if r["rc"] != 0 or report.get("new") != size or report.get("errors"):
        die(f"setup import of {csv_path.name} failed (exit {r['rc']}): "
            f"{r['stdout'][:1500]}\n{r['stderr'][:1500]}")
    print(f"  setup: imported {size:,} rows in {r['wall_s']:.1f}s")
    t = time.perf_counter()
    pin = unix(CREATED_AT)
    sql(sqlite3, db, f"""\
UPDATE appointments SET created_at = {pin} WHERE created_at > {pin};
PRAGMA wal_checkpoint(TRUNCATE);""")
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    stats = {
        "appointments": int(sql(sqlite3, db, "SELECT count(*) FROM appointments;")),
        "booked": int(sql(sqlite3, db,
                          "SELECT count(*) FROM appointments WHERE status = 'booked';")),
        "patients": int(sql(sqlite3, db, "SELECT count(*) FROM patients;")),
        "db_bytes": db.stat().st_size,
        "setup_import_s": round(r["wall_s"], 2),
        "csv_sha256": meta.get("sha256"),
    }
    if stats["appointments"] != size:
        die(f"the setup database holds {stats['appointments']} appointments, expected {size}")
    print(f"  setup: created_at pinned to {CREATED_AT} in {time.perf_counter() - t:.1f}s; "
          f"database {stats['db_bytes'] / 1e6:.0f} MB")
    return db, stats


def bench_size(size: int, runs: int, week_days: int, sqlite3: str, binary: Path) -> dict:
    print(f"\n== {size:,} appointments, {runs} run(s) each")
    pristine, stats = setup(size, sqlite3, binary)
    work = DATA_DIR / "plan-work.db"
    now = unix(T_DUE)
    result: dict = {"appointments": size, "database": stats, "now": T_DUE,
                    "window": [rfc3339(dt.datetime.fromtimestamp(now, dt.timezone.utc)),
                               rfc3339(dt.datetime.fromtimestamp(now + HORIZON_S,
                                                                 dt.timezone.utc))],
                    "candidates_in_window": window_candidates(sqlite3, pristine, now),
                    "naive_due": naive_due(sqlite3, pristine, now)}

    # -- the subject and the baseline, alternately, each on a fresh copy of the same database
    first, second, base1, base2 = [], [], [], []
    report1 = report2 = None
    for i in range(runs):
        fresh_copy(pristine, work)
        r1, rep1 = plan(binary, work, T_DUE)
        if rep1["existing"] != 0:
            die(f"first plan on an empty outbox reported existing rows: {rep1}")
        planned = rep1["pending"] + rep1["expired"]
        if report1 is not None and rep1 != report1:
            die(f"plan --now {T_DUE} differs between runs on identical databases: "
                f"{report1} then {rep1}")
        stored = outbox_count(sqlite3, work)
        if stored != planned:
            die(f"plan reported {planned} new rows but the outbox holds {stored}")
        r2, rep2 = plan(binary, work, T_DUE)
        if rep2["pending"] != 0 or rep2["expired"] != 0 or rep2["existing"] != planned:
            die(f"second identical plan is not idempotent: expected pending 0, expired 0, "
                f"existing {planned}; got {rep2} (first run: {rep1})")
        if outbox_count(sqlite3, work) != planned:
            die("the second plan changed the outbox")
        first.append(r1)
        second.append(r2)
        report1, report2 = rep1, rep2

        fresh_copy(pristine, work)
        script = DATA_DIR / "plan-baseline.sql"
        script.write_text(baseline_script(now, planned))
        b1 = run([sqlite3, "-bail", str(work)], stdin=script)
        b2 = run([sqlite3, "-bail", str(work)], stdin=script)
        for n, (b, want) in enumerate(((b1, planned), (b2, 0)), 1):
            if b["rc"] != 0 or b["stderr"].strip() or b["stdout"].strip() != str(want):
                die(f"baseline run {n} should insert {want} rows: exit {b['rc']}, "
                    f"stdout {b['stdout'][:300]!r}, stderr {b['stderr'][:1000]!r}")
        base1.append(b1)
        base2.append(b2)
        print(f"  run {i + 1}: plan {r1['wall_s']:.3f}s ({planned:,} new), "
              f"again {r2['wall_s']:.3f}s ({rep2['existing']:,} existing); "
              f"baseline {b1['wall_s']:.3f}s, again {b2['wall_s']:.3f}s")
    script.unlink(missing_ok=True)
    result["plan_first"] = summarize(first) | {"report": report1}
    result["plan_second"] = summarize(second) | {"report": report2}
    result["baseline_first"] = summarize(base1) | {"rows_inserted": report1["pending"]
                                                   + report1["expired"]}
    result["baseline_second"] = summarize(base2) | {"rows_inserted": 0}
    result["ratio_first"] = round(result["plan_first"]["median_s"]
                                  / result["baseline_first"]["median_s"], 2)
    result["ratio_second"] = round(result["plan_second"]["median_s"]
                                   / result["baseline_second"]["median_s"], 2)

    # -- nothing in the window: the fixed cost of one plan run at this table size
    fresh_copy(pristine, work)
    empty = []
    for _ in range(runs):
        r, rep = plan(binary, work, T_EMPTY)
        if rep["due"] != 0:
            die(f"plan --now {T_EMPTY} should find nothing due, got {rep}")
        empty.append(r)
    result["plan_empty_window"] = summarize(empty) | {"now": T_EMPTY}
    print(f"  empty window ({T_EMPTY}): median {result['plan_empty_window']['median_s']:.3f}s")

    # -- a simulated week (or day): plan every 15 minutes, as a daemon would
    fresh_copy(pristine, work)
    start = dt.datetime.fromisoformat(WEEK_START.replace("Z", "+00:00"))
    _, warm = plan(binary, work, WEEK_START)  # the daemon was already running: not timed
    total_new = warm["pending"] + warm["expired"]
    steps, walls, cpus, rss, news = int(week_days * 24 * 60 / 15), [], [], [], []
    for k in range(1, steps + 1):
        r, rep = plan(binary, work, rfc3339(start + k * STEP))
        walls.append(r["wall_s"])
        cpus.append(r["cpu_s"])
        rss.append(r)
        news.append(rep["pending"] + rep["expired"])
    end = rfc3339(start + steps * STEP)
    total_new += sum(news)
    stored = outbox_count(sqlite3, work)
    if stored != total_new:
        die(f"the simulated week reported {total_new} new rows but the outbox holds {stored}")
    _, again = plan(binary, work, end)
    if again["pending"] or again["expired"]:
        die(f"repeating the last plan of the week ({end}) added rows: {again}")
    doomed = planned_inside_quiet(sqlite3, work, unix(WEEK_START))
    expired_total = int(sql(sqlite3, work, "SELECT count(*) FROM outbox WHERE state = 'expired';"))
    result["week"] = {
        "from": WEEK_START, "to": end, "step_min": 15, "runs": steps,
        "warm_up_rows": warm["pending"] + warm["expired"],
        "rows_inserted": sum(news), "expired_rows_in_outbox": expired_total,
        "max_rows_one_run": max(news), "runs_with_rows": sum(1 for n in news if n),
        "total_s": round(sum(walls), 3), "total_cpu_s": round(sum(cpus), 3),
        "median_s": round(statistics.median(walls), 4), "p95_s": round(percentile(walls, .95), 4),
        "min_s": round(min(walls), 4), "max_s": round(max(walls), 4),
        "pending_planned_inside_quiet_hours_past_latest": doomed,
        "max_rss_mb": imp.max_rss(rss), "runs_s": [round(w, 4) for w in walls],
        "rows_per_run": news,
    }
    w = result["week"]
    print(f"  {steps} plans every 15 min, {WEEK_START} .. {end}: total {w['total_s']:.2f}s, "
          f"median {w['median_s'] * 1000:.1f} ms, p95 {w['p95_s'] * 1000:.1f} ms, "
          f"{w['rows_inserted']:,} rows")
    if doomed and doomed["total"]:
        print(f"  note: {doomed['total']} pending row(s) were planned inside quiet hours that "
              f"end after their latest time (dispatch can only expire them): "
              f"{doomed['by_clinic_rule']}; e.g. {doomed['examples'][0]}")
    imp.remove_db(work)
    imp.remove_db(pristine)
    return result


# ---- report -------------------------------------------------------------------------------


def print_table(results: list[dict], cores: int) -> None:
    head = ["appointments", "what", "median s", "min s", "ratio", "rows in", "cpu s",
            "peak RSS MB"]
    body = []
    for r in results:
        n = f"{r['appointments']:,}"
        new = r["plan_first"]["report"]["pending"] + r["plan_first"]["report"]["expired"]
        for label, key, ratio, rows in (
            (f"plan --now {T_DUE}", "plan_first", f"{r['ratio_first']:.2f}x", new),
            ("baseline SQL", "baseline_first", "", new),
            ("plan again (idempotent)", "plan_second", f"{r['ratio_second']:.2f}x", 0),
            ("baseline SQL again", "baseline_second", "", 0),
            (f"plan --now {T_EMPTY} (empty)", "plan_empty_window", "", 0),
        ):
            s = r[key]
            body.append([n, label, f"{s['median_s']:.3f}", f"{s['min_s']:.3f}", ratio,
                         f"{rows:,}", f"{s['median_cpu_s']:.3f}", imp.fmt_rss(s['max_rss_mb'])])
        w = r["week"]
        body.append([n, f"{w['runs']} plans, every 15 min: per run", f"{w['median_s']:.3f}",
                     f"{w['min_s']:.3f}", "", f"{w['rows_inserted']:,}",
                     f"{w['total_cpu_s'] / w['runs']:.3f}", imp.fmt_rss(w['max_rss_mb'])])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    fmt = lambda row: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                for i, (c, w) in enumerate(zip(row, widths)))
    print()
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for row in body:
        print(fmt(row))
    print()
    for r in results:
        w, rep = r["week"], r["plan_first"]["report"]
        print(f"{r['appointments']:,}: {r['candidates_in_window']:,} booked appointments in the "
              f"window; plan found {rep['due']:,} due ({rep['pending']:,} pending, "
              f"{rep['expired']:,} expired), naive offsets {r['naive_due']:,}; simulated week: "
              f"{w['total_s']:.2f}s for {w['runs']} runs (p95 {w['p95_s']:.3f}s, max "
              f"{w['max_s']:.3f}s, at most {w['max_rows_one_run']} rows in one run)")
    print(f"cores: {cores}   (ratio = reminderd median / baseline median; cpu = user+sys of "
          f"the process, per run)")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                    help="comma-separated appointment counts (default: 100000,1000000)")
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                    help=f"runs per measurement (default: {DEFAULT_RUNS})")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 100k only, 1 run, one simulated day instead of a week")
    args = ap.parse_args()
    if args.quick:
        sizes, runs, week_days = QUICK_SIZES, 1, QUICK_WEEK_DAYS
    else:
        try:
            sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
        except ValueError:
            die(f"--sizes takes comma-separated integers, got {args.sizes!r}", 2)
        if not sizes or any(s < 1 for s in sizes):
            die("--sizes must list positive counts", 2)
        runs, week_days = args.runs, WEEK_DAYS
    if runs < 1:
        die("--runs must be at least 1", 2)

    sqlite3 = imp.ensure_sqlite3()
    sqlite_version = subprocess.run([sqlite3, "--version"], capture_output=True,
                                    text=True).stdout.strip()
    binary = imp.build()
    # The commit and tree the binary was built from (others may commit while this runs).
    commit = imp.git("rev-parse", "--short", "HEAD") or "unknown"
    status = imp.git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 0

    results = [bench_size(n, runs, week_days, sqlite3, binary) for n in sizes]
    print_table(results, cores)

    out = {
        "benchmark": "plan",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "uncommitted_changes_outside_bench": bool(status) if status is not None else None,
        "command": "python3 bench/plan.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpu_count": cores,
            "platform": platform.platform(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "sqlite3_shell_version": sqlite_version,
        "peak_rss_from": "GNU time %M" if imp.GNU_TIME else None,
        "reminderd_libsqlite3_sys": imp.bundled_sqlite(),
        "generator": {"version": imp.GENERATOR_VERSION, "seed": imp.SEED},
        "created_at_pinned_to": CREATED_AT,
        "subject_command": "reminderd --config reminders.toml --db DB plan --now T --json",
        "baseline": "sqlite3 -bail DB < script: the window's SELECT, then INSERT INTO outbox "
                    "... SELECT ... LIMIT rows ON CONFLICT DO NOTHING",
        "baseline_sql_example": baseline_script(unix(T_DUE), 0).replace("LIMIT 0", "LIMIT :rows"),
        "results": results,
    }
    path = RESULTS_DIR / ("plan-quick.json" if args.quick else "plan.json")
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
