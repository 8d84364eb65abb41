//! The usage of an entity's windows for display: every window (the admin API, a user's page,
//! My usage), or only the limited ones from their live counters (a list of many users).

use chrono::{DateTime, Utc};

use super::{LimitError, LimitService, Scope, UsageSource, WindowUsage, counter_for, plan};
use crate::domain::windows::{LimitKind, limit_value};

impl LimitService {
    /// Every window of an entity: limit, current value and reset instant. Limited windows (and
    /// sessions) read their live counter; spend windows without a limit are summed from the
    /// request log (off the hot path, which no longer counts them); an unlimited RPM reads 0.
    pub async fn usage(
        &self,
        scope: Scope,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<WindowUsage>, LimitError> {
        self.windows(scope, id, now, false).await
    }

    /// The windows that have a limit, from their live counters only (one counter read, no
    /// query of the log): what a list of many users shows as usage bars.
    pub async fn limited_usage(
        &self,
        scope: Scope,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<WindowUsage>, LimitError> {
        self.windows(scope, id, now, true).await
    }

    async fn windows(
        &self,
        scope: Scope,
        id: i64,
        now: DateTime<Utc>,
        limited_only: bool,
    ) -> Result<Vec<WindowUsage>, LimitError> {
        let limits = self.limits_of(scope, id)?;
        let kinds: Vec<LimitKind> = LimitKind::ALL
            .into_iter()
            .filter(|k| scope != Scope::Provider || *k != LimitKind::Rpm)
            .filter(|k| !limited_only || limit_value(&limits, *k).is_some())
            .collect();
        let source = |k: LimitKind| match limit_value(&limits, k) {
            _ if k == LimitKind::Concurrency => UsageSource::Counter,
            Some(_) => UsageSource::Counter,
            None if k.is_spend() => UsageSource::RequestLog,
            None => UsageSource::Untracked,
        };
        let live: Vec<LimitKind> = kinds
            .iter()
            .copied()
            .filter(|k| source(*k) == UsageSource::Counter)
            .collect();
        let counters: Vec<_> = live
            .iter()
            .map(|k| counter_for(scope, id, *k, &limits, now, self.tz, self.session_ttl_ms))
            .collect();
        let values = self
            .store
            .read(now.timestamp_millis(), &counters, None)
            .await
            .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        // The windows summed from the log are read together (one query each, at most five).
        let limits_ref = &limits;
        let logged = futures_util::future::try_join_all(
            kinds
                .iter()
                .filter(|k| source(**k) == UsageSource::RequestLog)
                .map(|k| async move {
                    let v = self.logged_spend(scope, id, *k, limits_ref, now).await?;
                    Ok::<_, LimitError>((*k, v))
                }),
        )
        .await?;
        let mut out = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let source = source(kind);
            let used = match source {
                UsageSource::Counter => live
                    .iter()
                    .position(|k| *k == kind)
                    .and_then(|i| values.get(i).copied())
                    .unwrap_or(0),
                UsageSource::RequestLog => logged
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .map_or(0, |(_, v)| *v),
                UsageSource::Untracked => 0,
            };
            out.push(WindowUsage {
                kind,
                limit: limit_value(&limits, kind),
                used,
                resets_at: plan::fixed_reset(kind, &limits, now, self.tz),
                source,
            });
        }
        Ok(out)
    }
}
