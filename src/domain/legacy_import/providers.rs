//! Providers of the original: type, routing, limits, timeouts, breaker and proxy settings.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::fields::{
    MAX_TIMEOUT_MS, clamp_i32, deleted, flag, instant, int, limits, money, non_empty, obj, text,
};
use crate::domain::provider::{BreakerSettings, Provider, ProviderType, Timeouts};

/// `allowed_models`: plain names and exact rules map; any other rule kind does not.
fn allowed_models(row: &Value, what: &str, unmapped: &mut Vec<String>) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut lost = false;
    if let Some(Value::Array(items)) = obj(row).get("allowed_models") {
        for item in items {
            match item {
                Value::String(s) => out.push(s.clone()),
                Value::Object(o) => {
                    let kind = o
                        .get("matchType")
                        .and_then(Value::as_str)
                        .unwrap_or("exact");
                    let pattern = o.get("pattern").and_then(Value::as_str).unwrap_or("");
                    if kind == "exact" && !pattern.is_empty() {
                        out.push(pattern.to_string());
                    } else {
                        lost = true;
                        unmapped.push(format!(
                            "{what}: allowed model rule {kind} '{pattern}' not mapped (cch matches exact names)"
                        ));
                    }
                }
                other => {
                    lost = true;
                    unmapped.push(format!("{what}: allowed model entry {other} not mapped"));
                }
            }
        }
    }
    (out, lost)
}

/// `model_redirects`: the legacy `{from: to}` map, or ordered rules of which exact ones map.
fn model_redirects(
    row: &Value,
    what: &str,
    unmapped: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match obj(row).get("model_redirects") {
        Some(Value::Object(m)) => {
            for (from, to) in m {
                match to.as_str() {
                    Some(t) => {
                        out.insert(from.clone(), t.to_string());
                    }
                    None => {
                        unmapped.push(format!("{what}: redirect of '{from}' is not a model name"))
                    }
                }
            }
        }
        Some(Value::Array(rules)) => {
            for r in rules {
                let kind = r
                    .get("matchType")
                    .and_then(Value::as_str)
                    .unwrap_or("exact");
                let source = r.get("source").and_then(Value::as_str).unwrap_or("");
                let target = r.get("target").and_then(Value::as_str).unwrap_or("");
                if kind == "exact" && !source.is_empty() && !target.is_empty() {
                    out.entry(source.to_string())
                        .or_insert_with(|| target.to_string());
                } else {
                    unmapped.push(format!(
                        "{what}: redirect rule {kind} '{source}' → '{target}' not mapped (cch redirects exact names)"
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

fn timeout(row: &Value, col: &str, default: i64, what: &str, unmapped: &mut Vec<String>) -> i64 {
    match int(row, col) {
        None => default,
        Some(0) => {
            unmapped.push(format!(
                "{what}: {col} 0 (no limit) became {MAX_TIMEOUT_MS} ms, cch's longest"
            ));
            MAX_TIMEOUT_MS
        }
        Some(v) if v < 1_000 => {
            unmapped.push(format!(
                "{what}: {col} {v} ms raised to 1000 ms, cch's shortest"
            ));
            1_000
        }
        Some(v) if v > MAX_TIMEOUT_MS => {
            unmapped.push(format!(
                "{what}: {col} {v} ms lowered to {MAX_TIMEOUT_MS} ms"
            ));
            MAX_TIMEOUT_MS
        }
        Some(v) => v,
    }
}

/// Provider columns with no counterpart in cch, reported when they hold a non-default value.
const PROVIDER_EXTRAS: [&str; 13] = [
    "group_priorities",
    "allowed_clients",
    "blocked_clients",
    "active_time_start",
    "active_time_end",
    "cache_ttl_preference",
    "context_1m_preference",
    "mcp_passthrough_url",
    "codex_reasoning_effort_preference",
    "anthropic_max_tokens_preference",
    "anthropic_thinking_budget_preference",
    "gemini_google_search_preference",
    "website_url",
];

/// The original's `custom_headers` (a JSON object of strings) as cch's request shaping; a
/// header cch reserves (credentials, framing) or a malformed one is left behind and reported.
fn custom_headers(
    row: &Value,
    what: &str,
    unmapped: &mut Vec<String>,
) -> crate::domain::request_shaping::RequestShaping {
    let mut shaping = crate::domain::request_shaping::RequestShaping::default();
    let Some(Value::Object(map)) = row.get("custom_headers") else {
        return shaping;
    };
    for (name, value) in map {
        let Some(v) = value.as_str() else {
            unmapped.push(format!(
                "{what}: custom header `{name}` is not text; not imported"
            ));
            continue;
        };
        let mut one = crate::domain::request_shaping::RequestShaping::default();
        one.custom_headers.insert(name.clone(), v.to_string());
        one.normalize();
        match one.validate() {
            Ok(()) => shaping.custom_headers.append(&mut one.custom_headers),
            Err(e) => unmapped.push(format!("{what}: custom header not imported ({e})")),
        }
    }
    shaping
}

pub(super) fn map_provider(
    row: &Value,
    now: DateTime<Utc>,
    unmapped: &mut Vec<String>,
) -> Option<Provider> {
    let id = int(row, "id").unwrap_or(0);
    let name = text(row, "name").unwrap_or("").trim().to_string();
    let what = format!("provider '{name}' (id {id})");
    if deleted(row) {
        unmapped.push(format!("{what}: deleted there; not imported"));
        return None;
    }
    let type_name = text(row, "provider_type").unwrap_or("claude");
    let Ok(provider_type) = ProviderType::parse(type_name) else {
        unmapped.push(format!(
            "{what}: provider type '{type_name}' unknown to cch; not imported"
        ));
        return None;
    };
    for col in PROVIDER_EXTRAS {
        if non_empty(row, col) && text(row, col) != Some("inherit") {
            unmapped.push(format!("{what}: {col} not mapped"));
        }
    }
    for col in [
        "preserve_client_ip",
        "disable_session_reuse",
        "swap_cache_ttl_billing",
    ] {
        if flag(row, col) == Some(true) {
            unmapped.push(format!("{what}: {col} not mapped"));
        }
    }
    if int(row, "rpm").unwrap_or(0) > 0 {
        unmapped.push(format!("{what}: the deprecated rpm column not mapped"));
    }
    let (allowed_models, lost_rules) = allowed_models(row, &what, unmapped);
    let mut enabled = flag(row, "is_enabled").unwrap_or(true);
    if lost_rules && enabled {
        // Dropping a restriction would widen what the provider serves: import it switched off.
        enabled = false;
        unmapped.push(format!(
            "{what}: imported disabled because some allowed-model rules did not map; check them and enable it"
        ));
    }
    let defaults = Timeouts::default();
    let breaker = BreakerSettings::default();
    let threshold = match int(row, "circuit_breaker_failure_threshold") {
        Some(0) => {
            unmapped.push(format!(
                "{what}: breaker threshold 0 (breaker off) became 100, cch's highest"
            ));
            100
        }
        Some(v) => clamp_i32(
            v,
            1,
            100,
            "circuit_breaker_failure_threshold",
            &what,
            unmapped,
        ),
        None => breaker.failure_threshold,
    };
    let provider = Provider {
        id,
        description: text(row, "description").unwrap_or("").to_string(),
        provider_type,
        base_url: text(row, "url").unwrap_or("").trim().to_string(),
        api_key: text(row, "key").unwrap_or("").to_string(),
        enabled,
        priority: clamp_i32(
            int(row, "priority").unwrap_or(0),
            0,
            1_000_000,
            "priority",
            &what,
            unmapped,
        ),
        weight: clamp_i32(
            int(row, "weight").unwrap_or(1),
            0,
            100,
            "weight",
            &what,
            unmapped,
        ),
        cost_multiplier: money(row, "cost_multiplier").unwrap_or(Decimal::ONE),
        group_tag: match text(row, "group_tag").map(str::trim) {
            None | Some("") => "default".to_string(),
            Some(t) => t.to_string(),
        },
        allowed_models,
        model_redirects: model_redirects(row, &what, unmapped),
        // The original routes each format to providers of the same type only.
        extra_client_formats: Vec::new(),
        proxy_url: text(row, "proxy_url")
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string),
        proxy_fallback_to_direct: flag(row, "proxy_fallback_to_direct").unwrap_or(false),
        limits: limits(row, "limit_daily_usd", &what, unmapped),
        timeouts: Timeouts {
            first_byte_timeout_ms: timeout(
                row,
                "first_byte_timeout_streaming_ms",
                defaults.first_byte_timeout_ms,
                &what,
                unmapped,
            ),
            idle_timeout_ms: timeout(
                row,
                "streaming_idle_timeout_ms",
                defaults.idle_timeout_ms,
                &what,
                unmapped,
            ),
            request_timeout_ms: timeout(
                row,
                "request_timeout_non_streaming_ms",
                defaults.request_timeout_ms,
                &what,
                unmapped,
            ),
        },
        breaker: BreakerSettings {
            failure_threshold: threshold,
            open_duration_ms: match int(row, "circuit_breaker_open_duration") {
                Some(v) => i64::from(clamp_i32(
                    v,
                    60_000,
                    86_400_000,
                    "circuit_breaker_open_duration",
                    &what,
                    unmapped,
                )),
                None => breaker.open_duration_ms,
            },
            half_open_success_threshold: match int(
                row,
                "circuit_breaker_half_open_success_threshold",
            ) {
                Some(v) => clamp_i32(
                    v,
                    1,
                    10,
                    "circuit_breaker_half_open_success_threshold",
                    &what,
                    unmapped,
                ),
                None => breaker.half_open_success_threshold,
            },
        },
        max_retry_attempts: int(row, "max_retry_attempts")
            .map(|v| clamp_i32(v, 1, 10, "max_retry_attempts", &what, unmapped)),
        shaping: custom_headers(row, &what, unmapped),
        created_at: instant(row, "created_at").unwrap_or(now),
        updated_at: now,
        name,
    };
    match provider.validate() {
        Ok(()) => Some(provider),
        Err(e) => {
            unmapped.push(format!("{what}: not imported ({e})"));
            None
        }
    }
}
