//! `/api/v1/notifications`: webhook targets (CRUD, test send) and the delivery log. Secrets —
//! signing secrets, bot tokens, credentials inside webhook URLs, custom header values — are
//! masked in every answer; an update that leaves them out keeps them.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem_openapi::param::{Path, Query};
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
use crate::domain::notify::platform::TELEGRAM_API;
use crate::domain::notify::target::{SECRET_MASK, Target, TargetKind, TargetOptions, mask_url};
use crate::domain::notify::{EventKind, Lang};
use crate::ports::notifications::Delivery;
use crate::ports::store::StoreError;

/// A new notification target.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetCreate {
    /// Display name (unique).
    pub name: String,
    /// wecom, feishu, dingtalk, telegram, slack, discord or custom.
    pub kind: String,
    /// Webhook URL (Telegram: the Bot API base; default https://api.telegram.org).
    #[serde(default)]
    pub url: Option<String>,
    /// Feishu/DingTalk signing secret, or the Telegram bot token.
    #[serde(default)]
    pub secret: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Events to receive (breaker_opened, breaker_half_open, breaker_closed, provider_down,
    /// provider_recovered, cost_alert, daily_leaderboard); empty or absent = all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Message language: en (default) or zh.
    #[serde(default)]
    pub lang: Option<String>,
    /// Telegram chat id.
    #[serde(default)]
    pub chat_id: Option<String>,
    /// Custom: JSON body template with {{event}}, {{title}}, {{text}}, {{fields}}, {{time}},
    /// {{level}}, {{count}} placeholders.
    #[serde(default)]
    pub template: Option<String>,
    /// Custom: extra request headers.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// Changes to a target: absent fields are kept, `null` clears optional ones.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetPatch {
    /// Name.
    #[serde(default)]
    pub name: MaybeUndefined<String>,
    /// Kind.
    #[serde(default)]
    pub kind: MaybeUndefined<String>,
    /// URL.
    #[serde(default)]
    pub url: MaybeUndefined<String>,
    /// Secret (`null` removes it).
    #[serde(default)]
    pub secret: MaybeUndefined<String>,
    /// Enabled.
    #[serde(default)]
    pub enabled: MaybeUndefined<bool>,
    /// Events (`null` or `[]` = all).
    #[serde(default)]
    pub events: MaybeUndefined<Vec<String>>,
    /// en or zh.
    #[serde(default)]
    pub lang: MaybeUndefined<String>,
    /// Telegram chat id.
    #[serde(default)]
    pub chat_id: MaybeUndefined<String>,
    /// Custom body template (`null` = the default template).
    #[serde(default)]
    pub template: MaybeUndefined<String>,
    /// Custom headers (replaces all; `null` removes all).
    #[serde(default)]
    pub headers: MaybeUndefined<BTreeMap<String, String>>,
}

/// A target as shown to admins (secrets masked).
#[derive(Debug, Clone, Object)]
pub struct TargetView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Platform.
    pub kind: String,
    /// Webhook URL with credentials masked.
    pub url: String,
    /// `****` when a secret is set.
    pub secret: Option<String>,
    /// Enabled.
    pub enabled: bool,
    /// Subscribed events (empty = all).
    pub events: Vec<String>,
    /// en or zh.
    pub lang: String,
    /// Telegram chat id.
    pub chat_id: Option<String>,
    /// Custom body template.
    pub template: Option<String>,
    /// Custom header names, values masked.
    pub headers: BTreeMap<String, String>,
}

impl From<&Target> for TargetView {
    fn from(t: &Target) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            kind: t.kind.as_str().into(),
            url: mask_url(&t.url),
            secret: t.secret.as_ref().map(|_| SECRET_MASK.to_string()),
            enabled: t.enabled,
            events: t.events.iter().map(|e| e.as_str().to_string()).collect(),
            lang: t.lang.as_str().into(),
            chat_id: t.options.chat_id.clone(),
            template: t.options.template.clone(),
            headers: t
                .options
                .headers
                .iter()
                .map(|(k, _)| (k.clone(), SECRET_MASK.to_string()))
                .collect(),
        }
    }
}

/// What a test send produced.
#[derive(Debug, Clone, Object)]
pub struct TestSendView {
    /// Whether the platform answered with its success answer.
    pub delivered: bool,
    /// HTTP status of the platform's answer, if one came.
    pub status: Option<u16>,
    /// The platform's answer (cut to 1 KB) or the network failure.
    pub answer: String,
}

/// One delivery attempt.
#[derive(Debug, Clone, Object)]
pub struct DeliveryView {
    /// Id (use as `before_id` to page).
    pub id: i64,
    /// When the attempt ended.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Target id.
    pub target_id: i64,
    /// Target name at the time.
    pub target_name: String,
    /// Event name.
    pub event: String,
    /// Attempt number (1-based).
    pub attempt: u32,
    /// delivered, retry or failed.
    pub outcome: String,
    /// HTTP status of the answer.
    pub status: Option<u16>,
    /// The platform's answer or the failure (≤ 1 KB).
    pub answer: String,
    /// When the next attempt is due (retry).
    pub next_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            at: d.at,
            target_id: d.target_id,
            target_name: d.target_name,
            event: d.event,
            attempt: d.attempt,
            outcome: d.outcome,
            status: d.status,
            answer: d.answer,
            next_at: d.next_at,
        }
    }
}

fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("notification target"),
        StoreError::Conflict(_) => {
            AdminError::Conflict("a notification target with this name already exists".into())
                .into()
        }
        StoreError::InvalidReference(m) => ApiError::bad_request(None, m),
        StoreError::Unavailable(m) | StoreError::Corrupt(m) => AdminError::Unavailable(m).into(),
    }
}

fn bad(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(Some(field.to_string()), msg)
}

fn parse_kind(s: &str) -> Result<TargetKind, ApiError> {
    TargetKind::parse(s).ok_or_else(|| {
        bad(
            "kind",
            "must be wecom, feishu, dingtalk, telegram, slack, discord or custom",
        )
    })
}

fn parse_events(v: &[String]) -> Result<Vec<EventKind>, ApiError> {
    let mut out = Vec::new();
    for name in v {
        let k = EventKind::parse(name).ok_or_else(|| {
            let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            bad(
                "events",
                format!("unknown event {name:?}; known: {}", all.join(", ")),
            )
        })?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

fn parse_lang(s: &str) -> Result<Lang, ApiError> {
    Lang::parse(s).ok_or_else(|| bad("lang", "must be en or zh"))
}

fn validated(t: Target) -> Result<Target, ApiError> {
    t.validate().map_err(|m| {
        let field = m.split(':').next().unwrap_or("").to_string();
        ApiError::bad_request(Some(field), m)
    })?;
    Ok(t)
}

fn from_create(c: TargetCreate) -> Result<Target, ApiError> {
    let kind = parse_kind(&c.kind)?;
    let url = match (c.url.filter(|u| !u.trim().is_empty()), kind) {
        (Some(u), _) => u.trim().to_string(),
        (None, TargetKind::Telegram) => TELEGRAM_API.to_string(),
        (None, _) => return Err(bad("url", "required")),
    };
    validated(Target {
        id: 0,
        name: c.name.trim().to_string(),
        kind,
        url,
        secret: c.secret.filter(|s| !s.is_empty()),
        enabled: c.enabled.unwrap_or(true),
        events: parse_events(&c.events.unwrap_or_default())?,
        lang: c.lang.as_deref().map_or(Ok(Lang::En), parse_lang)?,
        options: TargetOptions {
            chat_id: c.chat_id.filter(|s| !s.is_empty()),
            template: c.template.filter(|s| !s.trim().is_empty()),
            headers: c.headers.unwrap_or_default().into_iter().collect(),
        },
    })
}

fn apply_patch(p: TargetPatch, mut t: Target) -> Result<Target, ApiError> {
    for (field, null) in [
        ("name", p.name.is_null()),
        ("kind", p.kind.is_null()),
        ("url", p.url.is_null()),
        ("enabled", p.enabled.is_null()),
        ("lang", p.lang.is_null()),
    ] {
        if null {
            return Err(bad(
                field,
                "cannot be null (leave it out to keep the current value)",
            ));
        }
    }
    if let Some(v) = p.name.value() {
        t.name = v.trim().to_string();
    }
    if let Some(v) = p.kind.value() {
        t.kind = parse_kind(v)?;
    }
    if let Some(v) = p.url.value() {
        t.url = v.trim().to_string();
    }
    match p.secret {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => t.secret = None,
        MaybeUndefined::Value(v) => t.secret = Some(v).filter(|s| !s.is_empty()),
    }
    if let Some(v) = p.enabled.value() {
        t.enabled = *v;
    }
    match p.events {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => t.events.clear(),
        MaybeUndefined::Value(v) => t.events = parse_events(&v)?,
    }
    if let Some(v) = p.lang.value() {
        t.lang = parse_lang(v)?;
    }
    match p.chat_id {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => t.options.chat_id = None,
        MaybeUndefined::Value(v) => t.options.chat_id = Some(v).filter(|s| !s.is_empty()),
    }
    match p.template {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => t.options.template = None,
        MaybeUndefined::Value(v) => t.options.template = Some(v).filter(|s| !s.trim().is_empty()),
    }
    match p.headers {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => t.options.headers.clear(),
        MaybeUndefined::Value(v) => t.options.headers = v.into_iter().collect(),
    }
    validated(t)
}

/// 201 with the created target.
#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<TargetView>),
}

/// 204.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

/// Notification endpoints.
pub struct NotificationsApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/notifications", tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// List notification targets (secrets masked).
    #[oai(path = "/targets", method = "get")]
    async fn list(&self, _auth: AdminAuth) -> Result<Json<Vec<TargetView>>, ApiError> {
        let all = self
            .ctx
            .notifications
            .store()
            .list_targets()
            .await
            .map_err(store_err)?;
        Ok(Json(all.iter().map(TargetView::from).collect()))
    }

    /// Create a notification target.
    #[oai(path = "/targets", method = "post")]
    async fn create(
        &self,
        _auth: AdminAuth,
        body: JsonBody<TargetCreate>,
    ) -> Result<Created, ApiError> {
        let t = from_create(body.0)?;
        let saved = self
            .ctx
            .notifications
            .store()
            .insert_target(&t, self.ctx.clock.now())
            .await
            .map_err(store_err)?;
        Ok(Created::Ok(Json(TargetView::from(&saved))))
    }

    /// One notification target (secrets masked).
    #[oai(path = "/targets/:id", method = "get")]
    async fn get(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Json<TargetView>, ApiError> {
        let t = self
            .ctx
            .notifications
            .store()
            .get_target(id.0)
            .await
            .map_err(store_err)?;
        Ok(Json(TargetView::from(&t)))
    }

    /// Update a notification target (partial; absent secrets are kept).
    #[oai(path = "/targets/:id", method = "patch")]
    async fn patch(
        &self,
        _auth: AdminAuth,
        id: Path<i64>,
        body: JsonBody<TargetPatch>,
    ) -> Result<Json<TargetView>, ApiError> {
        let store = self.ctx.notifications.store();
        let current = store.get_target(id.0).await.map_err(store_err)?;
        let t = apply_patch(body.0, current)?;
        let saved = store
            .update_target(&t, self.ctx.clock.now())
            .await
            .map_err(store_err)?;
        Ok(Json(TargetView::from(&saved)))
    }

    /// Delete a notification target and its undelivered messages.
    #[oai(path = "/targets/:id", method = "delete")]
    async fn delete(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Deleted, ApiError> {
        self.ctx
            .notifications
            .store()
            .delete_target(id.0)
            .await
            .map_err(store_err)?;
        Ok(Deleted::Ok)
    }

    /// Send a test message now and return the platform's answer (also in the delivery log).
    #[oai(path = "/targets/:id/test", method = "post")]
    async fn test(&self, _auth: AdminAuth, id: Path<i64>) -> Result<Json<TestSendView>, ApiError> {
        let t = self
            .ctx
            .notifications
            .store()
            .get_target(id.0)
            .await
            .map_err(store_err)?;
        let a = self.ctx.notifications.send_test(&t).await;
        Ok(Json(TestSendView {
            delivered: a.delivered,
            status: a.status,
            answer: a.answer,
        }))
    }

    /// The delivery log, newest first (kept for `NOTIFY_RETENTION_DAYS`).
    #[oai(path = "/deliveries", method = "get")]
    async fn deliveries(
        &self,
        _auth: AdminAuth,
        target_id: Query<Option<i64>>,
        before_id: Query<Option<i64>>,
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<DeliveryView>>, ApiError> {
        let limit = limit.0.unwrap_or(100).clamp(1, 1000);
        let rows = self
            .ctx
            .notifications
            .store()
            .list_deliveries(target_id.0, before_id.0, limit)
            .await
            .map_err(store_err)?;
        Ok(Json(rows.into_iter().map(DeliveryView::from).collect()))
    }
}
