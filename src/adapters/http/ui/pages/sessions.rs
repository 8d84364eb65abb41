//! Sessions: the active sessions of every instance (user, key, bound provider, client, requests,
//! first and last activity) with a button that ends one, refreshed in place.

use std::sync::Arc;

use askama::Template;
use chrono::DateTime;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::adapters::http::ui::pages::name_filter::{self, NamePick};
use crate::app::context::AppContext;
use crate::app::sessions::{self, DEFAULT_SESSION_LIST};
use crate::ports::counters::SessionFilter;

/// The page's filters, as typed (invalid numbers are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    /// A user typed by name or `#id` (see `name_filter`); wins over `user_id`.
    #[serde(default)]
    user: String,
    #[serde(default)]
    user_id: String,
    /// A provider typed by name or `#id`; wins over `provider_id`.
    #[serde(default)]
    provider: String,
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    provider_id: String,
}

fn id(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

/// One session as shown.
struct Row {
    id: String,
    user: String,
    key: String,
    provider: String,
    model: String,
    client: String,
    requests: String,
    started: String,
    last: String,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    l: Layout,
    f: Filters,
    rows: Vec<Row>,
    error: Option<String>,
    user: NamePick,
    provider: NamePick,
    ttl_minutes: u64,
}

/// A name, else `#id`, else a dash.
fn named(name: Option<String>, id: Option<i64>) -> String {
    name.or_else(|| id.map(|i| format!("#{i}")))
        .unwrap_or_else(|| "—".into())
}

/// `GET /sessions`.
#[handler]
pub async fn list(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Query(f): Query<Filters>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/sessions", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let snap = ctx.snapshot.get();
    let (user, provider) =
        name_filter::user_and_provider(&snap, (&f.user, &f.user_id), (&f.provider, &f.provider_id));
    let filter = SessionFilter {
        user_id: user.id,
        key_id: id(&f.key_id),
        provider_id: provider.id,
        limit: DEFAULT_SESSION_LIST,
    };
    let (found, error) = if user.unknown || provider.unknown {
        (Vec::new(), Some(l.t("filter.no_match").to_owned()))
    } else {
        match sessions::list(&ctx, &filter).await {
            Ok(v) => (v, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        }
    };
    let time = |ms: i64| l.time(DateTime::from_timestamp_millis(ms).unwrap_or_default());
    let rows = found
        .into_iter()
        .map(|v| Row {
            user: named(v.user_name, v.session.user_id),
            key: named(v.key_name, v.session.key_id),
            provider: named(v.provider_name, v.session.provider_id),
            model: v.session.model,
            client: v.session.client_format,
            requests: l.int(v.session.requests),
            started: time(v.session.started_ms),
            last: time(v.session.last_ms),
            id: v.session.id,
        })
        .collect();
    html(&SessionsPage {
        l,
        f,
        rows,
        error,
        user,
        provider,
        ttl_minutes: ctx.settings.session_ttl.as_secs().div_ceil(60),
    })
}
