//! Prices: the effective price table (built-in and admin prices), models recently used without
//! a price, the edit form and the LiteLLM import.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::admin::{LogQuery, PriceSource};
use crate::app::context::AppContext;
use crate::domain::price::ModelPrice;

/// How many recent requests are scanned for models without a price.
const RECENT_ROWS: i64 = 1000;

/// One price row.
pub struct Row {
    p: ModelPrice,
    custom: bool,
}

#[derive(Template)]
#[template(path = "prices.html")]
struct PricesPage {
    l: Layout,
    rows: Vec<Row>,
    unpriced: Vec<String>,
}

/// `GET /prices`.
#[handler]
pub async fn list(ctx: Data<&Arc<AppContext>>, ui: Data<&Arc<UiState>>, req: &Request) -> Response {
    let l = match page(&ctx, &ui, req, "/prices", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let rows = ctx
        .admin
        .effective_prices()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(p, s)| Row {
            p,
            custom: s == PriceSource::Custom,
        })
        .collect();
    let recent = ctx
        .admin
        .list_logs(LogQuery {
            limit: Some(RECENT_ROWS),
            ..Default::default()
        })
        .await
        .map(|p| p.rows)
        .unwrap_or_default();
    let unpriced: BTreeSet<String> = recent
        .into_iter()
        .filter(|r| !r.cost_known && r.status_code < 400)
        .filter_map(|r| r.forwarded_model.or(r.requested_model))
        .collect();
    html(&PricesPage {
        l,
        rows,
        unpriced: unpriced.into_iter().collect(),
    })
}
