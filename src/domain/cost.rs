//! The cost of a request: tokens × price per million × the provider's cost multiplier.
//!
//! Money is `rust_decimal` throughout; the price list comes from a built-in default table or an
//! import of LiteLLM's public price file, whose per-token numbers are converted exactly.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use super::price::ModelPrice;
use super::usage::Usage;

const MILLION: i64 = 1_000_000;

/// Computes the cost of `usage` at `price` (per million tokens) times `multiplier`.
/// Returns `(cost, known)`: an unknown model costs 0 and `known` is false, so logs can say so.
pub fn cost(usage: &Usage, price: Option<&ModelPrice>, multiplier: Decimal) -> (Decimal, bool) {
    let Some(p) = price else {
        return (Decimal::ZERO, false);
    };
    let parts = [
        (usage.input_tokens, p.input_per_mtok),
        (usage.output_tokens, p.output_per_mtok),
        (usage.cache_creation_5m_tokens, p.cache_write_5m_per_mtok),
        (usage.cache_creation_1h_tokens, p.cache_write_1h_per_mtok),
        (usage.cache_read_tokens, p.cache_read_per_mtok),
    ];
    let mut micro = Decimal::ZERO;
    for (tokens, per_mtok) in parts {
        let term = Decimal::from(tokens)
            .checked_mul(per_mtok)
            .unwrap_or(Decimal::MAX);
        micro = micro.checked_add(term).unwrap_or(Decimal::MAX);
    }
    let usd = micro / Decimal::from(MILLION);
    (
        usd.checked_mul(multiplier)
            .unwrap_or(Decimal::MAX)
            .normalize(),
        true,
    )
}

/// Finds the price of `model`: the exact name first, then lower-cased, without a provider prefix
/// (`anthropic/claude-…`), without a date suffix (`claude-sonnet-4-5-20250929`,
/// `gpt-4o-2024-08-06`, `…@20250929`), and both.
pub fn find_price<'a>(prices: &'a [ModelPrice], model: &str) -> Option<&'a ModelPrice> {
    let lower = model.trim().to_ascii_lowercase();
    let unprefixed = lower.rsplit('/').next().unwrap_or(&lower).to_string();
    let candidates = [
        model.to_string(),
        lower.clone(),
        strip_date_suffix(&lower).to_string(),
        unprefixed.clone(),
        strip_date_suffix(&unprefixed).to_string(),
    ];
    candidates
        .iter()
        .find_map(|c| prices.iter().find(|p| p.model == *c))
}

/// Removes a trailing release date: `-YYYYMMDD`, `@YYYYMMDD` or `-YYYY-MM-DD`.
pub fn strip_date_suffix(model: &str) -> &str {
    let b = model.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let n = b.len();
    if n > 11 {
        let tail = b.get(n - 11..).unwrap_or_default();
        if tail.first() == Some(&b'-')
            && tail.get(5) == Some(&b'-')
            && tail.get(8) == Some(&b'-')
            && digits(tail.get(1..5).unwrap_or_default())
            && digits(tail.get(6..8).unwrap_or_default())
            && digits(tail.get(9..11).unwrap_or_default())
        {
            return model.get(..n - 11).unwrap_or(model);
        }
    }
    if n > 9 {
        let tail = b.get(n - 9..).unwrap_or_default();
        if matches!(tail.first(), Some(b'-' | b'@')) && digits(tail.get(1..).unwrap_or_default()) {
            return model.get(..n - 9).unwrap_or(model);
        }
    }
    model
}

/// Parses a price written as a JSON number or string, keeping its decimal text exact
/// (`3e-06` → 0.000003, never through binary floating point arithmetic).
pub fn decimal_from_json(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text).ok()
    } else {
        Decimal::from_str(&text).ok()
    }
}

/// Why a LiteLLM price file could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceImportError {
    /// The document is not a JSON object of model → entry.
    #[error("the price list must be a JSON object keyed by model name")]
    NotAnObject,
}

fn per_million(entry: &Value, field: &str) -> Option<Decimal> {
    let d = decimal_from_json(entry.get(field)?)?;
    let m = d.checked_mul(Decimal::from(MILLION))?.normalize();
    (!m.is_sign_negative()).then_some(m)
}

/// Imports LiteLLM's `model_prices_and_context_window.json`: per-token prices become per-million.
/// Entries without input or output price, `sample_spec` and invalid ones are skipped. Missing
/// cache prices fall back to: 5 m write = input (Claude: 1.25 × input), 1 h write = 2 × input for
/// Claude else the 5 m price, read = input (Claude: 0.1 × input).
pub fn parse_litellm_prices(doc: &Value) -> Result<Vec<ModelPrice>, PriceImportError> {
    let map = doc.as_object().ok_or(PriceImportError::NotAnObject)?;
    let mut out = Vec::new();
    for (model, entry) in map {
        if model == "sample_spec" || !entry.is_object() {
            continue;
        }
        let (Some(input), Some(output)) = (
            per_million(entry, "input_cost_per_token"),
            per_million(entry, "output_cost_per_token"),
        ) else {
            continue;
        };
        let claude = model.to_ascii_lowercase().contains("claude");
        let ratio = |r: &str| Decimal::from_str(r).unwrap_or(Decimal::ONE);
        let write_5m = per_million(entry, "cache_creation_input_token_cost").unwrap_or(if claude {
            input * ratio("1.25")
        } else {
            input
        });
        let write_1h =
            per_million(entry, "cache_creation_input_token_cost_above_1hr").unwrap_or(if claude {
                input * Decimal::TWO
            } else {
                write_5m
            });
        let read = per_million(entry, "cache_read_input_token_cost").unwrap_or(if claude {
            input * ratio("0.1")
        } else {
            input
        });
        let price = ModelPrice {
            model: model.clone(),
            input_per_mtok: input,
            output_per_mtok: output,
            cache_write_5m_per_mtok: write_5m.normalize(),
            cache_write_1h_per_mtok: write_1h.normalize(),
            cache_read_per_mtok: read.normalize(),
        };
        if price.validate().is_ok() {
            out.push(price);
        }
    }
    Ok(out)
}

#[path = "cost_defaults.rs"]
mod defaults;
pub use defaults::default_prices;

#[cfg(test)]
#[path = "cost_tests.rs"]
mod tests;
