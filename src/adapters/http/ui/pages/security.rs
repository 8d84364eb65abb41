//! The security pages: the sensitive-word rules (list, toggle, delete, add; validated by the
//! admin API) and the admin audit log (filtered, paged by id).

use std::sync::Arc;

use askama::Template;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::adapters::http::admin::sensitive_words::SensitiveWordView;
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::context::AppContext;
use crate::domain::audit::AuditFilter;

/// Entries per audit page.
const AUDIT_PAGE: i64 = 100;

#[derive(Template)]
#[template(path = "sensitive_words.html")]
struct WordsPage {
    l: Layout,
    rows: Vec<SensitiveWordView>,
}

/// `GET /sensitive-words`.
#[handler]
pub async fn words(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
) -> Response {
    let l = match page(&ctx, &ui, req, "/sensitive-words", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let rows = crate::app::sensitive_words::list(&ctx)
        .await
        .unwrap_or_default()
        .iter()
        .map(SensitiveWordView::from)
        .collect();
    html(&WordsPage { l, rows })
}

/// The audit page's filters (query string).
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    before_id: Option<i64>,
}

/// One entry as shown: changes as (field, old, new) texts.
struct AuditRow {
    when: String,
    actor: String,
    ip: String,
    action: String,
    route: String,
    target: String,
    status: u16,
    changes: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "audit_logs.html")]
struct AuditPage {
    l: Layout,
    actor: String,
    action: String,
    target: String,
    rows: Vec<AuditRow>,
    next: Option<String>,
}

fn shown(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "—".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `GET /audit-logs`.
#[handler]
pub async fn audit(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Query(q): Query<AuditQuery>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/audit-logs", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let filter = AuditFilter {
        actor: Some(q.actor.trim().to_string()).filter(|s| !s.is_empty()),
        action: Some(q.action.trim().to_string()).filter(|s| !s.is_empty()),
        target_prefix: Some(q.target.trim().trim_matches('/').to_string())
            .filter(|s| !s.is_empty()),
        before_id: q.before_id,
        limit: AUDIT_PAGE,
        ..AuditFilter::default()
    };
    let entries = ctx.audit.list_audit(&filter).await.unwrap_or_default();
    let next = (entries.len() as i64 == AUDIT_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|id| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            s.append_pair("actor", &q.actor)
                .append_pair("action", &q.action)
                .append_pair("target", &q.target)
                .append_pair("before_id", &id.to_string());
            format!("/audit-logs?{}", s.finish())
        });
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            when: l.time(e.at),
            actor: e.actor,
            ip: e.ip.unwrap_or_default(),
            action: e.action,
            route: e.route,
            target: e.target,
            status: e.status,
            changes: e
                .changes
                .iter()
                .map(|c| {
                    (
                        c.field.clone(),
                        shown(c.old.as_ref()),
                        shown(c.new.as_ref()),
                    )
                })
                .collect(),
        })
        .collect();
    html(&AuditPage {
        l,
        actor: q.actor,
        action: q.action,
        target: q.target,
        rows,
        next,
    })
}
