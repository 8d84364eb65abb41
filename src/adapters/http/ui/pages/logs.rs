//! Logs: filtered, keyset-paginated request log (the admin service's cursor, so a page costs the
//! same on millions of rows), and one request's detail with its provider chain.

use std::sync::Arc;

use askama::Template;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::adapters::http::ui::pages::name_filter::{self, NamePick};
use crate::app::admin::{LogQuery, MAX_LOG_PAGE};
use crate::app::context::AppContext;
use crate::app::snapshot::ConfigSnapshot;
use crate::domain::chain::ChainEntry;
use crate::domain::request_log::RequestLog;

/// Rows per page.
const PAGE_ROWS: i64 = 50;

/// The filter form, as submitted (every field optional text).
#[derive(Debug, Default, Deserialize, Clone)]
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
    #[serde(default)]
    model: String,
    #[serde(default)]
    status_class: String,
    #[serde(default)]
    session_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

fn id(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

/// A `datetime-local` value in the display zone, as UTC.
fn local_time(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M").ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

impl Filters {
    fn query(&self, tz: Tz, limit: i64) -> LogQuery {
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        LogQuery {
            user_id: id(&self.user_id),
            key_id: id(&self.key_id),
            provider_id: id(&self.provider_id),
            model: opt(&self.model),
            status_class: self.status_class.trim().parse().ok(),
            from: local_time(&self.from, tz),
            to: local_time(&self.to, tz),
            session_id: opt(&self.session_id),
            limit: Some(limit),
            cursor: opt(&self.cursor),
        }
    }

    /// The query string of these filters with another cursor.
    fn with_cursor(&self, cursor: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("user_id", &self.user_id),
            ("key_id", &self.key_id),
            ("provider_id", &self.provider_id),
            ("model", &self.model),
            ("status_class", &self.status_class),
            ("session_id", &self.session_id),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.append_pair("cursor", cursor);
        q.finish()
    }
}

/// A log row with names resolved.
pub struct Row {
    /// The row.
    pub r: RequestLog,
    /// Its user's name.
    pub user: String,
    /// Its key's name.
    pub key: String,
    /// Its provider's name.
    pub provider: String,
}

/// Resolves the names of a row's user, key and provider.
pub fn named(r: RequestLog, snap: &ConfigSnapshot) -> Row {
    let user = r
        .user_id
        .and_then(|i| snap.users.get(&i).map(|u| u.name.clone()))
        .unwrap_or_default();
    let key = r
        .key_id
        .and_then(|i| snap.keys_by_id.get(&i).map(|k| k.name.clone()))
        .unwrap_or_default();
    let provider = r
        .provider_id
        .and_then(|i| snap.provider(i).map(|p| p.name.clone()))
        .unwrap_or_default();
    Row {
        r,
        user,
        key,
        provider,
    }
}

#[derive(Template)]
#[template(path = "logs.html")]
struct ListPage {
    l: Layout,
    f: Filters,
    rows: Vec<Row>,
    next: Option<String>,
    error: Option<String>,
    user: NamePick,
    provider: NamePick,
}

/// Reads a page of rows for `q`; the error text when the filters are invalid.
pub async fn read_page(
    ctx: &AppContext,
    q: LogQuery,
) -> (Vec<RequestLog>, Option<String>, Option<String>) {
    match ctx.admin.list_logs(q).await {
        Ok(p) => (p.rows, p.next_cursor, None),
        Err(e) => (Vec::new(), None, Some(e.to_string())),
    }
}

/// `GET /logs`.
#[handler]
pub async fn list(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Query(f): Query<Filters>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/logs", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let snap = ctx.snapshot.get();
    let (f, user, provider) = resolve_names(f, &snap);
    let (rows, next, error) = if user.unknown || provider.unknown {
        (Vec::new(), None, Some(l.t("filter.no_match").to_owned()))
    } else {
        read_page(&ctx, f.query(l.tz, PAGE_ROWS.min(MAX_LOG_PAGE))).await
    };
    let rows = rows.into_iter().map(|r| named(r, &snap)).collect();
    let next = next.map(|c| f.with_cursor(&c));
    html(&ListPage {
        l,
        f,
        rows,
        next,
        error,
        user,
        provider,
    })
}

/// Resolves the user and provider fields against the snapshot; the filters then carry the
/// resolved ids (so the next page's link is by id) and no typed names.
fn resolve_names(mut f: Filters, snap: &ConfigSnapshot) -> (Filters, NamePick, NamePick) {
    let (user, provider) =
        name_filter::user_and_provider(snap, (&f.user, &f.user_id), (&f.provider, &f.provider_id));
    let as_text = |id: Option<i64>| id.map(|i| i.to_string()).unwrap_or_default();
    f.user_id = as_text(user.id);
    f.provider_id = as_text(provider.id);
    f.user.clear();
    f.provider.clear();
    (f, user, provider)
}

/// One provider attempt, for display.
pub struct Attempt {
    provider: String,
    reason: String,
    outcome: String,
    class: String,
    status: String,
    duration_ms: u64,
    converted: bool,
    error: String,
}

fn wire<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn attempts(chain: &serde_json::Value) -> Vec<Attempt> {
    serde_json::from_value::<Vec<ChainEntry>>(chain.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|e| Attempt {
            provider: e.provider_name,
            reason: wire(&e.reason),
            outcome: wire(&e.outcome),
            class: e.error_class.as_ref().map(wire).unwrap_or_default(),
            status: e.status.map(|s| s.to_string()).unwrap_or_default(),
            duration_ms: e.duration_ms,
            converted: e.converted,
            error: e.error.unwrap_or_default(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "log_detail.html")]
struct DetailPage {
    l: Layout,
    row: Row,
    chain: Vec<Attempt>,
}

/// `GET /logs/:id`.
#[handler]
pub async fn detail(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Path(id): Path<i64>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/logs", false) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Ok(r) = ctx.admin.get_log(id).await else {
        return super::not_found(l);
    };
    // A key holder sees only their own user's requests.
    if let crate::adapters::http::ui::session::Viewer::KeyHolder { user, .. } = &l.viewer
        && !l.is_admin()
        && r.user_id != Some(user.id)
    {
        return super::not_found(l);
    }
    let chain = attempts(&r.provider_chain);
    let row = named(r, &ctx.snapshot.get());
    html(&DetailPage { l, row, chain })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_keeps_filters() {
        let f = Filters {
            model: "claude <x>".into(),
            status_class: "5".into(),
            ..Default::default()
        };
        assert_eq!(
            f.with_cursor("42"),
            "model=claude+%3Cx%3E&status_class=5&cursor=42"
        );
    }

    #[test]
    fn local_times_use_the_zone() {
        let t = local_time("2026-01-02T08:00", chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-02T00:00:00+00:00");
        assert!(local_time("nope", chrono_tz::UTC).is_none());
    }
}
