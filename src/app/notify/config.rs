//! Settings of notification delivery and alerts, read from the environment.

use std::collections::HashMap;
use std::time::Duration;

use crate::app::config::ConfigError;

/// How notifications are delivered and when alerts fire.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySettings {
    /// `NOTIFY_POLL_INTERVAL_MS` (default 1000): how often the worker looks for due messages
    /// (a new event wakes it at once).
    pub poll_interval: Duration,
    /// `NOTIFY_COALESCE_WINDOW_S` (default 300): repeats of the same event to the same target
    /// within this long after a delivered message are merged into one message.
    pub coalesce_window: chrono::Duration,
    /// `NOTIFY_TIMEOUT_MS` (default 10000): time allowed for a platform to answer.
    pub timeout: Duration,
    /// `NOTIFY_PROXY_URL`: outbound proxy for webhook calls (none by default).
    pub proxy_url: Option<String>,
    /// `COST_ALERT_THRESHOLDS` (default `80,90,100`): shares of a spend limit, in percent,
    /// that raise a cost alert.
    pub cost_thresholds: Vec<u32>,
    /// `COST_ALERT_CHECK_INTERVAL_S` (default 60; 0 turns cost alerts off).
    pub cost_check_interval: Duration,
    /// `NOTIFY_RETENTION_DAYS` (default 30): how long the delivery log is kept.
    pub retention_days: u32,
    /// `NOTIFY_LEADERBOARD_TIME` (default `09:00`, local time in `TZ`; `off` disables): when the
    /// daily leaderboard of the previous day is sent.
    pub leaderboard_time: Option<chrono::NaiveTime>,
    /// `NOTIFY_LEADERBOARD_TOP_N` (default 5, 1–50): users listed in the daily leaderboard.
    pub leaderboard_top_n: usize,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            coalesce_window: chrono::Duration::seconds(300),
            timeout: Duration::from_secs(10),
            proxy_url: None,
            cost_thresholds: vec![80, 90, 100],
            cost_check_interval: Duration::from_secs(60),
            retention_days: 30,
            leaderboard_time: chrono::NaiveTime::from_hms_opt(9, 0, 0),
            leaderboard_top_n: 5,
        }
    }
}

fn get<'a>(vars: &'a HashMap<String, String>, var: &str) -> Option<&'a str> {
    vars.get(var)
        .map(|v| v.trim().trim_matches('"').trim())
        .filter(|v| !v.is_empty())
}

fn int(
    vars: &HashMap<String, String>,
    var: &'static str,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match get(vars, var) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or(ConfigError {
                var,
                value: v.to_string(),
                expected: format!("a whole number from 0 to {max}"),
            }),
    }
}

impl NotifySettings {
    /// Parses the variables named on the fields.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let thresholds = match get(vars, "COST_ALERT_THRESHOLDS") {
            None => d.cost_thresholds,
            Some(v) => {
                let mut t = v
                    .split(',')
                    .map(|p| p.trim().trim_end_matches('%').parse::<u32>())
                    .collect::<Result<Vec<u32>, _>>()
                    .ok()
                    .filter(|t| t.iter().all(|p| (1..=1000).contains(p)) && t.len() <= 10)
                    .ok_or(ConfigError {
                        var: "COST_ALERT_THRESHOLDS",
                        value: v.to_string(),
                        expected: "comma-separated percentages such as 80,90,100".into(),
                    })?;
                t.sort_unstable();
                t.dedup();
                t
            }
        };
        let proxy_url = get(vars, "NOTIFY_PROXY_URL").map(str::to_string);
        let leaderboard_time =
            match get(vars, "NOTIFY_LEADERBOARD_TIME") {
                None => d.leaderboard_time,
                Some(v) if v.eq_ignore_ascii_case("off") => None,
                Some(v) => Some(chrono::NaiveTime::parse_from_str(v, "%H:%M").map_err(|_| {
                    ConfigError {
                        var: "NOTIFY_LEADERBOARD_TIME",
                        value: v.to_string(),
                        expected: "a local time HH:MM such as 09:00, or off".into(),
                    }
                })?),
            };
        let leaderboard_top_n = match int(vars, "NOTIFY_LEADERBOARD_TOP_N", 5, 50)? {
            0 => {
                return Err(ConfigError {
                    var: "NOTIFY_LEADERBOARD_TOP_N",
                    value: "0".into(),
                    expected: "a whole number from 1 to 50".into(),
                });
            }
            n => usize::try_from(n).unwrap_or(5),
        };
        Ok(Self {
            poll_interval: Duration::from_millis(
                int(vars, "NOTIFY_POLL_INTERVAL_MS", 1000, 600_000)?.max(10),
            ),
            coalesce_window: chrono::Duration::seconds(
                i64::try_from(int(vars, "NOTIFY_COALESCE_WINDOW_S", 300, 86_400)?).unwrap_or(300),
            ),
            timeout: Duration::from_millis(
                int(vars, "NOTIFY_TIMEOUT_MS", 10_000, 600_000)?.max(100),
            ),
            proxy_url,
            cost_thresholds: thresholds,
            cost_check_interval: Duration::from_secs(int(
                vars,
                "COST_ALERT_CHECK_INTERVAL_S",
                60,
                86_400,
            )?),
            retention_days: u32::try_from(int(vars, "NOTIFY_RETENTION_DAYS", 30, 3650)?)
                .unwrap_or(30),
            leaderboard_time,
            leaderboard_top_n,
        })
    }
}
