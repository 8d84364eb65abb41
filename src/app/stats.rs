//! Statistics use cases (overview, time series, leaderboard) over the usage ledger, with
//! periods cut in the configured time zone, plus the startup backfill of roll-ups for log rows
//! written before roll-ups existed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::scheduler::ZoneSource;
use super::snapshot::SnapshotHolder;
use crate::domain::periods::{BucketPlan, BucketWidth, PeriodError, Range, period_range};
use crate::domain::rollup::histogram_quantile;
use crate::ports::clock::Clock;
use crate::ports::stats::{Dimension, LedgerSums, Metric, RankQuery, SeriesQuery, StatsStore};

pub use crate::domain::periods::Period;

/// Largest `top` of a time series and `limit` of a leaderboard.
pub const MAX_GROUPS: i64 = 1_000;

/// Why a statistics call failed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Bad input; `field` names the query parameter.
    #[error("{message}")]
    Invalid {
        /// The parameter at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The database failed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl From<crate::ports::store::StoreError> for StatsError {
    fn from(e: crate::ports::store::StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

fn period_error(field: &'static str, e: PeriodError) -> StatsError {
    StatsError::Invalid {
        field,
        message: e.to_string(),
    }
}

/// The overview of a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// The hours counted (the period, hour-aligned: see `domain::periods`).
    pub range: Range,
    /// Sums over the period.
    pub sums: LedgerSums,
    /// Errors over requests (0 without requests).
    pub error_rate: f64,
    /// Mean time to first byte, ms.
    pub avg_ttfb_ms: Option<f64>,
    /// Median time to first byte, ms (from the roll-ups' histogram).
    pub p50_ttfb_ms: Option<f64>,
    /// 95th percentile time to first byte, ms (from the histogram).
    pub p95_ttfb_ms: Option<f64>,
    /// Distinct sessions with a request within `SESSION_TTL`.
    pub active_sessions: i64,
    /// Requests logged in the last 60 s.
    pub requests_last_minute: i64,
}

/// One line of a time series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLine {
    /// `all`, a group id or model, or `other`.
    pub key: String,
    /// Display name of the group (user, key or provider name), when known.
    pub name: Option<String>,
    /// One value per bucket.
    pub values: Vec<Decimal>,
}

/// A time series answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The hours counted.
    pub range: Range,
    /// Bucket start instants.
    pub buckets: Vec<DateTime<Utc>>,
    /// Lines: the top groups by total, then `other`.
    pub lines: Vec<SeriesLine>,
}

/// One leaderboard row.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderRow {
    /// 1-based rank.
    pub rank: usize,
    /// The id (user, key, provider) or model name.
    pub key: String,
    /// Display name, when known.
    pub name: Option<String>,
    /// Sums.
    pub sums: LedgerSums,
    /// Cache-read tokens over all input tokens (input + cache reads + cache writes).
    pub cache_hit_rate: f64,
    /// Mean time to first byte, ms.
    pub avg_ttfb_ms: Option<f64>,
}

/// A leaderboard answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    /// The hours counted.
    pub range: Range,
    /// Ranked rows.
    pub rows: Vec<LeaderRow>,
}

/// Statistics over the usage ledger.
pub struct StatsService {
    store: Arc<dyn StatsStore>,
    snapshot: Arc<SnapshotHolder>,
    clock: Arc<dyn Clock>,
    tz: Tz,
    /// The settings' zone override when wired (read at every call), else `tz`.
    zone_source: Option<ZoneSource>,
    session_ttl: Duration,
}

fn avg(sum: i64, n: i64) -> Option<f64> {
    (n > 0).then(|| sum as f64 / n as f64)
}

/// Sum of every token kind.
pub fn total_tokens(s: &LedgerSums) -> i64 {
    s.input_tokens
        .saturating_add(s.output_tokens)
        .saturating_add(s.cache_read_tokens)
        .saturating_add(s.cache_write_5m_tokens)
        .saturating_add(s.cache_write_1h_tokens)
}

/// Cache-read tokens over all input tokens (0 without input).
pub fn cache_hit_rate(s: &LedgerSums) -> f64 {
    let all_input = s
        .input_tokens
        .saturating_add(s.cache_read_tokens)
        .saturating_add(s.cache_write_5m_tokens)
        .saturating_add(s.cache_write_1h_tokens);
    if all_input > 0 {
        s.cache_read_tokens as f64 / all_input as f64
    } else {
        0.0
    }
}

impl StatsService {
    /// A service answering in zone `tz`; `session_ttl` bounds "active" sessions.
    pub fn new(
        store: Arc<dyn StatsStore>,
        snapshot: Arc<SnapshotHolder>,
        clock: Arc<dyn Clock>,
        tz: Tz,
        session_ttl: Duration,
    ) -> Self {
        Self {
            store,
            snapshot,
            clock,
            tz,
            zone_source: None,
            session_ttl,
        }
    }

    /// Cuts periods in the zone `source` answers at each call (the settings' override of
    /// `TZ`), instead of the fixed zone given to `new`.
    pub fn with_zone_source(mut self, source: ZoneSource) -> Self {
        self.zone_source = Some(source);
        self
    }

    /// The zone periods are cut in now.
    pub fn zone(&self) -> Tz {
        self.zone_source.as_ref().map_or(self.tz, |z| z())
    }

    /// The exact range of a period now, in this service's zone.
    pub fn range(&self, period: Period) -> Result<Range, StatsError> {
        period_range(period, self.clock.now(), self.zone()).map_err(|e| period_error("from", e))
    }

    /// The overview of a period.
    pub async fn overview(&self, period: Period) -> Result<Overview, StatsError> {
        let range = self.range(period)?;
        let hours = range.hours();
        let sums = self.store.totals(hours).await?;
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.session_ttl).unwrap_or(chrono::Duration::MAX);
        let live = self
            .store
            .live(now - chrono::Duration::seconds(60), now - ttl)
            .await?;
        Ok(Overview {
            range: hours.as_range(),
            error_rate: if sums.requests > 0 {
                sums.errors as f64 / sums.requests as f64
            } else {
                0.0
            },
            avg_ttfb_ms: avg(sums.ttfb_ms, sums.ttfb_count),
            p50_ttfb_ms: histogram_quantile(&sums.ttfb_hist, 0.5),
            p95_ttfb_ms: histogram_quantile(&sums.ttfb_hist, 0.95),
            active_sessions: live.sessions,
            requests_last_minute: live.requests,
            sums,
        })
    }

    /// The default range of a time series: the last 24 hours (hour buckets) or the last 30
    /// local days (day buckets), up to the end of the current bucket.
    pub fn default_series_range(&self, width: BucketWidth) -> Result<Range, StatsError> {
        let now = self.clock.now();
        match width {
            BucketWidth::Hour => {
                let end = (now.timestamp() / 3600 + 1) * 3600;
                let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or(now);
                Ok(Range {
                    from: at(end - 24 * 3600),
                    to: at(end),
                })
            }
            BucketWidth::Day => {
                let today = self.range(Period::Today)?;
                let from = period_range(
                    Period::Today,
                    today.from - chrono::Duration::days(29) + chrono::Duration::hours(12),
                    self.zone(),
                )
                .map_err(|e| period_error("from", e))?
                .from;
                Ok(Range { from, to: today.to })
            }
        }
    }

    fn name_of(&self, dim: Dimension, key: &str) -> Option<String> {
        let snap = self.snapshot.get();
        let id: i64 = key.parse().ok()?;
        match dim {
            Dimension::User => snap.users.get(&id).map(|u| u.name.clone()),
            Dimension::Key => snap.keys_by_id.get(&id).map(|k| k.name.clone()),
            Dimension::Provider => snap.provider(id).map(|p| p.name.clone()),
            Dimension::Model => None,
        }
    }

    /// A time series of `metric` in `width` buckets over `range`, grouped by `group` (the
    /// `top` groups by their total over the range; the rest summed as `other`).
    pub async fn timeseries(
        &self,
        metric: Metric,
        width: BucketWidth,
        range: Range,
        group: Option<Dimension>,
        top: i64,
    ) -> Result<Series, StatsError> {
        if !(1..=MAX_GROUPS).contains(&top) {
            return Err(StatsError::Invalid {
                field: "top",
                message: format!("top must be between 1 and {MAX_GROUPS}"),
            });
        }
        let zone = self.zone();
        let plan = BucketPlan::new(range, width, zone).map_err(|e| period_error("from", e))?;
        let keep: Option<(Dimension, Vec<String>)> = match group {
            None => None,
            Some(dim) => {
                let ranked = self
                    .store
                    .rank(&RankQuery {
                        hours: plan.hours,
                        zone,
                        dimension: dim,
                        order: metric,
                        limit: top,
                    })
                    .await?;
                Some((dim, ranked.into_iter().map(|(g, _)| g).collect()))
            }
        };
        let points = self
            .store
            .series(&SeriesQuery {
                plan: plan.clone(),
                zone,
                metric,
                group: keep.clone(),
            })
            .await?;
        let n = plan.starts.len();
        let mut lines: Vec<SeriesLine> = Vec::new();
        let mut index: HashMap<Option<String>, usize> = HashMap::new();
        let names: Vec<String> = match &keep {
            None => Vec::new(),
            Some((_, k)) => k.clone(),
        };
        for g in names.iter() {
            index.insert(Some(g.clone()), lines.len());
            lines.push(SeriesLine {
                key: g.clone(),
                name: keep.as_ref().and_then(|(d, _)| self.name_of(*d, g)),
                values: vec![Decimal::ZERO; n],
            });
        }
        // The ungrouped line, or `other`: always present so a chart has a stable shape.
        index.insert(None, lines.len());
        lines.push(SeriesLine {
            key: if keep.is_some() { "other" } else { "all" }.into(),
            name: None,
            values: vec![Decimal::ZERO; n],
        });
        for p in points {
            let (Some(line), Ok(b)) = (index.get(&p.group), usize::try_from(p.bucket)) else {
                continue;
            };
            if let Some(v) = lines.get_mut(*line).and_then(|l| l.values.get_mut(b)) {
                *v += p.value;
            }
        }
        for l in &mut lines {
            for v in &mut l.values {
                *v = v.normalize();
            }
        }
        Ok(Series {
            range: plan.hours.as_range(),
            buckets: plan.starts,
            lines,
        })
    }

    /// The leaderboard of `dim` over `period`, ranked by `order`.
    pub async fn leaderboard(
        &self,
        dim: Dimension,
        period: Period,
        order: Metric,
        limit: i64,
    ) -> Result<Leaderboard, StatsError> {
        if !(1..=MAX_GROUPS).contains(&limit) {
            return Err(StatsError::Invalid {
                field: "limit",
                message: format!("limit must be between 1 and {MAX_GROUPS}"),
            });
        }
        let zone = self.zone();
        let range =
            period_range(period, self.clock.now(), zone).map_err(|e| period_error("from", e))?;
        let hours = range.hours();
        let ranked = self
            .store
            .rank(&RankQuery {
                hours,
                zone,
                dimension: dim,
                order,
                limit,
            })
            .await?;
        let rows = ranked
            .into_iter()
            .enumerate()
            .map(|(i, (key, sums))| LeaderRow {
                rank: i + 1,
                name: self.name_of(dim, &key),
                key,
                cache_hit_rate: cache_hit_rate(&sums),
                avg_ttfb_ms: avg(sums.ttfb_ms, sums.ttfb_count),
                sums,
            })
            .collect();
        Ok(Leaderboard {
            range: hours.as_range(),
            rows,
        })
    }

    /// Summarises, in the background, the log rows written before roll-ups existed (a chunk
    /// per transaction, so it is safe to stop at any point and safe with several instances).
    pub fn spawn_backfill(
        store: Arc<dyn StatsStore>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        tokio::spawn(async move {
            let mut logged = false;
            loop {
                match store.backfill_step().await {
                    Ok(0) => {
                        if logged {
                            tracing::info!("roll-up backfill finished");
                        }
                        return;
                    }
                    Ok(left) => {
                        if !logged {
                            tracing::info!(
                                rows = left,
                                "summarising older request logs into roll-ups"
                            );
                            logged = true;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "roll-up backfill paused; retrying in 30 s");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                            _ = shutdown.changed() => return,
                        }
                    }
                }
                if *shutdown.borrow() {
                    return;
                }
                // Leave the database to the live writer between chunks.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
}

/// Keeps the period tiers built in the zone `zone` answers: steps of a few ledger hours until
/// they hold every hour that ended 15 minutes ago, then a check every minute for the next
/// hour and for a zone change (which rebuilds them). Hours not summed yet are read from the
/// ledger, so statistics are right throughout.
pub fn spawn_tier_rebuild(
    store: Arc<dyn StatsStore>,
    zone: ZoneSource,
    clock: Arc<dyn Clock>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut building: Option<Tz> = None;
        loop {
            let tz = zone();
            let before = crate::domain::usage_tiers::fold_before(clock.now().timestamp());
            let pause = match store
                .tier_step(tz, crate::domain::usage_tiers::REBUILD_STEP_ROWS, before)
                .await
            {
                Ok(true) => {
                    if building != Some(tz) {
                        tracing::info!(zone = %tz, "summing the usage ledger into period tiers");
                        building = Some(tz);
                    }
                    // Leave the database to the live writer between hours.
                    Duration::from_millis(10)
                }
                Ok(false) => {
                    if building.take().is_some() {
                        tracing::info!(zone = %tz, "period tiers built");
                    }
                    Duration::from_secs(60)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "period tier rebuild paused; retrying in 30 s");
                    Duration::from_secs(30)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    });
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
