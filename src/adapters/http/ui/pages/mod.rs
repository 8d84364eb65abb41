//! The console's pages, one module per page; every page is a compile-time-checked template.

pub mod client_setup;
pub mod dashboard;
pub mod error_rules;
pub mod forms;
pub mod leaderboard;
pub mod logs;
pub mod my_usage;
pub mod name_filter;
pub mod notifications;
pub mod paging;
pub mod prices;
pub mod providers;
pub mod security;
pub mod sessions;
pub mod settings;
pub mod users;

use std::sync::Arc;

use askama::Template;
use poem::http::header;
use poem::web::{Data, Query};
use poem::{IntoResponse, Request, Response, Route, get, handler};
use serde::Deserialize;

use super::UiState;
use super::i18n::{LANG_COOKIE, Lang};
use super::layout::{html, redirect, viewer_of};
use crate::app::context::AppContext;

/// Adds every page to `route`.
pub fn mount(route: Route) -> Route {
    route
        .at("/login", get(login_page))
        .at("/lang", get(set_lang))
        .at("/dashboard", get(dashboard::page_handler))
        .at("/providers", get(providers::list))
        .at("/providers/new", get(providers::new))
        .at("/providers/:id", get(providers::edit))
        .at("/users", get(users::list))
        .at("/users/:id", get(users::detail))
        .at("/prices", get(prices::list))
        .at("/error-rules", get(error_rules::list))
        .at("/leaderboard", get(leaderboard::show))
        .at("/notifications", get(notifications::list))
        .at("/sensitive-words", get(security::words))
        .at("/audit-logs", get(security::audit))
        .at("/logs", get(logs::list))
        .at("/logs/:id", get(logs::detail))
        .at("/sessions", get(sessions::list))
        .at("/client-setup", get(client_setup::page_handler))
        .at("/my-usage", get(my_usage::page_handler))
        .at("/settings", get(settings::page_handler))
}

fn wants_html(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `GET /`: a browser goes to its home page (or `/login`); other clients get the service
/// description as before.
#[handler]
pub fn root(ctx: Data<&Arc<AppContext>>, ui: Data<&Arc<UiState>>, req: &Request) -> Response {
    if !wants_html(req) {
        return crate::adapters::http::proxy::root_description().into_response();
    }
    match viewer_of(&ctx, &ui, req) {
        Some(v) if v.is_admin() => redirect("/dashboard"),
        Some(_) => redirect("/my-usage"),
        None => redirect("/login"),
    }
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    l: super::layout::Layout,
}

/// The 404 page inside the layout.
pub fn not_found(l: super::layout::Layout) -> Response {
    super::layout::html_with_status(&NotFoundPage { l }, poem::http::StatusCode::NOT_FOUND)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    lang: Lang,
    langs: [Lang; 5],
    error: bool,
    css: String,
    js: String,
    icon: String,
}

impl LoginPage {
    fn t(&self, key: &str) -> &'static str {
        self.lang.catalog().get(key)
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    error: Option<String>,
}

/// `GET /login`.
#[handler]
fn login_page(req: &Request, Query(q): Query<LoginQuery>) -> Response {
    html(&LoginPage {
        lang: Lang::negotiate(req.headers()),
        langs: Lang::ALL,
        error: q.error.is_some(),
        css: super::assets::url("app.css"),
        js: super::assets::url("app.js"),
        icon: super::assets::url("favicon.svg"),
    })
}

#[derive(Deserialize)]
struct LangQuery {
    l: String,
    next: Option<String>,
}

/// A local path to return to: absolute, not protocol-relative, no backslashes.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// `GET /lang?l=<code>&next=<path>`: remembers the language for a year and goes back.
#[handler]
fn set_lang(Query(q): Query<LangQuery>) -> Response {
    let mut resp = redirect(safe_next(q.next.as_deref()));
    if let Some(lang) = Lang::from_code(&q.l)
        && let Ok(v) = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        )
        .parse()
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_local() {
        assert_eq!(safe_next(Some("/logs?x=1")), "/logs?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
