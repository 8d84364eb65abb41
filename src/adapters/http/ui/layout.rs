//! What every console page shares: the viewer, the language, the time zone, the navigation,
//! and the checks that send a visitor to `/login` or refuse a key holder (403).

use std::borrow::Borrow;
use std::sync::Arc;

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use poem::http::{StatusCode, header};
use poem::{Request, Response};
use rust_decimal::Decimal;

use super::UiState;
use super::i18n::Lang;
use super::session::{SESSION_COOKIE, Viewer, cookie_value, resolve};
use crate::app::context::AppContext;

/// One navigation entry.
pub struct NavItem {
    /// Page path.
    pub href: &'static str,
    /// Catalog key of its label.
    pub label: &'static str,
    /// True for the current page.
    pub active: bool,
}

/// Per-request page context used by `base.html`.
pub struct Layout {
    /// The language.
    pub lang: Lang,
    /// The display time zone.
    pub tz: Tz,
    /// Who is looking.
    pub viewer: Viewer,
    /// Navigation for this viewer.
    pub nav: Vec<NavItem>,
    /// Path and query of this page (the language picker returns here).
    pub here: String,
    /// Fingerprinted asset URLs.
    pub css: String,
    /// Console script URL.
    pub js: String,
    /// Favicon URL.
    pub icon: String,
}

const ADMIN_NAV: [(&str, &str); 14] = [
    ("/dashboard", "nav.dashboard"),
    ("/leaderboard", "nav.leaderboard"),
    ("/logs", "nav.logs"),
    ("/sessions", "nav.sessions"),
    ("/providers", "nav.providers"),
    ("/users", "nav.users"),
    ("/prices", "nav.prices"),
    ("/error-rules", "nav.error_rules"),
    ("/notifications", "nav.notifications"),
    ("/sensitive-words", "nav.sensitive_words"),
    ("/audit-logs", "nav.audit"),
    ("/settings", "nav.settings"),
    ("/client-setup", "nav.client_setup"),
    ("/my-usage", "nav.my_usage"),
];
const USER_NAV: [(&str, &str); 2] = [
    ("/my-usage", "nav.my_usage"),
    ("/client-setup", "nav.client_setup"),
];

impl Layout {
    /// A string of the page's language.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.catalog().get(key)
    }

    /// An integer, grouped for the language.
    pub fn int(&self, n: impl Borrow<i64>) -> String {
        self.lang.int(*n.borrow())
    }

    /// A dollar amount for the language.
    pub fn money(&self, d: impl Borrow<Decimal>) -> String {
        self.lang.money(*d.borrow())
    }

    /// A time in the configured zone, written for the language.
    pub fn time(&self, t: impl Borrow<DateTime<Utc>>) -> String {
        self.lang.datetime(*t.borrow(), self.tz)
    }

    /// An optional time, or a dash.
    pub fn opt_time(&self, t: impl Borrow<Option<DateTime<Utc>>>) -> String {
        t.borrow().map_or_else(|| "—".to_string(), |t| self.time(t))
    }

    /// Every language, for the picker.
    pub fn langs(&self) -> [Lang; 5] {
        Lang::ALL
    }

    /// The viewer's display name.
    pub fn who(&self) -> String {
        match &self.viewer {
            Viewer::Admin => self.t("common.admin").to_string(),
            Viewer::KeyHolder { user, key } => format!("{} · {}", user.name, key.name),
        }
    }

    /// True when the viewer sees the whole console.
    pub fn is_admin(&self) -> bool {
        self.viewer.is_admin()
    }
}

/// The signed-in viewer of a request, if any.
pub fn viewer_of(ctx: &AppContext, ui: &UiState, req: &Request) -> Option<Viewer> {
    let now = ctx.clock.now();
    let subject = ui
        .signer
        .verify(cookie_value(req.headers(), SESSION_COOKIE)?, now)?;
    resolve(&subject, &ctx.snapshot.get(), now)
}

/// The display time zone: the stored `timezone` setting when valid, else `TZ`.
pub fn display_tz(ctx: &AppContext) -> Tz {
    ctx.snapshot
        .get()
        .settings
        .get("timezone")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<Tz>().ok())
        .unwrap_or(ctx.settings.timezone)
}

/// A 303 to `to`.
pub fn redirect(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .finish()
}

/// The layout for a page at `active`, or the response that refuses it: a redirect to `/login`
/// for visitors, 403 for key holders on admin pages.
pub fn page(
    ctx: &Arc<AppContext>,
    ui: &UiState,
    req: &Request,
    active: &str,
    admin_only: bool,
) -> Result<Layout, Box<Response>> {
    let lang = Lang::negotiate(req.headers());
    let Some(viewer) = viewer_of(ctx, ui, req) else {
        return Err(Box::new(redirect("/login")));
    };
    if admin_only && !viewer.is_admin() {
        return Err(Box::new(forbidden(lang)));
    }
    let items: &[(&str, &str)] = if viewer.is_admin() {
        &ADMIN_NAV
    } else {
        &USER_NAV
    };
    let nav = items
        .iter()
        .map(|(href, label)| NavItem {
            href,
            label,
            active: *href == active,
        })
        .collect();
    let here = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    Ok(Layout {
        lang,
        tz: display_tz(ctx),
        viewer,
        nav,
        here,
        css: super::assets::url("app.css"),
        js: super::assets::url("app.js"),
        icon: super::assets::url("favicon.svg"),
    })
}

/// Renders a template as an HTML page (500 if rendering fails, which only a bug can cause).
pub fn html(t: &impl Template) -> Response {
    html_with_status(t, StatusCode::OK)
}

/// Renders a template with a status.
pub fn html_with_status(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(body) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-store")
            .header("x-frame-options", "DENY")
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "same-origin")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "console page failed to render");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body("internal error")
        }
    }
}

#[derive(Template)]
#[template(path = "forbidden.html")]
struct Forbidden {
    lang: Lang,
}

impl Forbidden {
    fn t(&self, key: &str) -> &'static str {
        self.lang.catalog().get(key)
    }
}

/// The 403 page a key holder sees on an admin page.
pub fn forbidden(lang: Lang) -> Response {
    html_with_status(&Forbidden { lang }, StatusCode::FORBIDDEN)
}
