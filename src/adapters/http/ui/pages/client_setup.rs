//! Client setup: the exact lines that point Claude Code, Codex CLI, Gemini CLI and the SDKs at
//! this server. The address is `APP_URL`, else the request's own (honouring a reverse proxy's
//! `X-Forwarded-Proto` and `X-Forwarded-Host`).

use std::sync::Arc;

use askama::Template;
use poem::http::header;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::context::AppContext;

#[derive(Template)]
#[template(path = "client_setup.html")]
struct SetupPage {
    l: Layout,
    base: String,
}

/// The base URL clients should use.
pub fn base_url(ctx: &AppContext, req: &Request) -> String {
    if let Some(u) = &ctx.settings.app_url {
        return u.clone();
    }
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let proto = h("x-forwarded-proto")
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "http".into());
    let host = h("x-forwarded-host")
        .or_else(|| h(header::HOST.as_str()))
        .filter(|v| {
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or_else(|| format!("localhost:{}", ctx.settings.app_port));
    format!("{proto}://{host}")
}

/// `GET /client-setup` (any signed-in viewer).
#[handler]
pub async fn page_handler(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
) -> Response {
    let l = match page(&ctx, &ui, req, "/client-setup", false) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    html(&SetupPage {
        l,
        base: base_url(&ctx, req),
    })
}
