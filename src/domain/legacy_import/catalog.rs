//! Model prices (the latest row per model, read as LiteLLM entries) and error rules.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::fields::{clamp_i32, flag, instant, int, obj, text};
use crate::domain::failure::{ErrorClass, ErrorRule, MatchKind, StoredErrorRule};

/// The latest `price_data` of each model, read as LiteLLM entries.
pub(super) fn map_prices(
    rows: &[Value],
    unmapped: &mut Vec<String>,
) -> Vec<crate::domain::price::ModelPrice> {
    let mut latest: HashMap<String, (Option<DateTime<Utc>>, i64, &Value)> = HashMap::new();
    for row in rows {
        let Some(model) = text(row, "model_name") else {
            continue;
        };
        let Some(data) = obj(row).get("price_data") else {
            continue;
        };
        let key = (instant(row, "created_at"), int(row, "id").unwrap_or(0));
        match latest.get(model) {
            Some((at, id, _)) if (*at, *id) >= key => {}
            _ => {
                latest.insert(model.to_string(), (key.0, key.1, data));
            }
        }
    }
    let doc: Map<String, Value> = latest
        .into_iter()
        .map(|(model, (_, _, data))| (model, data.clone()))
        .collect();
    let mut prices =
        crate::domain::cost::parse_litellm_prices(&Value::Object(doc.clone())).unwrap_or_default();
    prices.sort_by(|a, b| a.model.cmp(&b.model));
    let mut skipped: Vec<&String> = doc
        .keys()
        .filter(|m| !prices.iter().any(|p| &p.model == *m))
        .collect();
    skipped.sort();
    for m in skipped {
        unmapped.push(format!(
            "price of model '{m}': no per-token input and output price (image or per-request pricing); not imported"
        ));
    }
    prices
}

fn override_message(resp: &Value) -> Option<String> {
    resp.pointer("/error/message")
        .or_else(|| resp.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub(super) fn map_error_rule(row: &Value, unmapped: &mut Vec<String>) -> Option<StoredErrorRule> {
    let id = int(row, "id").unwrap_or(0);
    let pattern = text(row, "pattern").unwrap_or("").to_string();
    let what = format!("error rule '{pattern}' (id {id})");
    let match_kind = match MatchKind::parse(text(row, "match_type").unwrap_or("regex")) {
        Ok(k) => k,
        Err(_) => {
            unmapped.push(format!("{what}: match type not known to cch; not imported"));
            return None;
        }
    };
    let override_message = match obj(row).get("override_response") {
        None | Some(Value::Null) => None,
        Some(resp) => {
            let m = override_message(resp);
            if m.is_none() {
                unmapped.push(format!(
                    "{what}: override response without an error message; only the status is kept"
                ));
            }
            m
        }
    };
    let rule = StoredErrorRule {
        id,
        rule: ErrorRule {
            pattern,
            match_kind,
            status: None,
            // The original's rules mark an upstream error as the client's own (no retry).
            class: ErrorClass::NonRetryableClientError,
            override_status: int(row, "override_status_code").and_then(|s| u16::try_from(s).ok()),
            override_message,
        },
        description: [text(row, "category"), text(row, "description")]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": "),
        enabled: flag(row, "is_enabled").unwrap_or(true),
        is_preset: false,
        priority: clamp_i32(
            int(row, "priority").unwrap_or(0),
            0,
            1_000_000,
            "priority",
            &what,
            unmapped,
        ),
    };
    match rule.rule.validate() {
        Ok(()) => Some(rule),
        Err(e) => {
            unmapped.push(format!("{what}: not imported ({e})"));
            None
        }
    }
}

/// An original `sensitive_words` row: `word`, `match_type` (contains, exact, regex),
/// `description` (the note), `is_enabled`. A regex cch's engine cannot compile is left behind.
pub(super) fn map_sensitive_word(
    row: &Value,
    unmapped: &mut Vec<String>,
) -> Option<crate::domain::sensitive_words::SensitiveWord> {
    use crate::domain::sensitive_words::{SensitiveWord, WordMatch};
    let id = int(row, "id").unwrap_or(0);
    let what = format!("sensitive word (id {id})");
    let Ok(match_type) = WordMatch::parse(text(row, "match_type").unwrap_or("contains")) else {
        unmapped.push(format!("{what}: match type not known to cch; not imported"));
        return None;
    };
    let w = SensitiveWord {
        id,
        word: text(row, "word").unwrap_or("").trim().to_string(),
        match_type,
        enabled: flag(row, "is_enabled").unwrap_or(true),
        note: text(row, "description").unwrap_or("").to_string(),
    };
    if let Err(e) = w.validate() {
        unmapped.push(format!("{what}: {e}; not imported"));
        return None;
    }
    Some(w)
}
