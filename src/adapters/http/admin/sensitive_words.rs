//! `/api/v1/sensitive-words`: the sensitive-word filter's rules (word or pattern, match type
//! `contains` | `exact` | `regex`, enabled, note). Patterns are validated when saved; changes
//! apply to every instance without restart (snapshot refresh).

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
use crate::app::sensitive_words;
use crate::domain::error::ValidationError;
use crate::domain::sensitive_words::{SensitiveWord, WordMatch};

/// A new rule.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitiveWordCreate {
    /// The word, phrase or regular expression (case-insensitive, at most 500 characters).
    pub word: String,
    /// contains (default): anywhere in the text; exact: a whole message or block equals it;
    /// regex: a pattern found anywhere (linear-time engine).
    #[serde(default)]
    pub match_type: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Free text for admins.
    #[serde(default)]
    pub note: Option<String>,
}

/// Changes to a rule: absent fields are kept.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitiveWordPatch {
    /// Word or pattern.
    #[serde(default)]
    pub word: MaybeUndefined<String>,
    /// contains, exact or regex.
    #[serde(default)]
    pub match_type: MaybeUndefined<String>,
    /// Enabled.
    #[serde(default)]
    pub enabled: MaybeUndefined<bool>,
    /// Note (`null` clears it).
    #[serde(default)]
    pub note: MaybeUndefined<String>,
}

/// A rule.
#[derive(Debug, Clone, Object)]
pub struct SensitiveWordView {
    /// Id (the refusal message names it).
    pub id: i64,
    /// Word or pattern.
    pub word: String,
    /// contains, exact or regex.
    pub match_type: String,
    /// Enabled.
    pub enabled: bool,
    /// Note.
    pub note: String,
}

impl From<&SensitiveWord> for SensitiveWordView {
    fn from(w: &SensitiveWord) -> Self {
        Self {
            id: w.id,
            word: w.word.clone(),
            match_type: w.match_type.as_str().to_string(),
            enabled: w.enabled,
            note: w.note.clone(),
        }
    }
}

fn apply_patch(p: &SensitiveWordPatch, w: &mut SensitiveWord) -> Result<(), ValidationError> {
    if p.word.is_null() || p.match_type.is_null() || p.enabled.is_null() {
        return Err(ValidationError::new(
            "word",
            "word, match_type and enabled cannot be null (leave them out to keep them)",
        ));
    }
    if let Some(v) = p.word.value() {
        w.word = v.clone();
    }
    if let Some(v) = p.match_type.value() {
        w.match_type = WordMatch::parse(v)?;
    }
    if let Some(v) = p.enabled.value() {
        w.enabled = *v;
    }
    match &p.note {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => w.note.clear(),
        MaybeUndefined::Value(v) => w.note = v.clone(),
    }
    Ok(())
}

fn from_create(c: SensitiveWordCreate) -> Result<SensitiveWord, ValidationError> {
    Ok(SensitiveWord {
        id: 0,
        word: c.word,
        match_type: c
            .match_type
            .as_deref()
            .map_or(Ok(WordMatch::Contains), WordMatch::parse)?,
        enabled: c.enabled.unwrap_or(true),
        note: c.note.unwrap_or_default(),
    })
}

/// 201 with the created rule.
#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<SensitiveWordView>),
}

/// 204.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

/// Sensitive-word endpoints.
pub struct SensitiveWordsApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/sensitive-words", tag = "ApiTags::Security")]
impl SensitiveWordsApi {
    /// List the sensitive-word rules.
    #[oai(path = "/", method = "get")]
    async fn list(&self, _auth: AdminAuth) -> Result<Json<Vec<SensitiveWordView>>, ApiError> {
        let all = sensitive_words::list(&self.ctx).await?;
        Ok(Json(all.iter().map(SensitiveWordView::from).collect()))
    }

    /// One rule.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
    ) -> Result<Json<SensitiveWordView>, ApiError> {
        Ok(Json(SensitiveWordView::from(
            &sensitive_words::get(&self.ctx, id.0).await?,
        )))
    }

    /// Create a rule (a regex must compile within the size limits; 409 for a duplicate).
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        _auth: AdminAuth,
        body: JsonBody<SensitiveWordCreate>,
    ) -> Result<Created, ApiError> {
        let w = from_create(body.0).map_err(AdminError::from)?;
        let saved = sensitive_words::create(&self.ctx, w).await?;
        Ok(Created::Ok(Json(SensitiveWordView::from(&saved))))
    }

    /// Update a rule (partial).
    #[oai(path = "/:id", method = "patch")]
    async fn patch(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
        body: JsonBody<SensitiveWordPatch>,
    ) -> Result<Json<SensitiveWordView>, ApiError> {
        let input = body.0;
        let saved = sensitive_words::patch(&self.ctx, id.0, |w| apply_patch(&input, w)).await?;
        Ok(Json(SensitiveWordView::from(&saved)))
    }

    /// Delete a rule.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Deleted, ApiError> {
        sensitive_words::delete(&self.ctx, id.0).await?;
        Ok(Deleted::Ok)
    }
}
