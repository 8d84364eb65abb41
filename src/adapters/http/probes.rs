//! `/health` (liveness: the process answers) and `/ready` (readiness: database and counter
//! backend state).

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use crate::app::context::AppContext;
use crate::ports::counters::CounterMode;

/// Liveness: 200 while the process serves HTTP.
#[handler]
pub fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 when the database answers (Redis being down only degrades), else 503.
#[handler]
pub async fn ready(ctx: Data<&Arc<AppContext>>) -> Response {
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), ctx.config_store.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    let redis = match ctx.counters.mode() {
        CounterMode::Local => "not_configured",
        CounterMode::Shared => "ok",
        CounterMode::Degraded => "degraded",
    };
    let database = if db_ok { "ok" } else { "down" };
    let status = match (db_ok, ctx.counters.mode()) {
        (false, _) => "down",
        (true, CounterMode::Degraded) => "degraded",
        (true, _) => "ok",
    };
    let body = json!({
        "status": status,
        "database": database,
        "database_backend": ctx.database_backend,
        "redis": redis,
        "counters": ctx.counters.mode().as_str(),
        "limits": ctx.limits.as_ref().map_or("disabled", |l| l.store().mode().as_str()),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(body).with_status(code).into_response()
}

/// Prometheus metrics (no secrets: counts and states only).
#[handler]
pub fn metrics(ctx: Data<&Arc<AppContext>>) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(crate::app::metrics::render(ctx.0))
}
