//! A database that cannot be written, because its folder or file is read-only or its disk is
//! full: every write command fails with exit code 74 and a message saying what is wrong and
//! that nothing was written, and the database is left exactly as it was (all rows or none).
//!
//! Root ignores file permissions (CI runs as root), so the faults are real mounts in a private
//! mount namespace, `unshare -rm sh -c SCRIPT` (util-linux; needs root or unprivileged user
//! namespaces): a read-only bind mount for a read-only disk or folder, a small tmpfs filled up
//! by a filler file for a full disk. The mounts vanish with the namespace, so the script
//! records each command's exit code, stdout and stderr in a results folder outside them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Env, HEADER, Run, csv, repo_file};

/// `exit::IO` in src/cli.rs: the database could not be opened or written.
const EX_IOERR: i32 = 74;

/// What `store::explain` says for a read-only database.
const READ_ONLY: &str = "read-only";
/// What `store::explain` says for a full disk.
const DISK_FULL: &str = "disk is full";
/// What every database failure must promise.
const NOTHING_WRITTEN: &str = "nothing was written";

/// Rows in the large import (enough to need many new pages).
const BIG_ROWS: usize = 3000;

/// Defines `step NAME ARGS...`: runs `reminderd --config "$CFG" ARGS...` and records its exit
/// code, stdout and stderr as `$OUT/NAME.code`, `.out` and `.err`, whatever its outcome. Any
/// other failing command ends the script (`set -e`).
const PRELUDE: &str = r#"set -eu
step() {
    name=$1
    shift
    if "$BIN" --config "$CFG" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; then
        echo 0 >"$OUT/$name.code"
    else
        echo $? >"$OUT/$name.code"
    fi
}
"#;

/// Printed by the script when it got to its end.
const FINISHED: &str = "dbfault: script finished";

/// The recorded results of one namespace script.
struct Results {
    dir: tempfile::TempDir,
}

impl Results {
    /// The run recorded by `step NAME ...`.
    fn step(&self, name: &str) -> Run {
        let read = |ext: &str| {
            let p = self.dir.path().join(format!("{name}.{ext}"));
            std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("step {name} left no {}: {e}", p.display()))
        };
        Run {
            code: read("code").trim().parse().expect("a recorded exit code"),
            stdout: read("out"),
            stderr: read("err"),
        }
    }

    /// A file the script left in `$OUT`.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs `script` (after [`PRELUDE`]) with `sh` in a new user and mount namespace, with `BIN`
/// (the reminderd binary), `CFG` (the test's config), `OUT` (the results folder) and `vars`
/// in its environment. Fails the test, loudly, if the namespace cannot be made or any setup
/// command fails: these faults cannot be faked without it.
fn in_namespace(env: &Env, vars: &[(&str, &Path)], script: &str) -> Results {
    let results = Results {
        dir: tempfile::tempdir().expect("results folder"),
    };
    let full = format!("{PRELUDE}{script}\necho '{FINISHED}'\n");
    let mut cmd = Command::new("unshare");
    cmd.args(["-rm", "sh", "-c", &full])
        .env("BIN", env!("CARGO_BIN_EXE_reminderd"))
        .env("CFG", env.path("reminders.toml"))
        .env("OUT", results.dir.path())
        .env_remove("REMINDERD_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("CREDENTIALS_DIRECTORY");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run `unshare` ({e}): the database fault tests need util-linux's unshare and \
             permission to create user and mount namespaces (try `unshare -rm true`)"
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(FINISHED),
        "the namespace script failed (exit {:?}); the database fault tests need `unshare -rm` \
         and mounts (bind, tmpfs) inside it\nscript:\n{full}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    results
}

/// A database with the sample schedule and one staff status change (so the audit log is not
/// empty), and a CSV of three new appointments that a successful import would add.
fn seeded() -> (Env, PathBuf) {
    let env = Env::new();
    let sample = repo_file("examples/schedule.csv");
    env.run(&["import", sample.to_str().expect("utf-8 path")])
        .expect(0);
    env.run(&["set-status", "MUM-1002", "confirmed", "--note", "phoned"])
        .expect(0);
    let new = env.file(
        "new.csv",
        csv(&[
            "N1,PN1,Asha Rao,98200 70001,en,2026-11-27,09:00,15,Dr. Mehta,mumbai,booked",
            "N2,PN2,Vikram Rao,98200 70002,hi,2026-11-27,09:30,15,Dr. Mehta,mumbai,booked",
            "N3,PN3,Maria Lopez,212-555-0147,es,2026-11-27,10:00,30,Dr. Chen,nyc,booked",
        ]),
    );
    (env, new)
}

/// `BIG_ROWS` new Mumbai appointments.
fn big_csv(env: &Env) -> PathBuf {
    let mut s = String::from(HEADER);
    for i in 0..BIG_ROWS {
        write!(
            s,
            "\nBIG-{i},PB-{i},Patient Number {i},98{i:08},en,2027-02-{:02},{:02}:{:02},15,Dr. Big,mumbai,booked",
            1 + i % 28,
            9 + (i / 28) % 8,
            (i * 7) % 60
        )
        .expect("write to a String");
    }
    s.push('\n');
    env.file("big.csv", s)
}

/// Rows per table, after checking the file's integrity: equal snapshots mean nothing was
/// written (or everything was rolled back).
fn snapshot(db: &Path) -> BTreeMap<String, i64> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let check: String = conn
        .query_row("PRAGMA integrity_check", (), |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok", "{} is damaged", db.display());
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .expect("prepare")
        .query_map((), |r| r.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("table names");
    tables
        .into_iter()
        .map(|t| {
            let n = conn
                .query_row(&format!("SELECT count(*) FROM \"{t}\""), (), |r| r.get(0))
                .expect("count");
            (t, n)
        })
        .collect()
}

/// The WAL file next to `db`, if it holds anything (a half-written transaction would be there).
fn wal_bytes(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Asserts that every named step failed with exit code 74 and a message holding all of
/// `needles`, listing every step that did not (not just the first).
fn assert_clear_failure(results: &Results, steps: &[&str], needles: &[&str]) {
    let mut wrong = Vec::new();
    for name in steps {
        let r = results.step(name);
        let missing: Vec<&str> = needles
            .iter()
            .copied()
            .filter(|n| !r.stderr.contains(n))
            .collect();
        if r.code != EX_IOERR || !missing.is_empty() {
            wrong.push(format!(
                "step {name}: exit code {} (want {EX_IOERR}), message lacks {missing:?}\n  stderr: {}",
                r.code,
                r.stderr.trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "unclear database errors:\n{}",
        wrong.join("\n")
    );
}

/// The number of appointments an `appointments --json` step listed.
fn listed(results: &Results, step: &str) -> usize {
    let r = results.step(step).expect(0);
    r.json().as_array().expect("a JSON array").len()
}

/// Makes `what` (the database's folder, or the file alone) read-only, runs three writing
/// commands, and checks each fails clearly with the database untouched.
fn read_only_writes_nothing(folder: bool) {
    let (env, new) = seeded();
    let db = env.db();
    let before = snapshot(&db);
    let bytes = std::fs::read(&db).expect("read db");
    let (target, probe) = if folder {
        (env.dir.path().to_path_buf(), r#"( true >"$RO/probe" )"#)
    } else {
        (db.clone(), r#"( true >>"$RO" )"#)
    };
    let results = in_namespace(
        &env,
        &[("RO", &target), ("CSV", &new)],
        &format!(
            r#"
mount --bind "$RO" "$RO"
mount -o remount,ro,bind "$RO"
if {probe} 2>/dev/null; then echo "$RO is still writable" >&2; exit 1; fi
step import import "$CSV" --json
step set_status set-status MUM-1001 cancelled --note "patient phoned"
step plan plan --now 2026-11-25T06:00:00Z
"#
        ),
    );
    // Nothing half-written: the file is byte for byte what it was, and no WAL holds anything.
    assert!(
        std::fs::read(&db).expect("read db") == bytes,
        "the database file changed"
    );
    assert_eq!(
        wal_bytes(&db),
        0,
        "the WAL holds a half-written transaction"
    );
    assert_eq!(snapshot(&db), before);
    assert_clear_failure(
        &results,
        &["import", "set_status", "plan"],
        &[READ_ONLY, NOTHING_WRITTEN],
    );
}

#[test]
fn a_read_only_database_folder_is_a_clear_error_and_nothing_is_written() {
    if crate::common::on_postgres() {
        return; // faults of the SQLite file and its folder
    }
    read_only_writes_nothing(true);
}

#[test]
fn a_read_only_database_file_is_a_clear_error_and_nothing_is_written() {
    if crate::common::on_postgres() {
        return; // faults of the SQLite file and its folder
    }
    read_only_writes_nothing(false);
}

/// The disk has room to open the database (its `-shm` index) but not for a large import: the
/// import fails as a whole, and succeeds once space is freed.
#[test]
fn a_disk_that_fills_up_during_an_import_is_a_clear_error_and_nothing_is_written() {
    if crate::common::on_postgres() {
        return; // faults of the SQLite file and its folder
    }
    let (env, _) = seeded();
    let big = big_csv(&env);
    let mnt = env.path("disk");
    std::fs::create_dir(&mnt).expect("mount point");
    let before = snapshot(&env.db());
    let appointments = usize::try_from(before["appointments"]).expect("count");
    let results = in_namespace(
        &env,
        &[("DB", &env.db()), ("MNT", &mnt), ("CSV", &big)],
        r#"
mount -t tmpfs -o size=4096k dbfault "$MNT"
cp "$DB" "$MNT/test.db"
dd if=/dev/zero of="$MNT/reserve" bs=1k count=64 2>/dev/null
dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null || true
rm "$MNT/reserve"
df -k "$MNT" >"$OUT/df"
step full --db "$MNT/test.db" import "$CSV" --json
rm "$MNT/fill"
step after --db "$MNT/test.db" appointments --from 2000-01-01 --json
for s in "" -wal; do if [ -e "$MNT/test.db$s" ]; then cp "$MNT/test.db$s" "$OUT/after.db$s"; fi; done
step retry --db "$MNT/test.db" import "$CSV" --json
step last --db "$MNT/test.db" appointments --from 2000-01-01 --json
"#,
    );
    let df = std::fs::read_to_string(results.path("df")).expect("df output");
    // All rows or none: the failed import left the same rows, in an intact file.
    assert_eq!(
        listed(&results, "after"),
        appointments,
        "after the failed import (disk: {df})"
    );
    assert_eq!(snapshot(&results.path("after.db")), before);
    // "Free some space and try again" works.
    let retry = results.step("retry").expect(0).json();
    assert_eq!(retry["new"], BIG_ROWS, "{retry}");
    assert_eq!(listed(&results, "last"), appointments + BIG_ROWS);
    assert_clear_failure(&results, &["full"], &[DISK_FULL, NOTHING_WRITTEN]);
}

/// The disk has no room left at all, not even for SQLite's `-shm` index next to the database.
#[test]
fn a_disk_with_no_room_left_is_a_clear_error_and_nothing_is_written() {
    if crate::common::on_postgres() {
        return; // faults of the SQLite file and its folder
    }
    let (env, new) = seeded();
    let mnt = env.path("disk");
    std::fs::create_dir(&mnt).expect("mount point");
    let before = snapshot(&env.db());
    let appointments = usize::try_from(before["appointments"]).expect("count");
    let results = in_namespace(
        &env,
        &[("DB", &env.db()), ("MNT", &mnt), ("CSV", &new)],
        r#"
mount -t tmpfs -o size=1024k dbfault "$MNT"
cp "$DB" "$MNT/test.db"
dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null || true
df -k "$MNT" >"$OUT/df"
step import --db "$MNT/test.db" import "$CSV" --json
step set_status --db "$MNT/test.db" set-status MUM-1001 cancelled --note "patient phoned"
rm "$MNT/fill"
step after --db "$MNT/test.db" appointments --from 2000-01-01 --json
for s in "" -wal; do if [ -e "$MNT/test.db$s" ]; then cp "$MNT/test.db$s" "$OUT/after.db$s"; fi; done
"#,
    );
    let df = std::fs::read_to_string(results.path("df")).expect("df output");
    assert_eq!(
        listed(&results, "after"),
        appointments,
        "after the failed writes (disk: {df})"
    );
    assert_eq!(snapshot(&results.path("after.db")), before);
    assert_clear_failure(
        &results,
        &["import", "set_status"],
        &[DISK_FULL, NOTHING_WRITTEN],
    );
}
