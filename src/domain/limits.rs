//! Spend, rate and concurrency limits shared by users, keys and providers.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::error::ValidationError;

/// How the daily spend window resets: at a fixed local time, or as a rolling 24 h window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DailyResetMode {
    /// Resets every day at `daily_reset_time` in the configured timezone.
    #[default]
    Fixed,
    /// Sums the spend of the last 24 hours.
    Rolling,
}

impl DailyResetMode {
    /// The stored/wire name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::Rolling => "rolling",
        }
    }

    /// Parses the stored/wire name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "fixed" => Ok(Self::Fixed),
            "rolling" => Ok(Self::Rolling),
            _ => Err(ValidationError::new(
                "daily_reset_mode",
                "must be one of: fixed, rolling",
            )),
        }
    }
}

/// A local time of day (`HH:MM`) at which fixed daily windows reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResetTime {
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
}

impl ResetTime {
    /// Parses `HH:MM` (24 h clock).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let err =
            || ValidationError::new("daily_reset_time", "must be HH:MM between 00:00 and 23:59");
        let (h, m) = s.split_once(':').ok_or_else(err)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(err());
        }
        let hour: u8 = h.parse().map_err(|_| err())?;
        let minute: u8 = m.parse().map_err(|_| err())?;
        if hour > 23 || minute > 59 {
            return Err(err());
        }
        Ok(Self { hour, minute })
    }
}

impl std::fmt::Display for ResetTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl TryFrom<String> for ResetTime {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ResetTime> for String {
    fn from(t: ResetTime) -> Self {
        t.to_string()
    }
}

/// Every limit an entity can carry; `None` means unlimited. Providers ignore `rpm`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per sliding minute.
    pub rpm: Option<i32>,
    /// Spend in a rolling 5 hour window (USD).
    pub limit_5h_usd: Option<Decimal>,
    /// Spend per day (USD), per `daily_reset_mode`.
    pub limit_daily_usd: Option<Decimal>,
    /// Whether the daily window is fixed or rolling.
    pub daily_reset_mode: DailyResetMode,
    /// Local reset time of a fixed daily window.
    pub daily_reset_time: ResetTime,
    /// Spend per week, from Monday 00:00 (USD).
    pub limit_weekly_usd: Option<Decimal>,
    /// Spend per calendar month (USD).
    pub limit_monthly_usd: Option<Decimal>,
    /// Spend ever (USD), until an admin resets it.
    pub limit_total_usd: Option<Decimal>,
    /// Concurrently active sessions.
    pub limit_concurrent_sessions: Option<i32>,
}

/// Largest spend limit accepted, to keep arithmetic and storage comfortably in range.
pub const MAX_USD_LIMIT: i64 = 1_000_000_000;

impl Limits {
    /// Checks ranges: money ≥ 0 and bounded, rpm 1..=1_000_000, concurrency 0..=1000.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let money = [
            ("limit_5h_usd", self.limit_5h_usd),
            ("limit_daily_usd", self.limit_daily_usd),
            ("limit_weekly_usd", self.limit_weekly_usd),
            ("limit_monthly_usd", self.limit_monthly_usd),
            ("limit_total_usd", self.limit_total_usd),
        ];
        for (field, value) in money {
            if let Some(v) = value
                && (v.is_sign_negative() || v > Decimal::from(MAX_USD_LIMIT))
            {
                return Err(ValidationError::new(
                    field,
                    format!("must be between 0 and {MAX_USD_LIMIT}"),
                ));
            }
        }
        if let Some(rpm) = self.rpm
            && !(1..=1_000_000).contains(&rpm)
        {
            return Err(ValidationError::new(
                "rpm_limit",
                "must be between 1 and 1000000",
            ));
        }
        if let Some(c) = self.limit_concurrent_sessions
            && !(0..=1000).contains(&c)
        {
            return Err(ValidationError::new(
                "limit_concurrent_sessions",
                "must be between 0 and 1000",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_time_parses_and_prints() {
        assert_eq!(
            ResetTime::parse("07:05").map(|t| t.to_string()),
            Ok("07:05".into())
        );
        assert!(ResetTime::parse("24:00").is_err());
        assert!(ResetTime::parse("7:05").is_err());
        assert!(ResetTime::parse("07:60").is_err());
        assert!(ResetTime::parse("ab:cd").is_err());
    }

    #[test]
    fn limits_reject_negative_money_and_bad_ranges() {
        let l = Limits {
            limit_daily_usd: Some(Decimal::new(-1, 0)),
            ..Default::default()
        };
        assert_eq!(
            l.validate().map_err(|e| e.field),
            Err("limit_daily_usd".to_string())
        );
        let l = Limits {
            rpm: Some(0),
            ..Default::default()
        };
        assert!(l.validate().is_err());
        let l = Limits {
            limit_concurrent_sessions: Some(1001),
            ..Default::default()
        };
        assert!(l.validate().is_err());
        assert!(Limits::default().validate().is_ok());
    }
}
