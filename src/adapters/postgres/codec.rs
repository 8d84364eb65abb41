//! Shared pieces of the PostgreSQL adapter: the flattened limit columns and the mapping of sqlx
//! errors to [`StoreError`].
//!
//! Native types do the heavy lifting: TIMESTAMPTZ (microsecond precision), NUMERIC(24,12) for
//! money (read back without trailing zeros), JSONB for lists and maps.

use rust_decimal::Decimal;

use crate::domain::limits::{DailyResetMode, Limits, ResetTime};
use crate::ports::store::StoreError;

/// Strips the trailing zeros NUMERIC(24,12) adds, so both backends return the same values.
pub(crate) fn norm(d: Decimal) -> Decimal {
    d.normalize()
}

/// The nine flattened limit columns shared by providers, users and api_keys.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LimitsRow {
    rpm_limit: Option<i32>,
    limit_5h_usd: Option<Decimal>,
    limit_daily_usd: Option<Decimal>,
    daily_reset_mode: String,
    daily_reset_time: String,
    limit_weekly_usd: Option<Decimal>,
    limit_monthly_usd: Option<Decimal>,
    limit_total_usd: Option<Decimal>,
    limit_concurrent_sessions: Option<i32>,
}

impl LimitsRow {
    /// Decodes the stored columns into domain limits.
    pub(crate) fn into_limits(self) -> Result<Limits, StoreError> {
        Ok(Limits {
            rpm: self.rpm_limit,
            limit_5h_usd: self.limit_5h_usd.map(norm),
            limit_daily_usd: self.limit_daily_usd.map(norm),
            daily_reset_mode: DailyResetMode::parse(&self.daily_reset_mode)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            daily_reset_time: ResetTime::parse(&self.daily_reset_time)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            limit_weekly_usd: self.limit_weekly_usd.map(norm),
            limit_monthly_usd: self.limit_monthly_usd.map(norm),
            limit_total_usd: self.limit_total_usd.map(norm),
            limit_concurrent_sessions: self.limit_concurrent_sessions,
        })
    }
}

/// Column list of the limits, in the order [`push_limits`] binds them.
pub(crate) const LIMIT_COLUMNS: &str = "rpm_limit, limit_5h_usd, limit_daily_usd, \
     daily_reset_mode, daily_reset_time, limit_weekly_usd, limit_monthly_usd, limit_total_usd, \
     limit_concurrent_sessions";

/// A comma-separated list of values being pushed into a [`sqlx::QueryBuilder`].
pub(crate) type Values<'a> = sqlx::query_builder::Separated<'a, sqlx::Postgres, &'static str>;

/// Binds the nine limit values in [`LIMIT_COLUMNS`] order.
pub(crate) fn push_limits(s: &mut Values<'_>, l: &Limits) {
    s.push_bind(l.rpm)
        .push_bind(l.limit_5h_usd)
        .push_bind(l.limit_daily_usd)
        .push_bind(l.daily_reset_mode.as_str())
        .push_bind(l.daily_reset_time.to_string())
        .push_bind(l.limit_weekly_usd)
        .push_bind(l.limit_monthly_usd)
        .push_bind(l.limit_total_usd)
        .push_bind(l.limit_concurrent_sessions);
}

/// Turns an `UPDATE`/`DELETE` outcome into `NotFound` when no row matched.
pub(crate) fn expect_one(affected: u64) -> Result<(), StoreError> {
    if affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The field named by a unique constraint of the schema (see `migrations/postgres`).
fn conflicting_field(constraint: Option<&str>) -> &'static str {
    match constraint {
        Some("providers_name_key" | "users_name_key") => "name",
        Some("api_keys_key_hash_key") => "key_hash",
        Some("request_logs_request_id_key") => "request_id",
        Some("model_prices_pkey") => "model",
        Some("system_settings_pkey") => "key",
        Some(c) if c.ends_with("_pkey") => "id",
        _ => "value",
    }
}

/// Maps a sqlx error to the port's error, naming the field of a unique violation.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => StoreError::Conflict(format!(
                "{} already exists",
                conflicting_field(db.constraint())
            )),
            sqlx::error::ErrorKind::ForeignKeyViolation => {
                StoreError::InvalidReference("user_id does not name an existing user".into())
            }
            _ => StoreError::Unavailable(db.message().to_string()),
        },
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. }) => StoreError::Corrupt(e.to_string()),
        e => StoreError::Unavailable(e.to_string()),
    }
}
