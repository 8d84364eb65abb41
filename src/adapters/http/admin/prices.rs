//! `/api/v1/prices`: the effective model price table, per-model create/replace and delete, and
//! import of LiteLLM's price file. Model names may contain `.`; send `/` as `%2F`.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use super::json_body::JsonBody;
use crate::app::admin::PriceSource;
use crate::app::context::AppContext;
use crate::domain::price::{ModelPrice, derive_cache_prices};

/// Largest LiteLLM price document accepted by the import (the public file is a few MB).
const MAX_IMPORT_BODY: usize = 32 << 20;

/// A model's price in USD per million tokens. Decimals may be sent as strings or numbers.
/// Missing cache prices are derived as on import: Claude models (name contains `claude`)
/// 5 m write = 1.25 × input, 1 h write = 2 × input, read = 0.1 × input; other models
/// writes = input (1 h = the 5 m price) and read = input.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// Input tokens.
    pub input_per_mtok: Decimal,
    /// Output tokens.
    pub output_per_mtok: Decimal,
    /// Cache writes, 5 minute TTL (derived when absent).
    #[serde(default)]
    pub cache_write_5m_per_mtok: Option<Decimal>,
    /// Cache writes, 1 hour TTL (derived when absent).
    #[serde(default)]
    pub cache_write_1h_per_mtok: Option<Decimal>,
    /// Cache reads (derived when absent).
    #[serde(default)]
    pub cache_read_per_mtok: Option<Decimal>,
}

/// A price in the effective table.
#[derive(Debug, Clone, Object)]
pub struct PriceView {
    /// Model name (exact; lookups also try without date suffix and provider prefix).
    pub model: String,
    /// Input tokens, USD per million.
    pub input_per_mtok: Decimal,
    /// Output tokens, USD per million.
    pub output_per_mtok: Decimal,
    /// Cache writes (5 minute TTL), USD per million.
    pub cache_write_5m_per_mtok: Decimal,
    /// Cache writes (1 hour TTL), USD per million.
    pub cache_write_1h_per_mtok: Decimal,
    /// Cache reads, USD per million.
    pub cache_read_per_mtok: Decimal,
    /// `default` (built in) or `custom` (stored; overrides a default of the same name).
    pub source: String,
}

impl PriceView {
    fn new(p: ModelPrice, source: PriceSource) -> Self {
        Self {
            model: p.model,
            input_per_mtok: p.input_per_mtok,
            output_per_mtok: p.output_per_mtok,
            cache_write_5m_per_mtok: p.cache_write_5m_per_mtok,
            cache_write_1h_per_mtok: p.cache_write_1h_per_mtok,
            cache_read_per_mtok: p.cache_read_per_mtok,
            source: source.as_str().to_string(),
        }
    }
}

/// Result of an import.
#[derive(Debug, Clone, Object)]
pub struct ImportResult {
    /// Prices stored (created or replaced).
    pub imported: u64,
    /// Entries without a usable input and output price.
    pub skipped: u64,
}

/// 204.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

/// Price endpoints.
pub struct PricesApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/prices", tag = "ApiTags::Prices")]
impl PricesApi {
    /// The effective price table: built-in defaults overridden by stored prices.
    #[oai(path = "/", method = "get")]
    async fn list(&self, _auth: AdminAuth) -> Result<Json<Vec<PriceView>>, ApiError> {
        let all = self.ctx.admin.effective_prices().await?;
        Ok(Json(
            all.into_iter().map(|(p, s)| PriceView::new(p, s)).collect(),
        ))
    }

    /// Import LiteLLM's `model_prices_and_context_window.json` (the document itself is the
    /// body): per-token prices become per-million and every usable entry is stored.
    #[oai(path = "/import", method = "post")]
    async fn import(
        &self,
        _auth: AdminAuth,
        body: JsonBody<serde_json::Value, MAX_IMPORT_BODY>,
    ) -> Result<Json<ImportResult>, ApiError> {
        let out = self.ctx.admin.import_litellm_prices(&body.0).await?;
        Ok(Json(ImportResult {
            imported: u64::try_from(out.imported).unwrap_or(u64::MAX),
            skipped: u64::try_from(out.skipped).unwrap_or(u64::MAX),
        }))
    }

    /// Create or replace the stored price of a model (`/` in the name as `%2F`).
    #[oai(path = "/:model", method = "put")]
    async fn put(
        &self,
        _auth: AdminAuth,
        model: Path<String>,
        body: JsonBody<PriceInput>,
    ) -> Result<Json<PriceView>, ApiError> {
        let i = body.0;
        let model = model.0.trim().to_string();
        let (w5, w1, r) = derive_cache_prices(
            &model,
            i.input_per_mtok,
            i.cache_write_5m_per_mtok,
            i.cache_write_1h_per_mtok,
            i.cache_read_per_mtok,
        );
        let price = ModelPrice {
            model,
            input_per_mtok: i.input_per_mtok,
            output_per_mtok: i.output_per_mtok,
            cache_write_5m_per_mtok: w5,
            cache_write_1h_per_mtok: w1,
            cache_read_per_mtok: r,
        };
        let saved = self.ctx.admin.upsert_price(price).await?;
        Ok(Json(PriceView::new(saved, PriceSource::Custom)))
    }

    /// Delete the stored price of a model (a built-in default of the same name applies again).
    #[oai(path = "/:model", method = "delete")]
    async fn delete(&self, _auth: AdminAuth, model: Path<String>) -> Result<Deleted, ApiError> {
        self.ctx.admin.delete_price(model.0.trim()).await?;
        Ok(Deleted::Ok)
    }
}
