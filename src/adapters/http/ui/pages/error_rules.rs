//! Error rules: the rules that classify upstream failures, in matching order, with a form to
//! add one (validated by the admin API).

use std::sync::Arc;

use askama::Template;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::adapters::http::admin::error_rules::ErrorRuleView;
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::context::AppContext;

#[derive(Template)]
#[template(path = "error_rules.html")]
struct RulesPage {
    l: Layout,
    rows: Vec<ErrorRuleView>,
}

/// `GET /error-rules`.
#[handler]
pub async fn list(ctx: Data<&Arc<AppContext>>, ui: Data<&Arc<UiState>>, req: &Request) -> Response {
    let l = match page(&ctx, &ui, req, "/error-rules", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let rows = crate::app::error_rules::list(&ctx)
        .await
        .unwrap_or_default()
        .iter()
        .map(ErrorRuleView::from)
        .collect();
    html(&RulesPage { l, rows })
}
