//! The built-in price table, so costs are known before an admin imports LiteLLM's list.
//! Public list prices in USD per million tokens (standard tier, ≤ 200 k context).

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::domain::price::ModelPrice;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or(Decimal::ZERO)
}

/// A Claude price: cache writes 1.25 × input (5 m) and 2 × input (1 h), reads 0.1 × input.
fn claude(names: &[&str], input: &str, output: &str) -> Vec<ModelPrice> {
    let i = d(input);
    names
        .iter()
        .map(|n| ModelPrice {
            model: (*n).to_string(),
            input_per_mtok: i,
            output_per_mtok: d(output),
            cache_write_5m_per_mtok: (i * d("1.25")).normalize(),
            cache_write_1h_per_mtok: (i * Decimal::TWO).normalize(),
            cache_read_per_mtok: (i * d("0.1")).normalize(),
        })
        .collect()
}

/// An OpenAI/Gemini price: no cache-write surcharge (writes bill as input), a cached-input price.
fn cached(names: &[&str], input: &str, output: &str, cached: &str) -> Vec<ModelPrice> {
    names
        .iter()
        .map(|n| ModelPrice {
            model: (*n).to_string(),
            input_per_mtok: d(input),
            output_per_mtok: d(output),
            cache_write_5m_per_mtok: d(input),
            cache_write_1h_per_mtok: d(input),
            cache_read_per_mtok: d(cached),
        })
        .collect()
}

/// The default price table (names without date suffixes; lookups strip dates, see
/// [`super::find_price`]).
pub fn default_prices() -> Vec<ModelPrice> {
    [
        claude(&["claude-opus-4-5"], "5", "25"),
        claude(
            &["claude-opus-4-1", "claude-opus-4", "claude-opus-4-0"],
            "15",
            "75",
        ),
        claude(&["claude-3-opus"], "15", "75"),
        claude(
            &[
                "claude-sonnet-4-5",
                "claude-sonnet-4",
                "claude-sonnet-4-0",
                "claude-3-7-sonnet",
                "claude-3-5-sonnet",
            ],
            "3",
            "15",
        ),
        claude(&["claude-haiku-4-5"], "1", "5"),
        claude(&["claude-3-5-haiku"], "0.8", "4"),
        claude(&["claude-3-haiku"], "0.25", "1.25"),
        cached(
            &[
                "gpt-5",
                "gpt-5-codex",
                "gpt-5.1",
                "gpt-5.1-codex",
                "gpt-5-chat-latest",
            ],
            "1.25",
            "10",
            "0.125",
        ),
        cached(&["gpt-5-mini", "gpt-5.1-codex-mini"], "0.25", "2", "0.025"),
        cached(&["gpt-5-nano"], "0.05", "0.4", "0.005"),
        cached(&["gpt-4.1"], "2", "8", "0.5"),
        cached(&["gpt-4.1-mini"], "0.4", "1.6", "0.1"),
        cached(&["gpt-4.1-nano"], "0.1", "0.4", "0.025"),
        cached(&["gpt-4o"], "2.5", "10", "1.25"),
        cached(&["gpt-4o-mini"], "0.15", "0.6", "0.075"),
        cached(&["o3"], "2", "8", "0.5"),
        cached(&["o4-mini"], "1.1", "4.4", "0.275"),
        cached(&["o3-mini"], "1.1", "4.4", "0.55"),
        cached(&["gemini-2.5-pro"], "1.25", "10", "0.125"),
        cached(&["gemini-2.5-flash"], "0.3", "2.5", "0.03"),
        cached(&["gemini-2.5-flash-lite"], "0.1", "0.4", "0.01"),
    ]
    .into_iter()
    .flatten()
    .collect()
}
