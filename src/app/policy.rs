//! The two policies the proxy consults on every request, as app-level traits so the quota and
//! circuit-breaker services can evolve without touching the pipeline: limits (admit a request,
//! exclude over-limit providers, record spend) and breakers (which providers are open, record
//! outcomes). `NoLimits` and `NoBreakers` are the do-nothing versions.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::domain::api_key::ApiKey;
use crate::domain::breaker::Admission;
use crate::domain::failure::ErrorClass;
use crate::domain::format::ClientFormat;
use crate::domain::provider::Provider;
use crate::domain::user::User;

/// Who is asking, for the limit check.
pub struct AdmitRequest<'a> {
    /// The user.
    pub user: &'a User,
    /// The key.
    pub key: &'a ApiKey,
    /// The session id of the request.
    pub session_id: &'a str,
    /// The client format (for the error shape).
    pub format: ClientFormat,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A request refused by a limit: the 429 message and the rate-limit headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRejection {
    /// Names the limit, the current value and when it resets.
    pub message: String,
    /// Headers to send (`x-rate-limit-limit`, `x-rate-limit-remaining`, `x-rate-limit-reset`,
    /// `retry-after`).
    pub headers: Vec<(String, String)>,
    /// The message the request log keeps: `message` behind a tag naming the limit kind and
    /// scope (`domain::rate_limit_stats::tagged_message`), counted by the refusal statistics.
    pub log_message: String,
}

/// Providers selection must skip because of their own limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderLimitState {
    /// Provider → the spend window that is full.
    pub over_limit: HashMap<i64, String>,
    /// Providers whose concurrent sessions are all taken.
    pub concurrency_full: HashSet<i64>,
}

/// What spend a finished request adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRecord {
    /// The user.
    pub user_id: i64,
    /// The key.
    pub key_id: i64,
    /// The provider that served it, if any.
    pub provider_id: Option<i64>,
    /// Its cost in USD.
    pub cost_usd: Decimal,
    /// When the request arrived.
    pub at: DateTime<Utc>,
}

/// RPM, spend and concurrency limits of users, keys and providers.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait Limiter: Send + Sync {
    /// Checks every limit of the key and user and takes a concurrency slot for the session;
    /// `Err` means answer 429.
    async fn admit(&self, req: &AdmitRequest<'_>) -> Result<(), LimitRejection>;
    /// Providers over their own spend or concurrency limits right now, among `providers`.
    async fn provider_state<'a>(
        &self,
        providers: &[&'a Provider],
        session_id: &str,
        now: DateTime<Utc>,
    ) -> ProviderLimitState;
    /// Takes (or refreshes) the session's concurrent-session slot on `provider`, called after
    /// selection chose it and before anything is sent. Checked and taken atomically in one step,
    /// shared between instances: a session that already holds a slot keeps it; a new session is
    /// refused (`false`) when `limit_concurrent_sessions` other sessions are active, and selection
    /// must then skip the provider. A slot stops counting `SESSION_TTL` after the session's last
    /// request. A provider without a concurrent-session limit tracks nothing (granted at once).
    /// When the limits store fails, the slot is granted (fail-open). A session this instance
    /// saw holding the slot recently is granted without asking a shared store; the refresh is
    /// then owed to `settle_provider_slot`.
    async fn take_provider_slot(
        &self,
        provider: &Provider,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> bool;
    /// Adds a finished request's cost to every window of its key, user and provider.
    async fn record_spend(&self, spend: SpendRecord);
    /// After the answer: refreshes the provider slot that `take_provider_slot` granted without
    /// asking the store (a holder this instance confirmed recently), so the slot stays alive.
    /// Does nothing when the request owed no refresh.
    async fn settle_provider_slot(&self, provider_id: i64, session_id: &str, now: DateTime<Utc>);
}

/// No limits at all (`ENABLE_RATE_LIMIT=false`, and the default until quotas are wired).
pub struct NoLimits;

#[async_trait]
impl Limiter for NoLimits {
    async fn admit(&self, _req: &AdmitRequest<'_>) -> Result<(), LimitRejection> {
        Ok(())
    }
    async fn provider_state<'a>(
        &self,
        _p: &[&'a Provider],
        _s: &str,
        _now: DateTime<Utc>,
    ) -> ProviderLimitState {
        ProviderLimitState::default()
    }
    async fn take_provider_slot(&self, _p: &Provider, _s: &str, _now: DateTime<Utc>) -> bool {
        true
    }
    async fn record_spend(&self, _spend: SpendRecord) {}
    async fn settle_provider_slot(&self, _p: i64, _s: &str, _now: DateTime<Utc>) {}
}

/// How one provider did for one request (recorded once, after its retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOutcome {
    /// It answered successfully.
    Success,
    /// It failed (the breaker decides whether that counts). Also recorded for outcomes that never
    /// count (client errors, aborts), so a half-open trial the request held is released.
    Failure {
        /// The failure class.
        class: ErrorClass,
        /// The upstream's own error text (already capped by the proxy), or the proxy's description
        /// of a broken stream; kept as the breaker's last error. Never request or answer content.
        message: String,
    },
}

impl ProviderOutcome {
    /// A failure of `class` with `message`.
    pub fn failure(class: ErrorClass, message: impl Into<String>) -> Self {
        Self::Failure {
            class,
            message: message.into(),
        }
    }
}

/// Every provider's breaker as read once before routing (one `MGET` with Redis).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerReadings {
    /// Providers selection must skip, with the instant they may be tried again (see
    /// [`Breakers::open_providers`]).
    pub unavailable: HashMap<i64, Option<DateTime<Utc>>>,
    /// Providers whose breaker was CLOSED: admitting a request takes nothing from a closed
    /// breaker, so [`Breakers::admit`] is not asked for them (a breaker that opens in between lets
    /// this one request through: the same race as any read before a send).
    pub closed: HashSet<i64>,
    /// CLOSED with no failure counted: a success changes nothing, so it is not recorded.
    pub clean: HashSet<i64>,
}

/// Per-provider circuit breakers.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait Breakers: Send + Sync {
    /// Providers whose breaker is open now, with the instant they may be tried again.
    async fn open_providers(
        &self,
        providers: &[Provider],
        now: DateTime<Utc>,
    ) -> HashMap<i64, Option<DateTime<Utc>>> {
        let all: Vec<&Provider> = providers.iter().collect();
        self.readings(&all, now).await.unavailable
    }
    /// Every enabled provider's breaker, read in one step; an OPEN breaker whose time is up is
    /// moved to HALF-OPEN (and saved) on the way. When the store fails, nothing is known: every
    /// provider is available and asks [`Breakers::admit`].
    async fn readings<'a>(&self, providers: &[&'a Provider], now: DateTime<Utc>)
    -> BreakerReadings;
    /// Asks to send one request to `provider` (called after selection chose it, before anything
    /// is sent). A HALF-OPEN breaker admits a limited number of concurrent trials, shared between
    /// instances; the trial is released by the [`Breakers::record`] of that request's outcome or
    /// lapses after the provider's request timeout. On `Refused`, selection must skip it.
    async fn admit(&self, provider: &Provider, now: DateTime<Utc>) -> Admission;
    /// Records how a provider did.
    async fn record(&self, provider: &Provider, outcome: ProviderOutcome, now: DateTime<Utc>);
}

/// Breakers that never open (the default until breakers are wired).
pub struct NoBreakers;

#[async_trait]
impl Breakers for NoBreakers {
    async fn readings<'a>(
        &self,
        providers: &[&'a Provider],
        _now: DateTime<Utc>,
    ) -> BreakerReadings {
        let all: HashSet<i64> = providers.iter().map(|p| p.id).collect();
        BreakerReadings {
            unavailable: HashMap::new(),
            closed: all.clone(),
            clean: all,
        }
    }
    async fn admit(&self, _p: &Provider, _now: DateTime<Utc>) -> Admission {
        Admission::Pass
    }
    async fn record(&self, _p: &Provider, _o: ProviderOutcome, _now: DateTime<Utc>) {}
}
