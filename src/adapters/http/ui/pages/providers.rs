//! Providers: the list with routing fields and breaker state, and the create/edit form (which
//! writes through the admin API, so its validation and field errors are the API's).

use std::sync::Arc;

use askama::Template;
use chrono::{DateTime, Utc};
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};

use super::forms::LimitsForm;
use super::paging::{ListQuery, Pager, cut};
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::context::AppContext;
use crate::domain::breaker::BreakerState;
use crate::domain::provider::{Provider, ProviderType, mask_secret};

/// One provider row.
pub struct Row {
    p: Provider,
    breaker: &'static str,
    next_try_at: Option<DateTime<Utc>>,
    /// Today's requests, errors and spend (from the roll-ups), and the daily limit.
    today: Today,
}

/// A provider's figures for today.
#[derive(Default)]
struct Today {
    requests: i64,
    errors: i64,
    spend: String,
    daily_limit: Option<String>,
}

#[derive(Template)]
#[template(path = "providers.html")]
struct ListPage {
    l: Layout,
    rows: Vec<Row>,
    q: String,
    pager: Pager,
    /// Where the pager's links go.
    list_path: &'static str,
}

/// Providers shown per page: with 1,000 providers the whole list was a 1 MB page.
const PROVIDERS_PER_PAGE: usize = 100;

/// Whether `p` matches the list filter: part of its name (any case), its exact id, its group
/// or its type.
fn matches(p: &Provider, needle: &str, id: Option<i64>) -> bool {
    needle.is_empty()
        || id == Some(p.id)
        || p.name.to_lowercase().contains(needle)
        || p.group_tag.to_lowercase() == needle
        || p.provider_type.as_str() == needle
}

/// `GET /providers?q&page`: providers in routing order, 100 a page, filtered by a part of
/// the name, the exact id, group or type.
#[handler]
pub async fn list(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Query(f): Query<ListQuery>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/providers", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let snap = ctx.snapshot.get();
    let now = ctx.clock.now();
    let q = f.q.trim().to_string();
    let needle = q.trim_start_matches('#').to_lowercase();
    let id = needle.parse::<i64>().ok();
    let matching: Vec<&Provider> = snap
        .providers
        .iter()
        .filter(|p| matches(p, &needle, id))
        .collect();
    let (shown, pager) = cut(&matching, f.page, PROVIDERS_PER_PAGE);
    // One roll-up query for every provider's day (the busiest 1,000 when there are more).
    let mut today: std::collections::HashMap<String, crate::ports::stats::LedgerSums> = ctx
        .stats
        .leaderboard(
            crate::ports::stats::Dimension::Provider,
            crate::domain::periods::Period::Today,
            crate::ports::stats::Metric::Requests,
            crate::app::stats::MAX_GROUPS,
        )
        .await
        .map(|b| b.rows.into_iter().map(|r| (r.key, r.sums)).collect())
        .unwrap_or_default();
    let views = ctx.breakers.views(shown, now).await;
    let mut rows = Vec::with_capacity(shown.len());
    for (p, v) in shown.iter().zip(views) {
        let sums = today.remove(&p.id.to_string()).unwrap_or_default();
        let breaker = match v.state {
            BreakerState::Closed => "breaker.closed",
            BreakerState::Open => "breaker.open",
            BreakerState::HalfOpen => "breaker.half_open",
        };
        rows.push(Row {
            p: (*p).clone(),
            breaker,
            next_try_at: v.next_try_at,
            today: Today {
                requests: sums.requests,
                errors: sums.errors,
                spend: l.money(sums.cost_usd),
                daily_limit: p.limits.limit_daily_usd.map(|d| l.money(d)),
            },
        });
    }
    html(&ListPage {
        l,
        rows,
        q,
        pager,
        list_path: "/providers",
    })
}

/// Form values of a provider (new: defaults).
pub struct ProviderForm {
    id: i64,
    name: String,
    description: String,
    provider_type: String,
    base_url: String,
    api_key_masked: String,
    enabled: bool,
    priority: String,
    weight: String,
    cost_multiplier: String,
    group_tag: String,
    allowed_models: String,
    model_redirects: String,
    extra_client_formats: String,
    proxy_url: String,
    proxy_fallback_to_direct: bool,
    first_byte_timeout_ms: String,
    idle_timeout_ms: String,
    request_timeout_ms: String,
    failure_threshold: String,
    open_duration_ms: String,
    half_open_success_threshold: String,
    max_retry_attempts: String,
    /// Names of the custom headers set (values are never shown).
    custom_header_names: String,
    anthropic_beta: &'static str,
    anthropic_beta_list: String,
}

impl ProviderForm {
    fn of(p: &Provider) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            description: p.description.clone(),
            provider_type: p.provider_type.as_str().to_string(),
            base_url: p.base_url.clone(),
            api_key_masked: mask_secret(&p.api_key),
            enabled: p.enabled,
            priority: p.priority.to_string(),
            weight: p.weight.to_string(),
            cost_multiplier: p.cost_multiplier.normalize().to_string(),
            group_tag: p.group_tag.clone(),
            allowed_models: p.allowed_models.join("\n"),
            model_redirects: p
                .model_redirects
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join("\n"),
            extra_client_formats: p.extra_client_formats.join(","),
            proxy_url: p.proxy_url.clone().unwrap_or_default(),
            proxy_fallback_to_direct: p.proxy_fallback_to_direct,
            first_byte_timeout_ms: p.timeouts.first_byte_timeout_ms.to_string(),
            idle_timeout_ms: p.timeouts.idle_timeout_ms.to_string(),
            request_timeout_ms: p.timeouts.request_timeout_ms.to_string(),
            failure_threshold: p.breaker.failure_threshold.to_string(),
            open_duration_ms: p.breaker.open_duration_ms.to_string(),
            half_open_success_threshold: p.breaker.half_open_success_threshold.to_string(),
            max_retry_attempts: p
                .max_retry_attempts
                .map(|n| n.to_string())
                .unwrap_or_default(),
            custom_header_names: p
                .shaping
                .custom_headers
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            anthropic_beta: p.shaping.anthropic_beta.as_str(),
            anthropic_beta_list: p.shaping.anthropic_beta_list.join(","),
        }
    }

    fn blank() -> Self {
        Self {
            id: 0,
            name: String::new(),
            description: String::new(),
            provider_type: "claude".into(),
            base_url: String::new(),
            api_key_masked: String::new(),
            enabled: true,
            priority: "0".into(),
            weight: "1".into(),
            cost_multiplier: "1".into(),
            group_tag: String::new(),
            allowed_models: String::new(),
            model_redirects: String::new(),
            extra_client_formats: String::new(),
            proxy_url: String::new(),
            proxy_fallback_to_direct: false,
            first_byte_timeout_ms: "30000".into(),
            idle_timeout_ms: "60000".into(),
            request_timeout_ms: "120000".into(),
            failure_threshold: "5".into(),
            open_duration_ms: "1800000".into(),
            half_open_success_threshold: "2".into(),
            max_retry_attempts: String::new(),
            custom_header_names: String::new(),
            anthropic_beta: "passthrough",
            anthropic_beta_list: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "provider_form.html")]
struct FormPage {
    l: Layout,
    f: ProviderForm,
    lim: LimitsForm,
    types: Vec<&'static str>,
}

fn type_names() -> Vec<&'static str> {
    ProviderType::ALL
        .into_iter()
        .map(ProviderType::as_str)
        .collect()
}

/// `GET /providers/new`.
#[handler]
pub async fn new(ctx: Data<&Arc<AppContext>>, ui: Data<&Arc<UiState>>, req: &Request) -> Response {
    let l = match page(&ctx, &ui, req, "/providers", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    html(&FormPage {
        l,
        f: ProviderForm::blank(),
        lim: LimitsForm::of(&Default::default(), false),
        types: type_names(),
    })
}

/// `GET /providers/:id`.
#[handler]
pub async fn edit(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Path(id): Path<i64>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/providers", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(p) = ctx.snapshot.get().provider(id).cloned() else {
        return super::not_found(l);
    };
    html(&FormPage {
        l,
        lim: LimitsForm::of(&p.limits, false),
        f: ProviderForm::of(&p),
        types: type_names(),
    })
}
