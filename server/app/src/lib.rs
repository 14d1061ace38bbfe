//! The `makker` binary's library half: configuration, wiring, the demo, the admin commands.
//! Only this crate names a concrete storage backend.

pub mod admin;
pub mod backup;
pub mod config;
pub mod demo;
pub mod telemetry;
pub mod watchdog;

use std::sync::Arc;

use anyhow::Context;
use makker_engine::clock::{Clock, DbClock};
use makker_engine::dispatcher::{Dispatcher, Relay};
use makker_engine::maintenance::Maintenance;
use makker_engine::scheduler::Scheduler;
use makker_engine::{Engine, EngineSettings};
use makker_http::AppState;
use makker_http::webhooks::Webhooks;
use makker_notify::push::{EndpointPolicy, WebPush};
use makker_notify::sms::SmsProvider;
use makker_store::Store;
use makker_store_pg::PgStore;
use makker_store_sqlite::SqliteStore;

use crate::config::Config;
use crate::watchdog::Watchdog;

/// Opens the database named by `url` (the scheme picks the backend) and migrates it.
///
/// # Errors
/// The database cannot be opened or migrated.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(
            SqliteStore::connect(url)
                .await
                .context("cannot open the SQLite database")?,
        )
    } else {
        Arc::new(
            PgStore::connect(url)
                .await
                .context("cannot connect to PostgreSQL")?,
        )
    };
    store.migrate().await.context("cannot migrate the database")?;
    Ok(store)
}

/// The engine for a configuration, on the system clock.
///
/// # Errors
/// The database or the policy cannot be loaded.
pub async fn engine(config: &Config) -> anyhow::Result<Engine> {
    let store = open_store(&config.database_url).await?;
    let policy = Arc::new(config.load_policy()?);
    // What is due is decided by the database's clock, which every replica shares.
    let clock = Arc::new(DbClock::default());
    clock
        .sync(store.as_ref())
        .await
        .context("cannot read the database's clock")?;
    let resync = (clock.clone(), store.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            if let Err(e) = resync.0.sync(resync.1.as_ref()).await {
                tracing::warn!(error = %e, "cannot read the database's clock; keeping the last offset");
            }
        }
    });
    let clock: Arc<dyn Clock> = clock;
    let mut engine = Engine::new(store, policy, clock);
    let vapid = config.vapid()?;
    engine.settings = Arc::new(EngineSettings {
        push_public_key: vapid.as_ref().map(|v| v.key.public_key().to_owned()),
        token_days: config.token_days,
        ..EngineSettings::default()
    });
    Ok(engine)
}

/// Binds the configured address.
///
/// # Errors
/// The address is taken or not ours.
pub async fn bind(config: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))
}

/// The SMS providers of the configuration: primary first, then failover.
///
/// # Errors
/// A base URL that is not a URL, or the HTTP client cannot be built.
pub fn sms_providers(config: &Config) -> anyhow::Result<Vec<Arc<dyn SmsProvider>>> {
    use makker_notify::sms::{
        Elks46, Elks46Config, GatewayApi, GatewayApiConfig, LogProvider, Secret, Twilio, TwilioConfig,
        http_client,
    };
    let url = |given: &Option<String>, default: &str| -> anyhow::Result<reqwest::Url> {
        let text = given.as_deref().unwrap_or(default);
        reqwest::Url::parse(text).with_context(|| format!("{text:?} is not a URL"))
    };
    let webhook =
        |path: &str| reqwest::Url::parse(&format!("{}/webhooks/sms/{path}", config.public_url)).ok();
    let secret = |s: &Option<String>| Secret::new(s.clone().unwrap_or_default());
    let mut out: Vec<Arc<dyn SmsProvider>> = Vec::new();
    for which in std::iter::once(config.sms_primary).chain(config.sms_failover) {
        let provider: Arc<dyn SmsProvider> = match which {
            config::SmsProvider::Log => Arc::new(LogProvider::new()),
            config::SmsProvider::GatewayApi => Arc::new(GatewayApi::new(
                GatewayApiConfig {
                    base_url: url(&config.gatewayapi_base_url, GatewayApiConfig::DEFAULT_BASE_URL)?,
                    token: secret(&config.gatewayapi_token),
                    sender: config.sms_sender.clone(),
                    callback_url: webhook("gatewayapi/delivery"),
                },
                http_client()?,
            )),
            config::SmsProvider::Elks46 => Arc::new(Elks46::new(
                Elks46Config {
                    base_url: url(&config.elks46_base_url, Elks46Config::DEFAULT_BASE_URL)?,
                    username: config.elks46_username.clone().unwrap_or_default(),
                    password: secret(&config.elks46_password),
                    from: config.sms_sender.clone(),
                    delivery_url: webhook("46elks/delivery"),
                    webhook_secret: secret(&config.sms_webhook_secret),
                },
                http_client()?,
            )),
            config::SmsProvider::Twilio => Arc::new(Twilio::new(
                TwilioConfig {
                    base_url: url(&config.twilio_base_url, TwilioConfig::DEFAULT_BASE_URL)?,
                    account_sid: config.twilio_account_sid.clone().unwrap_or_default(),
                    auth_token: secret(&config.twilio_auth_token),
                    from: config.sms_sender.clone(),
                    status_callback: webhook("twilio/delivery"),
                },
                http_client()?,
            )),
        };
        out.push(provider);
    }
    Ok(out)
}

/// The webhook verifiers of the configuration.
pub fn webhooks(config: &Config) -> Webhooks {
    Webhooks::new(
        &config.public_url,
        config.sms_webhook_secret.as_deref(),
        config.twilio_auth_token.as_deref(),
    )
}

/// The Web Push sender of the configuration, when push is configured.
///
/// # Errors
/// The VAPID settings are invalid or the HTTP client cannot be built.
pub fn web_push(config: &Config) -> anyhow::Result<Option<WebPush>> {
    let Some(vapid) = config.vapid()? else {
        return Ok(None);
    };
    let insecure = config.push_allow_insecure;
    let policy = EndpointPolicy {
        allow_http: insecure,
        allow_loopback: insecure,
    };
    Ok(Some(WebPush::new(vapid, policy)?))
}

/// Serves the API until Ctrl-C or SIGTERM.
///
/// # Errors
/// The server fails.
pub async fn serve(listener: tokio::net::TcpListener, engine: Engine, config: &Config) -> anyhow::Result<()> {
    raise_open_files();
    let sms = sms_providers(config)?;
    let push = web_push(config)?;
    let webhooks = webhooks(config);
    let oidc = config.oidc()?.map(makker_http::oidc::Oidc::new).transpose()?;
    tracing::info!(address = %listener.local_addr()?, "makker is listening");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let deadlines = deadline_threads(engine.clone(), config.clone(), sms, push, stopped.clone()).await?;
    let watchdog = match &config.watchdog_url {
        Some(url) => Some(tokio::spawn(
            Watchdog {
                engine: engine.clone(),
                url: url.clone(),
                interval: std::time::Duration::from_secs(config.watchdog_interval_seconds.into()),
                http: makker_notify::sms::http_client()?,
            }
            .run(stopped),
        )),
        None => None,
    };
    let mut maintenance = Maintenance::new(engine.clone(), config.position_retention_days)
        .with_retention(config.visit_detail_retention_days, config.audit_retention_days)
        .start()
        .await?;
    let state = AppState::new(engine, webhooks).with_web(makker_http::web::WebConfig {
        tile_url: config.map_tile_url.clone(),
        center: [config.map_center_lat, config.map_center_lon],
    });
    let state = match oidc {
        Some(oidc) => state.with_oidc(oidc),
        None => state,
    };
    makker_http::launch(listener, state, shutdown_signal()).await?;
    let _ = stop.send(true);
    for thread in deadlines {
        let _ = thread.await;
    }
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    let _ = maintenance.shutdown().await;
    tracing::info!("makker stopped");
    Ok(())
}

/// Raises the soft limit of open files to the hard one (systemd's default soft limit is
/// 1,024): a burst of alarms opens a connection per send in flight, and the web front must
/// still accept its phones meanwhile.
pub fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    if current == maximum {
        return;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: maximum,
            maximum,
        },
    ) {
        Ok(()) => tracing::info!(from = ?current, to = ?maximum, "raised the open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// This process's soft limit of open files (`None`: unlimited).
fn open_files() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The dispatcher's sends in flight per channel: as configured, but at most a quarter of the
/// open files each (SMS and push together half), the rest left to the web front and the
/// database pools.
fn send_slots(configured: u32, open_files: Option<u64>) -> usize {
    let most = open_files.map_or(u64::MAX, |n| (n / 4).max(1));
    let slots = u64::from(configured).min(most);
    if slots < u64::from(configured) {
        tracing::warn!(
            configured,
            slots,
            ?open_files,
            "fewer sends in flight than configured: too few open files"
        );
    }
    usize::try_from(slots).unwrap_or(usize::MAX)
}

/// How much lower the web's worker threads run than the rest of the process, in nice steps:
/// at +5 a thread gets about a third of the CPU of one at the process's own level when both
/// want it.
const WEB_NICENESS: i32 = 5;

/// Runs on each of the web's worker threads as it starts (`on_thread_start`): under a flood of
/// requests the deadline and send threads, at the process's own priority, get the CPU first. A
/// thread may lower its own priority without privileges. Those threads must not be started
/// from such a thread (they would inherit the lower priority): `serve` starts them from the
/// thread that runs the runtime's `block_on`.
pub fn web_yields() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let me = Some(rustix::thread::gettid());
        let lowered =
            getpriority_process(me).and_then(|now| setpriority_process(me, (now + WEB_NICENESS).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(error = %e, "a web worker thread could not lower its priority");
        }
    }
}

/// The deadline loop with its wake-ups, and the dispatcher, each on a thread and runtime of
/// its own: a thousand busy HTTP connections then queue on the web's worker threads, not in
/// front of a deadline, and a burst's thousands of sends (connections opened, requests written,
/// answers read) take no CPU from the firing of the deadlines behind them. Returns once both
/// run (or could not start); the receivers answer when each has stopped after `stopped`.
async fn deadline_threads(
    engine: Engine,
    config: Config,
    sms: Vec<Arc<dyn SmsProvider>>,
    push: Option<WebPush>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<[tokio::sync::oneshot::Receiver<()>; 2]> {
    let (engine2, config2, stopped2) = (engine.clone(), config.clone(), stopped.clone());
    let (relay, sending) = own_thread("makker-sends", move |started| async move {
        match dispatcher(&engine2, &config2, sms, push).await {
            Ok(mut dispatcher) => {
                let _ = started.send(Ok(dispatcher.relay()));
                dispatcher.run(stopped2).await;
            }
            Err(e) => {
                let _ = started.send(Err(e));
            }
        }
    })
    .await?;
    let ((), firing) = own_thread("makker-deadlines", move |started| async move {
        match background_engine(&engine, &config, config.background_connections).await {
            Ok(engine) => {
                let _ = started.send(Ok(()));
                run_deadlines(engine, &config, relay, stopped).await;
            }
            Err(e) => {
                let _ = started.send(Err(e));
            }
        }
    })
    .await?;
    Ok([firing, sending])
}

/// Runs `body` on a new thread `name` with a single-threaded runtime. One thread: measured, two
/// threads for the deadline loop let a deadline wait behind the web's threads again (p99 under
/// 2,000 check-ins/s 61-90 ms with one, 151 ms with two). Returns what `body` reports through
/// its sender once started, and a receiver that answers when `body` has ended.
async fn own_thread<S, F, Fut>(name: &str, body: F) -> anyhow::Result<(S, tokio::sync::oneshot::Receiver<()>)>
where
    S: Send + 'static,
    F: FnOnce(tokio::sync::oneshot::Sender<anyhow::Result<S>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (started, starting) = tokio::sync::oneshot::channel();
    let (done, finished) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new().name(name.into()).spawn(move || {
        runtime.block_on(body(started));
        let _ = done.send(());
    })?;
    let value = starting
        .await
        .with_context(|| format!("the thread {name} ended before it started"))??;
    Ok((value, finished))
}

/// The dispatcher, on connections of its own (half as many as the deadline loop's): recording
/// a burst's sends must not queue the firing commits behind them, nor the other way round.
async fn dispatcher(
    engine: &Engine,
    config: &Config,
    sms: Vec<Arc<dyn SmsProvider>>,
    push: Option<WebPush>,
) -> anyhow::Result<Dispatcher> {
    let engine = background_engine(engine, config, config.background_connections.div_ceil(2)).await?;
    let mut dispatcher = Dispatcher::new(engine, sms);
    dispatcher.lease = chrono::Duration::seconds(config.outbox_lease_seconds.into());
    dispatcher.limit_sends(send_slots(config.sends_in_flight, open_files()));
    if let Some(push) = push {
        dispatcher = dispatcher.with_push(push);
    }
    Ok(dispatcher)
}

/// The deadline loop and its wake-ups (on connections of their own: check-ins waiting for the
/// HTTP pool must not queue a deadline behind them), handing what it queues over to `relay`.
async fn run_deadlines(
    engine: Engine,
    config: &Config,
    relay: Relay,
    stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut scheduler = Scheduler::new(engine.clone());
    scheduler.lease = chrono::Duration::seconds(config.deadline_lease_seconds.into());
    scheduler.relay = Some(relay);
    let (wake, store) = (engine.wake.clone(), engine.store.clone());
    let watcher =
        tokio::spawn(async move { store.watch_deadlines(Box::new(move || wake.notify_one())).await });
    scheduler.run(stopped).await;
    watcher.abort();
}

/// An engine for the deadline loop or the dispatcher: on PostgreSQL a pool of its own of
/// `connections`; on SQLite (one writer anyway) the same store.
///
/// # Errors
/// PostgreSQL is unreachable.
pub async fn background_engine(engine: &Engine, config: &Config, connections: u32) -> anyhow::Result<Engine> {
    if config.database_url.starts_with("sqlite:") {
        return Ok(engine.clone());
    }
    let store = PgStore::connect_with(&config.database_url, connections)
        .await
        .context("cannot connect to PostgreSQL")?;
    Ok(Engine {
        store: Arc::new(store),
        ..engine.clone()
    })
}

/// SQLite serves one process: a second `makker serve` on the same file would run a second
/// deadline loop. The lock is held until the process exits.
///
/// # Errors
/// Another process holds the lock.
pub fn lock_sqlite(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(None);
    };
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.contains(":memory:") {
        return Ok(None);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(format!("{path}.lock"))
        .with_context(|| format!("cannot create {path}.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(_) => anyhow::bail!(
            "another makker process is serving {path}: SQLite mode runs one process (use PostgreSQL for several)"
        ),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sends_in_flight_leave_half_the_open_files_to_the_rest() {
        assert_eq!(
            super::send_slots(4096, Some(65_536)),
            4096,
            "our systemd unit's limit"
        );
        assert_eq!(super::send_slots(4096, None), 4096, "unlimited");
        assert_eq!(
            super::send_slots(4096, Some(1024)),
            256,
            "systemd's default soft limit"
        );
        assert_eq!(super::send_slots(4096, Some(3)), 1, "never none");
    }

    #[test]
    fn a_second_process_on_the_same_sqlite_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("makker-lock-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("m.db").display());
        let first = super::lock_sqlite(&url).unwrap();
        assert!(first.is_some());
        let second = super::lock_sqlite(&url).unwrap_err().to_string();
        assert!(second.contains("another makker process"), "{second}");
        drop(first);
        assert!(
            super::lock_sqlite(&url).unwrap().is_some(),
            "free again once the first is gone"
        );
        assert!(super::lock_sqlite("postgres://x/y").unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
