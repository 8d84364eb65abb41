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

/// Readiness: 503 from the first shutdown signal on; otherwise 200 when the database answers (Redis being down, or database writes failing while
/// request logs are spooled, only degrade it), else 503.
#[handler]
pub async fn ready(ctx: Data<&Arc<AppContext>>) -> Response {
    if ctx.shutdown.is_draining() {
        let body = json!({"status": "draining", "version": env!("CARGO_PKG_VERSION")});
        return Json(body)
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response();
    }
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), ctx.config_store.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    let redis = match ctx.counters.mode() {
        CounterMode::Local => "not_configured",
        CounterMode::Shared => "ok",
        CounterMode::Degraded => "degraded",
    };
    // The database may answer reads while its writes fail (a full disk): request-log rows then
    // go to the spool, and the database is reported degraded until they are replayed.
    let writes_failing = ctx.log_writer.database_down() || ctx.log_writer.has_spooled_rows().await;
    let database = match (db_ok, writes_failing) {
        (false, _) => "down",
        (true, true) => "degraded",
        (true, false) => "ok",
    };
    let status = match (db_ok, writes_failing, ctx.counters.mode()) {
        (false, _, _) => "down",
        (true, true, _) | (true, _, CounterMode::Degraded) => "degraded",
        (true, false, _) => "ok",
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
