//! Client-facing proxy routes: `/v1/messages`, `/v1/messages/count_tokens`, `/v1/models`, and
//! a friendly answer on the base URL. Bytes pass through; the app decides everything else.

use std::sync::Arc;

use bytes::Bytes;
use poem::http::{HeaderMap, HeaderValue, StatusCode};
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::json;
use tracing::Instrument as _;

use super::body_decode;
use super::body_read::{self, BodyReadError};
use super::client_query::{forwarded_query, query_key};
use crate::app::body_budget::BodyReservation;
use crate::app::context::AppContext;
use crate::app::proxy::code_assist::wrap_client_answer;
use crate::app::proxy::reject::{KeyIds, RejectReason, Rejection};
use crate::app::proxy::{ClientRequest, ProxyBody, ProxyResponse};
use crate::app::tracing_spans::TARGET;
use crate::domain::client_error::GatewayErrorKind;
use crate::domain::code_assist::{self, Method};
use crate::domain::format::ClientFormat;

/// The client key from `Authorization: Bearer`, `x-api-key`, `x-goog-api-key` or `?key=` (in
/// any case or encoding; see `client_query`, which keeps the forwarded query in agreement).
pub fn extract_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(auth) = header("authorization") {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .unwrap_or(auth);
        if !token.trim().is_empty() {
            return Some(token.trim().to_string());
        }
    }
    for name in ["x-api-key", "x-goog-api-key"] {
        if let Some(v) = header(name).filter(|v| !v.is_empty()) {
            return Some(v.to_string());
        }
    }
    query_key(query)
}

fn to_response(resp: ProxyResponse) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY));
    for (k, v) in &resp.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    match resp.body {
        ProxyBody::Full(bytes) => builder.body(Body::from_bytes(bytes)),
        ProxyBody::Stream(s) => builder.body(Body::from_bytes_stream(s)),
    }
}

/// What a client route decided about a request before its body is read.
struct Route {
    /// The client's wire format.
    format: ClientFormat,
    /// The model named in the URL (Gemini).
    path_model: Option<String>,
    /// Whether the URL asks for a stream (Gemini).
    path_stream: bool,
    /// The Code Assist method of a `/v1internal` call (its body is an envelope).
    code_assist: Option<Method>,
}

impl Route {
    fn plain(format: ClientFormat) -> Self {
        Self {
            format,
            path_model: None,
            path_stream: false,
            code_assist: None,
        }
    }
}

/// Serves one client request inside its trace span (see `app::tracing_spans`) and marks the
/// answer with its id in `x-cch-request-id`: the log row's id and, when traces are exported,
/// the trace id (so an admin finds the trace from the id a user reports, and back).
async fn proxy(ctx: &AppContext, req: &Request, body: Body, route: Route) -> Response {
    let format = route.format;
    let span = tracing::info_span!(target: TARGET, "request",
        otel.name = %format_args!("{} {}", req.method(), req.uri().path()),
        otel.kind = "server", http.request.method = %req.method(), url.path = req.uri().path(),
        cch.client_format = format.as_str(),
        http.response.status_code = tracing::field::Empty);
    let request_id = trace_id_of(&span).unwrap_or_else(crate::app::proxy::new_request_id);
    let mut resp = serve_request(ctx, req, body, route, &request_id)
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", resp.status().as_u16());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(super::REQUEST_ID_HEADER, v);
    }
    resp
}

/// The trace id of `span` in hex, when traces are exported (an unsampled or disabled span has
/// none).
fn trace_id_of(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// Records a refusal under the caller's (valid) key, then answers it: every refusal after the
/// key check goes through here.
struct Refuser<'a> {
    ctx: &'a AppContext,
    format: ClientFormat,
    endpoint: &'a str,
    user_agent: Option<&'a str>,
    key: KeyIds,
    request_id: &'a str,
}

impl Refuser<'_> {
    fn refuse(&self, reason: RejectReason, resp: ProxyResponse, message: &str) -> Response {
        self.ctx.proxy.record_rejection(&Rejection {
            format: self.format,
            endpoint: self.endpoint,
            reason,
            status: resp.status,
            message,
            user_agent: self.user_agent,
            key: Some(self.key),
            request_id: Some(self.request_id),
        });
        to_response(resp)
    }
}

async fn serve_request(
    ctx: &AppContext,
    req: &Request,
    body: Body,
    route: Route,
    request_id: &str,
) -> Response {
    let format = route.format;
    let endpoint = req.uri().path();
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok());
    let api_key = extract_key(req.headers(), req.uri().query());
    // The key is checked from the head alone: a client without a valid key never gets its
    // body read (nor buffered). A refusal is counted (and, for a known key, logged) there.
    let caller =
        match ctx
            .proxy
            .precheck_key(api_key.as_deref(), format, endpoint, user_agent, request_id)
        {
            Ok(ids) => ids,
            Err(resp) => return to_response(resp),
        };
    let refuser = Refuser {
        ctx,
        format,
        endpoint,
        user_agent,
        key: caller.ids(),
        request_id,
    };
    // Held until the proxy has answered: the body bytes stay in memory that long.
    let (bytes, reservation) = match read_client_body(&refuser, req, body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (bytes, _reservation) = match decode_client_body(&refuser, req, bytes, reservation).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (bytes, path_model, envelope) = match route.code_assist {
        None => (bytes, route.path_model, None),
        Some(method) => match code_assist::unwrap_client_request(&bytes, method) {
            Ok((inner, env)) => (
                Bytes::from(inner),
                route
                    .path_model
                    .or_else(|| Some(env.model.clone()).filter(|m| !m.is_empty())),
                Some(env),
            ),
            Err(msg) => {
                let resp = ProxyResponse::error(format, GatewayErrorKind::InvalidRequest, &msg);
                return refuser.refuse(RejectReason::InvalidBody, resp, &msg);
            }
        },
    };
    let client = ClientRequest {
        format,
        path: req.uri().path().to_string(),
        query: forwarded_query(req.uri().query(), api_key.as_deref()),
        headers: client_headers(req),
        body: bytes,
        caller,
        path_model,
        path_stream: route.path_stream,
        code_assist: envelope,
        request_id: request_id.to_string(),
    };
    let answer = async {
        let resp = ctx.proxy.handle(client).await;
        match route.code_assist {
            Some(method) => wrap_client_answer(resp, method),
            None => resp,
        }
    };
    // A request still waiting for its answer when shutdown's drain time ends is answered now,
    // in the client's format, and logged; a stream already begun ends by itself at the cut.
    tokio::select! {
        resp = answer => to_response(resp),
        _ = ctx.shutdown.cut_fired() => {
            let msg = crate::app::proxy::stream::SHUTDOWN_CLIENT_MESSAGE;
            let mut resp = ProxyResponse::error(format, GatewayErrorKind::NoProvider, msg);
            resp.headers.push(("retry-after".into(), "1".into()));
            refuser.refuse(RejectReason::ShuttingDown, resp, msg)
        }
    }
}

/// The body stage: reads the body under `MAX_BODY_BYTES` and the shared body budget; a body
/// too large, a full budget or a broken upload is refused (and logged under the key).
async fn read_client_body(
    refuser: &Refuser<'_>,
    req: &Request,
    body: Body,
) -> Result<(Bytes, BodyReservation), Response> {
    let (ctx, format) = (refuser.ctx, refuser.format);
    let max = ctx.settings.max_body_bytes;
    let too_large = || {
        let msg = format!("request body is larger than the {max} byte limit (MAX_BODY_BYTES)");
        let resp = ProxyResponse::error(format, GatewayErrorKind::RequestTooLarge, &msg);
        refuser.refuse(RejectReason::BodyTooLarge, resp, &msg)
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    match body_read::read_body(body, declared, max, &ctx.body_budget).await {
        Ok(b) => Ok(b),
        Err(BodyReadError::TooLarge) => Err(too_large()),
        Err(BodyReadError::Busy) => Err(refuser.refuse(
            RejectReason::BodyBudgetFull,
            body_read::busy_response(format),
            RejectReason::BodyBudgetFull.describe(),
        )),
        Err(BodyReadError::Io(e)) => {
            let msg = format!("cannot read the request body: {e}");
            let resp = ProxyResponse::error(format, GatewayErrorKind::InvalidRequest, &msg);
            Err(refuser.refuse(RejectReason::BodyUnreadable, resp, &msg))
        }
    }
}

/// The decoding stage: a body sent with `Content-Encoding` (gzip, deflate, br, zstd) is
/// decoded off the runtime threads, within `MAX_DECOMPRESSED_REQUEST_BYTES` and the shared body
/// budget (which then covers the decoded bytes too). Unknown encoding 415, corrupt 400, too
/// large 413, budget full 503; each refusal is logged under the key.
async fn decode_client_body(
    refuser: &Refuser<'_>,
    req: &Request,
    bytes: Bytes,
    mut reservation: BodyReservation,
) -> Result<(Bytes, BodyReservation), Response> {
    let Some(header) = req
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
    else {
        return Ok((bytes, reservation));
    };
    let (ctx, format) = (refuser.ctx, refuser.format);
    let codings = match body_decode::parse_codings(header) {
        Ok(c) if c.is_empty() => return Ok((bytes, reservation)),
        Ok(c) => c,
        Err(e) => return Err(decode_refusal(refuser, e)),
    };
    let cap = ctx.settings.max_decompressed_request_bytes;
    let budget = ctx.body_budget.clone();
    let held = bytes.len() as u64;
    let decoded = tokio::task::spawn_blocking(move || {
        let result = body_decode::decode(&bytes, &codings, cap, &mut |n| {
            budget.try_cover(&mut reservation, held + n as u64)
        });
        (result, reservation)
    })
    .await;
    match decoded {
        Ok((Ok(body), reservation)) => Ok((Bytes::from(body), reservation)),
        Ok((Err(e), _)) => Err(decode_refusal(refuser, e)),
        Err(_) => {
            let msg = "the request body could not be decoded";
            let resp = ProxyResponse::error(format, GatewayErrorKind::Internal, msg);
            Err(refuser.refuse(RejectReason::BodyUnreadable, resp, msg))
        }
    }
}

/// The answer to a body that cannot be decoded, in the client's format, logged.
fn decode_refusal(refuser: &Refuser<'_>, e: body_decode::DecodeError) -> Response {
    use body_decode::DecodeError;
    let (ctx, format) = (refuser.ctx, refuser.format);
    match e {
        DecodeError::Unsupported(name) => {
            let msg = format!(
                "Content-Encoding `{name}` is not supported (use gzip, deflate, br or zstd)"
            );
            let resp = ProxyResponse::error(format, GatewayErrorKind::UnsupportedMediaType, &msg);
            refuser.refuse(RejectReason::BodyUnreadable, resp, &msg)
        }
        DecodeError::TooLarge => {
            let msg = format!(
                "the decompressed request body is larger than the {} byte limit (MAX_DECOMPRESSED_REQUEST_BYTES)",
                ctx.settings.max_decompressed_request_bytes
            );
            let resp = ProxyResponse::error(format, GatewayErrorKind::RequestTooLarge, &msg);
            refuser.refuse(RejectReason::BodyTooLarge, resp, &msg)
        }
        DecodeError::Busy => refuser.refuse(
            RejectReason::BodyBudgetFull,
            body_read::busy_response(format),
            RejectReason::BodyBudgetFull.describe(),
        ),
        DecodeError::Corrupt(detail) => {
            let msg = format!("the compressed request body is corrupt: {detail}");
            let resp = ProxyResponse::error(format, GatewayErrorKind::InvalidRequest, &msg);
            refuser.refuse(RejectReason::BodyUnreadable, resp, &msg)
        }
    }
}

/// The request's headers with lower-case names (values that are not text are left out).
fn client_headers(req: &Request) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_ascii_lowercase(), v.to_string()))
        })
        .collect()
}

/// `POST /v1/messages` and `POST /v1/messages/count_tokens` (Claude format).
#[handler]
pub async fn claude_messages(ctx: Data<&Arc<AppContext>>, req: &Request, body: Body) -> Response {
    proxy(ctx.0, req, body, Route::plain(ClientFormat::Claude)).await
}

/// `POST /v1/chat/completions` (OpenAI Chat Completions format).
#[handler]
pub async fn openai_chat(ctx: Data<&Arc<AppContext>>, req: &Request, body: Body) -> Response {
    proxy(ctx.0, req, body, Route::plain(ClientFormat::OpenAi)).await
}

/// `POST /v1/responses` (OpenAI Responses format, what Codex CLI uses).
#[handler]
pub async fn responses(ctx: Data<&Arc<AppContext>>, req: &Request, body: Body) -> Response {
    proxy(ctx.0, req, body, Route::plain(ClientFormat::Response)).await
}

/// `POST /v1beta/models/{model}:{action}` and `/v1/models/{model}:{action}` (Gemini), where
/// action is `generateContent`, `streamGenerateContent` or `countTokens`.
#[handler]
pub async fn gemini(ctx: Data<&Arc<AppContext>>, req: &Request, body: Body) -> Response {
    let tail = req.uri().path().rsplit('/').next().unwrap_or("");
    let Some((model, action)) = tail.rsplit_once(':') else {
        let msg =
            "expected /models/{model}:generateContent, :streamGenerateContent or :countTokens";
        return to_response(ProxyResponse::error(
            ClientFormat::Gemini,
            GatewayErrorKind::NotFound,
            msg,
        ));
    };
    let stream = match action {
        "generateContent" | "countTokens" => false,
        "streamGenerateContent" => true,
        _ => {
            let msg = format!("unknown method '{action}'");
            return to_response(ProxyResponse::error(
                ClientFormat::Gemini,
                GatewayErrorKind::NotFound,
                &msg,
            ));
        }
    };
    let model = model.trim_start_matches("models/").to_string();
    let route = Route {
        format: ClientFormat::Gemini,
        path_model: Some(model),
        path_stream: stream,
        code_assist: None,
    };
    proxy(ctx.0, req, body, route).await
}

/// Gemini CLI with Google login (Code Assist): `POST /v1internal:generateContent`,
/// `:streamGenerateContent` and `:countTokens` (also as `/v1internal/models/{model}:{method}`,
/// the original project's spelling). The `{model, project, request}` envelope is unwrapped and
/// the request served as a Gemini one; successful answers go back wrapped as `{"response": …}`
/// (see `app::proxy::code_assist`).
#[handler]
pub async fn gemini_internal(ctx: Data<&Arc<AppContext>>, req: &Request, body: Body) -> Response {
    let path = req.uri().path();
    let tail = path.strip_prefix("/v1internal").unwrap_or(path);
    let (model, method) = match tail.rsplit_once(':') {
        Some((head, m)) => (
            head.strip_prefix("/models/")
                .map(|m| m.trim_start_matches("models/").to_string())
                .filter(|m| !m.is_empty()),
            Method::parse(m),
        ),
        None => (None, None),
    };
    let Some(method) = method else {
        let msg = "expected /v1internal:generateContent, :streamGenerateContent or :countTokens";
        return to_response(ProxyResponse::error(
            ClientFormat::Gemini,
            GatewayErrorKind::NotFound,
            msg,
        ));
    };
    let route = Route {
        format: ClientFormat::Gemini,
        path_model: model,
        path_stream: method == Method::StreamGenerate,
        code_assist: Some(method),
    };
    proxy(ctx.0, req, body, route).await
}

/// The client format a shared `GET /v1/models` answers in: `anthropic-version` → Anthropic,
/// `x-goog-api-key` → Gemini, else OpenAI (the original project's rule).
fn models_format(req: &Request) -> ClientFormat {
    if req.headers().contains_key("anthropic-version") {
        ClientFormat::Claude
    } else if req.headers().contains_key("x-goog-api-key")
        || req.uri().path().starts_with("/v1beta/")
    {
        ClientFormat::Gemini
    } else {
        ClientFormat::OpenAi
    }
}

/// `GET /v1/models` and `GET /v1beta/models`: the models this key may use, in the asking
/// client's list shape (see `models_format`).
#[handler]
pub async fn list_models(ctx: Data<&Arc<AppContext>>, req: &Request) -> Response {
    let key = extract_key(req.headers(), req.uri().query());
    let format = models_format(req);
    match ctx.proxy.models_for_key(key.as_deref(), format) {
        Err(resp) => to_response(resp),
        Ok(models) if format == ClientFormat::OpenAi => {
            let data: Vec<_> = models
                .iter()
                .map(|m| json!({"id": m, "object": "model", "created": 1_735_689_600, "owned_by": "cch"}))
                .collect();
            let body = json!({"object": "list", "data": data});
            Response::builder()
                .content_type("application/json")
                .body(body.to_string())
        }
        Ok(models) if format == ClientFormat::Gemini => {
            let data: Vec<_> = models
                .iter()
                .map(|m| {
                    json!({"name": format!("models/{m}"), "displayName": m,
                        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]})
                })
                .collect();
            Response::builder()
                .content_type("application/json")
                .body(json!({"models": data}).to_string())
        }
        Ok(models) => {
            let data: Vec<_> = models
                .iter()
                .map(|m| json!({"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}))
                .collect();
            let body = json!({
                "data": data,
                "has_more": false,
                "first_id": models.first(),
                "last_id": models.last(),
            });
            Response::builder()
                .content_type("application/json")
                .body(body.to_string())
        }
    }
}

/// `GET`/`HEAD /`: tells a client (or a human) what this is, instead of an error.
#[handler]
pub fn root() -> poem::web::Json<serde_json::Value> {
    root_description()
}

/// The service description `GET /` answers to clients that do not ask for HTML.
pub fn root_description() -> poem::web::Json<serde_json::Value> {
    poem::web::Json(json!({
        "service": "cch",
        "version": env!("CARGO_PKG_VERSION"),
        "status": "ok",
        "endpoints": ["/v1/messages", "/v1/messages/count_tokens", "/v1/chat/completions", "/v1/responses",
                      "/v1beta/models/{model}:generateContent", "/v1beta/models/{model}:streamGenerateContent", "/v1/models"],
        "admin": {"api": "/api/v1", "docs": "/docs", "spec": "/openapi.json", "console": "/login"}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sources_in_order() {
        let mut h = HeaderMap::new();
        assert_eq!(extract_key(&h, Some("a=1&key=cch_q")), Some("cch_q".into()));
        h.insert("x-goog-api-key", "cch_g".parse().unwrap());
        assert_eq!(extract_key(&h, None), Some("cch_g".into()));
        h.insert("x-api-key", "cch_x".parse().unwrap());
        assert_eq!(extract_key(&h, None), Some("cch_x".into()));
        h.insert("authorization", "Bearer cch_b".parse().unwrap());
        assert_eq!(extract_key(&h, None), Some("cch_b".into()));
    }
}
