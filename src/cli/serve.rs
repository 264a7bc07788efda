//! The long-running processes: the daemon, the webhook server and the API simulator.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use reminderd::secrets;
use reminderd::time::Clock;

use super::{RunArgs, ServeArgs, SimulateArgs, exit, fail, load_config, open, runtime};

pub(super) fn run_daemon(config_path: &Path, db: Option<&Path>, args: &RunArgs) -> Result<u8> {
    let config = load_config(config_path, db)?;
    let secrets =
        reminderd::daemon::Secrets::load().map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    let addr = args.listen.unwrap_or(config.server.listen);
    let opts = reminderd::daemon::Options {
        config_path: config_path.to_path_buf(),
        db: db.map(Path::to_path_buf),
        api_base: std::env::var("REMINDERD_API_BASE")
            .ok()
            .filter(|b| !b.is_empty()),
        secrets,
        handle_signals: true,
        clock: Clock::System,
    };
    runtime()?.block_on(async move {
        let listener = bind_server(addr).await?;
        reminderd::daemon::run(opts, listener, tokio_util::sync::CancellationToken::new())
            .await
            .map_err(|e| match e {
                reminderd::daemon::DaemonError::Config(c) => anyhow::Error::from(c),
                reminderd::daemon::DaemonError::Store(s) => anyhow::Error::from(s),
                other => fail(exit::SOFTWARE, other.to_string()),
            })?;
        Ok(exit::OK)
    })
}

pub(super) fn serve(config_path: &Path, db: Option<&Path>, args: &ServeArgs) -> Result<u8> {
    let ServeArgs {
        listen,
        desk_listen,
    } = *args;
    let (config, store) = open(config_path, db)?;
    let app_secret = secrets::APP_SECRET
        .load()
        .map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    let verify_token = secrets::VERIFY_TOKEN
        .load()
        .map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    let addr = listen.unwrap_or(config.server.listen);
    let limits = config.server.clone();
    let config_for_sms = config.clone();
    let state = reminderd::server::AppState {
        store: reminderd::store::Db::new(store),
        config: Arc::new(std::sync::RwLock::new(Arc::new(config))),
        app_secret: Arc::new(app_secret),
        verify_token: Arc::new(verify_token),
        clock: Clock::System,
        health: None,
        sms: reminderd::server::SmsSecrets::new(&config_for_sms, |s| {
            s.load().map_err(|e| e.to_string())
        })
        .map_err(|e| fail(exit::CONFIG, e))?,
    };
    let desk_state = reminderd::desk::DeskState {
        store: state.store.clone(),
        config: Arc::clone(&state.config),
        clock: Clock::System,
        // Without it the desk works, but cannot open the files patients send.
        whatsapp_token: secrets::ACCESS_TOKEN.load().ok().map(Arc::new),
        // A number whose token is missing has its files fetched with the main token.
        number_tokens: Arc::new(secrets::number_tokens(&config_for_sms).unwrap_or_default()),
    };
    runtime()?.block_on(async move {
        let listener = bind_server(addr).await?;
        eprintln!(
            "webhook listening on http://{}/webhook",
            listener.local_addr()?
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let desk = reminderd::desk::spawn(desk_state, desk_listen, None, stop.clone())
            .await
            .map_err(|e| fail(exit::CONFIG, e.to_string()))?;
        if let Some((addr, _)) = &desk {
            eprintln!("front desk on http://{addr}/desk");
        }
        // Stop on SIGTERM as on Ctrl-C, letting requests in flight finish: an event stored but
        // never answered would be delivered again by Meta.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let app = reminderd::server::router(state, limits.max_body_bytes);
        reminderd::server::serve(listener, app, &limits, async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            stop.cancel();
        })
        .await?;
        if let Some((_, task)) = desk {
            task.await??;
        }
        Ok(exit::OK)
    })
}

pub(super) fn simulate(config_path: &Path, db: Option<&Path>, args: &SimulateArgs) -> Result<u8> {
    let SimulateArgs {
        listen,
        ref webhook,
        ref app_secret_env,
        latency_ms,
        max_per_sec,
        pair_limit_secs,
    } = *args;
    let config = &load_config(config_path, db)?;
    let wa = config.whatsapp.as_ref().ok_or_else(|| {
        fail(
            exit::CONFIG,
            "whatsapp: the config has no [whatsapp] section; see reminders.toml",
        )
    })?;
    let token = std::env::var("WHATSAPP_ACCESS_TOKEN").unwrap_or_else(|_| "sim-token".into());
    let app_secret = std::env::var(app_secret_env).ok().filter(|s| !s.is_empty());
    if webhook.is_some() && app_secret.is_none() {
        return Err(fail(
            exit::USAGE,
            format!("--webhook needs an app secret to sign with: set ${app_secret_env}"),
        ));
    }
    // Every further number of the config, with the token reminderd will send with.
    let numbers: Vec<reminderd::sim::SimNumber> = wa
        .numbers
        .values()
        .filter(|n| n.name != reminderd::config::DEFAULT_NUMBER)
        .enumerate()
        .map(|(i, n)| reminderd::sim::SimNumber {
            waba_id: n.waba_id.clone(),
            display_phone_number: format!("1555000{:04}", i + 1),
            max_per_sec,
            ..reminderd::sim::SimNumber::new(
                &n.phone_number_id,
                // Its own token where it has one (else a made-up one), the main one otherwise.
                &match reminderd::secrets::own_token(n) {
                    Ok(Some(own)) => secrecy::ExposeSecret::expose_secret(&own).to_string(),
                    Ok(None) => token.clone(),
                    Err(_) => format!("sim-token-{}", n.name),
                },
            )
        })
        .collect();
    let sim_config = reminderd::sim::SimConfig {
        phone_number_id: wa.phone_number_id.clone(),
        waba_id: wa.waba_id.clone(),
        access_token: token,
        templates: reminderd::sim::templates_from_config(config),
        webhook_url: webhook.clone(),
        app_secret,
        latency: std::time::Duration::from_millis(latency_ms),
        pair_limit: (pair_limit_secs > 0).then(|| std::time::Duration::from_secs(pair_limit_secs)),
        max_per_sec,
        numbers,
        ..reminderd::sim::SimConfig::default()
    };
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| fail(exit::USAGE, format!("cannot listen on {listen}: {e}")))?;
        eprintln!(
            "WhatsApp Cloud API simulator on http://{} (phone number id {}); point reminderd at it with REMINDERD_API_BASE=http://{}; Ctrl-C stops it",
            listener.local_addr()?,
            wa.phone_number_id,
            listener.local_addr()?
        );
        for n in wa.numbers.values().filter(|n| n.name != reminderd::config::DEFAULT_NUMBER) {
            eprintln!(
                "  also number {:?} (phone number id {}){}",
                n.name,
                n.phone_number_id,
                if n.own_token {
                    format!(
                        ", token ${}",
                        reminderd::secrets::number_token(&n.name).env
                    )
                } else {
                    String::new()
                }
            );
        }
        reminderd::sim::run(listener, sim_config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(exit::OK)
    })
}

/// Binds the webhook's address, naming the config key when it cannot.
async fn bind_server(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        fail(
            exit::CONFIG,
            format!("server.listen: cannot listen on {addr}: {e}"),
        )
    })
}
