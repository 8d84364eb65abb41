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
