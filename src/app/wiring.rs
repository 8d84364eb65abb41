//! The one place that names concrete adapters: builds storage, counters and the HTTP server
//! from `Settings`, runs it, and shuts it down cleanly.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use crate::adapters::http;
use crate::adapters::log_notifier::LogNotifier;
use crate::adapters::memory::{MemoryCounters, MemoryLimits};
use crate::adapters::postgres::PostgresStore;
use crate::adapters::redis::{RedisCounters, RedisLimits};
use crate::adapters::spool_file::FileSpool;
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::upstream::ReqwestUpstream;
use crate::ports::clock::Clock;
use crate::ports::counters::CounterStore;
use crate::ports::limits::LimitStore;
use crate::ports::notifications::NotificationStore;
use crate::ports::notifier::Notifier;
use crate::ports::store::{ConfigStore, RequestLogStore};
use crate::ports::upstream::UpstreamClient;

use super::admin::AdminService;
use super::admin_token::{self, TokenSource};
use super::body_budget::BodyBudget;
use super::breakers::BreakerService;
use super::config::{Database, LogFormat, Settings, redact_url};
use super::context::AppContext;
use super::fail_open::{FailOpenConfig, FailOpenCounters};
use super::limits::LimitService;
use super::log_writer::LogWriter;
use super::metrics::ConnectionMetrics;
use super::probe::Prober;
use super::proxy::stream::ShutdownCut;
use super::proxy::{ProxyConfig, ProxyPolicies, ProxyService};
use super::snapshot::SnapshotHolder;

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// Installs the tracing subscriber (text or JSON), filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Installs the process-wide TLS crypto provider (reqwest and sqlx use rustls with ring).
pub fn init_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Configuration and log storage opened from `DSN`.
pub struct Stores {
    /// Configuration store.
    pub config: Arc<dyn ConfigStore>,
    /// Request log store.
    pub logs: Arc<dyn RequestLogStore>,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Notification targets, outbox and delivery log.
    pub notifications: Arc<dyn NotificationStore>,
}

/// Opens the database named by the settings, applying migrations when asked.
pub async fn open_stores(settings: &Settings, migrate: bool) -> anyhow::Result<Stores> {
    match &settings.database {
        Database::Sqlite(url) => {
            let store = SqliteStore::connect(url)
                .await
                .with_context(|| format!("cannot open SQLite database {url}"))?;
            if migrate {
                store.migrate().await.context("SQLite migrations failed")?;
            }
            let store = Arc::new(store);
            Ok(Stores {
                config: store.clone(),
                notifications: store.clone(),
                logs: store,
                backend: "sqlite",
            })
        }
        Database::Postgres(url) => {
            let store = PostgresStore::connect(url)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(url)))?;
            if migrate {
                store
                    .migrate()
                    .await
                    .context("PostgreSQL migrations failed")?;
            }
            let store = Arc::new(store);
            Ok(Stores {
                config: store.clone(),
                notifications: store.clone(),
                logs: store,
                backend: "postgres",
            })
        }
    }
}

/// Counters: memory alone, or Redis behind the fail-open wrapper.
pub async fn open_counters(settings: &Settings, key_prefix: &str) -> Arc<dyn CounterStore> {
    let memory: Arc<dyn CounterStore> = Arc::new(MemoryCounters::new());
    let Some(url) = &settings.redis_url else {
        tracing::info!(
            "REDIS_URL is not set: counters, sessions and breaker state are kept in this process"
        );
        return memory;
    };
    let redis: Arc<dyn CounterStore> = match RedisCounters::connect(url, key_prefix).await {
        Ok(r) => Arc::new(r),
        Err(e) => {
            tracing::error!(error = %e, url = %redact_url(url), "invalid Redis configuration; counting in memory");
            return memory;
        }
    };
    let config = FailOpenConfig {
        probe_interval: std::time::Duration::from_secs(1),
        ..FailOpenConfig::default()
    };
    Arc::new(FailOpenCounters::start(redis, memory, config).await)
}

/// The limits store: memory alone, or Redis behind the fail-open wrapper.
pub async fn open_limit_store(settings: &Settings, key_prefix: &str) -> Arc<dyn LimitStore> {
    let memory: Arc<dyn LimitStore> = Arc::new(MemoryLimits::new());
    let Some(url) = &settings.redis_url else {
        return memory;
    };
    let redis: Arc<dyn LimitStore> = match RedisLimits::connect(url, key_prefix).await {
        Ok(r) => Arc::new(r),
        Err(e) => {
            tracing::error!(error = %e, url = %redact_url(url), "invalid Redis configuration; limits counted in memory");
            return memory;
        }
    };
    let config = FailOpenConfig {
        probe_interval: std::time::Duration::from_secs(1),
        ..FailOpenConfig::default()
    };
    Arc::new(super::limits::fail_open::FailOpenLimits::start(redis, memory, config).await)
}

/// `cch migrate`: applies migrations and exits.
pub async fn migrate(settings: Settings) -> anyhow::Result<()> {
    init_crypto();
    let stores = open_stores(&settings, true).await?;
    println!("migrations applied ({})", stores.backend);
    Ok(())
}

/// A running server, as started by `start`; tests use it to find the port and stop it.
pub struct RunningApp {
    /// The bound address (useful when the port was 0).
    pub addr: SocketAddr,
    /// The shared context (tests inspect it).
    pub ctx: Arc<AppContext>,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApp {
    /// Stops accepting, lets in-flight requests finish (bounded) and stops background jobs.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.server
            .await
            .context("server task panicked")?
            .context("server failed")?;
        self.ctx.log_writer.shutdown().await;
        Ok(())
    }

    /// Waits until the server ends on its own (it only does on error or shutdown).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.server)
            .await
            .context("server task panicked")?
            .context("server failed")
    }
}

/// Builds everything from `settings`, binds the listener and starts serving in the background.
pub async fn start(settings: Settings) -> anyhow::Result<RunningApp> {
    start_with_clock(settings, Arc::new(SystemClock)).await
}

/// [`start`] with a given clock (tests drive breaker and window time with a manual clock).
pub async fn start_with_clock(
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<RunningApp> {
    init_crypto();
    super::private_fs::create_private_dir(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            settings.data_dir.display()
        )
    })?;
    let (admin_token, source) =
        admin_token::resolve(settings.admin_token.as_deref(), &settings.data_dir).with_context(
            || {
                format!(
                    "cannot read or create the admin token in {}",
                    settings.data_dir.display()
                )
            },
        )?;
    match &source {
        TokenSource::Environment => tracing::info!("admin token taken from ADMIN_TOKEN"),
        TokenSource::Generated(path) => {
            println!(
                "\n  ADMIN_TOKEN was not set, so one was generated:\n\n    {admin_token}\n\n  It is saved in {} (mode 0600) and reused on later starts.\n",
                path.display()
            );
        }
        TokenSource::Loaded(path) => {
            tracing::info!(path = %path.display(), "admin token loaded from the data folder")
        }
    }

    let stores = open_stores(&settings, settings.auto_migrate).await?;
    let counters = open_counters(&settings, &settings.redis_key_prefix).await;
    let snapshot = SnapshotHolder::load(stores.config.clone(), clock.now())
        .await
        .context("cannot load configuration from the database")?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    snapshot.spawn_refresher(
        settings.config_refresh_interval,
        clock.clone(),
        shutdown_rx.clone(),
    );

    let spool = FileSpool::new(settings.data_dir.join("spool")).with_context(|| {
        format!(
            "cannot create the log spool in {}",
            settings.data_dir.display()
        )
    })?;
    let log_writer = LogWriter::start(
        stores.logs.clone(),
        Arc::new(spool),
        std::time::Duration::from_secs(2),
    );
    let upstream: Arc<dyn UpstreamClient> = Arc::new(ReqwestUpstream::new());
    let notifications = super::notify::NotificationService::new(
        stores.notifications.clone(),
        upstream.clone(),
        clock.clone(),
        settings.notify.clone(),
        settings.timezone,
    );
    notifications.spawn(shutdown_rx.clone()).await;
    let notifier: Arc<dyn Notifier> = Arc::new(super::notify::notifier::DeliveringNotifier::new(
        Arc::new(LogNotifier),
        notifications.clone(),
        snapshot.clone(),
    ));
    let breakers = Arc::new(BreakerService::new(
        counters.clone(),
        notifier,
        settings.breaker_on_network_errors,
    ));
    let limits = if settings.enable_rate_limit {
        let store = open_limit_store(&settings, &settings.redis_key_prefix).await;
        let service = Arc::new(LimitService::new(
            store,
            snapshot.clone(),
            stores.config.clone(),
            stores.logs.clone(),
            settings.timezone,
            settings.session_ttl,
        ));
        service.spawn_warm_up(
            std::time::Duration::from_secs(30),
            clock.clone(),
            shutdown_rx.clone(),
        );
        Some(service)
    } else {
        tracing::info!("ENABLE_RATE_LIMIT=false: no quotas or rate limits");
        None
    };
    let mut policies = ProxyPolicies {
        breakers: breakers.clone(),
        ..ProxyPolicies::default()
    };
    if let Some(l) = &limits {
        policies.limiter = l.clone();
    }
    let proxy = ProxyService::new(
        snapshot.clone(),
        counters.clone(),
        upstream.clone(),
        log_writer.clone(),
        clock.clone(),
        ProxyConfig {
            session_ttl: settings.session_ttl,
            max_retry_default: settings.max_retry_attempts_default,
            max_attempts: settings.max_attempts_per_request,
        },
        policies,
    );
    let (stream_cut, cut) = ShutdownCut::channel();
    let proxy = proxy.with_shutdown_cut(cut);
    if settings.enable_smart_probing {
        Prober::new(
            snapshot.clone(),
            breakers.clone(),
            upstream.clone(),
            clock.clone(),
            settings.probe_interval,
            settings.probe_timeout,
        )
        .spawn(shutdown_rx.clone());
    }
    let cost_alerts = limits.as_ref().map(|l| {
        super::notify::cost_alerts::CostAlerts::new(
            l.clone(),
            counters.clone(),
            snapshot.clone(),
            notifications.clone(),
            clock.clone(),
        )
    });
    if let Some(c) = &cost_alerts
        && !settings.notify.cost_check_interval.is_zero()
    {
        c.spawn(settings.notify.cost_check_interval, shutdown_rx.clone());
    }
    let ctx = Arc::new(AppContext {
        notifications,
        cost_alerts,
        proxy,
        log_writer,
        admin: AdminService::new(
            stores.config.clone(),
            stores.logs.clone(),
            snapshot.clone(),
            clock.clone(),
        ),
        snapshot,
        config_store: stores.config,
        log_store: stores.logs,
        counters,
        clock,
        breakers,
        upstream,
        limits,
        database_backend: stores.backend,
        admin_token,
        connections: Arc::new(ConnectionMetrics::default()),
        body_budget: Arc::new(BodyBudget::new(settings.client.max_buffered_body_bytes)),
        settings: settings.clone(),
    });

    let bind = format!("{}:{}", settings.app_host, settings.app_port);
    let open_files = http::listener::raise_open_file_limit();
    let cap = http::listener::connection_cap(settings.client.max_connections, open_files);
    let tcp = tokio::net::TcpListener::bind(bind.as_str())
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let listener = http::listener::ClientListener::new(tcp, cap, ctx.connections.clone());
    let addr = listener
        .local_addr()
        .context("listener has no socket address")?;
    let routes = http::build_routes(ctx.clone());
    let mut rx = shutdown_rx;
    let options = http::server::ServeOptions {
        limits: settings.client.clone(),
        metrics: ctx.connections.clone(),
        stream_cut,
    };
    let server = tokio::spawn(http::server::run(
        listener,
        routes,
        async move {
            let _ = rx.changed().await;
        },
        options,
    ));
    tracing::info!(%addr, backend = ctx.database_backend, counters = ctx.counters.mode().as_str(), max_connections = cap, "cch listening");
    println!("cch listening on http://{addr}");
    Ok(RunningApp {
        addr,
        ctx,
        shutdown: shutdown_tx,
        server,
    })
}

/// `cch serve`: runs until SIGINT/SIGTERM, then shuts down gracefully.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut app = start(settings).await?;
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            app.shutdown().await
        }
        r = app.wait() => r,
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
