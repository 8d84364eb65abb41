//! Everything request handlers need, built once by the wiring module and shared.

use std::sync::Arc;

use crate::ports::clock::Clock;
use crate::ports::counters::CounterStore;
use crate::ports::store::{ConfigStore, RequestLogStore};

use super::admin::AdminService;
use super::config::Settings;
use super::snapshot::SnapshotHolder;

/// Shared application state.
pub struct AppContext {
    /// Startup settings.
    pub settings: Settings,
    /// The admin token (plaintext, only ever compared through its digest).
    pub admin_token: String,
    /// Admin use cases.
    pub admin: AdminService,
    /// Statistics over the usage ledger.
    pub stats: Arc<super::stats::StatsService>,
    /// The configuration snapshot used on the hot path.
    pub snapshot: Arc<SnapshotHolder>,
    /// Configuration storage (admin writes, readiness).
    pub config_store: Arc<dyn ConfigStore>,
    /// Request log storage.
    pub log_store: Arc<dyn RequestLogStore>,
    /// Shared counters (fail-open).
    pub counters: Arc<dyn CounterStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The proxy pipeline.
    pub proxy: super::proxy::ProxyService,
    /// The request log writer.
    pub log_writer: Arc<super::log_writer::LogWriter>,
    /// Circuit breakers (also the proxy's breaker policy).
    pub breakers: Arc<super::breakers::BreakerService>,
    /// The upstream client (provider tests).
    pub upstream: Arc<dyn crate::ports::upstream::UpstreamClient>,
    /// Quotas and rate limits (`None` when `ENABLE_RATE_LIMIT=false`).
    pub limits: Option<Arc<super::limits::LimitService>>,
    /// `sqlite` or `postgres`, for readiness output.
    pub database_backend: &'static str,
    /// Client connection counters (kept by the HTTP server, shown in `/metrics`).
    pub connections: Arc<super::metrics::ConnectionMetrics>,
    /// The bound on request-body bytes buffered at once across all connections.
    pub body_budget: Arc<super::body_budget::BodyBudget>,
    /// Shutdown progress (`/ready` turns 503 when draining; waiting requests end at the cut).
    pub shutdown: Arc<super::shutdown::ShutdownState>,
    /// Run-time system settings (time zone override, retention, site title).
    pub system_settings: Arc<super::system_settings::SystemSettings>,
    /// Log retention (the daily job and `POST /api/v1/logs/cleanup`).
    pub retention: Arc<super::retention::RetentionService>,
    /// Counts of requests refused by limits, from the request log.
    pub refusal_stats: Arc<dyn crate::ports::refusal_stats::RefusalStatsStore>,
    /// Daily jobs; tests drive `tick` with a manual clock.
    pub scheduler: Arc<super::scheduler::Scheduler>,
    /// Notification targets, outbox and delivery log.
    pub notifications: Arc<super::notify::NotificationService>,
    /// Sensitive-word rules (admin CRUD; the proxy reads them compiled from the snapshot).
    pub sensitive_words: Arc<dyn crate::ports::sensitive_words::SensitiveWordStore>,
    /// The admin audit log.
    pub audit: Arc<dyn crate::ports::audit::AuditStore>,
    /// The cost alert check (`None` when rate limiting or cost alerts are off).
    pub cost_alerts: Option<Arc<super::notify::cost_alerts::CostAlerts>>,
}
