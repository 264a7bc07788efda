//! `reminderd check-config` and the config path rules.

use crate::common::{Env, repo_file};

#[test]
fn the_shipped_example_config_is_valid() {
    let env = Env::new();
    let example = repo_file("reminders.toml");
    let r = env.run(&[
        "--config",
        example.to_str().expect("path"),
        "--db",
        env.db().to_str().expect("path"),
        "check-config",
    ]);
    let r = r.expect(0);
    assert!(
        r.stdout.contains("clinic mumbai") && r.stdout.contains("Asia/Kolkata"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("clinic nyc") && r.stdout.contains("America/New_York"),
        "{}",
        r.stdout
    );
}

#[test]
fn invalid_config_exits_78_naming_each_key() {
    let env = Env::new();
    let bad = env.file(
        "bad.toml",
        r#"
[database]
path = "x.db"
[clinics.mumbai]
display_name = "M"
time_zone = "Asia/Mumbai"
phone_region = "India"
[clinics.Delhi]
display_name = "M"
time_zone = "Asia/Kolkata"
phone_region = "IN"
"#,
    );
    let r = env
        .run(&["--config", bad.to_str().expect("path"), "check-config"])
        .expect(78);
    for needle in [
        "clinics.mumbai.time_zone: unknown time zone \"Asia/Mumbai\"",
        "clinics.mumbai.phone_region: unknown phone region \"India\"",
        "clinics.Delhi: clinic keys use lower-case letters",
        "display name of clinic",
    ] {
        assert!(
            r.stderr.contains(needle),
            "missing {needle:?} in:\n{}",
            r.stderr
        );
    }

    let typo = env.file("typo.toml", "[database]\npaht = \"x.db\"\n");
    let r = env
        .run(&["--config", typo.to_str().expect("path"), "check-config"])
        .expect(78);
    assert!(r.stderr.contains("unknown field `paht`"), "{}", r.stderr);

    // Commands that need the config refuse to run on a bad one, with the same exit code.
    let r = env
        .run(&["--config", bad.to_str().expect("path"), "appointments"])
        .expect(78);
    assert!(
        r.stderr.contains("clinics.mumbai.time_zone"),
        "{}",
        r.stderr
    );
}

#[test]
fn config_comes_from_the_environment_when_no_flag_is_given() {
    let env = Env::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reminderd"))
        .arg("check-config")
        .env("REMINDERD_CONFIG", env.path("reminders.toml"))
        .current_dir(env.dir.path())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_reminderd"))
        .arg("check-config")
        .env_remove("REMINDERD_CONFIG")
        .current_dir(env.path(".."))
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read config file reminders.toml")
    );
}

#[test]
fn a_database_folder_that_does_not_exist_is_a_config_error() {
    let env = Env::new();
    let r = env
        .run(&["--db", "/nonexistent/folder/r.db", "check-config"])
        .expect(78);
    assert!(
        r.stderr.contains("database.path") && r.stderr.contains("does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_exit_64() {
    let env = Env::new();
    env.run(&["import"]).expect(64);
    env.run(&["appointments", "--status", "maybe"]).expect(64);
    env.run(&["appointments", "--from", "2027-02-01", "--to", "2027-01-01"])
        .expect(64);
}
