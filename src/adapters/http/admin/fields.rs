//! Helpers shared by the admin DTOs: applying optional (create) or tri-state (patch) inputs to
//! domain values, and the block of limit fields every user, key and provider carries.

use poem_openapi::types::MaybeUndefined;

/// An input wrapper: `Option` on create (absent = default) and `MaybeUndefined` on patch
/// (absent = keep, null = clear).
pub trait Input<T> {
    /// Applies the input to a nullable target.
    fn apply_opt(&self, target: &mut Option<T>);
    /// Applies the input to a required target (null keeps it).
    fn apply(&self, target: &mut T);
    /// The value, if one was given.
    fn given(&self) -> Option<&T>;
    /// Refuses an explicit `null` for a field that cannot be cleared (a patch would otherwise
    /// answer 200 and silently keep the old value).
    fn not_null(&self, _field: &str) -> Result<(), crate::domain::error::ValidationError> {
        Ok(())
    }
}

impl<T: Clone> Input<T> for Option<T> {
    fn apply_opt(&self, target: &mut Option<T>) {
        if let Some(v) = self {
            *target = Some(v.clone());
        }
    }
    fn apply(&self, target: &mut T) {
        if let Some(v) = self {
            *target = v.clone();
        }
    }
    fn given(&self) -> Option<&T> {
        self.as_ref()
    }
}

impl<T: Clone> Input<T> for MaybeUndefined<T> {
    fn apply_opt(&self, target: &mut Option<T>) {
        match self {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => *target = None,
            MaybeUndefined::Value(v) => *target = Some(v.clone()),
        }
    }
    fn apply(&self, target: &mut T) {
        if let MaybeUndefined::Value(v) = self {
            *target = v.clone();
        }
    }
    fn given(&self) -> Option<&T> {
        self.value()
    }
    fn not_null(&self, field: &str) -> Result<(), crate::domain::error::ValidationError> {
        if self.is_null() {
            return Err(crate::domain::error::ValidationError::new(
                field,
                "cannot be null (leave it out to keep the current value)",
            ));
        }
        Ok(())
    }
}

/// Declares an admin DTO struct with the standard limit fields appended, plus
/// `apply_limits` (input → domain) and `limit_fields` (domain → output).
macro_rules! with_limits {
    (
        $(#[$meta:meta])*
        pub struct $name:ident<$wrap:ident> {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// Requests per sliding minute (users and keys; providers ignore it).
            #[serde(default)]
            pub rpm_limit: $wrap<i32>,
            /// Spend limit of the rolling 5 hour window, USD.
            #[serde(default)]
            pub limit_5h_usd: $wrap<rust_decimal::Decimal>,
            /// Spend limit per day, USD.
            #[serde(default)]
            pub limit_daily_usd: $wrap<rust_decimal::Decimal>,
            /// `fixed` (reset at `daily_reset_time`) or `rolling` (last 24 h).
            #[serde(default)]
            pub daily_reset_mode: $wrap<String>,
            /// `HH:MM` in the configured timezone, for fixed daily windows.
            #[serde(default)]
            pub daily_reset_time: $wrap<String>,
            /// Spend limit per week (from Monday 00:00), USD.
            #[serde(default)]
            pub limit_weekly_usd: $wrap<rust_decimal::Decimal>,
            /// Spend limit per calendar month, USD.
            #[serde(default)]
            pub limit_monthly_usd: $wrap<rust_decimal::Decimal>,
            /// Total spend limit, USD.
            #[serde(default)]
            pub limit_total_usd: $wrap<rust_decimal::Decimal>,
            /// Concurrently active sessions.
            #[serde(default)]
            pub limit_concurrent_sessions: $wrap<i32>,
        }

        impl $name {
            /// Applies the limit fields of this input to `l`.
            #[allow(dead_code)]
            pub fn apply_limits(
                &self,
                l: &mut $crate::domain::limits::Limits,
            ) -> Result<(), $crate::domain::error::ValidationError> {
                use $crate::adapters::http::admin::fields::Input;
                self.rpm_limit.apply_opt(&mut l.rpm);
                self.limit_5h_usd.apply_opt(&mut l.limit_5h_usd);
                self.limit_daily_usd.apply_opt(&mut l.limit_daily_usd);
                if let Some(m) = self.daily_reset_mode.given() {
                    l.daily_reset_mode = $crate::domain::limits::DailyResetMode::parse(m)?;
                }
                if let Some(t) = self.daily_reset_time.given() {
                    l.daily_reset_time = $crate::domain::limits::ResetTime::parse(t)?;
                }
                self.limit_weekly_usd.apply_opt(&mut l.limit_weekly_usd);
                self.limit_monthly_usd.apply_opt(&mut l.limit_monthly_usd);
                self.limit_total_usd.apply_opt(&mut l.limit_total_usd);
                self.limit_concurrent_sessions.apply_opt(&mut l.limit_concurrent_sessions);
                Ok(())
            }
        }
    };
}

pub(crate) use with_limits;

/// The limit fields of an output view, in the same names as the inputs.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct LimitsView {
    /// Requests per sliding minute.
    pub rpm_limit: Option<i32>,
    /// Rolling 5 hour spend limit, USD.
    pub limit_5h_usd: Option<rust_decimal::Decimal>,
    /// Daily spend limit, USD.
    pub limit_daily_usd: Option<rust_decimal::Decimal>,
    /// `fixed` or `rolling`.
    pub daily_reset_mode: String,
    /// `HH:MM`.
    pub daily_reset_time: String,
    /// Weekly spend limit, USD.
    pub limit_weekly_usd: Option<rust_decimal::Decimal>,
    /// Monthly spend limit, USD.
    pub limit_monthly_usd: Option<rust_decimal::Decimal>,
    /// Total spend limit, USD.
    pub limit_total_usd: Option<rust_decimal::Decimal>,
    /// Concurrent sessions limit.
    pub limit_concurrent_sessions: Option<i32>,
}

impl From<&crate::domain::limits::Limits> for LimitsView {
    fn from(l: &crate::domain::limits::Limits) -> Self {
        Self {
            rpm_limit: l.rpm,
            limit_5h_usd: l.limit_5h_usd,
            limit_daily_usd: l.limit_daily_usd,
            daily_reset_mode: l.daily_reset_mode.as_str().to_string(),
            daily_reset_time: l.daily_reset_time.to_string(),
            limit_weekly_usd: l.limit_weekly_usd,
            limit_monthly_usd: l.limit_monthly_usd,
            limit_total_usd: l.limit_total_usd,
            limit_concurrent_sessions: l.limit_concurrent_sessions,
        }
    }
}

impl Input<String> for String {
    fn apply_opt(&self, target: &mut Option<String>) {
        *target = Some(self.clone());
    }
    fn apply(&self, target: &mut String) {
        target.clone_from(self);
    }
    fn given(&self) -> Option<&String> {
        Some(self)
    }
}
