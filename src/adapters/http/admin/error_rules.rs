//! `/api/v1/error-rules`: admin-editable classification of upstream errors (contains, exact or
//! regex on the upstream message, optionally limited to one status), with presets that can be
//! restored. Changes apply to every instance without restart (snapshot refresh).

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use super::json_body::JsonBody;
use crate::app::admin::AdminError;
use crate::app::context::AppContext;
use crate::app::error_rules;
use crate::domain::error::ValidationError;
use crate::domain::failure::{ErrorClass, ErrorRule, MatchKind, StoredErrorRule};

/// A new error rule.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRuleCreate {
    /// Text (or regular expression) looked for in the upstream's error message, case-insensitive.
    pub pattern: String,
    /// contains (default), exact or regex.
    #[serde(default)]
    pub match_kind: Option<String>,
    /// Only for this upstream status (100–599), when set.
    #[serde(default)]
    pub status: Option<u16>,
    /// non_retryable_client_error (default: returned to the client, no failover, not a breaker
    /// failure; applies to 4xx only) or provider_error (fail over, counts for the breaker).
    #[serde(default)]
    pub class: Option<String>,
    /// Status the client gets instead of the upstream's (400–599).
    #[serde(default)]
    pub override_status: Option<u16>,
    /// Message the client gets instead of the upstream's.
    #[serde(default)]
    pub override_message: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Lower is tried first (default 0; presets use 100).
    #[serde(default)]
    pub priority: Option<i32>,
}

/// Changes to an error rule: absent fields are kept, `null` clears optional ones.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRulePatch {
    /// Pattern.
    #[serde(default)]
    pub pattern: MaybeUndefined<String>,
    /// contains, exact or regex.
    #[serde(default)]
    pub match_kind: MaybeUndefined<String>,
    /// Upstream status filter (`null` removes it).
    #[serde(default)]
    pub status: MaybeUndefined<u16>,
    /// non_retryable_client_error or provider_error.
    #[serde(default)]
    pub class: MaybeUndefined<String>,
    /// Override status (`null` removes it).
    #[serde(default)]
    pub override_status: MaybeUndefined<u16>,
    /// Override message (`null` removes it).
    #[serde(default)]
    pub override_message: MaybeUndefined<String>,
    /// Free text.
    #[serde(default)]
    pub description: MaybeUndefined<String>,
    /// Enabled.
    #[serde(default)]
    pub enabled: MaybeUndefined<bool>,
    /// Priority.
    #[serde(default)]
    pub priority: MaybeUndefined<i32>,
}

/// An error rule.
#[derive(Debug, Clone, Object)]
pub struct ErrorRuleView {
    /// Id.
    pub id: i64,
    /// Pattern.
    pub pattern: String,
    /// contains, exact or regex.
    pub match_kind: String,
    /// Upstream status filter.
    pub status: Option<u16>,
    /// non_retryable_client_error or provider_error.
    pub class: String,
    /// Override status.
    pub override_status: Option<u16>,
    /// Override message.
    pub override_message: Option<String>,
    /// Free text.
    pub description: String,
    /// Enabled.
    pub enabled: bool,
    /// One of the shipped presets.
    pub is_preset: bool,
    /// Lower is tried first.
    pub priority: i32,
}

fn class_name(c: ErrorClass) -> String {
    match c {
        ErrorClass::NonRetryableClientError => "non_retryable_client_error",
        ErrorClass::ProviderError => "provider_error",
        ErrorClass::NotFound => "not_found",
        ErrorClass::SystemError => "system_error",
        ErrorClass::ClientAbort => "client_abort",
        ErrorClass::RectifyThinkingSignature => "rectify_thinking_signature",
    }
    .to_string()
}

fn parse_class(s: &str) -> Result<ErrorClass, ValidationError> {
    match s {
        "non_retryable_client_error" => Ok(ErrorClass::NonRetryableClientError),
        "provider_error" => Ok(ErrorClass::ProviderError),
        "rectify_thinking_signature" => Ok(ErrorClass::RectifyThinkingSignature),
        _ => Err(ValidationError::new(
            "class",
            "must be non_retryable_client_error, provider_error or rectify_thinking_signature",
        )),
    }
}

impl From<&StoredErrorRule> for ErrorRuleView {
    fn from(r: &StoredErrorRule) -> Self {
        Self {
            id: r.id,
            pattern: r.rule.pattern.clone(),
            match_kind: r.rule.match_kind.as_str().to_string(),
            status: r.rule.status,
            class: class_name(r.rule.class),
            override_status: r.rule.override_status,
            override_message: r.rule.override_message.clone(),
            description: r.description.clone(),
            enabled: r.enabled,
            is_preset: r.is_preset,
            priority: r.priority,
        }
    }
}

fn apply_patch(p: &ErrorRulePatch, r: &mut StoredErrorRule) -> Result<(), ValidationError> {
    fn opt<T: Clone>(m: &MaybeUndefined<T>, into: &mut Option<T>) {
        match m {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => *into = None,
            MaybeUndefined::Value(v) => *into = Some(v.clone()),
        }
    }
    if p.pattern.is_null() {
        return Err(ValidationError::new(
            "pattern",
            "cannot be null (leave it out to keep the current value)",
        ));
    }
    if let Some(v) = p.pattern.value() {
        r.rule.pattern = v.trim().to_string();
    }
    if let Some(v) = p.match_kind.value() {
        r.rule.match_kind = MatchKind::parse(v)?;
    }
    if let Some(v) = p.class.value() {
        r.rule.class = parse_class(v)?;
    }
    opt(&p.status, &mut r.rule.status);
    opt(&p.override_status, &mut r.rule.override_status);
    opt(&p.override_message, &mut r.rule.override_message);
    if let Some(v) = p.description.value() {
        crate::domain::text::multi_line("description", v)?;
        r.description = v.clone();
    }
    if let Some(v) = p.enabled.value() {
        r.enabled = *v;
    }
    if let Some(v) = p.priority.value() {
        r.priority = *v;
    }
    Ok(())
}

fn from_create(c: ErrorRuleCreate) -> Result<StoredErrorRule, ValidationError> {
    if let Some(d) = &c.description {
        crate::domain::text::multi_line("description", d)?;
    }
    Ok(StoredErrorRule {
        id: 0,
        rule: ErrorRule {
            pattern: c.pattern.trim().to_string(),
            match_kind: c
                .match_kind
                .as_deref()
                .map_or(Ok(MatchKind::Contains), MatchKind::parse)?,
            status: c.status,
            class: c
                .class
                .as_deref()
                .map_or(Ok(ErrorClass::NonRetryableClientError), parse_class)?,
            override_status: c.override_status,
            override_message: c.override_message.filter(|m| !m.trim().is_empty()),
        },
        description: c.description.unwrap_or_default(),
        enabled: c.enabled.unwrap_or(true),
        is_preset: false,
        priority: c.priority.unwrap_or(0),
    })
}

/// 201 with the created rule.
#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<ErrorRuleView>),
}

/// 204.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

/// Error rule endpoints.
pub struct ErrorRulesApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

fn views(all: &[StoredErrorRule]) -> Json<Vec<ErrorRuleView>> {
    Json(all.iter().map(ErrorRuleView::from).collect())
}

#[OpenApi(prefix_path = "/error-rules", tag = "ApiTags::ErrorRules")]
impl ErrorRulesApi {
    /// List error rules in matching order (admin rules and presets).
    #[oai(path = "/", method = "get")]
    async fn list(&self, _auth: AdminAuth) -> Result<Json<Vec<ErrorRuleView>>, ApiError> {
        Ok(views(&error_rules::list(&self.ctx).await?))
    }

    /// Create an error rule (validated: a regex must compile, override status 400–599).
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        _auth: AdminAuth,
        body: JsonBody<ErrorRuleCreate>,
    ) -> Result<Created, ApiError> {
        let rule = from_create(body.0).map_err(AdminError::from)?;
        let saved = error_rules::create(&self.ctx, rule).await?;
        Ok(Created::Ok(Json(ErrorRuleView::from(&saved))))
    }

    /// Update an error rule (partial).
    #[oai(path = "/:id", method = "patch")]
    async fn patch(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
        body: JsonBody<ErrorRulePatch>,
    ) -> Result<Json<ErrorRuleView>, ApiError> {
        let input = body.0;
        let saved = error_rules::patch(&self.ctx, id.0, |r| apply_patch(&input, r)).await?;
        Ok(Json(ErrorRuleView::from(&saved)))
    }

    /// Delete an error rule (presets can be restored).
    #[oai(path = "/:id", method = "delete")]
    async fn delete(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Deleted, ApiError> {
        error_rules::delete(&self.ctx, id.0).await?;
        Ok(Deleted::Ok)
    }

    /// Restore the shipped presets (re-create deleted ones, reset edited ones); returns all rules.
    #[oai(path = "/presets/restore", method = "post")]
    async fn restore(&self, _auth: AdminAuth) -> Result<Json<Vec<ErrorRuleView>>, ApiError> {
        Ok(views(&error_rules::restore_presets(&self.ctx).await?))
    }
}
