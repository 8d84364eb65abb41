//! `GET /v1/usage/logs`: a key holder reads their own key's request log, newest first,
//! cursor-paginated, authenticated with the key itself. Rows show what the holder needs to
//! understand their usage; which provider served them and the provider chain stay private.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::{Data, Json};
use poem::{IntoResponse, Request, Response, handler, http::StatusCode};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::proxy::extract_key;
use crate::app::admin::{AdminError, LogQuery};
use crate::app::context::AppContext;
use crate::domain::api_key::hash_key;
use crate::domain::request_log::RequestLog;

/// Largest page for key holders.
const MAX_PAGE: i64 = 100;

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    Json(json!({"type": "error", "error": {"type": kind, "message": message}}))
        .with_status(status)
        .into_response()
}

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Page size, 1–100 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Created at or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Only this session.
    session_id: Option<String>,
}

/// One request as the key holder sees it.
#[derive(Debug, Serialize)]
struct OwnLog {
    id: i64,
    request_id: String,
    created_at: DateTime<Utc>,
    model: Option<String>,
    endpoint: String,
    client_format: String,
    status_code: i32,
    is_stream: bool,
    input_tokens: i64,
    output_tokens: i64,
    cache_creation_5m_tokens: i64,
    cache_creation_1h_tokens: i64,
    cache_read_tokens: i64,
    cost_usd: Decimal,
    duration_ms: i64,
    ttfb_ms: Option<i64>,
    session_id: Option<String>,
    error_message: Option<String>,
}

impl From<RequestLog> for OwnLog {
    fn from(r: RequestLog) -> Self {
        Self {
            id: r.id,
            request_id: r.request_id,
            created_at: r.created_at,
            model: r.requested_model,
            endpoint: r.endpoint,
            client_format: r.client_format,
            status_code: r.status_code,
            is_stream: r.is_stream,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_creation_5m_tokens: r.cache_creation_5m_tokens,
            cache_creation_1h_tokens: r.cache_creation_1h_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cost_usd: r.cost_usd,
            duration_ms: r.duration_ms,
            ttfb_ms: r.ttfb_ms,
            session_id: r.session_id,
            error_message: r.error_message,
        }
    }
}

/// `GET /v1/usage/logs?limit&cursor&from&to&session_id`:
/// `{"data": [...], "next_cursor": "…" | null}`.
#[handler]
pub async fn key_logs(ctx: Data<&Arc<AppContext>>, req: &Request) -> Response {
    let Some(text) = extract_key(req.headers(), req.uri().query()) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "missing API key: send it as x-api-key or Authorization: Bearer",
        );
    };
    let snap = ctx.snapshot.get();
    let Some(key) = snap.keys_by_hash.get(&hash_key(&text)).cloned() else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid API key",
        );
    };
    let params: Params = match serde_urlencoded_params(req.uri().query().unwrap_or_default()) {
        Ok(p) => p,
        Err(message) => {
            return error(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
        }
    };
    if params.limit.is_some_and(|l| !(1..=MAX_PAGE).contains(&l)) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "limit: between 1 and 100",
        );
    }
    let page = ctx
        .admin
        .list_logs(LogQuery {
            key_id: Some(key.id),
            from: params.from,
            to: params.to,
            session_id: params.session_id,
            limit: Some(params.limit.unwrap_or(50)),
            cursor: params.cursor,
            ..LogQuery::default()
        })
        .await;
    match page {
        Ok(p) => Json(json!({
            "data": p.rows.into_iter().map(OwnLog::from).collect::<Vec<_>>(),
            "next_cursor": p.next_cursor,
        }))
        .into_response(),
        Err(AdminError::Validation(v)) => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &v.to_string(),
        ),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "the request log is unavailable right now",
        ),
    }
}

/// Parses the query string into [`Params`], naming the bad parameter.
fn serde_urlencoded_params(query: &str) -> Result<Params, String> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        let value = match k.as_str() {
            "limit" => match v.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => return Err(format!("{k}: a whole number")),
            },
            _ => json!(v),
        };
        if k.eq_ignore_ascii_case("key") {
            continue;
        }
        map.insert(k, value);
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
}
