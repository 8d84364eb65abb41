//! `LimitService`: RPM, spend and concurrency limits of users, keys and providers, on top of
//! the limits store. A request must pass every limit of its key **and** its user (checked in
//! one atomic round trip); over-limit providers are skipped by selection; spend is added to
//! every window of key, user and provider when the request ends. Counters can be rebuilt from
//! the request log (admin recompute, startup warm-up).

pub mod fail_open;
mod held_slots;
mod period_cache;
mod plan;
mod rebuild;
mod usage;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::limits::Limits;
use crate::domain::provider::Provider;
use crate::domain::windows::{LimitKind, limit_value, micros_to_usd};
use crate::ports::counters::CounterMode;
use crate::ports::limits::{Check, CheckOutcome, CheckRequest, Counter, LimitStore};
use crate::ports::store::{ConfigStore, RequestLogStore};

use super::policy::{AdmitRequest, LimitRejection, Limiter, ProviderLimitState, SpendRecord};
use super::snapshot::SnapshotHolder;
use held_slots::HeldSlots;
pub use plan::{Scope, counter_for, spend_counters};

/// Everything the service needs.
pub struct LimitService {
    store: Arc<dyn LimitStore>,
    snapshot: Arc<SnapshotHolder>,
    config: Arc<dyn ConfigStore>,
    logs: Arc<dyn RequestLogStore>,
    tz: Tz,
    session_ttl_ms: i64,
    /// Sessions seen holding a provider's slot, so a shared store is not asked before every
    /// request of theirs (see `held_slots`).
    held_slots: Arc<HeldSlots>,
}

/// One window of an entity as shown by the usage API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowUsage {
    /// Which limit.
    pub kind: LimitKind,
    /// Configured limit (requests, sessions or micro-USD); `None` = unlimited.
    pub limit: Option<i64>,
    /// Current value in the same unit.
    pub used: i64,
    /// When the window resets (fixed windows), or when its oldest entry leaves it (rolling,
    /// unknown here: `None`); `None` for totals.
    pub resets_at: Option<DateTime<Utc>>,
    /// Where `used` comes from.
    pub source: UsageSource,
}

/// Where a window's `used` figure comes from: only limited windows have live counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageSource {
    /// The live limit counter (limited windows, and sessions).
    Counter,
    /// Summed from the request log on demand (spend windows without a limit; rows reach the
    /// log after a short batching delay).
    RequestLog,
    /// Not counted: an RPM window without a limit (`used` is 0).
    Untracked,
}

impl UsageSource {
    /// Name in the usage API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::RequestLog => "request_log",
            Self::Untracked => "untracked",
        }
    }
}

/// Why a usage call failed.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// No such user, key or provider.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The limits store or the database failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl LimitService {
    /// Builds the service. `tz` bounds the calendar windows; `session_ttl` is how long an idle
    /// session keeps its concurrency slot.
    pub fn new(
        store: Arc<dyn LimitStore>,
        snapshot: Arc<SnapshotHolder>,
        config: Arc<dyn ConfigStore>,
        logs: Arc<dyn RequestLogStore>,
        tz: Tz,
        session_ttl: std::time::Duration,
    ) -> Self {
        let session_ttl_ms = i64::try_from(session_ttl.as_millis()).unwrap_or(i64::MAX);
        Self {
            store,
            snapshot,
            config,
            logs,
            tz,
            session_ttl_ms,
            held_slots: Arc::new(HeldSlots::new(session_ttl_ms)),
        }
    }

    /// Frees an ended session's concurrent-session slots: those of its user and key, and of
    /// every provider with a concurrency limit (the session may have failed over between
    /// them). One round trip; bounded by the configured providers.
    pub async fn release_session(
        &self,
        session_id: &str,
        user_id: Option<i64>,
        key_id: Option<i64>,
    ) -> Result<(), LimitError> {
        let snap = self.snapshot.get();
        let session = |scope: Scope, id: i64| Counter::Sessions {
            key: plan::session_counter_key(scope, id),
            ttl_ms: self.session_ttl_ms,
        };
        let mut counters: Vec<Counter> = Vec::new();
        counters.extend(user_id.map(|u| session(Scope::User, u)));
        counters.extend(key_id.map(|k| session(Scope::Key, k)));
        counters.extend(
            snap.providers
                .iter()
                .filter(|p| p.limits.limit_concurrent_sessions.is_some())
                .map(|p| session(Scope::Provider, p.id)),
        );
        self.held_slots.forget_session(session_id);
        self.store
            .release_session(&counters, session_id)
            .await
            .map_err(|e| LimitError::Unavailable(e.to_string()))
    }

    /// The limits store (for health output).
    pub fn store(&self) -> &Arc<dyn LimitStore> {
        &self.store
    }

    /// The limits of an entity from the current snapshot.
    pub fn limits_of(&self, scope: Scope, id: i64) -> Result<Limits, LimitError> {
        let snap = self.snapshot.get();
        let found = match scope {
            Scope::User => snap.users.get(&id).map(|u| u.limits.clone()),
            Scope::Key => snap.keys_by_id.get(&id).map(|k| k.limits.clone()),
            Scope::Provider => snap.provider(id).map(|p| p.limits.clone()),
        };
        found.ok_or(LimitError::NotFound(scope.name()))
    }

    /// Clears an entity's total-spend counter and remembers the instant, so a later recompute
    /// from the log starts there.
    pub async fn reset_total(
        &self,
        scope: Scope,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), LimitError> {
        let limits = self.limits_of(scope, id)?;
        rebuild::save_total_reset(self.config.as_ref(), scope, id, now)
            .await
            .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        let total = counter_for(
            scope,
            id,
            LimitKind::Total,
            &limits,
            now,
            self.tz,
            self.session_ttl_ms,
        );
        self.store
            .clear(&[total])
            .await
            .map_err(|e| LimitError::Unavailable(e.to_string()))
    }

    /// Rebuilds an entity's spend windows from the request log.
    pub async fn recompute(
        &self,
        scope: Scope,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), LimitError> {
        self.limits_of(scope, id)?;
        self.rebuild_scope(scope, Some(id), now).await.map(|_| ())
    }

    /// After an admin changed an entity's limits (from `before`): fills the spend windows that
    /// have just become limited from the request log, since unlimited windows are not counted.
    /// A failure is logged; the window then counts from the next request.
    pub async fn limits_changed(&self, scope: Scope, id: i64, before: &Limits, now: DateTime<Utc>) {
        if let Err(e) = self.fill_new_windows(scope, id, before, now).await {
            tracing::warn!(error = %e, scope = scope.name(), id, "new limit windows not filled from the log");
        }
    }

    /// Rebuilds the spend windows of every user, key and provider from the log when the
    /// store is empty (its warm-up marker is absent); returns whether it ran.
    pub async fn warm_up_if_empty(&self, now: DateTime<Utc>) -> Result<bool, LimitError> {
        let fresh = self
            .store
            .mark(rebuild::WARM_MARKER, &now.to_rfc3339())
            .await
            .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        if !fresh {
            return Ok(false);
        }
        for scope in [Scope::User, Scope::Key, Scope::Provider] {
            if let Err(e) = self.rebuild_scope(scope, None, now).await {
                let _ = self.store.unmark(rebuild::WARM_MARKER).await;
                return Err(e);
            }
        }
        tracing::info!("limit counters rebuilt from the request log (store was empty)");
        Ok(true)
    }

    /// Checks for an empty store every `interval` (Redis restarted without its data) and
    /// rebuilds the counters from the log, until `shutdown` fires.
    pub fn spawn_warm_up(
        self: &Arc<Self>,
        interval: std::time::Duration,
        clock: Arc<dyn crate::ports::clock::Clock>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = service.warm_up_if_empty(clock.now()).await {
                    tracing::warn!(error = %e, "limit counters warm-up failed; will retry");
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => return,
                }
            }
        })
    }

    /// `provider`'s concurrent-session counter (only meaningful when it limits sessions).
    fn provider_slot_counter(&self, provider: &Provider, now: DateTime<Utc>) -> Counter {
        counter_for(
            Scope::Provider,
            provider.id,
            LimitKind::Concurrency,
            &provider.limits,
            now,
            self.tz,
            self.session_ttl_ms,
        )
    }

    /// The store's atomic check-and-take of `provider`'s concurrent-session slot for
    /// `session_id`, `limit` sessions at most (one Lua script on Redis, one lock in memory).
    async fn check_provider_slot(
        &self,
        provider: &Provider,
        limit: i64,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> crate::ports::counters::CounterResult<CheckOutcome> {
        let checks = [Check {
            counter: self.provider_slot_counter(provider, now),
            limit,
        }];
        self.store
            .check(CheckRequest {
                now_ms: now.timestamp_millis(),
                session_id,
                checks: &checks,
            })
            .await
    }

    #[allow(clippy::too_many_arguments)]
    fn rejection(
        &self,
        scope: Scope,
        name: &str,
        kind: LimitKind,
        limit: i64,
        current: i64,
        oldest_ms: Option<i64>,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> LimitRejection {
        let reset = plan::reset_instant(kind, limits, now, self.tz, oldest_ms, self.session_ttl_ms);
        let (limit_s, current_s, remaining_s) = if kind.is_spend() {
            (
                format!("{}", micros_to_usd(limit).round_dp(6).normalize()),
                format!("${}", micros_to_usd(current).round_dp(4)),
                format!(
                    "{}",
                    micros_to_usd((limit - current).max(0))
                        .round_dp(6)
                        .normalize()
                ),
            )
        } else {
            (
                limit.to_string(),
                current.to_string(),
                (limit - current).max(0).to_string(),
            )
        };
        let shown_limit = if kind.is_spend() {
            format!("${limit_s}")
        } else {
            limit_s.clone()
        };
        let when = match reset {
            Some(t) => format!(
                "resets at {}",
                t.with_timezone(&self.tz)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            ),
            None => "does not reset by itself (an admin can reset it)".into(),
        };
        let message = format!(
            "{} {name}: {} limit reached ({current_s} of {shown_limit}); {when}",
            scope.name(),
            kind.label()
        );
        let mut headers = vec![
            ("x-rate-limit-limit".to_string(), limit_s),
            ("x-rate-limit-remaining".to_string(), remaining_s),
        ];
        if let Some(t) = reset {
            headers.push(("x-rate-limit-reset".into(), t.timestamp().to_string()));
            if kind == LimitKind::Rpm {
                let secs = ((t - now).num_milliseconds() + 999) / 1000;
                headers.push(("retry-after".into(), secs.max(1).to_string()));
            }
        }
        let log_message =
            crate::domain::rate_limit_stats::tagged_message(kind, scope.name(), &message);
        LimitRejection {
            message,
            headers,
            log_message,
        }
    }
}

#[async_trait]
impl Limiter for LimitService {
    async fn admit(&self, req: &AdmitRequest<'_>) -> Result<(), LimitRejection> {
        let now_ms = req.now.timestamp_millis();
        let entities = [
            (
                Scope::Key,
                req.key.id,
                &req.key.limits,
                req.key.name.as_str(),
            ),
            (
                Scope::User,
                req.user.id,
                &req.user.limits,
                req.user.name.as_str(),
            ),
        ];
        let mut checks: Vec<Check> = Vec::with_capacity(14);
        let mut meta = Vec::with_capacity(14);
        for kind in LimitKind::ALL {
            for (scope, id, limits, name) in entities {
                let limit = limit_value(limits, kind);
                // Only limited windows are counted (constant memory per limited window, none
                // for the others). Sessions are the exception: always counted so usage shows
                // them, capped at `SESSION_MEMBERS_CAP` members when unlimited.
                let limit = match (limit, kind) {
                    (Some(l), _) => l,
                    (None, LimitKind::Concurrency) => i64::MAX,
                    (None, _) => continue,
                };
                let counter = counter_for(
                    scope,
                    id,
                    kind,
                    limits,
                    req.now,
                    self.tz,
                    self.session_ttl_ms,
                );
                checks.push(Check { counter, limit });
                meta.push((scope, name, kind, limits));
            }
        }
        let outcome = self
            .store
            .check(CheckRequest {
                now_ms,
                session_id: req.session_id,
                checks: &checks,
            })
            .await;
        match outcome {
            Ok(CheckOutcome::Admitted) => Ok(()),
            Ok(CheckOutcome::Rejected {
                index,
                current,
                oldest_ms,
            }) => {
                let (Some((scope, name, kind, limits)), Some(check)) =
                    (meta.get(index), checks.get(index))
                else {
                    return Ok(());
                };
                Err(self.rejection(
                    *scope,
                    name,
                    *kind,
                    check.limit,
                    current,
                    oldest_ms,
                    limits,
                    req.now,
                ))
            }
            Err(e) => {
                // Only reachable without the fail-open wrapper: never fail a request on it.
                tracing::warn!(error = %e, "limit check failed; admitting (fail-open)");
                Ok(())
            }
        }
    }

    async fn provider_state<'a>(
        &self,
        providers: &[&'a Provider],
        session_id: &str,
        now: DateTime<Utc>,
    ) -> ProviderLimitState {
        let mut counters = Vec::new();
        let mut meta = Vec::new();
        for p in providers.iter().filter(|p| p.enabled) {
            for kind in LimitKind::ALL {
                if kind == LimitKind::Rpm {
                    continue;
                }
                if let Some(limit) = limit_value(&p.limits, kind) {
                    counters.push(counter_for(
                        Scope::Provider,
                        p.id,
                        kind,
                        &p.limits,
                        now,
                        self.tz,
                        self.session_ttl_ms,
                    ));
                    meta.push((p.id, kind, limit));
                }
            }
        }
        let mut state = ProviderLimitState::default();
        if counters.is_empty() {
            return state;
        }
        let values = match self
            .store
            .read(now.timestamp_millis(), &counters, Some(session_id))
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "provider limits unreadable; not excluding any");
                return state;
            }
        };
        for ((id, kind, limit), value) in meta.into_iter().zip(values) {
            if value < limit {
                continue;
            }
            if kind == LimitKind::Concurrency {
                state.concurrency_full.insert(id);
            } else {
                state
                    .over_limit
                    .entry(id)
                    .or_insert_with(|| format!("{} limit reached", kind.label()));
            }
        }
        state
    }

    async fn take_provider_slot(
        &self,
        provider: &Provider,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> bool {
        // Only a provider that limits concurrent sessions tracks them (no store call, no state
        // for the others; the sessions listing comes from the session bindings).
        let Some(limit) = limit_value(&provider.limits, LimitKind::Concurrency) else {
            return true;
        };
        let now_ms = now.timestamp_millis();
        let shared = self.store.mode() == CounterMode::Shared;
        if shared && self.held_slots.claim(provider.id, session_id, now_ms) {
            // A holder keeps its slot whatever the count: refreshed after the answer
            // (`settle_provider_slot`), not asked before forwarding.
            return true;
        }
        match self
            .check_provider_slot(provider, limit, session_id, now)
            .await
        {
            Ok(CheckOutcome::Admitted) => {
                if shared {
                    self.held_slots.confirm(provider.id, session_id, now_ms);
                }
                true
            }
            Ok(CheckOutcome::Rejected { current, .. }) => {
                tracing::debug!(
                    provider = %provider.name,
                    active = current,
                    limit,
                    "provider concurrent sessions full; session refused"
                );
                false
            }
            Err(e) => {
                // Only reachable without the fail-open wrapper: never fail a request on it.
                tracing::warn!(error = %e, "provider slot not checked; granting it (fail-open)");
                true
            }
        }
    }

    async fn record_spend(&self, spend: SpendRecord) {
        let amount = crate::domain::windows::usd_to_micros(spend.cost_usd);
        if amount <= 0 {
            return;
        }
        let snap = self.snapshot.get();
        let default = Limits::default();
        let mut counters = Vec::with_capacity(18);
        let user_limits = snap.users.get(&spend.user_id).map(|u| &u.limits);
        counters.extend(spend_counters(
            Scope::User,
            spend.user_id,
            user_limits.unwrap_or(&default),
            spend.at,
            self.tz,
        ));
        let key_limits = snap.keys_by_id.get(&spend.key_id).map(|k| &k.limits);
        counters.extend(spend_counters(
            Scope::Key,
            spend.key_id,
            key_limits.unwrap_or(&default),
            spend.at,
            self.tz,
        ));
        if let Some(pid) = spend.provider_id {
            let limits = snap.provider(pid).map(|p| &p.limits);
            counters.extend(spend_counters(
                Scope::Provider,
                pid,
                limits.unwrap_or(&default),
                spend.at,
                self.tz,
            ));
        }
        if counters.is_empty() {
            return;
        }
        if let Err(e) = self
            .store
            .record(spend.at.timestamp_millis(), amount, &counters)
            .await
        {
            tracing::warn!(error = %e, "spend not recorded in the limit counters");
        }
    }

    async fn settle_provider_slot(&self, provider_id: i64, session_id: &str, now: DateTime<Utc>) {
        if !self.held_slots.take_owed(provider_id, session_id) {
            return;
        }
        let snap = self.snapshot.get();
        let Some(provider) = snap.provider(provider_id) else {
            return;
        };
        if limit_value(&provider.limits, LimitKind::Concurrency).is_none() {
            return;
        }
        let now_ms = now.timestamp_millis();
        let counter = self.provider_slot_counter(provider, now);
        // A holder is refreshed; a session that no longer holds the slot (ended meanwhile,
        // possibly on another instance) is forgotten here, and its next request is checked
        // before it is forwarded.
        match self
            .store
            .refresh_session(now_ms, &counter, session_id)
            .await
        {
            Ok(true) => self.held_slots.confirm(provider_id, session_id, now_ms),
            Ok(false) => self.held_slots.forget(provider_id, session_id),
            Err(e) => tracing::debug!(error = %e, "provider slot not refreshed"),
        }
    }
}
