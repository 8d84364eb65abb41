//! System settings editable at run time and stored in the database (key → JSON value).

use serde::{Deserialize, Serialize};

/// One stored setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemSetting {
    /// Setting name, e.g. `log_retention_days`.
    pub key: String,
    /// Its value as JSON.
    pub value: serde_json::Value,
}

/// Setting name: time zone overriding the `TZ` environment variable (IANA name).
pub const TIMEZONE: &str = "timezone";
/// Setting name: days request-log rows are kept (0 = for ever).
pub const LOG_RETENTION_DAYS: &str = "log_retention_days";
/// Setting name: local time of day (`HH:MM`) the retention job runs.
pub const LOG_CLEANUP_TIME: &str = "log_cleanup_time";
/// Setting name: the console's site title.
pub const SITE_TITLE: &str = "site_title";

/// Default local time of the retention job.
pub const DEFAULT_CLEANUP_TIME: &str = "03:00";
/// Default site title.
pub const DEFAULT_SITE_TITLE: &str = "Claude Code Hub";
/// Longest accepted retention (100 years; beyond that use 0, "for ever").
pub const MAX_RETENTION_DAYS: i64 = 36_500;
/// Longest site title, in characters.
pub const MAX_SITE_TITLE_CHARS: usize = 100;

/// The typed system settings this version knows, read from the stored key → JSON map. Stored
/// values were validated when written; one that no longer parses falls back to its default.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemConfig {
    /// Time zone override; `None` means the `TZ` environment variable applies.
    pub timezone: Option<chrono_tz::Tz>,
    /// Days request-log rows are kept; 0 keeps them for ever (the default).
    pub log_retention_days: u32,
    /// Local time of day the retention job runs.
    pub log_cleanup_time: chrono::NaiveTime,
    /// The console's title.
    pub site_title: String,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            timezone: None,
            log_retention_days: 0,
            log_cleanup_time: chrono::NaiveTime::from_hms_opt(3, 0, 0).unwrap_or_default(),
            site_title: DEFAULT_SITE_TITLE.to_string(),
        }
    }
}

impl SystemConfig {
    /// Reads the known settings from the stored map.
    pub fn from_map(map: &std::collections::HashMap<String, serde_json::Value>) -> Self {
        let mut c = Self::default();
        if let Some(tz) = map
            .get(TIMEZONE)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
        {
            c.timezone = Some(tz);
        }
        if let Some(days) = map
            .get(LOG_RETENTION_DAYS)
            .and_then(|v| v.as_i64())
            .filter(|d| (0..=MAX_RETENTION_DAYS).contains(d))
        {
            c.log_retention_days = days as u32;
        }
        if let Some(t) = map
            .get(LOG_CLEANUP_TIME)
            .and_then(|v| v.as_str())
            .and_then(crate::domain::schedule::parse_time_of_day)
        {
            c.log_cleanup_time = t;
        }
        if let Some(title) = map.get(SITE_TITLE).and_then(|v| v.as_str()) {
            c.site_title = title.to_string();
        }
        c
    }

    /// The zone for periods, resets and schedules: the override, else `env_default` (`TZ`).
    pub fn effective_zone(&self, env_default: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone.unwrap_or(env_default)
    }
}

/// A partial update of the system settings; absent fields are left alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsPatch {
    /// `Some(None)` removes the override (back to `TZ`); `Some(Some(name))` sets it.
    pub timezone: Option<Option<String>>,
    /// Days to keep request-log rows (0 = for ever).
    pub log_retention_days: Option<i64>,
    /// `HH:MM`, local time.
    pub log_cleanup_time: Option<String>,
    /// Console title.
    pub site_title: Option<String>,
}

/// What a validated patch changes: the setting rows to store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsChange {
    /// Rows to insert or replace.
    pub put: Vec<SystemSetting>,
}

impl SettingsPatch {
    /// Checks every field and turns the patch into rows to store; the first bad field is
    /// reported by name. A cleared time zone is stored as JSON `null`.
    pub fn validate(&self) -> Result<SettingsChange, crate::domain::error::ValidationError> {
        use crate::domain::error::ValidationError;
        let mut put = Vec::new();
        if let Some(tz) = &self.timezone {
            let value = match tz {
                None => serde_json::Value::Null,
                Some(name) => {
                    let zone: chrono_tz::Tz = name.trim().parse().map_err(|_| {
                        ValidationError::new(
                            TIMEZONE,
                            "an IANA time zone name such as Asia/Shanghai, UTC or \
                             America/New_York (or null for the TZ variable)",
                        )
                    })?;
                    serde_json::Value::String(zone.name().to_string())
                }
            };
            put.push(SystemSetting {
                key: TIMEZONE.into(),
                value,
            });
        }
        if let Some(days) = self.log_retention_days {
            if !(0..=MAX_RETENTION_DAYS).contains(&days) {
                return Err(ValidationError::new(
                    LOG_RETENTION_DAYS,
                    format!("whole days from 0 (keep for ever) to {MAX_RETENTION_DAYS}"),
                ));
            }
            put.push(SystemSetting {
                key: LOG_RETENTION_DAYS.into(),
                value: days.into(),
            });
        }
        if let Some(t) = &self.log_cleanup_time {
            if crate::domain::schedule::parse_time_of_day(t).is_none() {
                return Err(ValidationError::new(
                    LOG_CLEANUP_TIME,
                    "a local time of day written HH:MM (24-hour), e.g. 03:00",
                ));
            }
            put.push(SystemSetting {
                key: LOG_CLEANUP_TIME.into(),
                value: t.clone().into(),
            });
        }
        if let Some(title) = &self.site_title {
            let trimmed = title.trim();
            crate::domain::text::single_line(SITE_TITLE, trimmed)?;
            if trimmed.is_empty() || trimmed.chars().count() > MAX_SITE_TITLE_CHARS {
                return Err(ValidationError::new(
                    SITE_TITLE,
                    format!("1 to {MAX_SITE_TITLE_CHARS} characters"),
                ));
            }
            put.push(SystemSetting {
                key: SITE_TITLE.into(),
                value: trimmed.into(),
            });
        }
        Ok(SettingsChange { put })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_stored_values() {
        let empty = SystemConfig::from_map(&HashMap::new());
        assert_eq!(empty, SystemConfig::default());
        assert_eq!(empty.effective_zone(chrono_tz::UTC), chrono_tz::UTC);
        let map: HashMap<String, serde_json::Value> = [
            (TIMEZONE.to_string(), serde_json::json!("Asia/Kolkata")),
            (LOG_RETENTION_DAYS.to_string(), serde_json::json!(30)),
            (LOG_CLEANUP_TIME.to_string(), serde_json::json!("04:30")),
            (SITE_TITLE.to_string(), serde_json::json!("Team gateway")),
        ]
        .into();
        let c = SystemConfig::from_map(&map);
        assert_eq!(c.effective_zone(chrono_tz::UTC), chrono_tz::Asia::Kolkata);
        assert_eq!(c.log_retention_days, 30);
        assert_eq!(c.log_cleanup_time.to_string(), "04:30:00");
        assert_eq!(c.site_title, "Team gateway");
        // A cleared override (null) means TZ again.
        let cleared: HashMap<String, serde_json::Value> =
            [(TIMEZONE.to_string(), serde_json::Value::Null)].into();
        assert_eq!(SystemConfig::from_map(&cleared).timezone, None);
    }

    #[test]
    fn patch_validation_names_the_field() {
        let bad = |p: SettingsPatch| p.validate().unwrap_err().field;
        assert_eq!(
            bad(SettingsPatch {
                timezone: Some(Some("Mars/Olympus".into())),
                ..Default::default()
            }),
            TIMEZONE
        );
        assert_eq!(
            bad(SettingsPatch {
                log_retention_days: Some(-1),
                ..Default::default()
            }),
            LOG_RETENTION_DAYS
        );
        assert_eq!(
            bad(SettingsPatch {
                log_cleanup_time: Some("25:00".into()),
                ..Default::default()
            }),
            LOG_CLEANUP_TIME
        );
        assert_eq!(
            bad(SettingsPatch {
                site_title: Some("  ".into()),
                ..Default::default()
            }),
            SITE_TITLE
        );
        let ok = SettingsPatch {
            timezone: Some(None),
            log_retention_days: Some(7),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(ok.put.len(), 2);
        assert_eq!(ok.put[0].value, serde_json::Value::Null);
    }
}
