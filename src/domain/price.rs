//! Model prices (USD per million tokens) used to compute the cost of a request.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::error::ValidationError;

/// The price of one model, per million tokens of each kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Model name as requested/forwarded (exact match).
    pub model: String,
    /// Input tokens.
    pub input_per_mtok: Decimal,
    /// Output tokens.
    pub output_per_mtok: Decimal,
    /// Cache writes with a 5 minute TTL.
    pub cache_write_5m_per_mtok: Decimal,
    /// Cache writes with a 1 hour TTL.
    pub cache_write_1h_per_mtok: Decimal,
    /// Cache reads.
    pub cache_read_per_mtok: Decimal,
}

impl ModelPrice {
    /// Checks the model name and that every price is non-negative.
    pub fn validate(&self) -> Result<(), ValidationError> {
        super::text::single_line("model", &self.model)?;
        if self.model.trim().is_empty() || self.model.len() > 200 {
            return Err(ValidationError::new("model", "must be 1 to 200 characters"));
        }
        for (field, v) in [
            ("input_per_mtok", self.input_per_mtok),
            ("output_per_mtok", self.output_per_mtok),
            ("cache_write_5m_per_mtok", self.cache_write_5m_per_mtok),
            ("cache_write_1h_per_mtok", self.cache_write_1h_per_mtok),
            ("cache_read_per_mtok", self.cache_read_per_mtok),
        ] {
            if v.is_sign_negative() || v > Decimal::from(1_000_000) {
                return Err(ValidationError::new(field, "must be between 0 and 1000000"));
            }
        }
        Ok(())
    }
}

/// Fills in cache prices an admin left out, by the same rule as the LiteLLM import
/// ([`super::cost::parse_litellm_prices`]): for Claude models (name contains `claude`) a 5 minute
/// write costs 1.25 × input, a 1 hour write 2 × input and a read 0.1 × input; for other models
/// writes cost the input price (1 hour: the 5 minute price) and reads the input price.
/// Returns `(write_5m, write_1h, read)`.
pub fn derive_cache_prices(
    model: &str,
    input: Decimal,
    write_5m: Option<Decimal>,
    write_1h: Option<Decimal>,
    read: Option<Decimal>,
) -> (Decimal, Decimal, Decimal) {
    let claude = model.to_ascii_lowercase().contains("claude");
    let scaled = |num: i64, scale: u32| {
        input
            .checked_mul(Decimal::new(num, scale))
            .unwrap_or(Decimal::MAX)
            .normalize()
    };
    let w5 = write_5m.unwrap_or_else(|| if claude { scaled(125, 2) } else { input });
    let w1 = write_1h.unwrap_or_else(|| if claude { scaled(2, 0) } else { w5 });
    let r = read.unwrap_or_else(|| if claude { scaled(1, 1) } else { input });
    (w5, w1, r)
}

#[cfg(test)]
mod derive_tests {
    use super::*;

    #[test]
    fn claude_and_other_models_derive_cache_prices() {
        let three = Decimal::from(3);
        let (w5, w1, r) = derive_cache_prices("claude-x", three, None, None, None);
        assert_eq!(
            (w5.to_string(), w1.to_string(), r.to_string()),
            ("3.75".into(), "6".into(), "0.3".into())
        );
        let (w5, w1, r) = derive_cache_prices("gpt-x", three, Some(Decimal::ONE), None, None);
        assert_eq!((w5, w1, r), (Decimal::ONE, Decimal::ONE, three));
    }
}
