//! The admin API (`/api/v1`), described by OpenAPI: spec at `/openapi.json`, Swagger UI at
//! `/docs` (assets embedded in the binary, no CDN).

pub mod audit_logs;
pub mod auth;
pub mod cleanup;
pub mod error;
pub mod error_rules;
pub mod export;
pub mod fields;
pub mod health;
pub mod json_body;
pub mod keys;
pub mod logs;
pub mod notifications;
pub mod prices;
pub mod providers;
pub mod rate_limits;
pub mod sensitive_words;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod usage;
pub mod users;

use std::sync::Arc;

use poem_openapi::{OpenApiService, Tags};

use crate::app::context::AppContext;

/// Groups of admin endpoints in the spec.
#[derive(Tags)]
pub enum ApiTags {
    /// Upstream providers.
    Providers,
    /// Users.
    Users,
    /// API keys of users.
    Keys,
    /// Request logs.
    Logs,
    /// Model prices.
    Prices,
    /// Circuit breakers, provider tests and routing diagnostics.
    Health,
    /// Error classification rules.
    ErrorRules,
    /// Limit windows: usage, total reset, rebuild from the log.
    Usage,
    /// System settings: time zone, log retention, site title.
    Settings,
    /// Statistics from the usage ledger: overview, time series, leaderboard.
    Stats,
    /// Notification targets (webhooks) and the delivery log.
    Notifications,
    /// Sensitive-word filter and the admin audit log.
    Security,
}

/// The admin API as an OpenAPI service mounted at `/api/v1`.
pub type AdminService = OpenApiService<
    (
        providers::ProvidersApi,
        users::UsersApi,
        keys::KeysApi,
        logs::LogsApi,
        prices::PricesApi,
        health::HealthApi,
        error_rules::ErrorRulesApi,
        usage::UsageApi,
        RetentionApis,
        stats::StatsApi,
        notifications::NotificationsApi,
        SecurityApis,
    ),
    (),
>;

/// Builds the admin OpenAPI service.
pub fn service(ctx: &Arc<AppContext>) -> AdminService {
    OpenApiService::new(
        (
            providers::ProvidersApi { ctx: Arc::clone(ctx) },
            users::UsersApi { ctx: Arc::clone(ctx) },
            keys::KeysApi { ctx: Arc::clone(ctx) },
            logs::LogsApi { ctx: Arc::clone(ctx) },
            prices::PricesApi { ctx: Arc::clone(ctx) },
            health::HealthApi { ctx: Arc::clone(ctx) },
            error_rules::ErrorRulesApi { ctx: Arc::clone(ctx) },
            usage::UsageApi { ctx: Arc::clone(ctx) },
            retention_apis(ctx),
            stats::StatsApi { ctx: Arc::clone(ctx) },
            notifications::NotificationsApi { ctx: Arc::clone(ctx) },
            security_apis(ctx),
        ),
        "cch admin API",
        env!("CARGO_PKG_VERSION"),
    )
    .server("/api/v1")
    .description("Manage providers, users, API keys and model prices; read request logs. Authenticate with `Authorization: Bearer <ADMIN_TOKEN>`.")
}

/// Settings, log cleanup and export, sessions and rate-limit statistics (issue 10 part B),
/// grouped so the top-level tuple stays short.
pub type RetentionApis = (
    cleanup::CleanupApi,
    settings::SettingsApi,
    export::ExportApi,
    rate_limits::RateLimitStatsApi,
    sessions::SessionsApi,
);

fn retention_apis(ctx: &Arc<AppContext>) -> RetentionApis {
    (
        cleanup::CleanupApi {
            ctx: Arc::clone(ctx),
        },
        settings::SettingsApi {
            ctx: Arc::clone(ctx),
        },
        export::ExportApi {
            ctx: Arc::clone(ctx),
        },
        rate_limits::RateLimitStatsApi {
            ctx: Arc::clone(ctx),
        },
        sessions::SessionsApi {
            ctx: Arc::clone(ctx),
        },
    )
}

/// The sensitive-word filter and the audit log (issue 14).
pub type SecurityApis = (sensitive_words::SensitiveWordsApi, audit_logs::AuditLogsApi);

fn security_apis(ctx: &Arc<AppContext>) -> SecurityApis {
    (
        sensitive_words::SensitiveWordsApi {
            ctx: Arc::clone(ctx),
        },
        audit_logs::AuditLogsApi {
            ctx: Arc::clone(ctx),
        },
    )
}
