//! `GET /v1/usage`: a key holder reads the limits and current usage of their key and user,
//! authenticated with the key itself (any of the proxy's key headers).

use std::sync::Arc;

use poem::web::{Data, Json};
use poem::{IntoResponse, Request, Response, handler, http::StatusCode};
use serde_json::json;

use super::admin::usage::{UsageView, usage_view};
use super::proxy::extract_key;
use crate::app::context::AppContext;
use crate::app::limits::Scope;
use crate::domain::api_key::hash_key;

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    Json(json!({"type": "error", "error": {"type": kind, "message": message}}))
        .with_status(status)
        .into_response()
}

fn view_json(v: &UsageView) -> serde_json::Value {
    use poem_openapi::types::ToJSON;
    v.to_json().unwrap_or(serde_json::Value::Null)
}

/// `GET /v1/usage`: `{"key": {...}, "user": {...}}`, each with every window (limit, used,
/// remaining, resets_at), in the admin API's usage shape.
#[handler]
pub async fn key_usage(ctx: Data<&Arc<AppContext>>, req: &Request) -> Response {
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
    let Some(limits) = ctx.limits.as_ref() else {
        return Json(json!({"rate_limiting": false})).into_response();
    };
    let key_view = usage_view(&ctx, limits, Scope::Key, key.id).await;
    let user_view = usage_view(&ctx, limits, Scope::User, key.user_id).await;
    match (key_view, user_view) {
        (Ok(k), Ok(u)) => Json(json!({
            "rate_limiting": true,
            "key": view_json(&k),
            "user": view_json(&u),
        }))
        .into_response(),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "usage is unavailable right now",
        ),
    }
}
