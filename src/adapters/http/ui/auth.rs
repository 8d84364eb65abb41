//! `POST /api/v1/auth/login` and `POST /api/v1/auth/logout`. Login takes the admin token or a
//! user's `cch_` key, as JSON `{"token": "…"}` (scripts, the login page's script) or as a form
//! field `token` (the login page without script, answered with redirects).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Duration;
use poem::http::{StatusCode, header};
use poem::web::{Data, Json};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde_json::json;

use super::UiState;
use super::csrf::same_origin_write;
use super::layout::redirect;
use super::session::{SESSION_COOKIE, SESSION_TTL_SECS, Subject, key_subject, set_cookie_header};
use crate::adapters::http::admin::auth::AdminTokenDigest;
use crate::app::context::AppContext;
use crate::domain::api_key::hash_key;

/// Longest accepted login body.
const MAX_LOGIN_BODY: usize = 4096;

fn client_ip(req: &Request) -> IpAddr {
    req.remote_addr()
        .as_socket_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn json_error(status: StatusCode, kind: &str, message: &str) -> Response {
    Json(json!({"error": {"type": kind, "message": message}}))
        .with_status(status)
        .into_response()
}

/// Reads the presented token from a JSON or form body.
async fn presented_token(req: &Request, body: Body) -> Result<String, Response> {
    let bytes = body.into_bytes_limit(MAX_LOGIN_BODY).await.map_err(|_| {
        json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        )
    })?;
    let token = if is_form(req) {
        url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    } else {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
    };
    token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "send {\"token\": \"<admin token or cch_ key>\"}",
            )
        })
}

/// Logs in; sets the session cookie. Failures count towards the IP's lockout.
#[handler]
pub async fn login(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    body: Body,
) -> Response {
    let form = is_form(req);
    let ip = client_ip(req);
    let now = ctx.clock.now();
    let now_ms = now.timestamp_millis();
    if let Some(wait) = ui.throttle.retry_after_ms(ip, now_ms) {
        return too_many(wait);
    }
    if !same_origin_write(req.method(), req.headers()) {
        return json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "cross-site request refused",
        );
    }
    let token = match presented_token(req, body).await {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let subject = if AdminTokenDigest::of(&ctx.admin_token).matches(&token) {
        Some(Subject::Admin)
    } else {
        let snap = ctx.snapshot.get();
        snap.keys_by_hash
            .get(&hash_key(&token))
            .map(|k| key_subject(k))
            .filter(|s| super::session::resolve(s, &snap, now).is_some())
    };
    let Some(subject) = subject else {
        tracing::info!(ip = %ip, "console login failed");
        if let Some(wait) = ui.throttle.record_failure(ip, now_ms) {
            tracing::warn!(ip = %ip, "console logins from this address locked out");
            return too_many(wait);
        }
        if form {
            return redirect("/login?error=1");
        }
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown, disabled or expired token",
        );
    };
    ui.throttle.record_success(ip);
    let viewer = super::session::resolve(&subject, &ctx.snapshot.get(), now);
    let admin = viewer.as_ref().is_some_and(|v| v.is_admin());
    let home = if admin { "/dashboard" } else { "/my-usage" };
    let value = ui
        .signer
        .issue(&subject, now + Duration::seconds(SESSION_TTL_SECS));
    let cookie = set_cookie_header(
        SESSION_COOKIE,
        &value,
        SESSION_TTL_SECS,
        ctx.settings.enable_secure_cookies,
    );
    tracing::info!(ip = %ip, admin, "console login");
    let resp = if form {
        redirect(home)
    } else {
        Json(json!({"role": if admin { "admin" } else { "user" }, "redirect": home}))
            .into_response()
    };
    let mut resp = resp;
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

fn too_many(wait_ms: i64) -> Response {
    let secs = (wait_ms + 999) / 1000;
    let mut resp = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed logins from this address; try again later",
    );
    if let Ok(v) = secs.to_string().parse() {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Ends the session: the cookie is cleared.
#[handler]
pub async fn logout(ctx: Data<&Arc<AppContext>>, req: &Request) -> Response {
    if !same_origin_write(req.method(), req.headers()) {
        return json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "cross-site request refused",
        );
    }
    let mut resp = if is_form(req) {
        redirect("/login")
    } else {
        Json(json!({"ok": true})).into_response()
    };
    let cookie = set_cookie_header(SESSION_COOKIE, "", 0, ctx.settings.enable_secure_cookies);
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
