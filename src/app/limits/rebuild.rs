//! Rebuilding spend counters from the request log, so budgets survive a Redis loss or restart.
//!
//! Fixed windows and totals get their exact sum. Rolling windows (5 h, 24 h) are rebuilt bucket
//! by bucket: the log is summed over the ring's own buckets (`domain::windows::Ring`, epoch
//! aligned), so a rebuilt ring holds exactly what live recording would have put in it. Only
//! limited windows are rebuilt (the others have no counter). Total resets are remembered as
//! settings `limits.total_reset_at.{u|k|p}.{id}`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::plan::{Scope, spend_counters};
use super::{LimitError, LimitService};
use crate::domain::limits::Limits;
use crate::domain::settings::SystemSetting;
use crate::domain::windows::{
    DAY_MS, FIVE_HOURS_MS, LimitKind, Ring, Span, span_start, spend_span, usd_to_micros,
};
use crate::ports::limits::Counter;
use crate::ports::store::{ConfigStore, CostQuery, CostScope, StoreResult};

/// An entity's spend counters, each with the first instant it sums from.
type EntityPlan = (i64, Vec<(Counter, DateTime<Utc>)>);

/// How long a rebuild waits, after reading the live counters, before it sums the log: rows of
/// requests that finished before that read reach the database within the log writer's batching
/// delay (100 ms), so they are in the sums, not lost between counter and log.
const LOG_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Counters read at once before a rebuild (one store call each).
const READ_CHUNK: usize = 1_000;

/// Marker key present while the store holds rebuilt or live counters. Renamed with the bucket
/// rings, so the first start of this version rebuilds them from the log.
pub(super) const WARM_MARKER: &str = "lim:warm:rings";

fn setting_name(scope: Scope, id: i64) -> String {
    format!("limits.total_reset_at.{}.{id}", scope.code())
}

/// Remembers when an entity's total was reset.
pub(super) async fn save_total_reset(
    config: &dyn ConfigStore,
    scope: Scope,
    id: i64,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    config
        .put_setting(&SystemSetting {
            key: setting_name(scope, id),
            value: serde_json::Value::String(at.to_rfc3339()),
        })
        .await
}

fn cost_scope(scope: Scope) -> CostScope {
    match scope {
        Scope::User => CostScope::User,
        Scope::Key => CostScope::Key,
        Scope::Provider => CostScope::Provider,
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl LimitService {
    /// The entities of a scope with their limits (one, or all).
    fn entities(&self, scope: Scope, only: Option<i64>) -> Vec<(i64, Limits)> {
        let snap = self.snapshot.get();
        let all: Vec<(i64, Limits)> = match scope {
            Scope::User => snap
                .users
                .values()
                .map(|u| (u.id, u.limits.clone()))
                .collect(),
            Scope::Key => snap
                .keys_by_hash
                .values()
                .map(|k| (k.id, k.limits.clone()))
                .collect(),
            Scope::Provider => snap
                .providers
                .iter()
                .map(|p| (p.id, p.limits.clone()))
                .collect(),
        };
        all.into_iter()
            .filter(|(id, _)| only.is_none_or(|o| o == *id))
            .collect()
    }

    /// Rolling entries per entity: the log summed over the live buckets of the window's ring,
    /// each sum placed at its bucket's start.
    async fn rolling_entries(
        &self,
        scope: Scope,
        only: Option<i64>,
        now: DateTime<Utc>,
        window_ms: i64,
    ) -> Result<HashMap<i64, Vec<(i64, i64)>>, LimitError> {
        let ring = Ring::for_window(window_ms);
        let since_ms = ring.first_live(ms(now)).saturating_mul(ring.bucket_ms);
        let since = DateTime::<Utc>::from_timestamp_millis(since_ms).unwrap_or(now);
        let buckets = self
            .logs
            .cost_buckets(&CostQuery {
                scope: cost_scope(scope),
                id: only,
                since,
                until: now + chrono::Duration::milliseconds(1),
                bucket_ms: ring.bucket_ms,
            })
            .await
            .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        let mut out: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for b in buckets {
            let start = since_ms + b.bucket * ring.bucket_ms;
            out.entry(b.entity_id)
                .or_default()
                .push((start, usd_to_micros(b.cost_usd)));
        }
        Ok(out)
    }

    /// Spend of a window without a limit (so without a counter), summed from the request log:
    /// the usage API's figure for it.
    pub(super) async fn logged_spend(
        &self,
        scope: Scope,
        id: i64,
        kind: LimitKind,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<i64, LimitError> {
        let unavailable =
            |e: crate::ports::store::StoreError| LimitError::Unavailable(e.to_string());
        let since = match spend_span(kind, limits, now, self.tz) {
            Some(Span::Total) | None => {
                let settings = self.config.list_settings().await.map_err(unavailable)?;
                let name = setting_name(scope, id);
                settings
                    .into_iter()
                    .find(|s| s.key == name)
                    .and_then(|s| s.value.as_str()?.parse::<DateTime<Utc>>().ok())
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
            }
            Some(span) => match span_start(span, now) {
                // Rolling: entries strictly after now - window.
                Some(start) if matches!(span, Span::Rolling { .. }) => {
                    start + chrono::Duration::milliseconds(1)
                }
                Some(start) => start,
                None => DateTime::<Utc>::UNIX_EPOCH,
            },
        };
        let rows = self
            .logs
            .cost_buckets(&CostQuery {
                scope: cost_scope(scope),
                id: Some(id),
                since,
                until: now + chrono::Duration::milliseconds(1),
                bucket_ms: i64::MAX,
            })
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .filter(|r| r.entity_id == id)
            .map(|r| usd_to_micros(r.cost_usd))
            .sum())
    }

    /// Rebuilds the spend counters of one entity or of every entity of a scope.
    pub(super) async fn rebuild_scope(
        &self,
        scope: Scope,
        only: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<usize, LimitError> {
        self.rebuild_where(scope, only, now, |_| true).await
    }

    /// Rebuilds the spend counters of an entity that a limit change just created (windows newly
    /// limited, or the daily window switched mode), leaving its live counters alone: they may
    /// hold spend the log has not received yet.
    pub(super) async fn fill_new_windows(
        &self,
        scope: Scope,
        id: i64,
        before: &Limits,
        now: DateTime<Utc>,
    ) -> Result<usize, LimitError> {
        let old: Vec<Counter> = spend_counters(scope, id, before, now, self.tz);
        // Nothing new to fill (the usual edit: a name, a note, a limit's amount): no log
        // query at all (each one sums the entity's log, ~0.5 s with 5 M rows).
        if let Ok(limits) = self.limits_of(scope, id) {
            let new = spend_counters(scope, id, &limits, now, self.tz);
            if new.iter().all(|c| old.iter().any(|o| o.key() == c.key())) {
                return Ok(0);
            }
        }
        self.rebuild_where(scope, Some(id), now, |c| {
            !old.iter().any(|o| o.key() == c.key())
        })
        .await
    }

    /// Rebuilds the spend counters `keep` selects, of one entity or of every entity of a scope.
    async fn rebuild_where(
        &self,
        scope: Scope,
        only: Option<i64>,
        now: DateTime<Utc>,
        keep: impl Fn(&Counter) -> bool,
    ) -> Result<usize, LimitError> {
        let entities = self.entities(scope, only);
        if entities.is_empty() {
            return Ok(0);
        }
        let unavailable =
            |e: crate::ports::store::StoreError| LimitError::Unavailable(e.to_string());
        let settings = self.config.list_settings().await.map_err(unavailable)?;
        let resets: HashMap<String, DateTime<Utc>> = settings
            .into_iter()
            .filter_map(|s| {
                let at = s.value.as_str()?.parse::<DateTime<Utc>>().ok()?;
                Some((s.key, at))
            })
            .collect();
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let total_since = |id: i64| -> DateTime<Utc> {
            resets
                .get(&setting_name(scope, id))
                .copied()
                .unwrap_or(epoch)
        };

        // Each calendar counter's start, per entity; one grouped query per distinct start.
        let plans: Vec<EntityPlan> = entities
            .iter()
            .map(|(id, limits)| {
                let counters = spend_counters(scope, *id, limits, now, self.tz);
                let starts = counters
                    .into_iter()
                    .filter(|c| keep(c))
                    .filter_map(|c| {
                        let since = match &c {
                            Counter::PeriodSpend { .. } => period_start(&c, now)?,
                            Counter::TotalSpend { .. } => total_since(*id),
                            _ => return Some((c, now)),
                        };
                        Some((c, since))
                    })
                    .collect();
                (*id, starts)
            })
            .collect();
        // What the counters hold now: spend recorded from here on is kept on top of the log's
        // sums (see `LimitStore::replace`); then the log is given time to catch up to `now`.
        let now_ms = ms(now);
        let counters: Vec<Counter> = plans
            .iter()
            .flat_map(|(_, cs)| cs.iter().map(|(c, _)| c.clone()))
            .collect();
        let mut seen = Vec::with_capacity(counters.len());
        for chunk in counters.chunks(READ_CHUNK) {
            let values = self
                .store
                .read(now_ms, chunk, None)
                .await
                .map_err(|e| LimitError::Unavailable(e.to_string()))?;
            seen.extend(values);
        }
        tokio::time::sleep(LOG_SETTLE).await;
        let five = self
            .rolling_entries(scope, only, now, FIVE_HOURS_MS)
            .await?;
        let day = self.rolling_entries(scope, only, now, DAY_MS).await?;
        let distinct: BTreeSet<DateTime<Utc>> = plans
            .iter()
            .flat_map(|(_, cs)| cs.iter().map(|(_, s)| *s))
            .collect();
        let mut sums: HashMap<(DateTime<Utc>, i64), i64> = HashMap::new();
        for since in distinct {
            if since >= now {
                continue;
            }
            let rows = self
                .logs
                .cost_buckets(&CostQuery {
                    scope: cost_scope(scope),
                    id: only,
                    since,
                    until: now + chrono::Duration::milliseconds(1),
                    bucket_ms: i64::MAX,
                })
                .await
                .map_err(unavailable)?;
            for r in rows {
                *sums.entry((since, r.entity_id)).or_default() += usd_to_micros(r.cost_usd);
            }
        }
        let mut seen = seen.into_iter();
        for (id, counters) in &plans {
            for (counter, since) in counters {
                let seen = seen.next().unwrap_or(0);
                let entries: Vec<(i64, i64)> = match counter {
                    Counter::RollingSpend { window_ms, .. } => {
                        let source = if *window_ms == FIVE_HOURS_MS {
                            &five
                        } else {
                            &day
                        };
                        source.get(id).cloned().unwrap_or_default()
                    }
                    _ => {
                        let sum = sums.get(&(*since, *id)).copied().unwrap_or(0);
                        vec![(now_ms, sum)]
                    }
                };
                self.store
                    .replace(now_ms, counter, &entries, seen)
                    .await
                    .map_err(|e| LimitError::Unavailable(e.to_string()))?;
            }
        }
        Ok(plans.len())
    }
}

/// The period start encoded in a period counter's key (`…:{epoch seconds}`).
fn period_start(counter: &Counter, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let secs: i64 = counter.key().rsplit(':').next()?.parse().ok()?;
    DateTime::<Utc>::from_timestamp(secs, 0).filter(|s| *s <= now)
}
