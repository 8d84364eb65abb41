//! Notifications: the webhook targets (toggle, test, delete, add; validated by the admin API)
//! and the latest deliveries, refreshed in place.

use std::sync::Arc;

use askama::Template;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::adapters::http::admin::notifications::TargetView;
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::context::AppContext;
use crate::domain::notify::EventKind;
use crate::domain::notify::target::TargetKind;

/// Deliveries shown.
const DELIVERIES_SHOWN: u32 = 50;

/// One delivery as shown.
struct DeliveryRow {
    when: String,
    target: String,
    event: String,
    attempt: u32,
    outcome: String,
    status: String,
    answer: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    l: Layout,
    targets: Vec<TargetView>,
    kinds: Vec<&'static str>,
    events_hint: String,
    deliveries: Vec<DeliveryRow>,
}

/// `GET /notifications`.
#[handler]
pub async fn list(ctx: Data<&Arc<AppContext>>, ui: Data<&Arc<UiState>>, req: &Request) -> Response {
    let l = match page(&ctx, &ui, req, "/notifications", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let store = ctx.notifications.store();
    let targets = store
        .list_targets()
        .await
        .unwrap_or_default()
        .iter()
        .map(TargetView::from)
        .collect();
    let deliveries = store
        .list_deliveries(None, None, DELIVERIES_SHOWN)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|d| DeliveryRow {
            when: l.time(d.at),
            target: d.target_name,
            event: d.event,
            attempt: d.attempt,
            outcome: d.outcome,
            status: d.status.map_or_else(|| "—".into(), |s| s.to_string()),
            answer: d.answer,
        })
        .collect();
    let events_hint = EventKind::ALL
        .iter()
        .filter(|e| **e != EventKind::Test)
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    html(&NotificationsPage {
        l,
        targets,
        kinds: TargetKind::ALL.iter().map(|k| k.as_str()).collect(),
        events_hint,
        deliveries,
    })
}
