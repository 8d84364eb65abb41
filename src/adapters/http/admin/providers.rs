//! `/api/v1/providers`: create, list, read, update and delete upstream providers.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use super::fields::{Input, LimitsView, with_limits};
use super::json_body::JsonBody;
use crate::app::context::AppContext;
use crate::app::limits::Scope;
use crate::domain::error::ValidationError;
use crate::domain::provider::{BreakerSettings, Provider, ProviderType, Timeouts, mask_secret};
use crate::domain::request_shaping::BetaPolicy;

with_limits! {
    /// A new provider. Only `name`, `provider_type`, `base_url` and `api_key` are required.
    #[derive(Debug, Clone, Object, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ProviderCreate<Option> {
        /// Unique name (1–64 characters).
        pub name: String,
        /// claude, claude-auth, codex, openai-compatible, gemini or gemini-cli.
        pub provider_type: String,
        /// Base URL of the upstream API (http or https; a path prefix is allowed).
        pub base_url: String,
        /// The upstream secret (stored; shown masked).
        pub api_key: String,
        /// Free text.
        #[serde(default)]
        pub description: Option<String>,
        /// Default true.
        #[serde(default)]
        pub enabled: Option<bool>,
        /// Lower wins (default 0).
        #[serde(default)]
        pub priority: Option<i32>,
        /// Share within a priority tier, 0–100 (default 1).
        #[serde(default)]
        pub weight: Option<i32>,
        /// Multiplies the cost of requests served (default 1.0).
        #[serde(default)]
        pub cost_multiplier: Option<Decimal>,
        /// Comma-separated group tags.
        #[serde(default)]
        pub group_tag: Option<String>,
        /// Models this provider serves; empty or absent = all.
        #[serde(default)]
        pub allowed_models: Option<Vec<String>>,
        /// Requested model → forwarded model.
        #[serde(default)]
        pub model_redirects: Option<BTreeMap<String, String>>,
        /// Other client formats (claude, openai, response, gemini) served through conversion.
        #[serde(default)]
        pub extra_client_formats: Option<Vec<String>>,
        /// Outbound proxy URL (http, https, socks5 with optional user:pass).
        #[serde(default)]
        pub proxy_url: Option<String>,
        /// Go direct when the proxy fails (default false).
        #[serde(default)]
        pub proxy_fallback_to_direct: Option<bool>,
        /// Headers added to every upstream request (name → value; not credentials, framing
        /// or anthropic-beta).
        #[serde(default)]
        pub custom_headers: Option<BTreeMap<String, String>>,
        /// The client's anthropic-beta flags: passthrough (default), drop, or replace.
        #[serde(default)]
        pub anthropic_beta: Option<String>,
        /// The flags sent when anthropic_beta is replace.
        #[serde(default)]
        pub anthropic_beta_list: Option<Vec<String>>,
        /// Streaming first-byte timeout, ms (default 30000).
        #[serde(default)]
        pub first_byte_timeout_ms: Option<i64>,
        /// Longest gap between stream chunks, ms (default 60000).
        #[serde(default)]
        pub idle_timeout_ms: Option<i64>,
        /// Non-streaming request timeout, ms (default 120000).
        #[serde(default)]
        pub request_timeout_ms: Option<i64>,
        /// Consecutive failures that open the breaker, 1–100 (default 5).
        #[serde(default)]
        pub failure_threshold: Option<i32>,
        /// How long the breaker stays open, ms (default 1800000).
        #[serde(default)]
        pub open_duration_ms: Option<i64>,
        /// Half-open successes that close the breaker, 1–10 (default 2).
        #[serde(default)]
        pub half_open_success_threshold: Option<i32>,
        /// Tries on this provider before failing over, 1–10 (default: MAX_RETRY_ATTEMPTS_DEFAULT).
        #[serde(default)]
        pub max_retry_attempts: Option<i32>,
    }
}

with_limits! {
    /// Changes to a provider: absent fields are kept, `null` clears optional ones.
    #[derive(Debug, Clone, Object, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ProviderPatch<MaybeUndefined> {
        /// Unique name.
        #[serde(default)]
        pub name: MaybeUndefined<String>,
        /// Provider type.
        #[serde(default)]
        pub provider_type: MaybeUndefined<String>,
        /// Base URL.
        #[serde(default)]
        pub base_url: MaybeUndefined<String>,
        /// Upstream secret.
        #[serde(default)]
        pub api_key: MaybeUndefined<String>,
        /// Free text.
        #[serde(default)]
        pub description: MaybeUndefined<String>,
        /// Enabled.
        #[serde(default)]
        pub enabled: MaybeUndefined<bool>,
        /// Priority.
        #[serde(default)]
        pub priority: MaybeUndefined<i32>,
        /// Weight.
        #[serde(default)]
        pub weight: MaybeUndefined<i32>,
        /// Cost multiplier.
        #[serde(default)]
        pub cost_multiplier: MaybeUndefined<Decimal>,
        /// Group tags.
        #[serde(default)]
        pub group_tag: MaybeUndefined<String>,
        /// Allowed models.
        #[serde(default)]
        pub allowed_models: MaybeUndefined<Vec<String>>,
        /// Model redirects.
        #[serde(default)]
        pub model_redirects: MaybeUndefined<BTreeMap<String, String>>,
        /// Extra client formats.
        #[serde(default)]
        pub extra_client_formats: MaybeUndefined<Vec<String>>,
        /// Outbound proxy URL (`null` removes it).
        #[serde(default)]
        pub proxy_url: MaybeUndefined<String>,
        /// Go direct when the proxy fails.
        #[serde(default)]
        pub proxy_fallback_to_direct: MaybeUndefined<bool>,
        /// Custom headers (replaces the whole map; `{}` clears them).
        #[serde(default)]
        pub custom_headers: MaybeUndefined<BTreeMap<String, String>>,
        /// passthrough, drop or replace.
        #[serde(default)]
        pub anthropic_beta: MaybeUndefined<String>,
        /// Flags sent under replace.
        #[serde(default)]
        pub anthropic_beta_list: MaybeUndefined<Vec<String>>,
        /// First-byte timeout, ms.
        #[serde(default)]
        pub first_byte_timeout_ms: MaybeUndefined<i64>,
        /// Idle timeout, ms.
        #[serde(default)]
        pub idle_timeout_ms: MaybeUndefined<i64>,
        /// Request timeout, ms.
        #[serde(default)]
        pub request_timeout_ms: MaybeUndefined<i64>,
        /// Breaker failure threshold.
        #[serde(default)]
        pub failure_threshold: MaybeUndefined<i32>,
        /// Breaker open duration, ms.
        #[serde(default)]
        pub open_duration_ms: MaybeUndefined<i64>,
        /// Breaker half-open success threshold.
        #[serde(default)]
        pub half_open_success_threshold: MaybeUndefined<i32>,
        /// Retries on this provider (`null` = global default).
        #[serde(default)]
        pub max_retry_attempts: MaybeUndefined<i32>,
    }
}

macro_rules! apply_provider_fields {
    ($input:expr, $p:expr) => {
        (|| -> Result<(), ValidationError> {
            let i = $input;
            let p: &mut Provider = $p;
            i.name.not_null("name")?;
            i.provider_type.not_null("provider_type")?;
            i.base_url.not_null("base_url")?;
            i.api_key.not_null("api_key")?;
            if let Some(t) = i.provider_type.given() {
                p.provider_type = ProviderType::parse(t)?;
            }
            i.name.apply(&mut p.name);
            i.base_url.apply(&mut p.base_url);
            i.api_key.apply(&mut p.api_key);
            i.description.apply(&mut p.description);
            i.enabled.apply(&mut p.enabled);
            i.priority.apply(&mut p.priority);
            i.weight.apply(&mut p.weight);
            i.cost_multiplier.apply(&mut p.cost_multiplier);
            i.group_tag.apply(&mut p.group_tag);
            i.allowed_models.apply(&mut p.allowed_models);
            i.model_redirects.apply(&mut p.model_redirects);
            i.extra_client_formats.apply(&mut p.extra_client_formats);
            i.proxy_url.apply_opt(&mut p.proxy_url);
            i.proxy_fallback_to_direct
                .apply(&mut p.proxy_fallback_to_direct);
            i.first_byte_timeout_ms
                .apply(&mut p.timeouts.first_byte_timeout_ms);
            i.idle_timeout_ms.apply(&mut p.timeouts.idle_timeout_ms);
            i.request_timeout_ms
                .apply(&mut p.timeouts.request_timeout_ms);
            i.failure_threshold.apply(&mut p.breaker.failure_threshold);
            i.open_duration_ms.apply(&mut p.breaker.open_duration_ms);
            i.half_open_success_threshold
                .apply(&mut p.breaker.half_open_success_threshold);
            i.max_retry_attempts.apply_opt(&mut p.max_retry_attempts);
            i.custom_headers.apply(&mut p.shaping.custom_headers);
            if let Some(v) = i.anthropic_beta.given() {
                p.shaping.anthropic_beta = BetaPolicy::parse(v)?;
            }
            i.anthropic_beta_list
                .apply(&mut p.shaping.anthropic_beta_list);
            p.shaping.normalize();
            i.apply_limits(&mut p.limits)?;
            p.name = p.name.trim().to_string();
            p.base_url = p.base_url.trim().to_string();
            p.proxy_url = p
                .proxy_url
                .take()
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty());
            Ok(())
        })()
    };
}

/// A provider as shown to admins (secret masked).
#[derive(Debug, Clone, Object)]
pub struct ProviderView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Provider type.
    pub provider_type: String,
    /// Base URL.
    pub base_url: String,
    /// The secret, masked to its last four characters.
    pub api_key: String,
    /// Enabled.
    pub enabled: bool,
    /// Priority (lower wins).
    pub priority: i32,
    /// Weight within the tier.
    pub weight: i32,
    /// Cost multiplier.
    pub cost_multiplier: Decimal,
    /// Group tags.
    pub group_tag: String,
    /// Allowed models (empty = all).
    pub allowed_models: Vec<String>,
    /// Model redirects.
    pub model_redirects: BTreeMap<String, String>,
    /// Extra client formats served through conversion.
    pub extra_client_formats: Vec<String>,
    /// Outbound proxy URL, password masked.
    pub proxy_url: Option<String>,
    /// Go direct when the proxy fails.
    pub proxy_fallback_to_direct: bool,
    /// First-byte timeout, ms.
    pub first_byte_timeout_ms: i64,
    /// Idle timeout, ms.
    pub idle_timeout_ms: i64,
    /// Request timeout, ms.
    pub request_timeout_ms: i64,
    /// Breaker failure threshold.
    pub failure_threshold: i32,
    /// Breaker open duration, ms.
    pub open_duration_ms: i64,
    /// Breaker half-open success threshold.
    pub half_open_success_threshold: i32,
    /// Retries on this provider (null = global default).
    pub max_retry_attempts: Option<i32>,
    /// Custom header names, values masked.
    pub custom_headers: BTreeMap<String, String>,
    /// passthrough, drop or replace.
    pub anthropic_beta: String,
    /// Flags sent under replace.
    pub anthropic_beta_list: Vec<String>,
    /// Limits.
    #[oai(flatten)]
    pub limits: LimitsView,
    /// Created at.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Updated at.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Provider> for ProviderView {
    fn from(p: &Provider) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            description: p.description.clone(),
            provider_type: p.provider_type.as_str().to_string(),
            base_url: crate::app::config::redact_url(&p.base_url),
            api_key: mask_secret(&p.api_key),
            enabled: p.enabled,
            priority: p.priority,
            weight: p.weight,
            cost_multiplier: p.cost_multiplier,
            group_tag: p.group_tag.clone(),
            allowed_models: p.allowed_models.clone(),
            model_redirects: p.model_redirects.clone(),
            extra_client_formats: p.extra_client_formats.clone(),
            proxy_url: p.proxy_url.as_deref().map(crate::app::config::redact_url),
            proxy_fallback_to_direct: p.proxy_fallback_to_direct,
            first_byte_timeout_ms: p.timeouts.first_byte_timeout_ms,
            idle_timeout_ms: p.timeouts.idle_timeout_ms,
            request_timeout_ms: p.timeouts.request_timeout_ms,
            failure_threshold: p.breaker.failure_threshold,
            open_duration_ms: p.breaker.open_duration_ms,
            half_open_success_threshold: p.breaker.half_open_success_threshold,
            max_retry_attempts: p.max_retry_attempts,
            custom_headers: p
                .shaping
                .custom_headers
                .iter()
                .map(|(k, v)| (k.clone(), mask_secret(v)))
                .collect(),
            anthropic_beta: p.shaping.anthropic_beta.as_str().to_string(),
            anthropic_beta_list: p.shaping.anthropic_beta_list.clone(),
            limits: (&p.limits).into(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// 201 with the created provider.
#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<ProviderView>),
}

/// 204.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

/// Provider endpoints.
pub struct ProvidersApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

/// A provider with every default applied, the starting point of a create.
fn default_provider(now: chrono::DateTime<chrono::Utc>) -> Provider {
    Provider {
        id: 0,
        name: String::new(),
        description: String::new(),
        provider_type: ProviderType::Claude,
        base_url: String::new(),
        api_key: String::new(),
        enabled: true,
        priority: 0,
        weight: 1,
        cost_multiplier: Decimal::ONE,
        group_tag: String::new(),
        allowed_models: Vec::new(),
        model_redirects: BTreeMap::new(),
        extra_client_formats: Vec::new(),
        proxy_url: None,
        proxy_fallback_to_direct: false,
        limits: Default::default(),
        timeouts: Timeouts::default(),
        breaker: BreakerSettings::default(),
        max_retry_attempts: None,
        shaping: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

#[OpenApi(prefix_path = "/providers", tag = "ApiTags::Providers")]
impl ProvidersApi {
    /// List providers.
    #[oai(path = "/", method = "get")]
    async fn list(&self, _auth: AdminAuth) -> Result<Json<Vec<ProviderView>>, ApiError> {
        let all = self.ctx.admin.list_providers().await?;
        Ok(Json(all.iter().map(ProviderView::from).collect()))
    }

    /// Create a provider.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        _auth: AdminAuth,
        body: JsonBody<ProviderCreate>,
    ) -> Result<Created, ApiError> {
        let input = body.0;
        let mut p = default_provider(self.ctx.admin.now());
        apply_provider_fields!(&input, &mut p).map_err(crate::app::admin::AdminError::from)?;
        let saved = self.ctx.admin.create_provider(p).await?;
        Ok(Created::Ok(Json(ProviderView::from(&saved))))
    }

    /// Get a provider.
    #[oai(path = "/:id", method = "get")]
    async fn get(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Json<ProviderView>, ApiError> {
        Ok(Json(ProviderView::from(
            &self.ctx.admin.get_provider(id.0).await?,
        )))
    }

    /// Update a provider (partial).
    #[oai(path = "/:id", method = "patch")]
    async fn patch(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
        body: JsonBody<ProviderPatch>,
    ) -> Result<Json<ProviderView>, ApiError> {
        let input = body.0;
        let before = super::usage::limits_before(&self.ctx, Scope::Provider, id.0);
        let saved = self
            .ctx
            .admin
            .patch_provider(id.0, |p| apply_provider_fields!(&input, p))
            .await?;
        super::usage::limits_changed(&self.ctx, Scope::Provider, id.0, before).await;
        Ok(Json(ProviderView::from(&saved)))
    }

    /// Delete a provider.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Deleted, ApiError> {
        self.ctx.admin.delete_provider(id.0).await?;
        Ok(Deleted::Ok)
    }
}
