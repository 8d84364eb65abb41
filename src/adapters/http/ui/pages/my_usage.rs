//! My usage: what a key holder may see — their key's and user's limits with each window's used,
//! remaining and reset time, and their key's own request log.

use std::sync::Arc;

use askama::Template;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::forms::{UsageRow, usage_rows};
use super::logs::{Row, read_page};
use crate::adapters::http::admin::usage::usage_view;
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::adapters::http::ui::session::Viewer;
use crate::app::admin::LogQuery;
use crate::app::context::AppContext;
use crate::app::limits::Scope;

/// Rows per page of the own log.
const PAGE_ROWS: i64 = 50;

#[derive(Template)]
#[template(path = "my_usage.html")]
struct MyUsagePage {
    l: Layout,
    has_key: bool,
    rate_limiting: bool,
    key_usage: Vec<UsageRow>,
    user_usage: Vec<UsageRow>,
    rows: Vec<Row>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct Params {
    cursor: Option<String>,
}

/// `GET /my-usage`.
#[handler]
pub async fn page_handler(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Query(p): Query<Params>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/my-usage", false) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Viewer::KeyHolder { user, key } = l.viewer.clone() else {
        return html(&MyUsagePage {
            l,
            has_key: false,
            rate_limiting: false,
            key_usage: Vec::new(),
            user_usage: Vec::new(),
            rows: Vec::new(),
            next: None,
        });
    };
    let (mut key_usage, mut user_usage) = (Vec::new(), Vec::new());
    if let Some(limits) = ctx.limits.as_ref() {
        if let Ok(v) = usage_view(&ctx, limits, Scope::Key, key.id).await {
            key_usage = usage_rows(&l, &v.windows);
        }
        if let Ok(v) = usage_view(&ctx, limits, Scope::User, user.id).await {
            user_usage = usage_rows(&l, &v.windows);
        }
    }
    let (rows, next, _) = read_page(
        &ctx,
        LogQuery {
            key_id: Some(key.id),
            limit: Some(PAGE_ROWS),
            cursor: p.cursor,
            ..Default::default()
        },
    )
    .await;
    let snap = ctx.snapshot.get();
    let rows = rows
        .into_iter()
        .map(|r| super::logs::named(r, &snap))
        .collect();
    html(&MyUsagePage {
        l,
        has_key: true,
        rate_limiting: ctx.limits.is_some(),
        key_usage,
        user_usage,
        rows,
        next,
    })
}
