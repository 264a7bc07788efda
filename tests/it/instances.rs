//! Several instances on one PostgreSQL (issue 21): three daemons share one database, the
//! simulator is the witness, and every webhook is delivered to all three at once (as a load
//! balancer's retries, or Meta's, may bring it to any). A random instance is killed with
//! SIGKILL again and again during a 5,000-message dispatch: no message reaches the API twice,
//! none is lost, every reply is applied once, and the number's cap holds across the three.
//! These tests need a PostgreSQL (`REMINDERD_TEST_POSTGRES`, as `.ci/run` sets it); without
//! one they say so and pass.

use std::collections::HashMap;
use std::process::Child;
use std::time::Duration;

use reminderd::sim::{Reply, Sim, SimConfig};

use crate::common::{Env, Wait, csv, free_port, on_postgres, sim_config};
use crate::crash::{Rng, crash_config, mumbai_rows, seed, start_with};

const SECRET: &str = "crash-test-secret";
const MESSAGES: usize = 5000;
const INSTANCES: usize = 3;
const KILLS: usize = 9;
/// Patients who answer "yes" while the instances are being killed.
const REPLIES: usize = 30;
/// The number's cap, which the three share.
const CAP: u32 = 240;

/// Passes every webhook to every instance that answers, as several servers behind a load
/// balancer would each be handed some: 200 when at least one took it (the others find it
/// already recorded), 503 when none did (the simulator retries, as Meta does).
async fn fan_out(ports: Vec<u16>) -> u16 {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    let client = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let client = client.clone();
            let ports = ports.clone();
            async move {
                let mut taken = false;
                for port in &ports {
                    let mut request = client
                        .post(format!("http://127.0.0.1:{port}/webhook"))
                        .timeout(Duration::from_secs(5))
                        .body(body.clone());
                    for (name, value) in &headers {
                        if name.as_str().starts_with("x-") || name == "content-type" {
                            request = request.header(name.as_str(), value.as_bytes());
                        }
                    }
                    let answer = request.send().await;
                    taken |= answer.is_ok_and(|r| r.status().is_success());
                }
                if taken {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// The most messages the simulator accepted in any one-second window.
fn busiest_second(sim: &Sim) -> usize {
    let mut at: Vec<_> = sim.messages().iter().map(|m| m.received_at).collect();
    at.sort();
    let mut most = 0;
    let mut j = 0;
    for i in 0..at.len() {
        while j < at.len() && at[j] < at[i] + chrono::Duration::seconds(1) {
            j += 1;
        }
        most = most.max(j - i);
    }
    most
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_killed_at_random_send_each_message_once_within_the_cap() {
    if !on_postgres() {
        println!(
            "skipped: several instances need PostgreSQL (set REMINDERD_TEST_POSTGRES, as .ci/run does)"
        );
        return;
    }
    let seed = seed("three-instance crash test", 21);
    let mut rng = Rng(seed);
    let env = Env::new();
    let ports: Vec<u16> = (0..INSTANCES).map(|_| free_port()).collect();
    env.write_config(
        crash_config(&env, CAP).replace("max_import_age = \"36h\"", "max_import_age = \"3650d\""),
    );

    // Day-before reminders due four hours ago, for appointments a second apart.
    let rows = mumbai_rows(MESSAGES);
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let r = env.import("day.csv", &csv(&rows), &[]).expect(0).json();
    assert_eq!(r["new"], MESSAGES, "{r}");

    let front = fan_out(ports.clone()).await;
    let parsed = reminderd::config::Config::from_toml(
        &std::fs::read_to_string(env.path("reminders.toml")).expect("config"),
        &env.path("reminders.toml"),
    )
    .expect("config");
    let sim = std::sync::Arc::new(
        Sim::start(SimConfig {
            webhook_url: Some(format!("http://127.0.0.1:{front}/webhook")),
            app_secret: Some(SECRET.into()),
            pair_limit: None,
            latency: Duration::from_millis(20),
            templates: reminderd::sim::templates_from_config(&parsed),
            ..sim_config("tok")
        })
        .await
        .expect("sim"),
    );
    let api = sim.base_url();
    let start =
        |k: usize, run: usize| -> Child { start_with(&env, ports[k], &api, 100 * k + run, &[]) };
    let mut children: Vec<Child> = (0..INSTANCES).map(|k| start(k, 0)).collect();

    let mut replied = Vec::new();
    let mut answering = Vec::new();
    for kill in 1..=KILLS {
        let target = sim.messages().len() + rng.between(150, 450) as usize;
        let wait_until = tokio::time::Instant::now() + Duration::from_secs(30);
        while sim.messages().len() < target.min(MESSAGES)
            && tokio::time::Instant::now() < wait_until
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Patients who have their reminder answer it, while the kills go on.
        if kill == 2 || kill == 5 {
            let reached: Vec<String> = sim
                .messages()
                .iter()
                .map(|m| m.body["to"].as_str().unwrap_or("").to_string())
                .filter(|to| !replied.contains(to))
                .take(REPLIES / 2)
                .collect();
            replied.extend(reached.iter().cloned());
            let sim = std::sync::Arc::clone(&sim);
            answering.push(tokio::spawn(async move {
                for to in reached {
                    sim.reply(Reply::Text {
                        from: to,
                        body: "yes".into(),
                        context_id: None,
                    })
                    .await
                    .expect("reply delivered");
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.between(0, 50))).await;
        let k = rng.between(0, INSTANCES as u64) as usize;
        children[k].kill().expect("SIGKILL");
        let _ = children[k].wait();
        println!(
            "kill {kill}: instance {k}, {} messages accepted so far",
            sim.messages().len()
        );
        children[k] = start(k, kill);
    }
    assert_eq!(replied.len(), REPLIES);
    for a in answering {
        a.await.expect("replies");
    }

    let total = MESSAGES + REPLIES;
    let delivered =
        || env.count("SELECT count(*) FROM outbox WHERE state IN ('delivered', 'read')");
    Wait::new(
        "every reminder and acknowledgement to be delivered after the kills",
        Duration::from_secs(120),
    )
    .every(Duration::from_millis(250))
    .context(|| format!("seed {seed}: only {} of {total} delivered", delivered()))
    .until(|| delivered() == total as i64)
    .await;
    for mut child in children {
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    // The witness: each row reached the API exactly once.
    let mut sent: HashMap<String, usize> = HashMap::new();
    for m in sim.messages() {
        let id = m.body["biz_opaque_callback_data"]
            .as_str()
            .unwrap_or("")
            .to_string();
        *sent.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: sent more than once: {twice:?}"
    );
    assert_eq!(sent.len(), total, "seed {seed}: every row reached the API");
    // Every reply applied once: each recorded once, each answer confirmed its appointment,
    // and each acknowledged once (counted above).
    assert_eq!(
        env.count("SELECT count(*) FROM replies WHERE intent = 'confirm' AND outcome = 'applied'"),
        REPLIES as i64,
        "seed {seed}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM appointments WHERE response = 'confirmed'"),
        REPLIES as i64,
        "seed {seed}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE kind = 'reply_ack'"),
        REPLIES as i64,
        "seed {seed}"
    );
    let busiest = busiest_second(&sim);
    println!(
        "seed {seed}: busiest second {busiest} of a cap of {CAP}; {} rows took more than one claim",
        env.count("SELECT count(*) FROM outbox WHERE claim_epoch > 1"),
    );
    assert!(
        busiest <= CAP as usize,
        "seed {seed}: {busiest} messages in one second, over the cap of {CAP}"
    );
}

/// A TCP path to PostgreSQL that the test can cut (every connection through it dropped, new
/// ones refused, as when the database server dies or the network between fails) and mend.
struct Cable {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cable {
    async fn to(host: String, port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let cable = Self {
            port: listener.local_addr().expect("addr").port(),
            up: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            links: std::sync::Arc::default(),
        };
        let (up, links) = (cable.up.clone(), cable.links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let target = format!("{host}:{port}");
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links.lock().expect("links").push(link);
            }
        });
        cable
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    fn mend(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Losing the database: a webhook is answered 503 (Meta retries), `/healthz` says the
/// database is unavailable, nothing is half-recorded; once PostgreSQL is back the server
/// reconnects by itself and the retried delivery is applied, once.
#[tokio::test(flavor = "multi_thread")]
async fn losing_the_database_answers_503_and_everything_resumes_when_it_is_back() {
    use crate::webhook::{Served, text_from};
    if !on_postgres() {
        println!("skipped: needs PostgreSQL (set REMINDERD_TEST_POSTGRES, as .ci/run does)");
        return;
    }
    let env = Env::new();
    let pg = env.pg.clone().expect("postgres");
    let cable = Cable::to(
        std::env::var("PGHOST").unwrap_or_else(|_| "localhost".into()),
        std::env::var("PGPORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(5432),
    )
    .await;
    // The server reaches the database only through the cable; the test reads it directly.
    let db = pg
        .url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_string();
    let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
    let config = std::fs::read_to_string(env.path("reminders.toml"))
        .expect("config")
        .replace(
            &format!("url = \"{}\"", pg.url),
            // localhost: the name the test server's certificate is for (TLS is on).
            &format!("url = \"postgres://{user}@localhost:{}/{db}\"", cable.port),
        );
    std::fs::write(env.path("reminders.toml"), config).expect("config");
    let day = (reminderd::time::Clock::System.now() + chrono::Duration::days(2))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .format("%Y-%m-%d")
        .to_string();
    env.import(
        "day.csv",
        &csv(&[&format!(
            "A1,P1,Asha Rao,98200 12345,en,{day},10:00,15,Dr. Mehta,mumbai,booked"
        )]),
        &[],
    )
    .expect(0);
    let s = Served::start(env).await;
    let health = || async {
        reqwest::get(format!("{}/healthz", s.url()))
            .await
            .map_or(0, |r| r.status().as_u16())
    };
    assert_eq!(health().await, 200);

    cable.cut();
    let yes = text_from("919820012345", "wamid.in-1", "yes");
    assert_eq!(s.post_signed(&yes).await, 503, "Meta is asked to retry");
    assert_eq!(health().await, 503, "/healthz tells the database is gone");
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events"),
        0,
        "nothing half-recorded"
    );

    cable.mend();
    Wait::new("the server to reconnect", Duration::from_secs(20))
        .every(Duration::from_millis(200))
        .until_async(async || health().await == 200)
        .await;
    // Meta's retry: applied once, however many times it comes.
    assert_eq!(s.post_signed(&yes).await, 200);
    assert_eq!(s.post_signed(&yes).await, 200);
    assert_eq!(s.count("SELECT count(*) FROM inbound_events"), 1);
    assert_eq!(
        s.count("SELECT count(*) FROM replies WHERE message_id = 'wamid.in-1'"),
        1
    );
}

/// The spacing between two messages to one patient holds across servers: three daemons on one
/// PostgreSQL send eight families' reminders (four appointments each, on the family's one
/// phone), and the simulator, enforcing Meta's pair limit at the spacing, never refuses one
/// and sees every family's messages at least the spacing apart.
#[tokio::test(flavor = "multi_thread")]
async fn three_instances_keep_each_recipients_spacing_between_them() {
    const FAMILIES: usize = 8;
    const EACH: usize = 4;
    if !on_postgres() {
        println!(
            "skipped: several instances need PostgreSQL (set REMINDERD_TEST_POSTGRES, as .ci/run does)"
        );
        return;
    }
    let env = Env::new();
    let ports: Vec<u16> = (0..INSTANCES).map(|_| free_port()).collect();
    env.write_config(
        crash_config(&env, CAP)
            .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"")
            .replace("recipient_spacing = \"0s\"", "recipient_spacing = \"2s\"")
            // Small claims, so that every instance has rows to claim while the others send.
            .replace("# max_in_flight = 20", "max_in_flight = 4"),
    );
    let now = reminderd::time::Clock::System.now();
    let rows: Vec<String> = (0..FAMILIES * EACH)
        .map(|i| {
            let start = (now + chrono::Duration::hours(20) + chrono::Duration::minutes(i as i64))
                .with_timezone(&chrono_tz::Asia::Kolkata);
            format!(
                "S{i},F{i},Member {i},98{:08},en,{},{},15,,mumbai,booked",
                20_000_000 + i % FAMILIES,
                start.format("%Y-%m-%d"),
                start.format("%H:%M")
            )
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let parsed = reminderd::config::Config::from_toml(
        &std::fs::read_to_string(env.path("reminders.toml")).expect("config"),
        &env.path("reminders.toml"),
    )
    .expect("config");
    let spacing = Duration::from_secs(2);
    let sim = Sim::start(SimConfig {
        pair_limit: Some(spacing),
        latency: Duration::from_millis(20),
        templates: reminderd::sim::templates_from_config(&parsed),
        ..sim_config("tok")
    })
    .await
    .expect("sim");
    let api = sim.base_url();
    let mut children: Vec<Child> = (0..INSTANCES)
        .map(|k| start_with(&env, ports[k], &api, 500 + k, &[]))
        .collect();
    // The schedule arrives once the three know of each other (their shares settled): while
    // the live servers change, a recipient's next message may come from another server
    // sooner than the spacing (README: Several servers).
    Wait::new("three live instances", Duration::from_secs(30))
        .every(Duration::from_millis(100))
        .until(|| env.count("SELECT count(*) FROM instances") == INSTANCES as i64)
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    env.import("day.csv", &csv(&rows), &[]).expect(0);
    Wait::new("every reminder accepted", Duration::from_secs(60))
        .every(Duration::from_millis(100))
        .context(|| format!("{} of {} accepted", sim.messages().len(), FAMILIES * EACH))
        .until(|| sim.messages().len() >= FAMILIES * EACH)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let stats = sim.stats();
    assert_eq!(
        stats.pair_limited, 0,
        "the simulator refused a pair: {stats:?}"
    );
    let mut by_phone: HashMap<String, Vec<chrono::DateTime<chrono::Utc>>> = HashMap::new();
    for m in sim.messages() {
        by_phone
            .entry(m.body["to"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(m.received_at);
    }
    assert_eq!(by_phone.len(), FAMILIES);
    for (phone, mut at) in by_phone {
        assert_eq!(at.len(), EACH, "{phone}: each reminder once");
        at.sort();
        for pair in at.windows(2) {
            assert!(
                (pair[1] - pair[0]).to_std().unwrap_or_default() >= spacing,
                "{phone}: two messages {} ms apart",
                (pair[1] - pair[0]).num_milliseconds()
            );
        }
    }
}

/// Wake-ups: a message another process makes due now (here `reminderd plan` from the command
/// line, as another server's plan would) reaches PostgreSQL's notification, and a daemon whose
/// own dispatch schedule would not run for a year sends it within seconds.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_made_due_elsewhere_is_sent_at_once_through_listen_notify() {
    if !on_postgres() {
        println!("skipped: needs PostgreSQL (set REMINDERD_TEST_POSTGRES, as .ci/run does)");
        return;
    }
    let env = Env::new();
    env.write_config(
        crash_config(&env, CAP)
            .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"")
            .replace("dispatch = \"*/1 * * * * *\"", "dispatch = \"0 0 0 1 1 *\"")
            .replace("plan = \"*/1 * * * * *\"", "plan = \"0 0 0 1 1 *\""),
    );
    let parsed = reminderd::config::Config::from_toml(
        &std::fs::read_to_string(env.path("reminders.toml")).expect("config"),
        &env.path("reminders.toml"),
    )
    .expect("config");
    let sim = Sim::start(SimConfig {
        pair_limit: None,
        templates: reminderd::sim::templates_from_config(&parsed),
        ..sim_config("tok")
    })
    .await
    .expect("sim");
    let port = free_port();
    let mut daemon = start_with(&env, port, &sim.base_url(), 700, &[]);
    Wait::new("the daemon to listen", Duration::from_secs(30))
        .every(Duration::from_millis(50))
        .until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        .await;
    // Its LISTEN goes in just after the port opens.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let rows = mumbai_rows(3);
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    env.import("day.csv", &csv(&rows), &[]).expect(0);
    assert!(
        sim.messages().is_empty(),
        "nothing sent before it is planned"
    );
    let planned = std::time::Instant::now();
    env.run(&["plan"]).expect(0);
    Wait::new("the three reminders sent", Duration::from_secs(10))
        .every(Duration::from_millis(50))
        .context(|| format!("{} sent", sim.messages().len()))
        .until(|| sim.messages().len() == 3)
        .await;
    let took = planned.elapsed();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        took < Duration::from_secs(5),
        "sent {took:?} after the plan"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE state = 'sent'"),
        3
    );
}
