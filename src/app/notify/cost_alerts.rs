//! Cost alerts: every `COST_ALERT_CHECK_INTERVAL_S` the spend windows of every user, key and
//! provider that has a spend limit are compared with `COST_ALERT_THRESHOLDS` (80/90/100 %).
//! The highest share crossed raises one alert per window and threshold across all instances:
//! a marker per (entity, window, threshold, window end) is set only-if-absent in the shared
//! counters store (Redis when configured), and only the instance that set it sends.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::app::limits::{LimitService, Scope};
use crate::app::snapshot::SnapshotHolder;
use crate::domain::notify::events::{self, CostCrossing, Spender};
use crate::domain::windows::{LimitKind, micros_to_usd};
use crate::ports::clock::Clock;
use crate::ports::counters::CounterStore;

use super::NotificationService;

/// How long a threshold marker lives when its window has no fixed end (rolling windows and
/// totals): one alert per threshold per day at most.
const ROLLING_MARKER_TTL: Duration = Duration::from_secs(24 * 3600);

/// The periodic cost check.
pub struct CostAlerts {
    limits: Arc<LimitService>,
    counters: Arc<dyn CounterStore>,
    snapshot: Arc<SnapshotHolder>,
    service: Arc<NotificationService>,
    clock: Arc<dyn Clock>,
}

impl CostAlerts {
    /// Builds the job.
    pub fn new(
        limits: Arc<LimitService>,
        counters: Arc<dyn CounterStore>,
        snapshot: Arc<SnapshotHolder>,
        service: Arc<NotificationService>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counters,
            snapshot,
            service,
            clock,
        })
    }

    /// One check of every limited entity; returns the alerts this instance raised.
    pub async fn check(&self) -> usize {
        let snap = self.snapshot.get();
        let mut entities: Vec<(Spender, Scope, i64, String)> = Vec::new();
        for u in snap.users.values().filter(|u| has_spend_limit(&u.limits)) {
            entities.push((Spender::User, Scope::User, u.id, u.name.clone()));
        }
        for k in snap
            .keys_by_id
            .values()
            .filter(|k| has_spend_limit(&k.limits))
        {
            entities.push((Spender::Key, Scope::Key, k.id, k.name.clone()));
        }
        for p in snap.providers.iter().filter(|p| has_spend_limit(&p.limits)) {
            entities.push((Spender::Provider, Scope::Provider, p.id, p.name.clone()));
        }
        entities.sort_by_key(|e| (e.0.as_str(), e.2));
        let mut raised = 0;
        for (spender, scope, id, name) in entities {
            let now = self.clock.now();
            let Ok(windows) = self.limits.usage(scope, id, now).await else {
                continue;
            };
            for w in windows {
                let Some(limit) = w.limit.filter(|l| *l > 0) else {
                    continue;
                };
                if !is_spend(w.kind) {
                    continue;
                }
                if self
                    .maybe_alert(spender, id, &name, w.kind, w.used, limit, w.resets_at, now)
                    .await
                {
                    raised += 1;
                }
            }
        }
        raised
    }

    #[allow(clippy::too_many_arguments)]
    async fn maybe_alert(
        &self,
        spender: Spender,
        id: i64,
        name: &str,
        kind: LimitKind,
        used: i64,
        limit: i64,
        resets_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> bool {
        let thresholds = &self.service.settings().cost_thresholds;
        let crossed: Vec<u32> = thresholds
            .iter()
            .copied()
            .filter(|t| i128::from(used) * 100 >= i128::from(limit) * i128::from(*t))
            .collect();
        let Some(&highest) = crossed.last() else {
            return false;
        };
        let window_id = resets_at.map_or(0, |t| t.timestamp());
        let ttl = resets_at
            .and_then(|t| (t - now).to_std().ok())
            .map_or(ROLLING_MARKER_TTL, |d| d + Duration::from_secs(3600));
        let marker = |t: u32| {
            format!(
                "notify:cost:{}:{id}:{}:{t}:{window_id}",
                spender.as_str(),
                kind.as_str()
            )
        };
        let first = match self
            .counters
            .set_if_absent(&marker(highest), "1", ttl)
            .await
        {
            Ok(first) => first,
            Err(e) => {
                tracing::warn!(error = %e, "cost alert marker not readable; alert skipped");
                return false;
            }
        };
        // Lower thresholds crossed at the same time are covered by this alert.
        for t in crossed.iter().filter(|t| **t < highest) {
            let _ = self.counters.set_if_absent(&marker(*t), "1", ttl).await;
        }
        if !first {
            return false;
        }
        let crossing = CostCrossing {
            spender,
            id,
            name: name.to_string(),
            window: kind.as_str().to_string(),
            spent: micros_to_usd(used),
            limit: micros_to_usd(limit),
            threshold_pct: highest,
            window_start: resets_at.unwrap_or(DateTime::UNIX_EPOCH),
        };
        self.service.publish(events::cost_alert(&crossing, now));
        true
    }

    /// Runs the check every `interval` until shutdown.
    pub fn spawn(
        self: &Arc<Self>,
        interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    r = shutdown.changed() => {
                        if r.is_err() || *shutdown.borrow() { return; }
                        continue;
                    }
                }
                me.check().await;
            }
        });
    }
}

fn is_spend(k: LimitKind) -> bool {
    !matches!(k, LimitKind::Rpm | LimitKind::Concurrency)
}

fn has_spend_limit(l: &crate::domain::limits::Limits) -> bool {
    [
        LimitKind::FiveHour,
        LimitKind::Daily,
        LimitKind::Weekly,
        LimitKind::Monthly,
        LimitKind::Total,
    ]
    .into_iter()
    .any(|k| crate::domain::windows::limit_value(l, k).is_some_and(|v| v > 0))
}
