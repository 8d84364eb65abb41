//! API keys: `/api/v1/users/{id}/keys` (create, list masked) and `/api/v1/keys/{id}`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use super::fields::{Input, LimitsView, with_limits};
use super::json_body::JsonBody;
use crate::app::admin::AdminError;
use crate::app::context::AppContext;
use crate::app::limits::Scope;
use crate::domain::api_key::ApiKey;
use crate::domain::error::ValidationError;

with_limits! {
    /// A new key for a user.
    #[derive(Debug, Clone, Object, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct KeyCreate<Option> {
        /// Label (1–64 characters).
        pub name: String,
        /// Default true.
        #[serde(default)]
        pub enabled: Option<bool>,
        /// After this instant (RFC 3339) the key is refused.
        #[serde(default)]
        pub expires_at: Option<DateTime<Utc>>,
    }
}

with_limits! {
    /// Changes to a key: absent fields are kept, `null` clears optional ones.
    #[derive(Debug, Clone, Object, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct KeyPatch<MaybeUndefined> {
        /// Label.
        #[serde(default)]
        pub name: MaybeUndefined<String>,
        /// Enabled.
        #[serde(default)]
        pub enabled: MaybeUndefined<bool>,
        /// Expiry (`null` = never).
        #[serde(default)]
        pub expires_at: MaybeUndefined<DateTime<Utc>>,
    }
}

macro_rules! apply_key_fields {
    ($input:expr, $k:expr) => {
        (|| -> Result<(), ValidationError> {
            let i = $input;
            let k: &mut ApiKey = $k;
            i.name.not_null("name")?;
            i.name.apply(&mut k.name);
            i.enabled.apply(&mut k.enabled);
            i.expires_at.apply_opt(&mut k.expires_at);
            i.apply_limits(&mut k.limits)?;
            k.name = k.name.trim().to_string();
            Ok(())
        })()
    };
}

/// A key as listed: masked to its last four characters.
#[derive(Debug, Clone, Object)]
pub struct KeyView {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Label.
    pub name: String,
    /// `cch_…` and the last four characters.
    pub masked_key: String,
    /// Enabled.
    pub enabled: bool,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Limits.
    #[oai(flatten)]
    pub limits: LimitsView,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Updated at.
    pub updated_at: DateTime<Utc>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id,
            user_id: k.user_id,
            name: k.name.clone(),
            masked_key: k.masked(),
            enabled: k.enabled,
            expires_at: k.expires_at,
            limits: (&k.limits).into(),
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}

/// A created key: the only response that ever carries the plaintext.
#[derive(Debug, Clone, Object)]
pub struct CreatedKeyView {
    /// The plaintext key; store it now, it is not shown again.
    pub key: String,
    /// The stored key.
    #[oai(flatten)]
    pub view: KeyView,
}

/// 201 with the plaintext key.
#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<CreatedKeyView>),
}

/// 204.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

/// Key endpoints.
pub struct KeysApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(tag = "ApiTags::Keys")]
impl KeysApi {
    /// List a user's keys (masked).
    #[oai(path = "/users/:id/keys", method = "get")]
    async fn list(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Json<Vec<KeyView>>, ApiError> {
        let keys = self.ctx.admin.list_user_keys(id.0).await?;
        Ok(Json(keys.iter().map(KeyView::from).collect()))
    }

    /// Create a key for a user; the response carries the plaintext key, once.
    #[oai(path = "/users/:id/keys", method = "post")]
    async fn create(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
        body: JsonBody<KeyCreate>,
    ) -> Result<Created, ApiError> {
        let input = body.0;
        let now = self.ctx.admin.now();
        let mut k = ApiKey {
            id: 0,
            user_id: id.0,
            name: String::new(),
            key_hash: String::new(),
            key_last4: String::new(),
            enabled: true,
            expires_at: None,
            limits: Default::default(),
            created_at: now,
            updated_at: now,
        };
        apply_key_fields!(&input, &mut k).map_err(AdminError::from)?;
        let created = self.ctx.admin.create_key(id.0, k).await?;
        Ok(Created::Ok(Json(CreatedKeyView {
            key: created.plaintext,
            view: KeyView::from(&created.key),
        })))
    }

    /// Get a key (masked).
    #[oai(path = "/keys/:id", method = "get")]
    async fn get(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Json<KeyView>, ApiError> {
        Ok(Json(KeyView::from(&self.ctx.admin.get_key(id.0).await?)))
    }

    /// Update a key: name, enabled, expiry, limits.
    #[oai(path = "/keys/:id", method = "patch")]
    async fn patch(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
        body: JsonBody<KeyPatch>,
    ) -> Result<Json<KeyView>, ApiError> {
        let input = body.0;
        let before = super::usage::limits_before(&self.ctx, Scope::Key, id.0);
        let saved = self
            .ctx
            .admin
            .patch_key(id.0, |k| apply_key_fields!(&input, k))
            .await?;
        super::usage::limits_changed(&self.ctx, Scope::Key, id.0, before).await;
        Ok(Json(KeyView::from(&saved)))
    }

    /// Delete a key.
    #[oai(path = "/keys/:id", method = "delete")]
    async fn delete(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Deleted, ApiError> {
        self.ctx.admin.delete_key(id.0).await?;
        Ok(Deleted::Ok)
    }
}
