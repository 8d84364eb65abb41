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
use crate::adapters::secret_setup;
use crate::adapters::spool_file::FileSpool;
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::upstream::ReqwestUpstream;
use crate::ports::audit::AuditStore;
use crate::ports::clock::Clock;
use crate::ports::counters::CounterStore;
use crate::ports::jobs::JobLeaseStore;
use crate::ports::limits::LimitStore;
use crate::ports::notifications::NotificationStore;
use crate::ports::notifier::Notifier;
use crate::ports::refusal_stats::RefusalStatsStore;
use crate::ports::retention::LogRetentionStore;
use crate::ports::sensitive_words::SensitiveWordStore;
use crate::ports::stats::StatsStore;
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
use super::provider_tokens::ProviderTokens;
use super::proxy::stream::ShutdownCut;
use super::proxy::{ProxyConfig, ProxyPolicies, ProxyService};
use super::retention::{RetentionJob, RetentionService};
use super::scheduler::Scheduler;
use super::shutdown::ShutdownState;
use super::snapshot::SnapshotHolder;
use super::stats::StatsService;
use super::system_settings::SystemSettings;

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// A name unique to this process, under which it claims scheduled runs and locks.
fn instance_id() -> String {
    format!("{}-{:08x}", std::process::id(), rand::random::<u32>())
}

/// Installs the tracing subscriber: text or JSON logs filtered by `RUST_LOG` (default `info`)
/// and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the OpenTelemetry trace export (whose spans,
/// target [`crate::app::tracing_spans::TARGET`], the logs never show). The returned exporter is
/// to be shut down when cch exits, to send the spans still queued.
pub fn init_logging(
    format: LogFormat,
    runtime: tokio::runtime::Handle,
) -> Option<crate::adapters::otel::TraceExport> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    type Boxed = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

    let trace_off = format!("{}=off", crate::app::tracing_spans::TARGET);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        .add_directive(trace_off.parse().unwrap_or_default());
    let logs: Boxed = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let mut layers = vec![logs];
    let mut export = None;
    if crate::adapters::otel::requested() {
        init_crypto();
        match crate::adapters::otel::TraceExport::start(runtime) {
            Ok((e, layer)) => {
                let only_ours = tracing_subscriber::filter::Targets::new()
                    .with_target(crate::app::tracing_spans::TARGET, tracing::Level::INFO);
                layers.push(layer.with_filter(only_ours).boxed());
                export = Some(e);
            }
            Err(e) => eprintln!("cch: traces are not exported: {e}"),
        }
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
    if export.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    export
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
    /// Usage ledger reads (roll-ups).
    pub stats: Arc<dyn StatsStore>,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Scheduled-job leases and cluster-wide locks.
    pub leases: Arc<dyn JobLeaseStore>,
    /// Expired request-log deletion.
    pub retention: Arc<dyn LogRetentionStore>,
    /// Rate-limit refusal counts.
    pub refusal_stats: Arc<dyn RefusalStatsStore>,
    /// Notification targets, outbox and delivery log.
    pub notifications: Arc<dyn NotificationStore>,
    /// Sensitive-word rules.
    pub sensitive_words: Arc<dyn SensitiveWordStore>,
    /// The admin audit log.
    pub audit: Arc<dyn AuditStore>,
}

/// Opens the database named by the settings, applying migrations when asked, with secrets
/// sealed at rest (`adapters::secret_setup`): startup stops when the stored secrets were sealed
/// with another key, and secrets still stored in plaintext are sealed now.
pub async fn open_stores(settings: &Settings, migrate: bool) -> anyhow::Result<Stores> {
    let mut stores = open_raw_stores(settings, migrate).await?;
    let (config, notifications) = secret_setup::seal_stores(
        stores.config,
        stores.notifications,
        &secret_setup::KeySettings::of(settings),
    )
    .await?;
    stores.config = config;
    stores.notifications = notifications;
    Ok(stores)
}

/// `cch rotate-secret-key`: seals every stored secret with a new key (see
/// `adapters::secret_setup::rotate`).
pub async fn rotate_secret_key(settings: Settings) -> anyhow::Result<()> {
    init_crypto();
    let stores = open_raw_stores(&settings, settings.auto_migrate).await?;
    let report = secret_setup::rotate(
        stores.config.as_ref(),
        stores.notifications.as_ref(),
        &secret_setup::KeySettings::of(&settings),
    )
    .await?;
    println!("{report}");
    Ok(())
}

/// Opens the database named by the settings as stored (secrets as they are in the rows).
async fn open_raw_stores(settings: &Settings, migrate: bool) -> anyhow::Result<Stores> {
    match &settings.database {
        Database::Sqlite(url) => {
            let store = SqliteStore::connect(url)
                .await
                .with_context(|| format!("cannot open SQLite database {url}"))?;
            if migrate {
                store.migrate().await.context("SQLite migrations failed")?;
            }
            Ok(stores_of(Arc::new(store), "sqlite"))
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
            Ok(stores_of(Arc::new(store), "postgres"))
        }
    }
}

/// Every storage port served by one database adapter.
fn stores_of<S>(store: Arc<S>, backend: &'static str) -> Stores
where
    S: ConfigStore
        + NotificationStore
        + SensitiveWordStore
        + AuditStore
        + RequestLogStore
        + JobLeaseStore
        + LogRetentionStore
        + RefusalStatsStore
        + StatsStore
        + 'static,
{
    Stores {
        config: store.clone(),
        notifications: store.clone(),
        sensitive_words: store.clone(),
        audit: store.clone(),
        logs: store.clone(),
        leases: store.clone(),
        retention: store.clone(),
        refusal_stats: store.clone(),
        stats: store,
        backend,
    }
}

/// The Redis connection counters and limits share (their writes after an answer go out in
/// one batch), when `REDIS_URL` is set and valid.
pub async fn open_redis(settings: &Settings, key_prefix: &str) -> Option<Arc<RedisCounters>> {
    let url = settings.redis_url.as_ref()?;
    match RedisCounters::connect(url, key_prefix).await {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            tracing::error!(error = %e, url = %redact_url(url), "invalid Redis configuration; counting in memory");
            None
        }
    }
}

/// Counters: memory alone, or Redis behind the fail-open wrapper.
pub async fn open_counters(redis: Option<Arc<RedisCounters>>) -> Arc<dyn CounterStore> {
    let memory: Arc<dyn CounterStore> = Arc::new(MemoryCounters::new());
    let Some(redis) = redis else {
        tracing::info!(
            "REDIS_URL is not set: counters, sessions and breaker state are kept in this process"
        );
        return memory;
    };
    let config = FailOpenConfig {
        probe_interval: std::time::Duration::from_secs(1),
        ..FailOpenConfig::default()
    };
    Arc::new(FailOpenCounters::start(redis, memory, config).await)
}

/// The limits store: memory alone, or Redis (on the counters' connection) behind the
/// fail-open wrapper.
pub async fn open_limit_store(redis: Option<Arc<RedisCounters>>) -> Arc<dyn LimitStore> {
    let memory: Arc<dyn LimitStore> = Arc::new(MemoryLimits::new());
    let Some(redis) = redis else {
        return memory;
    };
    let redis: Arc<dyn LimitStore> = Arc::new(RedisLimits::sharing(redis));
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
    /// Turns `/ready` to 503, keeps accepting for `SHUTDOWN_READY_DELAY_MS`, then stops
    /// accepting, lets in-flight requests finish (bounded by the drain time), ends the rest with
    /// an error in the client's format, flushes the request log and stops background jobs.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.ctx.shutdown.begin_drain();
        let delay = self.ctx.settings.client.shutdown_ready_delay;
        if !delay.is_zero() {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "not ready; still accepting until load balancers notice"
            );
            tokio::time::sleep(delay).await;
        }
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
    let redis = open_redis(&settings, &settings.redis_key_prefix).await;
    let counters = open_counters(redis.clone()).await;
    let snapshot = SnapshotHolder::load_with_words(
        stores.config.clone(),
        Some(stores.sensitive_words.clone()),
        clock.now(),
    )
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
        let store = open_limit_store(redis.clone()).await;
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
    let tokens = Arc::new(ProviderTokens::new(
        upstream.clone(),
        Some(stores.config.clone()),
        clock.clone(),
    ));
    let proxy = proxy
        .with_shutdown_cut(cut)
        .with_provider_tokens(tokens.clone());
    if settings.enable_smart_probing {
        Prober::new(
            snapshot.clone(),
            breakers.clone(),
            upstream.clone(),
            tokens,
            clock.clone(),
            settings.probe_interval,
            settings.probe_timeout,
        )
        .spawn(shutdown_rx.clone());
    }
    let holder = instance_id();
    let system_settings = Arc::new(SystemSettings::new(
        snapshot.clone(),
        stores.config.clone(),
        clock.clone(),
        settings.timezone,
    ));
    let retention = Arc::new(
        RetentionService::new(
            stores.retention.clone(),
            stores.leases.clone(),
            clock.clone(),
            system_settings.clone(),
            holder.clone(),
        )
        .with_audit(stores.audit.clone()),
    );
    // A cleanup that crashed may have left autovacuum held off the log (PostgreSQL).
    if !retention.try_release_leftover_hold().await {
        let retention = retention.clone();
        let mut shutdown = shutdown_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = retention.retry_release_leftover_hold() => {}
                _ = shutdown.changed() => {}
            }
        });
    }
    let stats = Arc::new(
        StatsService::new(
            stores.stats.clone(),
            snapshot.clone(),
            clock.clone(),
            settings.timezone,
            settings.session_ttl,
        )
        .with_zone_source(system_settings.zone_source()),
    );
    let scheduler = Arc::new(
        Scheduler::new(
            stores.leases.clone(),
            clock.clone(),
            system_settings.zone_source(),
            holder,
        )
        .with_job(Arc::new(RetentionJob::new(
            retention.clone(),
            system_settings.clone(),
        )))
        .with_job(Arc::new(super::notify::leaderboard::LeaderboardJob::new(
            stats.clone(),
            notifications.clone(),
            settings.notify.leaderboard_time,
            settings.notify.leaderboard_top_n,
        ))),
    );
    scheduler
        .clone()
        .spawn(std::time::Duration::from_secs(30), shutdown_rx.clone());
    StatsService::spawn_backfill(stores.stats.clone(), shutdown_rx.clone());
    super::stats::spawn_tier_rebuild(
        stores.stats.clone(),
        system_settings.zone_source(),
        clock.clone(),
        shutdown_rx.clone(),
    );
    crate::adapters::heap_trim::spawn(shutdown_rx.clone());
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
        stats,
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
        shutdown: Arc::new(ShutdownState::new(stream_cut.subscribe())),
        settings: settings.clone(),
        system_settings,
        retention,
        refusal_stats: stores.refusal_stats,
        sensitive_words: stores.sensitive_words,
        audit: stores.audit,
        scheduler,
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

/// `cch serve`: runs until SIGINT/SIGTERM, then shuts down gracefully; a second signal during
/// the drain ends the process at once.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut app = start(settings).await?;
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
        }
        r = app.wait() => return r,
    }
    tokio::select! {
        r = app.shutdown() => r,
        _ = shutdown_signal() => {
            anyhow::bail!("second shutdown signal: stopped without waiting for open requests")
        }
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

/// `cch import cch-ts --from postgres://… [--dry-run]`: brings over an original Claude Code Hub.
pub async fn import_cch_ts(settings: Settings, from: &str, dry_run: bool) -> anyhow::Result<()> {
    init_crypto();
    let dump = crate::adapters::cch_ts::read_dump(from)
        .await
        .with_context(|| format!("cannot read {}", redact_url(from)))?;
    println!(
        "source: {} users, {} keys, {} providers, {} price rows, {} error rules, {} sensitive words, {} webhook targets",
        dump.users.len(),
        dump.keys.len(),
        dump.providers.len(),
        dump.model_prices.len(),
        dump.error_rules.len(),
        dump.sensitive_words.len(),
        dump.webhook_targets.len()
    );
    let mapping = crate::domain::legacy_import::map_legacy(&dump, chrono::Utc::now());
    super::config_commands::apply_bundle(&settings, &mapping.bundle, dry_run, &mapping.unmapped)
        .await
}
