//! Rebuilding spend counters from the request log, so budgets survive a Redis loss or restart.
//!
//! Fixed windows and totals get their exact sum. Rolling windows (5 h, 24 h) are rebuilt from
//! buckets (5 min and 15 min) whose sum is placed at the bucket's last instant: a rebuilt
//! rolling window releases spend up to one bucket later than the live counters would, never
//! earlier. Total resets are remembered as settings `limits.total_reset_at.{u|k|p}.{id}`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::plan::{Scope, spend_counters};
use super::{LimitError, LimitService};
use crate::domain::limits::Limits;
use crate::domain::settings::SystemSetting;
use crate::domain::windows::{DAY_MS, FIVE_HOURS_MS, usd_to_micros};
use crate::ports::limits::Counter;
use crate::ports::store::{ConfigStore, CostQuery, CostScope, StoreResult};

/// An entity's spend counters, each with the first instant it sums from.
type EntityPlan = (i64, Vec<(Counter, DateTime<Utc>)>);

/// Marker key present while the store holds rebuilt or live counters.
pub(super) const WARM_MARKER: &str = "lim:warm";

/// Bucket widths for the rolling windows.
const BUCKET_5H_MS: i64 = 5 * 60_000;
const BUCKET_24H_MS: i64 = 15 * 60_000;

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

    /// Rolling entries per entity: bucket sums placed at each bucket's last instant.
    async fn rolling_entries(
        &self,
        scope: Scope,
        only: Option<i64>,
        now: DateTime<Utc>,
        window_ms: i64,
        bucket_ms: i64,
    ) -> Result<HashMap<i64, Vec<(i64, i64)>>, LimitError> {
        let since = now - chrono::Duration::milliseconds(window_ms - 1);
        let buckets = self
            .logs
            .cost_buckets(&CostQuery {
                scope: cost_scope(scope),
                id: only,
                since,
                until: now + chrono::Duration::milliseconds(1),
                bucket_ms,
            })
            .await
            .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        let mut out: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for b in buckets {
            let last = ms(since) + (b.bucket + 1) * bucket_ms - 1;
            out.entry(b.entity_id)
                .or_default()
                .push((last.min(ms(now)), usd_to_micros(b.cost_usd)));
        }
        Ok(out)
    }

    /// Rebuilds the spend counters of one entity or of every entity of a scope.
    pub(super) async fn rebuild_scope(
        &self,
        scope: Scope,
        only: Option<i64>,
        now: DateTime<Utc>,
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

        let five = self
            .rolling_entries(scope, only, now, FIVE_HOURS_MS, BUCKET_5H_MS)
            .await?;
        let day = self
            .rolling_entries(scope, only, now, DAY_MS, BUCKET_24H_MS)
            .await?;

        // Each calendar counter's start, per entity; one grouped query per distinct start.
        let plans: Vec<EntityPlan> = entities
            .iter()
            .map(|(id, limits)| {
                let counters = spend_counters(scope, *id, limits, now, self.tz);
                let starts = counters
                    .into_iter()
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
        let now_ms = ms(now);
        for (id, counters) in &plans {
            for (counter, since) in counters {
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
                    .replace(now_ms, counter, &entries)
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
