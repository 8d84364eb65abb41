//! `/api/v1/settings`: the system settings editable at run time (time zone override,
//! log retention, site title). A change reaches every instance through the snapshot refresh.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use super::json_body::JsonBody;
use crate::app::context::AppContext;
use crate::domain::settings::SettingsPatch;

/// The system settings and what they amount to.
#[derive(Debug, Clone, Object)]
pub struct SettingsView {
    /// Time zone override (IANA name); null means the `TZ` environment variable applies.
    pub timezone: Option<String>,
    /// The zone in effect for daily/weekly/monthly periods, schedules and display.
    pub effective_timezone: String,
    /// The `TZ` environment variable's zone (used while no override is set).
    pub env_timezone: String,
    /// Days request-log rows are kept; 0 keeps them for ever (the default). Statistics
    /// roll-ups are never removed.
    pub log_retention_days: u32,
    /// Local time of day (`HH:MM`, effective zone) the retention job runs.
    pub log_cleanup_time: String,
    /// The console's title.
    pub site_title: String,
}

/// Changes to the settings: absent fields are kept; `timezone: null` removes the override.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatchBody {
    /// IANA zone name such as `Asia/Shanghai`, `UTC`, `America/New_York`; null = use `TZ`.
    #[serde(default)]
    pub timezone: MaybeUndefined<String>,
    /// 0 (keep for ever) to 36500.
    #[serde(default)]
    pub log_retention_days: MaybeUndefined<i64>,
    /// `HH:MM`, 24-hour clock, local time.
    #[serde(default)]
    pub log_cleanup_time: MaybeUndefined<String>,
    /// 1–100 characters, one line.
    #[serde(default)]
    pub site_title: MaybeUndefined<String>,
}

fn required<T: Clone>(field: &str, v: &MaybeUndefined<T>) -> Result<Option<T>, ApiError> {
    match v {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err(ApiError::bad_request(
            Some(field.to_string()),
            format!("{field}: may not be null"),
        )),
        MaybeUndefined::Value(x) => Ok(Some(x.clone())),
    }
}

impl SettingsPatchBody {
    fn into_patch(self) -> Result<SettingsPatch, ApiError> {
        Ok(SettingsPatch {
            timezone: match self.timezone {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v)),
            },
            log_retention_days: required("log_retention_days", &self.log_retention_days)?,
            log_cleanup_time: required("log_cleanup_time", &self.log_cleanup_time)?,
            site_title: required("site_title", &self.site_title)?,
        })
    }
}

fn view(ctx: &AppContext) -> SettingsView {
    let s = &ctx.system_settings;
    let c = s.current();
    SettingsView {
        timezone: c.timezone.map(|z| z.name().to_string()),
        effective_timezone: c.effective_zone(s.env_zone()).name().to_string(),
        env_timezone: s.env_zone().name().to_string(),
        log_retention_days: c.log_retention_days,
        log_cleanup_time: c.log_cleanup_time.format("%H:%M").to_string(),
        site_title: c.site_title,
    }
}

/// System settings endpoints.
pub struct SettingsApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/settings", tag = "ApiTags::Settings")]
impl SettingsApi {
    /// The system settings, with the effective time zone.
    #[oai(path = "/", method = "get")]
    async fn get(&self, _auth: AdminAuth) -> Result<Json<SettingsView>, ApiError> {
        Ok(Json(view(&self.ctx)))
    }

    /// Change some settings; the answer is the settings after the change. Other instances
    /// apply it at their next snapshot refresh (`CONFIG_REFRESH_INTERVAL_MS`).
    #[oai(path = "/", method = "patch")]
    async fn patch(
        &self,
        _auth: AdminAuth,
        body: JsonBody<SettingsPatchBody>,
    ) -> Result<Json<SettingsView>, ApiError> {
        let patch = body.0.into_patch()?;
        self.ctx.system_settings.patch(&patch).await?;
        Ok(Json(view(&self.ctx)))
    }
}
