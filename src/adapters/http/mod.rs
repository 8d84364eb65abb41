//! The HTTP front: admin API, docs, probes (and, later, the proxy routes).

pub mod admin;
pub mod audit;
pub mod body_decode;
pub mod body_read;
pub mod client_query;
pub mod conn_guard;
pub mod listener;
pub mod probes;
pub mod proxy;
pub mod security_headers;
pub mod server;
pub mod ui;
pub mod usage;
pub mod usage_logs;

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::middleware::CatchPanic;
use poem::{EndpointExt, Route, get};

use crate::app::context::AppContext;

/// Builds every route of the server.
pub fn build_routes(ctx: Arc<AppContext>) -> BoxEndpoint<'static> {
    let api = admin::service(&ctx);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let digest = admin::auth::AdminTokenDigest::of(&ctx.admin_token);
    let ui_state = Arc::new(ui::UiState::new(&ctx));
    let routes = Route::new()
        .nest(
            "/api/v1",
            api.data(digest)
                .catch_all_error(|e| async move { admin::error::to_json_error(e) }),
        )
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .at("/health", get(probes::health).head(probes::health))
        .at("/ready", get(probes::ready))
        .at("/metrics", get(probes::metrics))
        .at("/v1/messages", poem::post(proxy::claude_messages))
        .at(
            "/v1/messages/count_tokens",
            poem::post(proxy::claude_messages),
        )
        .at("/v1/models", get(proxy::list_models))
        .at("/v1beta/models", get(proxy::list_models))
        .at("/v1/chat/completions", poem::post(proxy::openai_chat))
        .at("/v1/responses", poem::post(proxy::responses))
        .at("/v1/responses/compact", poem::post(proxy::responses))
        .at("/v1beta/models/*rest", poem::post(proxy::gemini))
        .at("/v1/models/*rest", poem::post(proxy::gemini))
        .at(
            "/v1internal:generateContent",
            poem::post(proxy::gemini_internal),
        )
        .at(
            "/v1internal:streamGenerateContent",
            poem::post(proxy::gemini_internal),
        )
        .at(
            "/v1internal:countTokens",
            poem::post(proxy::gemini_internal),
        )
        .at(
            "/v1internal/models/*rest",
            poem::post(proxy::gemini_internal),
        )
        .at("/v1/usage", get(usage::key_usage))
        .at("/v1/usage/logs", get(usage_logs::key_logs))
        .at("/", get(ui::pages::root).head(proxy::root));
    let (audit_ctx, audit_ui) = (Arc::clone(&ctx), Arc::clone(&ui_state));
    ui::mount(routes)
        .data(ui_state)
        .data(ctx)
        .around(move |ep, req| {
            audit::record_admin_writes(ep, req, Arc::clone(&audit_ctx), Arc::clone(&audit_ui))
        })
        .with(CatchPanic::new())
        .around(with_request_id)
        .around(security_headers::with_security_headers)
        .boxed()
}

/// Every answer carries `x-cch-request-id`: the proxy routes set it to the request's own id
/// (log row and trace); any other answer gets a fresh one, so a user always has an id to
/// report.
async fn with_request_id<E: poem::Endpoint>(
    ep: Arc<E>,
    req: poem::Request,
) -> poem::Result<poem::Response> {
    let mut resp = ep.get_response(req).await;
    if !resp.headers().contains_key(REQUEST_ID_HEADER) {
        let id = crate::app::proxy::new_request_id();
        if let Ok(v) = poem::http::HeaderValue::from_str(&id) {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
    }
    Ok(resp)
}

/// The answer header naming the request (see [`with_request_id`]).
pub const REQUEST_ID_HEADER: &str = "x-cch-request-id";
