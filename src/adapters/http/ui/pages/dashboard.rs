//! Dashboard: the state of the gateway at a glance — configuration counts, providers whose
//! breaker is not closed, and the latest requests as a live list (the page polls itself).

use std::sync::Arc;

use askama::Template;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::logs::{Row, named, read_page};
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::admin::LogQuery;
use crate::app::context::AppContext;
use crate::domain::breaker::BreakerState;

/// Requests in the live list.
const LIVE_ROWS: i64 = 20;

/// A provider whose breaker is open or half-open.
pub struct Tripped {
    id: i64,
    name: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    l: Layout,
    providers: usize,
    providers_enabled: usize,
    users: usize,
    keys: usize,
    tripped: Vec<Tripped>,
    rows: Vec<Row>,
}

/// `GET /dashboard`.
#[handler]
pub async fn page_handler(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
) -> Response {
    let l = match page(&ctx, &ui, req, "/dashboard", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let snap = ctx.snapshot.get();
    let now = ctx.clock.now();
    let mut tripped = Vec::new();
    for p in snap.providers.iter().filter(|p| p.enabled) {
        let v = ctx.breakers.view(p, now).await;
        let state = match v.state {
            BreakerState::Closed => continue,
            BreakerState::Open => "breaker.open",
            BreakerState::HalfOpen => "breaker.half_open",
        };
        tripped.push(Tripped {
            id: p.id,
            name: p.name.clone(),
            state,
        });
    }
    let (rows, _, _) = read_page(
        &ctx,
        LogQuery {
            limit: Some(LIVE_ROWS),
            ..Default::default()
        },
    )
    .await;
    let rows = rows.into_iter().map(|r| named(r, &snap)).collect();
    html(&DashboardPage {
        l,
        providers: snap.providers.len(),
        providers_enabled: snap.providers.iter().filter(|p| p.enabled).count(),
        users: snap.users.len(),
        keys: snap.keys_by_id.len(),
        tripped,
        rows,
    })
}
