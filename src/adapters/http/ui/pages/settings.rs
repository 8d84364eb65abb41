//! Settings: what this server runs with (time zone, cookies, limits, address).

use std::sync::Arc;

use askama::Template;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::context::AppContext;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    l: Layout,
    tz: String,
    secure_cookies: bool,
    rate_limiting: bool,
    app_url: String,
    database: &'static str,
}

/// `GET /settings`.
#[handler]
pub async fn page_handler(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
) -> Response {
    let l = match page(&ctx, &ui, req, "/settings", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    html(&SettingsPage {
        tz: l.tz.name().to_string(),
        l,
        secure_cookies: ctx.settings.enable_secure_cookies,
        rate_limiting: ctx.limits.is_some(),
        app_url: ctx.settings.app_url.clone().unwrap_or_default(),
        database: ctx.database_backend,
    })
}
