//! Conversions between domain values and SQLite's storage classes, and the mapping of sqlx errors
//! to [`StoreError`].
//!
//! Time is stored as RFC 3339 UTC text with exactly six fractional digits
//! (`2024-01-02T03:04:05.123456Z`): fixed width makes text order equal time order, and microseconds
//! match PostgreSQL's TIMESTAMPTZ precision (finer digits are truncated). Money is stored as a
//! decimal string rounded to 12 fractional digits, like PostgreSQL's NUMERIC(24,12), and
//! read back without trailing zeros.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::domain::limits::{DailyResetMode, Limits, ResetTime};
use crate::ports::store::StoreError;

/// Fractional digits kept for money, matching NUMERIC(24,12) on PostgreSQL.
const MONEY_SCALE: u32 = 12;
/// The one text layout used for every stored instant.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Formats an instant in the fixed-width layout described in the module docs, through chrono's
/// RFC 3339 writer: every log row and most statistics queries bind an instant, and the
/// format-string path (`TIME_FORMAT`) cost about 4,000 instructions a call (callgrind). The
/// two write the same text (test below), so `text_to_ts` reads either.
pub(crate) fn ts_to_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an instant written by [`ts_to_text`].
pub(crate) fn text_to_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .map(|n| n.and_utc())
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

/// Parses an optional instant.
pub(crate) fn opt_text_to_ts(s: Option<&str>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(text_to_ts).transpose()
}

/// Formats money as a decimal string, rounded like PostgreSQL rounds NUMERIC(24,12).
pub(crate) fn dec_to_text(d: &Decimal) -> String {
    d.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointAwayFromZero)
        .to_string()
}

/// Formats optional money.
pub(crate) fn opt_dec_to_text(d: &Option<Decimal>) -> Option<String> {
    d.as_ref().map(dec_to_text)
}

/// Parses money written by [`dec_to_text`], without trailing zeros (as the PostgreSQL adapter
/// returns it).
pub(crate) fn text_to_dec(s: &str) -> Result<Decimal, StoreError> {
    s.parse::<Decimal>()
        .map(|d| d.normalize())
        .map_err(|e| StoreError::Corrupt(format!("bad decimal {s:?}: {e}")))
}

/// Parses optional money.
pub(crate) fn opt_text_to_dec(s: Option<&str>) -> Result<Option<Decimal>, StoreError> {
    s.map(text_to_dec).transpose()
}

/// The nine flattened limit columns shared by providers, users and api_keys.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LimitsRow {
    rpm_limit: Option<i32>,
    limit_5h_usd: Option<String>,
    limit_daily_usd: Option<String>,
    daily_reset_mode: String,
    daily_reset_time: String,
    limit_weekly_usd: Option<String>,
    limit_monthly_usd: Option<String>,
    limit_total_usd: Option<String>,
    limit_concurrent_sessions: Option<i32>,
}

impl LimitsRow {
    /// Decodes the stored columns into domain limits.
    pub(crate) fn into_limits(self) -> Result<Limits, StoreError> {
        Ok(Limits {
            rpm: self.rpm_limit,
            limit_5h_usd: opt_text_to_dec(self.limit_5h_usd.as_deref())?,
            limit_daily_usd: opt_text_to_dec(self.limit_daily_usd.as_deref())?,
            daily_reset_mode: DailyResetMode::parse(&self.daily_reset_mode)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            daily_reset_time: ResetTime::parse(&self.daily_reset_time)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            limit_weekly_usd: opt_text_to_dec(self.limit_weekly_usd.as_deref())?,
            limit_monthly_usd: opt_text_to_dec(self.limit_monthly_usd.as_deref())?,
            limit_total_usd: opt_text_to_dec(self.limit_total_usd.as_deref())?,
            limit_concurrent_sessions: self.limit_concurrent_sessions,
        })
    }
}

/// Column list of the limits, in the order [`push_limits`] binds them.
pub(crate) const LIMIT_COLUMNS: &str = "rpm_limit, limit_5h_usd, limit_daily_usd, \
     daily_reset_mode, daily_reset_time, limit_weekly_usd, limit_monthly_usd, limit_total_usd, \
     limit_concurrent_sessions";

/// A comma-separated list of values being pushed into a [`sqlx::QueryBuilder`].
pub(crate) type Values<'a> = sqlx::query_builder::Separated<'a, sqlx::Sqlite, &'static str>;

/// Binds the nine limit values in [`LIMIT_COLUMNS`] order.
pub(crate) fn push_limits(s: &mut Values<'_>, l: &Limits) {
    s.push_bind(l.rpm)
        .push_bind(opt_dec_to_text(&l.limit_5h_usd))
        .push_bind(opt_dec_to_text(&l.limit_daily_usd))
        .push_bind(l.daily_reset_mode.as_str())
        .push_bind(l.daily_reset_time.to_string())
        .push_bind(opt_dec_to_text(&l.limit_weekly_usd))
        .push_bind(opt_dec_to_text(&l.limit_monthly_usd))
        .push_bind(opt_dec_to_text(&l.limit_total_usd))
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

/// Maps a sqlx error to the port's error, naming the field of a unique violation.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                // SQLite says "UNIQUE constraint failed: table.column".
                let column = db
                    .message()
                    .rsplit_once('.')
                    .map(|(_, c)| c.trim().to_string())
                    .unwrap_or_else(|| "value".to_string());
                StoreError::Conflict(format!("{column} already exists"))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_and_round_trip() {
        let t = DateTime::from_timestamp(1_700_000_000, 120_000).unwrap_or_default();
        let s = ts_to_text(&t);
        assert_eq!(s, "2023-11-14T22:13:20.000120Z");
        assert_eq!(text_to_ts(&s).ok(), Some(t));
        assert!(text_to_ts("yesterday").is_err());
    }

    #[test]
    fn timestamps_are_written_as_chrono_would() {
        let chrono = |t: &DateTime<Utc>| t.format(TIME_FORMAT).to_string();
        // Instants from 1970 to about 2100, a prime stride apart, with assorted sub-seconds.
        let mut secs: i64 = 0;
        let mut nanos: u32 = 0;
        while secs < 4_102_444_800 {
            let t = DateTime::from_timestamp(secs, nanos).unwrap_or_default();
            assert_eq!(ts_to_text(&t), chrono(&t), "{secs}.{nanos}");
            secs += 7_919_999;
            nanos = (nanos + 123_456_789) % 1_000_000_000;
        }
        // The ends of the fixed layout, and what only chrono can write.
        for (s, n) in [
            (-62_167_219_200, 0),           // 0000-01-01
            (253_402_300_799, 999_999_999), // 9999-12-31T23:59:59.999999
            (253_402_300_800, 0),           // year 10000
            (-62_167_219_201, 5_000),       // year -1
            (1_483_228_799, 1_500_000_000), // a leap second
        ] {
            let t = DateTime::from_timestamp(s, n).unwrap_or_default();
            assert_eq!(ts_to_text(&t), chrono(&t), "{s}.{n}");
        }
    }

    #[test]
    fn money_rounds_half_away_from_zero_to_twelve_digits() {
        let d: Decimal = "1.0000000000005".parse().unwrap_or_default();
        assert_eq!(dec_to_text(&d), "1.000000000001");
        assert_eq!(dec_to_text(&Decimal::new(1234, 9)), "0.000001234");
    }
}
