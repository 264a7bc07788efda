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

/// The test config with one value replaced; `path` is the dotted key as problems name it
/// (`rules[0].before`, `clinics.mumbai.max_import_age`). The key is added if absent.
fn config_with(path: &str, value: impl Into<toml::Value>) -> String {
    let mut doc: toml::Table = crate::common::test_config().parse().expect("test config");
    let mut segments: Vec<String> = Vec::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((name, index)) => {
                segments.push(name.to_string());
                segments.push(index.trim_end_matches(']').to_string());
            }
            None => segments.push(part.to_string()),
        }
    }
    let (last, parents) = segments.split_last().expect("a key");
    let mut at = &mut doc;
    let mut i = 0;
    while i < parents.len() {
        let entry = at
            .entry(parents[i].clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match entry {
            toml::Value::Array(items) => {
                i += 1;
                let n: usize = parents[i].parse().expect("an index");
                items[n].as_table_mut().expect("a table in the array")
            }
            toml::Value::Table(t) => t,
            other => panic!("{path}: {other:?} is not a table"),
        };
        i += 1;
    }
    at.insert(last.clone(), value.into());
    toml::to_string(&doc).expect("serialise config")
}

/// Runs `check-config` on `text` and returns the run, asserting it did not panic.
fn check(env: &Env, text: &str) -> crate::common::Run {
    let file = env.file("check.toml", text);
    let r = env.run(&[
        "--config",
        file.to_str().expect("path"),
        "--db",
        env.db().to_str().expect("path"),
        "check-config",
    ]);
    assert_ne!(r.code, 101, "panicked on:\n{text}\n{}", r.stderr);
    r
}

#[test]
fn the_helper_leaves_a_valid_config_valid() {
    // Guards the loops below: an out-of-range value is the only thing they change.
    let env = Env::new();
    check(&env, &config_with("daemon.stale_after", "5m")).expect(0);
    check(&env, &config_with("rules[1].before", "3h")).expect(0);
}

#[test]
fn every_duration_out_of_range_exits_78_naming_the_key_and_its_range() {
    let env = Env::new();
    // (key, accepted range as the message says it, a value just too short where one exists)
    let keys: [(&str, &str, Option<&str>); 15] = [
        ("daemon.stale_after", "between 10s and 7d", Some("9s")),
        ("daemon.shutdown_grace", "between 0s and 15m", None),
        ("desk.session", "between 1m and 30d", Some("59s")),
        ("desk.lockout", "between 1m and 7d", Some("59s")),
        ("server.header_timeout", "between 1s and 10m", Some("0s")),
        ("server.request_timeout", "between 1s and 1h", Some("0s")),
        ("whatsapp.connect_timeout", "between 1s and 5m", Some("0s")),
        ("whatsapp.request_timeout", "between 1s and 10m", Some("0s")),
        ("whatsapp.retry_base", "between 1s and 1h", Some("0s")),
        ("whatsapp.retry_max", "between 1s and 7d", Some("0s")),
        ("whatsapp.recipient_spacing", "between 0s and 1h", None),
        ("whatsapp.unknown_after", "between 1s and 30d", Some("0s")),
        (
            "clinics.mumbai.max_import_age",
            "between 1h and 3650d",
            Some("59m"),
        ),
        ("rules[0].before", "between 1m and 366d", Some("59s")),
        ("rules[0].latest", "between 0s and 366d", None),
    ];
    for (key, range, short) in keys {
        let values = [
            "9999999999999999d",
            "9223372036854775807s",
            "99999999999999999999s",
            "367d",
        ]
        .into_iter()
        .filter(|v| !(key == "clinics.mumbai.max_import_age" && *v == "367d"))
        .chain(short);
        for value in values {
            let r = check(&env, &config_with(key, value));
            assert_eq!(r.code, 78, "{key} = {value:?}:\n{}", r.stderr);
            assert!(
                r.stderr.contains(&format!("{key}: {value:?}")) && r.stderr.contains(range),
                "{key} = {value:?} should be named with its range {range:?}:\n{}",
                r.stderr
            );
        }
    }
}

#[test]
fn every_number_out_of_range_exits_78_naming_the_key_and_its_range() {
    let env = Env::new();
    let huge = i64::MAX;
    let cases: [(&str, i64, &str); 14] = [
        ("server.max_connections", 1 << 61, "between 1 and 16384"),
        ("server.min_body_rate", 0, "between 16 and 100000000"),
        ("server.min_body_rate", huge, "between 16 and 100000000"),
        ("server.max_connections", 0, "between 1 and 16384"),
        ("whatsapp.max_in_flight", 1 << 61, "between 1 and 1024"),
        ("whatsapp.max_in_flight", 0, "between 1 and 1024"),
        ("desk.max_upload_bytes", huge, "between 1024 and 104857600"),
        ("desk.max_upload_bytes", 1023, "between 1024 and 104857600"),
        ("desk.max_failed_logins", 4_294_967_295, "between 1 and 100"),
        (
            "server.max_body_bytes",
            huge,
            "between 3145728 and 104857600",
        ),
        (
            "whatsapp.rate_limit_per_sec",
            4_294_967_295,
            "between 1 and 1000",
        ),
        ("whatsapp.max_attempts", 4_294_967_295, "between 1 and 50"),
        ("whatsapp.max_attempts", 0, "between 1 and 50"),
        (
            "clinics.mumbai.default_duration_min",
            4_294_967_295,
            "between 1 and 1440",
        ),
    ];
    for (key, value, range) in cases {
        let r = check(&env, &config_with(key, value));
        assert_eq!(r.code, 78, "{key} = {value}:\n{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("{key}: ")) && r.stderr.contains(range),
            "{key} = {value} should be named with its range {range:?}:\n{}",
            r.stderr
        );
    }
    // Retries that could never grow: the longest delay is shorter than the first.
    let text = config_with("whatsapp.retry_max", "2s");
    let r = check(&env, &text).expect(78);
    assert!(
        r.stderr
            .contains("whatsapp.retry_max: \"2s\" is shorter than retry_base"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_cron_that_never_fires_within_a_year_exits_78_naming_the_key() {
    let env = Env::new();
    for (key, expr) in [
        ("daemon.plan", "0 0 0 31 2 *"),
        ("daemon.dispatch", "0 0 0 30 2 *"),
    ] {
        let r = check(&env, &config_with(key, expr)).expect(78);
        assert!(
            r.stderr.contains(&format!("{key}: {expr:?} never fires")),
            "{}",
            r.stderr
        );
    }
    // Once a year is rare but real.
    check(&env, &config_with("daemon.plan", "0 0 0 1 1 *")).expect(0);
}

#[test]
fn a_desk_open_to_the_network_without_secure_cookies_is_a_warning() {
    let env = Env::new();
    let text = config_with("desk.listen", "192.0.2.7:8081");
    let r = check(&env, &text).expect(0);
    assert!(
        r.stderr
            .contains("warning: desk.secure_cookies: is off while desk.listen = 192.0.2.7:8081")
            && r.stderr
                .contains("put TLS (an HTTPS reverse proxy) in front")
            && r.stderr.contains("set secure_cookies = true"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains(": OK"), "{}", r.stdout);

    // Behind TLS with secure cookies, or on this computer only: nothing to warn about.
    let secure = text.replace("secure_cookies = false", "secure_cookies = true");
    let r = check(&env, &secure).expect(0);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let r = check(&env, &crate::common::test_config()).expect(0);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

#[test]
fn plain_http_to_another_host_is_a_warning() {
    let env = Env::new();
    let r = check(
        &env,
        &config_with("whatsapp.api_base", "http://192.0.2.7:8080"),
    )
    .expect(0);
    assert!(
        r.stderr
            .contains("warning: whatsapp.api_base: \"http://192.0.2.7:8080\" is plain http")
            && r.stderr.contains("use https://"),
        "{}",
        r.stderr
    );
    for local in [
        "http://127.0.0.1:9000",
        "http://localhost:9000",
        "http://[::1]:9000",
    ] {
        let r = check(&env, &config_with("whatsapp.api_base", local)).expect(0);
        assert!(!r.stderr.contains("warning"), "{local}: {}", r.stderr);
    }
}

/// Buttons and reply words share one list of intents; a template's buttons may be only the ones
/// a tap can mean, and anything else is named with its key.
#[test]
fn a_button_that_is_no_tap_action_is_named_with_its_key() {
    let env = Env::new();
    let text = config_with(
        "templates.reminder.buttons",
        vec!["confirm", "start", "reschedule"],
    );
    let r = check(&env, &text).expect(78);
    assert!(
        r.stderr
            .contains("templates.reminder.buttons: \"start\" is not a button"),
        "{}",
        r.stderr
    );
}
