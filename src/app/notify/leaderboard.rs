//! The daily leaderboard: at the configured local time, yesterday's top users by cost with
//! their requests and tokens, plus the day's totals, read from the usage roll-ups (so it is
//! exact even after log cleanup) and sent to every target subscribed to `daily_leaderboard`.
//! A daily job of the scheduler: once per day across instances, caught up once after downtime.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::app::scheduler::{DailyJob, DueRun};
use crate::app::stats::StatsService;
use crate::domain::notify::events::{LeaderLine, LeaderboardDay, daily_leaderboard};
use crate::domain::periods::Period;
use crate::ports::stats::{Dimension, Metric};

use super::NotificationService;

/// The scheduler's name (and lease key) of the job.
pub const JOB_NAME: &str = "daily-leaderboard";

/// Sends the daily leaderboard.
pub struct LeaderboardJob {
    stats: Arc<StatsService>,
    notifications: Arc<NotificationService>,
    at: Option<NaiveTime>,
    top_n: usize,
}

impl LeaderboardJob {
    /// The job: at local time `at` (`None`: off), the `top_n` users.
    pub fn new(
        stats: Arc<StatsService>,
        notifications: Arc<NotificationService>,
        at: Option<NaiveTime>,
        top_n: usize,
    ) -> Self {
        Self {
            stats,
            notifications,
            at,
            top_n,
        }
    }
}

/// The start of a local date in `zone` (the earliest instant, should midnight repeat; the
/// first instant after a skipped midnight).
fn local_midnight(zone: Tz, date: NaiveDate) -> Option<chrono::DateTime<chrono::Utc>> {
    let naive = date.and_hms_opt(0, 0, 0)?;
    zone.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[async_trait]
impl DailyJob for LeaderboardJob {
    fn name(&self) -> &str {
        JOB_NAME
    }

    fn run_at(&self) -> Option<NaiveTime> {
        self.at
    }

    async fn run(&self, run: &DueRun) -> Result<String, String> {
        let day = run.date.pred_opt().ok_or("no previous day")?;
        let (Some(from), Some(to)) = (
            local_midnight(run.zone, day),
            local_midnight(run.zone, run.date),
        ) else {
            return Err(format!("no local midnight for {day} in {}", run.zone));
        };
        let period = Period::Custom { from, to };
        let limit = i64::try_from(self.top_n).unwrap_or(5);
        let board = self
            .stats
            .leaderboard(Dimension::User, period, Metric::Cost, limit)
            .await
            .map_err(|e| e.to_string())?;
        let overview = self
            .stats
            .overview(period)
            .await
            .map_err(|e| e.to_string())?;
        if overview.sums.requests == 0 {
            // Nothing to report (a quiet day, or a new install catching up).
            return Ok(format!("no requests on {day}: nothing sent"));
        }
        let top = board
            .rows
            .iter()
            .filter(|r| r.sums.requests > 0)
            .map(|r| LeaderLine {
                name: r.name.clone().unwrap_or_else(|| format!("#{}", r.key)),
                cost: r.sums.cost_usd,
                requests: r.sums.requests,
                tokens: crate::app::stats::total_tokens(&r.sums),
            })
            .collect();
        let notice = daily_leaderboard(
            &LeaderboardDay {
                date: day,
                top,
                total_cost: overview.sums.cost_usd,
                total_requests: overview.sums.requests,
                total_tokens: crate::app::stats::total_tokens(&overview.sums),
            },
            run.started_at,
        );
        let targets = self
            .notifications
            .enqueue(&notice)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "leaderboard for {day} queued for {targets} target(s)"
        ))
    }
}
