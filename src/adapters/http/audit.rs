//! The admin audit log's recorder: a middleware around every route that writes one audit entry
//! per admin write under `/api/v1` (any method but GET, HEAD and OPTIONS) that passed the admin
//! check, and per login and logout, failed logins included. It works from the outside, so every
//! admin route present and future is covered without code in its handler:
//!
//! - who: the admin token (`admin`), a console session (`admin`, or `user:<id>/key:<id>` for a
//!   key whose user has role admin), or for a login the credential it presented (never kept);
//! - before: for PATCH, PUT and DELETE, the resource as its own GET route answers it, read
//!   through the same endpoint just before the write;
//! - after: the write's JSON answer; for actions without a resource answer, the request's
//!   JSON parameters;
//! - the diff between them, secrets masked (`domain::audit::field_changes`).
//!
//! Unauthenticated writes (401/403 from the API) are not recorded: anyone could fill the table
//! with them. Failed logins are (the login throttle bounds them).

use std::net::IpAddr;
use std::sync::Arc;

use http_body::Body as _;
use http_body_util::BodyExt as _;
use poem::http::{Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};
use serde_json::Value;

use crate::app::context::AppContext;
use crate::domain::api_key::hash_key;
use crate::domain::audit::{AuditEntry, action_of, field_changes, route_template};

use super::ui::UiState;
use super::ui::layout::viewer_of;
use super::ui::session::Viewer;

/// Largest request body read for its parameters (larger ones are recorded without them).
const MAX_PARAMS_BYTES: u64 = 64 * 1024;
/// Largest answer read for the resource's new state.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// Records admin writes; see the module documentation.
pub async fn record_admin_writes<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    ctx: Arc<AppContext>,
    ui: Arc<UiState>,
) -> poem::Result<Response> {
    let method = req.method().clone();
    let Some(api_path) = req.uri().path().strip_prefix("/api/v1").map(str::to_string) else {
        return Ok(ep.get_response(req).await);
    };
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(ep.get_response(req).await);
    }
    let is_auth = api_path.starts_with("/auth/");
    let actor = actor_of(&ctx, &ui, &req);
    if actor.is_none() && !is_auth {
        return Ok(ep.get_response(req).await);
    }
    let ip = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| canonical_ip(a.ip()).to_string());
    let before = if matches!(method, Method::PATCH | Method::PUT | Method::DELETE) {
        current_state(ep.as_ref(), &req).await
    } else {
        None
    };
    let (req, params) = take_params(req).await;
    let actor = if is_auth && api_path == "/auth/login" {
        Some(login_actor(&ctx, params.as_ref()))
    } else {
        actor
    };
    let mut resp = ep.get_response(req).await;
    let status = resp.status();
    if !is_auth && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Ok(resp);
    }
    let after = if status.is_success() {
        answer_json(&mut resp).await
    } else {
        None
    };
    let route = route_template(&api_path);
    let action = action_of(method.as_str(), &route, status.as_u16());
    let changes = match (&method, is_auth) {
        (_, true) => Vec::new(),
        (&Method::DELETE, _) => field_changes(before.as_ref(), None),
        (&Method::PATCH | &Method::PUT, _) => field_changes(before.as_ref(), after.as_ref()),
        _ if action == "create" => field_changes(None, after.as_ref()),
        // Actions: what was asked (their answers are reports, not the resource).
        _ => field_changes(None, params.as_ref()),
    };
    let entry = AuditEntry {
        id: 0,
        at: ctx.clock.now(),
        actor: actor.unwrap_or_else(|| "anonymous".into()),
        ip,
        action,
        route: format!("{} {route}", method.as_str()),
        target: api_path.trim_start_matches('/').to_string(),
        status: status.as_u16(),
        changes,
    };
    if let Err(e) = ctx.audit.insert_audit(&entry).await {
        tracing::warn!(error = %e, route = %entry.route, "audit entry not written");
    }
    Ok(resp)
}

/// An IPv4 address seen through an IPv6 socket, as IPv4.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Who is making an authenticated admin call, or `None` when the call is not authenticated.
fn actor_of(ctx: &AppContext, ui: &UiState, req: &Request) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = bearer
        && super::admin::auth::AdminTokenDigest::of(&ctx.admin_token).matches(token.trim())
    {
        return Some("admin".into());
    }
    match viewer_of(ctx, ui, req)? {
        Viewer::Admin => Some("admin".into()),
        Viewer::KeyHolder { user, key } => Some(format!("user:{}/key:{}", user.id, key.id)),
    }
}

/// Who a login presented itself as (the credential is only compared, never kept).
fn login_actor(ctx: &AppContext, params: Option<&Value>) -> String {
    let Some(token) = params.and_then(|p| p.get("token")).and_then(Value::as_str) else {
        return "anonymous".into();
    };
    let token = token.trim();
    if super::admin::auth::AdminTokenDigest::of(&ctx.admin_token).matches(token) {
        return "admin".into();
    }
    let snap = ctx.snapshot.get();
    match snap.keys_by_hash.get(&hash_key(token)) {
        Some(k) => format!("user:{}/key:{}", k.user_id, k.id),
        None => "anonymous".into(),
    }
}

/// The resource's state before a write, as its GET route answers it (with the caller's own
/// credentials), when there is one.
async fn current_state<E: Endpoint>(ep: &E, req: &Request) -> Option<Value> {
    let mut get = Request::builder()
        .method(Method::GET)
        .uri(req.uri().clone());
    for name in [header::AUTHORIZATION, header::COOKIE, header::HOST] {
        if let Some(v) = req.headers().get(&name) {
            get = get.header(name, v.clone());
        }
    }
    let get = get.finish();
    let mut resp = ep.get_response(get).await;
    if resp.status() != StatusCode::OK {
        return None;
    }
    answer_json(&mut resp).await
}

/// Reads a small JSON request body for the record and puts it back for the handler. Form
/// logins (the console's no-JS form) are read the same way.
async fn take_params(mut req: Request) -> (Request, Option<Value>) {
    let small = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= MAX_PARAMS_BYTES);
    if !small {
        return (req, None);
    }
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let bytes = match req.take_body().into_bytes().await {
        Ok(b) => b,
        Err(_) => return (req, None),
    };
    let params = if form {
        let map: serde_json::Map<String, Value> = url::form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        Some(Value::Object(map))
    } else {
        serde_json::from_slice::<Value>(&bytes).ok()
    };
    req.set_body(Body::from_bytes(bytes));
    (req, params)
}

/// The answer's JSON when it is small and complete; the body is put back as it was.
async fn answer_json(resp: &mut Response) -> Option<Value> {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !is_json {
        return None;
    }
    let body: http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error> =
        resp.take_body().into();
    let fits = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_ANSWER_BYTES);
    if !fits {
        resp.set_body(Body::from(body));
        return None;
    }
    match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            let value = serde_json::from_slice(&bytes).ok();
            resp.set_body(Body::from_bytes(bytes));
            value
        }
        Err(_) => {
            resp.set_body(
                poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
                    .into_response()
                    .into_body(),
            );
            None
        }
    }
}
