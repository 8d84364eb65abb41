//! Log retention: deletes request-log rows older than `log_retention_days` in small batches,
//! then reclaims space. Runs daily at `log_cleanup_time` (local, effective zone) through the
//! scheduler, and on demand (`POST /api/v1/logs/cleanup`). A cluster-wide lock (a lease row)
//! lets one instance clean at a time; the batches are short transactions (sized to take about
//! 50 ms) separated by pauses several times as long, so writers and readers keep going. Only
//! `request_logs` is touched: statistics roll-ups stay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveTime, Utc};

use crate::ports::clock::Clock;
use crate::ports::jobs::{Claim, JobLeaseStore, LeaseKey};
use crate::ports::retention::LogRetentionStore;
use crate::ports::store::StoreError;

use super::scheduler::{DailyJob, DueRun};
use super::system_settings::SystemSettings;

/// The scheduler job name (and the lock's job name).
pub const JOB_NAME: &str = "log-retention";

/// Most rows deleted per transaction. Measured on SQLite (4.5 M rows, loaded 2-core box):
/// 5,000-row batches held the write lock ~0.6 s (a concurrent insert's p99 568 ms), 1,000-row
/// batches ~0.12 s (p99 172 ms) at the same rows per second.
const BATCH_ROWS: i64 = 1_000;
/// The pause after a batch, as a multiple of the batch's time. Measured on SQLite (4.5 M rows,
/// 500 req/s through the proxy on 2 cores, cleanup thread at background priority): pauses as
/// long as the batch (half the time deleting, ~9,500 rows/s) raised the proxy's added p99 from
/// ~0.6 to ~1.0 ms; three times as long, with the SQLite adapter checkpointing each batch on
/// its own thread, to ~0.8 ms. Nine times as long was no better.
const PAUSE_FACTOR: u32 = 3;
/// The pause factor when the database server deletes at its own priority (PostgreSQL).
/// Measured on PostgreSQL 15 (5 M rows, 4 M expired; 500 req/s through the proxy on the same
/// 2 cores; medians of 10 s samples): with batches that all started at the oldest row, a 3×
/// pause raised the added p99 from ~1.35 to ~3.5 ms at ~8,000 rows/s, 9× from ~1.8 to ~2.65
/// ms at ~4,400 rows/s, 20× from ~1.7 to ~2.1 ms at ~2,700 rows/s. With keyset batches
/// (cheaper, so the same factor deletes faster): 20× ~3,600 rows/s and 1.03 → 1.41 ms; 40×
/// ~2,300 rows/s and 0.77 → 0.90 ms (+17 %; another run +25 %, and +38 % with the server's
/// autovacuum on, which the benchmark machines turn off). The server's deferred work (WAL,
/// dirty pages, checkpoints, autovacuum where it is on) follows the rows deleted, not the
/// batch time, so the factor sets a rate. Deleting by `ctid` instead of `id` then cut the
/// server's CPU per row about 2.5× (a 1,000-row batch ~4 ms instead of ~10): at 40× the rate
/// rose to ~3,950 rows/s; 80× keeps the earlier ~2,300 rows/s (4 M rows in about half an
/// hour) with the server deleting half as much of the time. A daily cleanup is not urgent; a
/// busy proxy is.
const SERVER_PAUSE_FACTOR: u32 = 80;
/// Fewest rows per transaction when batches run slow.
const MIN_BATCH_ROWS: i64 = 50;
/// The time one batch should take. The deletion runs at background priority where the store
/// can arrange it (SQLite's cleanup thread), so a busy proxy stretches each batch; the size
/// then shrinks until a batch again takes about this long, which bounds how long the write
/// lock is held (the log writer waits for it) whatever the load.
const BATCH_TARGET: Duration = Duration::from_millis(50);
/// The lock's lease; renewed between batches long before it runs out.
const LOCK_LEASE: chrono::Duration = chrono::Duration::minutes(2);

/// What one cleanup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// Rows created before this instant were removed; `None` when retention is off (0 days)
    /// and no instant was given, so nothing was removed.
    pub cutoff: Option<DateTime<Utc>>,
    /// Rows removed.
    pub rows_deleted: u64,
    /// Transactions used.
    pub batches: u64,
    /// What space reclaim did (empty when nothing was removed).
    pub reclaimed: String,
    /// Wall time of the whole cleanup, ms.
    pub duration_ms: u64,
}

/// Why a cleanup did not run.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Another cleanup (on this or another instance) holds the lock.
    #[error("a log cleanup is already running")]
    Busy,
    /// The database failed; rows deleted before the failure stay deleted.
    #[error("storage unavailable: {0}")]
    Store(#[from] StoreError),
}

/// Runs log cleanups; shared by the daily job and the admin endpoint.
pub struct RetentionService {
    store: Arc<dyn LogRetentionStore>,
    leases: Arc<dyn JobLeaseStore>,
    clock: Arc<dyn Clock>,
    settings: Arc<SystemSettings>,
    holder: String,
    batch_rows: i64,
    audit: Option<Arc<dyn crate::ports::audit::AuditStore>>,
}

impl RetentionService {
    /// A service whose lock is held under `holder` (unique per process).
    pub fn new(
        store: Arc<dyn LogRetentionStore>,
        leases: Arc<dyn JobLeaseStore>,
        clock: Arc<dyn Clock>,
        settings: Arc<SystemSettings>,
        holder: String,
    ) -> Self {
        Self {
            store,
            leases,
            clock,
            settings,
            holder,
            batch_rows: BATCH_ROWS,
            audit: None,
        }
    }

    /// Also prunes the admin audit log at the same cutoff (same retention setting).
    pub fn with_audit(mut self, audit: Arc<dyn crate::ports::audit::AuditStore>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Sets the rows per transaction (tests use small batches).
    pub fn with_batch_rows(mut self, rows: i64) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// The cutoff the retention setting gives now (`None` = keep for ever).
    pub fn retention_cutoff(&self) -> Option<DateTime<Utc>> {
        let days = self.settings.current().log_retention_days;
        (days > 0).then(|| self.clock.now() - chrono::Duration::days(i64::from(days)))
    }

    /// Removes rows created before `before`, or before the retention cutoff when `None`.
    pub async fn run_now(
        &self,
        before: Option<DateTime<Utc>>,
    ) -> Result<CleanupReport, CleanupError> {
        let started = Instant::now();
        let Some(cutoff) = before.or_else(|| self.retention_cutoff()) else {
            return Ok(CleanupReport {
                cutoff: None,
                rows_deleted: 0,
                batches: 0,
                reclaimed: String::new(),
                duration_ms: 0,
            });
        };
        let Some(lock) = self.claim_lock().await? else {
            return Err(CleanupError::Busy);
        };
        let result = self.delete_batches(&lock, cutoff, started).await;
        self.release_lock(&lock).await;
        result
    }

    /// Takes the cluster-wide cleanup lock; `None` while another holder has it.
    async fn claim_lock(&self) -> Result<Option<LeaseKey>, StoreError> {
        let lock = LeaseKey::new(JOB_NAME, "lock");
        let now = self.clock.now();
        let until = (now + LOCK_LEASE).timestamp_millis();
        let claim = self
            .leases
            .claim(&lock, &self.holder, now.timestamp_millis(), until)
            .await?;
        Ok((claim == Claim::Acquired).then_some(lock))
    }

    /// Gives the cleanup lock up; a failure only leaves it to expire.
    async fn release_lock(&self, lock: &LeaseKey) {
        if let Err(e) = self.leases.release(lock, &self.holder).await {
            tracing::warn!(error = %e, "cannot release the log cleanup lock; it expires by itself");
        }
    }

    async fn delete_batches(
        &self,
        lock: &LeaseKey,
        cutoff: DateTime<Utc>,
        started: Instant,
    ) -> Result<CleanupReport, CleanupError> {
        let mut pace = Pace {
            size: self.batch_rows,
            renewed: Instant::now(),
            vacuum_held: false,
        };
        let deleted = self.delete_and_reclaim(lock, cutoff, &mut pace).await;
        // Also after a failed pass, and also a hold that a crashed run left.
        self.release_background_vacuum().await;
        let (first, reclaimed) = deleted?;
        let (mut rows, mut batches) = (first.rows, first.batches);
        // The hold was given back above: the sweep (a few rows at most) must not take it again.
        pace.vacuum_held = true;
        // Rows logged behind the cursor while the pass ran (a spool replay of old rows): one
        // more pass from the oldest row. After the reclaim, so on PostgreSQL it does not walk
        // the index entries of every row just deleted (VACUUM removed them).
        if first.used_cursor && !first.lock_lost && self.renew(lock, &mut pace).await? {
            let sweep = self.delete_pass(lock, cutoff, &mut pace).await?;
            rows += sweep.rows;
            batches += sweep.batches;
        }
        let report = CleanupReport {
            cutoff: Some(cutoff),
            rows_deleted: rows,
            batches,
            reclaimed,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        tracing::info!(
            rows = report.rows_deleted,
            batches = report.batches,
            ms = report.duration_ms,
            reclaimed = %report.reclaimed,
            "request logs cleaned up"
        );
        Ok(report)
    }

    /// The first pass over the expired rows, the audit log at the same cutoff, then the space
    /// reclaim (when rows went).
    async fn delete_and_reclaim(
        &self,
        lock: &LeaseKey,
        cutoff: DateTime<Utc>,
        pace: &mut Pace,
    ) -> Result<(Pass, String), CleanupError> {
        let first = self.delete_pass(lock, cutoff, pace).await?;
        if let Some(audit) = &self.audit {
            match audit.delete_audit_before(cutoff).await {
                Ok(n) if n > 0 => {
                    tracing::info!(rows = n, "audit log entries past retention removed")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "audit log cleanup failed; the next run retries")
                }
            }
        }
        let reclaimed = if first.rows > 0 {
            self.store.reclaim_space().await?
        } else {
            String::new()
        };
        Ok((first, reclaimed))
    }

    /// Asks the store to keep its background vacuum off the log during the deletion; a
    /// failure only costs that (the cleanup goes on).
    async fn hold_background_vacuum(&self) {
        match self.store.hold_background_vacuum().await {
            Ok(true) => tracing::info!("autovacuum held off request_logs during the cleanup"),
            Ok(false) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "cannot hold autovacuum off request_logs; cleaning up with it"
            ),
        }
    }

    /// Undoes a hold of the background vacuum recorded in the database (a no-op without one).
    async fn release_background_vacuum(&self) {
        if let Err(e) = self.store.release_background_vacuum().await {
            tracing::warn!(
                error = %e,
                "cannot give request_logs its autovacuum setting back; the next cleanup or \
                 start retries"
            );
        }
    }

    /// Undoes a hold of the background vacuum that a crashed cleanup left recorded, unless a
    /// cleanup runs now (it releases its own hold). False when the cleanup lock was taken: a
    /// cleanup runs, or a crashed run's lease has not ended yet. At startup, before serving.
    pub async fn try_release_leftover_hold(&self) -> bool {
        match self.claim_lock().await {
            Ok(Some(lock)) => {
                self.release_background_vacuum().await;
                self.release_lock(&lock).await;
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check for a leftover autovacuum hold");
                true
            }
        }
    }

    /// [`Self::try_release_leftover_hold`] again after each lease of the cleanup lock, twice at
    /// most, while the lock stays taken. For a background task.
    pub async fn retry_release_leftover_hold(&self) {
        for _ in 0..2 {
            let lease = LOCK_LEASE.to_std().unwrap_or_default();
            tokio::time::sleep(lease + Duration::from_secs(5)).await;
            if self.try_release_leftover_hold().await {
                return;
            }
        }
    }
}

/// Batch size, lock renewal and the vacuum hold, carried from one pass to the next.
struct Pace {
    size: i64,
    renewed: Instant,
    /// The background vacuum was asked to stay off the log: after the first full batch, so a
    /// run with nothing (or less than a batch) to delete changes no table setting.
    vacuum_held: bool,
}

/// What one pass over the expired rows did.
struct Pass {
    rows: u64,
    batches: u64,
    /// A batch started after a cursor, so rows logged behind it may remain.
    used_cursor: bool,
    /// Another instance took the lock: stop.
    lock_lost: bool,
}

impl RetentionService {
    /// Extends the cluster lock; false (and a warning) when another instance holds it now.
    async fn renew(&self, lock: &LeaseKey, pace: &mut Pace) -> Result<bool, CleanupError> {
        let until = (self.clock.now() + LOCK_LEASE).timestamp_millis();
        if !self.leases.renew(lock, &self.holder, until).await? {
            tracing::warn!("log cleanup lost its lock; stopping");
            return Ok(false);
        }
        pace.renewed = Instant::now();
        Ok(true)
    }

    /// Deletes expired rows oldest first until a batch comes back short. Each batch starts
    /// after the last row the previous one deleted: PostgreSQL keeps deleted rows' index
    /// entries until VACUUM, so batches that all started at the oldest row walked every entry
    /// deleted before them (on 5 M rows, batch time grew 4× over the first 2 M).
    async fn delete_pass(
        &self,
        lock: &LeaseKey,
        cutoff: DateTime<Utc>,
        pace: &mut Pace,
    ) -> Result<Pass, CleanupError> {
        let mut pass = Pass {
            rows: 0,
            batches: 0,
            used_cursor: false,
            lock_lost: false,
        };
        let mut after = None;
        loop {
            let t = Instant::now();
            let batch = self
                .store
                .delete_logs_before(cutoff, after, pace.size)
                .await?;
            pass.rows += batch.rows;
            pass.batches += 1;
            pass.used_cursor |= after.is_some();
            if batch.rows < pace.size as u64 {
                return Ok(pass);
            }
            if !pace.vacuum_held {
                self.hold_background_vacuum().await;
                pace.vacuum_held = true;
            }
            after = batch.last;
            let took = t.elapsed();
            pace.size = next_batch_rows(pace.size, took, self.batch_rows);
            if pace.renewed.elapsed() > Duration::from_secs(20) && !self.renew(lock, pace).await? {
                pass.lock_lost = true;
                return Ok(pass);
            }
            // A pause of a multiple of the batch: at most a quarter of the time deleting at
            // background priority, an eighty-first at the database server's own.
            let factor = if self.store.deletes_at_background_priority() {
                PAUSE_FACTOR
            } else {
                SERVER_PAUSE_FACTOR
            };
            tokio::time::sleep((took * factor).max(Duration::from_millis(5))).await;
        }
    }
}

/// The size of the next batch after one of `size` rows took `took`: halved when it took more
/// than twice [`BATCH_TARGET`], grown by half when it took less than half of it, within
/// [`MIN_BATCH_ROWS`] (or `max`, when smaller) and `max`.
fn next_batch_rows(size: i64, took: Duration, max: i64) -> i64 {
    let next = if took > BATCH_TARGET * 2 {
        size / 2
    } else if took < BATCH_TARGET / 2 {
        size + size / 2 + 1
    } else {
        size
    };
    next.clamp(MIN_BATCH_ROWS.min(max), max)
}

/// The daily retention run: off while `log_retention_days` is 0.
pub struct RetentionJob {
    service: Arc<RetentionService>,
    settings: Arc<SystemSettings>,
}

impl RetentionJob {
    /// The job for the scheduler.
    pub fn new(service: Arc<RetentionService>, settings: Arc<SystemSettings>) -> Self {
        Self { service, settings }
    }
}

#[async_trait]
impl DailyJob for RetentionJob {
    fn name(&self) -> &str {
        JOB_NAME
    }

    fn run_at(&self) -> Option<NaiveTime> {
        let c = self.settings.current();
        (c.log_retention_days > 0).then_some(c.log_cleanup_time)
    }

    async fn run(&self, _run: &DueRun) -> Result<String, String> {
        match self.service.run_now(None).await {
            Ok(r) => Ok(format!("{} rows removed", r.rows_deleted)),
            Err(CleanupError::Busy) => Ok("skipped: a manual cleanup was running".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_shrink_when_slow_and_grow_back_when_quick() {
        let ms = Duration::from_millis;
        assert_eq!(next_batch_rows(1_000, ms(50), 1_000), 1_000, "on target");
        assert_eq!(next_batch_rows(1_000, ms(101), 1_000), 500);
        assert_eq!(next_batch_rows(60, ms(400), 1_000), MIN_BATCH_ROWS);
        assert_eq!(next_batch_rows(100, ms(10), 1_000), 151);
        assert_eq!(
            next_batch_rows(900, ms(10), 1_000),
            1_000,
            "never above the most"
        );
        assert_eq!(
            next_batch_rows(4, ms(400), 4),
            4,
            "a smaller most is also the least"
        );
    }
}
