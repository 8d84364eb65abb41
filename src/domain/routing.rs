//! Provider selection for one request, following the original Claude Code Hub.
//!
//! The filters run in a fixed order (enabled → format → model → group → already tried → breaker
//! → spend limits → concurrency); of what survives, only the best priority tier is kept,
//! providers that speak the client's format are preferred over converting ones, the rest is
//! ordered by cost multiplier and one is drawn at random by weight. Every provider that is not a
//! candidate is listed with the reason, for the decision chain in the request log.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::format::{ClientFormat, needs_conversion, provider_serves};
use super::provider::{Provider, split_tags};

/// Why a provider was not a candidate for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExclusionReason {
    /// An admin disabled it.
    Disabled,
    /// It neither speaks the client's format nor accepts it through conversion.
    FormatMismatch,
    /// Its model allow-list holds neither the requested nor the redirected model.
    ModelNotAllowed,
    /// None of its group tags is one of the user's provider groups.
    GroupMismatch,
    /// It already failed earlier in this request.
    AlreadyTried,
    /// Its circuit breaker is open (until the given instant, when known).
    BreakerOpen {
        /// When the breaker is expected to go half-open.
        until: Option<DateTime<Utc>>,
    },
    /// One of its spend windows is used up.
    OverSpendLimit {
        /// The window that is full, e.g. `5h`, `daily`, `weekly`, `monthly`, `total`.
        window: String,
    },
    /// All of its concurrent-session slots are taken.
    ConcurrencyFull,
    /// Eligible, but a better (lower number) priority tier had an eligible provider.
    LowerPriority,
    /// Eligible in the best tier, but it would need a conversion while providers speaking the
    /// client's format natively were available in the same tier.
    ConversionAvoided,
}

/// One provider left out of the choice and why, as recorded in the provider chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The provider's id.
    pub provider_id: i64,
    /// The provider's name at the time of the decision.
    pub provider_name: String,
    /// Why it was left out.
    pub reason: ExclusionReason,
}

/// What the request asks for, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRequest<'a> {
    /// The client's wire format.
    pub format: ClientFormat,
    /// The model the client asked for.
    pub model: &'a str,
    /// The user's comma-separated provider groups (empty: every provider is allowed).
    pub user_groups: &'a str,
    /// Only providers speaking the client's format natively (a request no converter can carry,
    /// such as Codex's remote compaction).
    pub native_only: bool,
}

/// The live state routing consults, gathered by the caller from the breaker, counters and the
/// request's own history (the domain reads no stores).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteState {
    /// Providers that already failed in this request.
    pub tried: HashSet<i64>,
    /// Providers whose breaker is open, with the instant it is expected to half-open.
    pub open_breakers: HashMap<i64, Option<DateTime<Utc>>>,
    /// Providers over a spend limit, with the name of the full window.
    pub over_limit: HashMap<i64, String>,
    /// Providers whose concurrent-session limit is already reached.
    pub concurrency_full: HashSet<i64>,
}

/// The outcome of a successful selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The chosen provider.
    pub provider_id: i64,
    /// The model name to forward upstream (after the provider's redirect).
    pub forwarded_model: String,
    /// Whether the request must be converted to the provider's format.
    pub needs_conversion: bool,
    /// The providers that took part in the weighted draw, cheapest first (includes the choice).
    pub candidates: Vec<i64>,
    /// Every other provider and why it was left out.
    pub excluded: Vec<Exclusion>,
}

/// Nothing could serve the request: the message for the 503 and the per-provider reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct NoProvider {
    /// A human explanation of why no provider was available.
    pub message: String,
    /// Every provider and why it was left out.
    pub excluded: Vec<Exclusion>,
}

/// The name forwarded to `p` for a requested model (its redirect, else the name unchanged).
pub fn forwarded_model<'a>(p: &'a Provider, requested: &'a str) -> &'a str {
    p.model_redirects
        .get(requested)
        .map(String::as_str)
        .unwrap_or(requested)
}

/// Whether `p` may serve `requested` (an empty allow-list allows every model; otherwise the
/// requested or the redirected name must be listed).
pub fn model_allowed(p: &Provider, requested: &str) -> bool {
    if p.allowed_models.is_empty() {
        return true;
    }
    let redirected = forwarded_model(p, requested);
    p.allowed_models
        .iter()
        .any(|m| m == requested || m == redirected)
}

/// Whether a user with the comma-separated `user_groups` may use `p`. A user without groups may
/// use every provider; a user with groups only providers sharing at least one tag.
pub fn group_allows(p: &Provider, user_groups: &str) -> bool {
    let mut wanted = split_tags(user_groups).peekable();
    if wanted.peek().is_none() {
        return true;
    }
    let tags: Vec<&str> = p.group_tags().collect();
    wanted.any(|g| tags.contains(&g))
}

/// The static filters (config only): disabled, format, model, group.
fn static_check(p: &Provider, req: &RouteRequest<'_>) -> Result<(), ExclusionReason> {
    if !p.enabled {
        return Err(ExclusionReason::Disabled);
    }
    if !provider_serves(p, req.format)
        || (req.native_only && p.provider_type.native_format() != req.format)
    {
        return Err(ExclusionReason::FormatMismatch);
    }
    if !model_allowed(p, req.model) {
        return Err(ExclusionReason::ModelNotAllowed);
    }
    if !group_allows(p, req.user_groups) {
        return Err(ExclusionReason::GroupMismatch);
    }
    Ok(())
}

/// Whether `p` passes the static filters for `req`: the only providers whose live state
/// (breaker, spend, sessions) selection can ever consult, so the only ones worth reading it for.
pub fn may_serve(p: &Provider, req: &RouteRequest<'_>) -> bool {
    static_check(p, req).is_ok()
}

/// The live filters: tried, breaker, spend, concurrency.
fn live_check(p: &Provider, state: &RouteState, check_tried: bool) -> Result<(), ExclusionReason> {
    if check_tried && state.tried.contains(&p.id) {
        return Err(ExclusionReason::AlreadyTried);
    }
    if let Some(until) = state.open_breakers.get(&p.id) {
        return Err(ExclusionReason::BreakerOpen { until: *until });
    }
    if let Some(window) = state.over_limit.get(&p.id) {
        return Err(ExclusionReason::OverSpendLimit {
            window: window.clone(),
        });
    }
    if state.concurrency_full.contains(&p.id) {
        return Err(ExclusionReason::ConcurrencyFull);
    }
    Ok(())
}

/// Runs every filter of a provider in the original's order; `Err` carries the first that failed.
pub fn check_provider(
    p: &Provider,
    req: &RouteRequest<'_>,
    state: &RouteState,
) -> Result<(), ExclusionReason> {
    static_check(p, req)?;
    live_check(p, state, true)
}

/// Whether the provider a session is bound to may serve this request again: the same filters as
/// selection except priority and weight (and "already tried", which the caller handles by not
/// reusing after a failure). The caller also requires the conversation to have history.
pub fn session_provider_still_eligible(
    p: &Provider,
    req: &RouteRequest<'_>,
    state: &RouteState,
) -> Result<(), ExclusionReason> {
    static_check(p, req)?;
    live_check(p, state, false)
}

/// Picks an index by weight: probability `w / Σw`; when every weight is zero, uniformly.
/// `rand` must return a number in `[0, 1)`; values outside are clamped.
pub fn weighted_pick(weights: &[u64], rand: &mut impl FnMut() -> f64) -> Option<usize> {
    if weights.is_empty() {
        return None;
    }
    let r = rand();
    let r = if r.is_finite() {
        r.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let total: u64 = weights.iter().fold(0u64, |a, w| a.saturating_add(*w));
    let last = weights.len() - 1;
    if total == 0 {
        // Truncation is the intended floor here.
        let idx = (r * weights.len() as f64) as usize;
        return Some(idx.min(last));
    }
    let target = r * total as f64;
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += *w as f64;
        if target < acc {
            return Some(i);
        }
    }
    // r == 1.0 or rounding: the last provider with a non-zero weight.
    weights.iter().rposition(|w| *w > 0).or(Some(last))
}

/// Chooses the provider for a request among `providers` (the config snapshot), or explains why
/// none can serve it. `rand` returns numbers in `[0, 1)`.
pub fn select_provider(
    providers: &[Provider],
    req: &RouteRequest<'_>,
    state: &RouteState,
    rand: &mut impl FnMut() -> f64,
) -> Result<Selection, NoProvider> {
    let mut excluded = Vec::new();
    let mut eligible: Vec<&Provider> = Vec::new();
    for p in providers {
        match check_provider(p, req, state) {
            Ok(()) => eligible.push(p),
            Err(reason) => excluded.push(exclusion(p, reason)),
        }
    }
    let Some(best) = eligible.iter().map(|p| p.priority).min() else {
        let message = explain(providers, req, &excluded);
        return Err(NoProvider { message, excluded });
    };
    let (tier, lower): (Vec<&Provider>, Vec<&Provider>) =
        eligible.into_iter().partition(|p| p.priority == best);
    excluded.extend(
        lower
            .into_iter()
            .map(|p| exclusion(p, ExclusionReason::LowerPriority)),
    );
    let any_native = tier.iter().any(|p| !needs_conversion(p, req.format));
    let (mut tier, converting): (Vec<&Provider>, Vec<&Provider>) = tier
        .into_iter()
        .partition(|p| !any_native || !needs_conversion(p, req.format));
    excluded.extend(
        converting
            .into_iter()
            .map(|p| exclusion(p, ExclusionReason::ConversionAvoided)),
    );
    tier.sort_by(|a, b| {
        a.cost_multiplier
            .cmp(&b.cost_multiplier)
            .then(a.id.cmp(&b.id))
    });
    let weights: Vec<u64> = tier
        .iter()
        .map(|p| u64::try_from(p.weight).unwrap_or(0))
        .collect();
    let chosen = weighted_pick(&weights, rand).and_then(|i| tier.get(i).copied());
    let Some(chosen) = chosen else {
        // Unreachable in practice (the tier is non-empty); stay total anyway.
        let message = "no provider is available".to_string();
        return Err(NoProvider { message, excluded });
    };
    Ok(Selection {
        provider_id: chosen.id,
        forwarded_model: forwarded_model(chosen, req.model).to_string(),
        needs_conversion: needs_conversion(chosen, req.format),
        candidates: tier.iter().map(|p| p.id).collect(),
        excluded,
    })
}

fn exclusion(p: &Provider, reason: ExclusionReason) -> Exclusion {
    Exclusion {
        provider_id: p.id,
        provider_name: p.name.clone(),
        reason,
    }
}

/// Builds the 503 message from the stage at which the last provider dropped out.
fn explain(providers: &[Provider], req: &RouteRequest<'_>, excluded: &[Exclusion]) -> String {
    use ExclusionReason as R;
    let count = |f: &dyn Fn(&R) -> bool| excluded.iter().filter(|e| f(&e.reason)).count();
    let total = providers.len();
    if total == 0 {
        return "no provider is configured".to_string();
    }
    let disabled = count(&|r| matches!(r, R::Disabled));
    if disabled == total {
        return "no provider is enabled".to_string();
    }
    let format = count(&|r| matches!(r, R::FormatMismatch));
    if disabled + format == total {
        return format!("no enabled provider accepts {} requests", req.format);
    }
    let model = count(&|r| matches!(r, R::ModelNotAllowed));
    if disabled + format + model == total {
        return format!("model '{}' is not allowed by any provider", req.model);
    }
    let group = count(&|r| matches!(r, R::GroupMismatch));
    if disabled + format + model + group == total {
        return format!(
            "no provider in your group(s) '{}' can serve model '{}' for {} requests",
            req.user_groups.trim(),
            req.model,
            req.format
        );
    }
    let tried = count(&|r| matches!(r, R::AlreadyTried));
    let breaker = count(&|r| matches!(r, R::BreakerOpen { .. }));
    let limit = count(&|r| matches!(r, R::OverSpendLimit { .. }));
    let busy = count(&|r| matches!(r, R::ConcurrencyFull));
    let n = tried + breaker + limit + busy;
    if tried == n {
        return format!("every provider failed in this request ({n} tried)");
    }
    if breaker == n {
        let soonest = excluded
            .iter()
            .filter_map(|e| match &e.reason {
                R::BreakerOpen { until } => *until,
                _ => None,
            })
            .min();
        return match soonest {
            Some(t) => format!(
                "all {n} eligible providers have open circuit breakers (the first should recover at {})",
                t.to_rfc3339()
            ),
            None => format!("all {n} eligible providers have open circuit breakers"),
        };
    }
    if limit == n {
        return format!("all {n} eligible providers are over their spend limits");
    }
    if busy == n {
        return format!("all {n} eligible providers are at their concurrent-session limit");
    }
    let parts: Vec<String> = [
        (tried, "already failed in this request"),
        (breaker, "circuit breaker open"),
        (limit, "over spend limit"),
        (busy, "concurrent-session limit reached"),
    ]
    .into_iter()
    .filter(|(c, _)| *c > 0)
    .map(|(c, what)| format!("{c} {what}"))
    .collect();
    format!(
        "none of the {n} eligible providers is available: {}",
        parts.join(", ")
    )
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
