//! `/api/v1/users`: create, list, read, update and delete users.

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
use crate::domain::error::ValidationError;
use crate::domain::user::{Role, User};

with_limits! {
    /// A new user. Only `name` is required; limits default to unlimited.
    #[derive(Debug, Clone, Object, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UserCreate<Option> {
        /// Unique name (1–64 characters).
        pub name: String,
        /// `admin` or `user` (default user).
        #[serde(default)]
        pub role: Option<String>,
        /// Comma-separated provider group tags; empty = every provider.
        #[serde(default)]
        pub provider_group: Option<String>,
        /// Default true.
        #[serde(default)]
        pub enabled: Option<bool>,
        /// After this instant (RFC 3339) the user is refused.
        #[serde(default)]
        pub expires_at: Option<DateTime<Utc>>,
        /// Free text.
        #[serde(default)]
        pub note: Option<String>,
    }
}

with_limits! {
    /// Changes to a user: absent fields are kept, `null` clears optional ones.
    #[derive(Debug, Clone, Object, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UserPatch<MaybeUndefined> {
        /// Unique name.
        #[serde(default)]
        pub name: MaybeUndefined<String>,
        /// `admin` or `user`.
        #[serde(default)]
        pub role: MaybeUndefined<String>,
        /// Provider group tags.
        #[serde(default)]
        pub provider_group: MaybeUndefined<String>,
        /// Enabled.
        #[serde(default)]
        pub enabled: MaybeUndefined<bool>,
        /// Expiry (`null` = never).
        #[serde(default)]
        pub expires_at: MaybeUndefined<DateTime<Utc>>,
        /// Free text.
        #[serde(default)]
        pub note: MaybeUndefined<String>,
    }
}

macro_rules! apply_user_fields {
    ($input:expr, $u:expr) => {
        (|| -> Result<(), ValidationError> {
            let i = $input;
            let u: &mut User = $u;
            i.name.not_null("name")?;
            i.name.apply(&mut u.name);
            if let Some(r) = i.role.given() {
                u.role = Role::parse(r)?;
            }
            i.provider_group.apply(&mut u.provider_group);
            i.enabled.apply(&mut u.enabled);
            i.expires_at.apply_opt(&mut u.expires_at);
            i.note.apply(&mut u.note);
            i.apply_limits(&mut u.limits)?;
            u.name = u.name.trim().to_string();
            Ok(())
        })()
    };
}

/// A user as shown to admins.
#[derive(Debug, Clone, Object)]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `admin` or `user`.
    pub role: String,
    /// Provider group tags.
    pub provider_group: String,
    /// Enabled.
    pub enabled: bool,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Free text.
    pub note: String,
    /// Limits.
    #[oai(flatten)]
    pub limits: LimitsView,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Updated at.
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            name: u.name.clone(),
            role: u.role.as_str().to_string(),
            provider_group: u.provider_group.clone(),
            enabled: u.enabled,
            expires_at: u.expires_at,
            note: u.note.clone(),
            limits: (&u.limits).into(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// 201 with the created user.
#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<UserView>),
}

/// 204.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

/// User endpoints.
pub struct UsersApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/users", tag = "ApiTags::Users")]
impl UsersApi {
    /// List users.
    #[oai(path = "/", method = "get")]
    async fn list(&self, _auth: AdminAuth) -> Result<Json<Vec<UserView>>, ApiError> {
        let all = self.ctx.admin.list_users().await?;
        Ok(Json(all.iter().map(UserView::from).collect()))
    }

    /// Create a user.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        _auth: AdminAuth,
        body: JsonBody<UserCreate>,
    ) -> Result<Created, ApiError> {
        let input = body.0;
        let now = self.ctx.admin.now();
        let mut u = User {
            id: 0,
            name: String::new(),
            role: Role::User,
            provider_group: String::new(),
            limits: Default::default(),
            enabled: true,
            expires_at: None,
            note: String::new(),
            created_at: now,
            updated_at: now,
        };
        apply_user_fields!(&input, &mut u).map_err(AdminError::from)?;
        let saved = self.ctx.admin.create_user(u).await?;
        Ok(Created::Ok(Json(UserView::from(&saved))))
    }

    /// Get a user.
    #[oai(path = "/:id", method = "get")]
    async fn get(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Json<UserView>, ApiError> {
        Ok(Json(UserView::from(&self.ctx.admin.get_user(id.0).await?)))
    }

    /// Update a user (partial).
    #[oai(path = "/:id", method = "patch")]
    async fn patch(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
        body: JsonBody<UserPatch>,
    ) -> Result<Json<UserView>, ApiError> {
        let input = body.0;
        let before = super::usage::limits_before(&self.ctx, Scope::User, id.0);
        let saved = self
            .ctx
            .admin
            .patch_user(id.0, |u| apply_user_fields!(&input, u))
            .await?;
        super::usage::limits_changed(&self.ctx, Scope::User, id.0, before).await;
        Ok(Json(UserView::from(&saved)))
    }

    /// Delete a user and their keys.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Deleted, ApiError> {
        self.ctx.admin.delete_user(id.0).await?;
        Ok(Deleted::Ok)
    }
}
