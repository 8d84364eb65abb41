//! Leases in the database that make a piece of work happen on one instance at a time: the
//! scheduler's daily runs (once per job and local date, across instances) and cluster-wide
//! locks (e.g. log cleanup). SQLite (a single instance) and PostgreSQL implement it with the
//! same SQL.

use async_trait::async_trait;

use super::store::StoreResult;

/// What `claim` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the lease until the time it asked for.
    Acquired,
    /// Another holder's lease is still running.
    Busy,
    /// The run was finished already (by anyone); it is never claimed again.
    Finished,
}

/// Identifies one lease: a job and one of its runs (a local date, or a fixed lock name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    /// The job's name, e.g. `log-retention`.
    pub job: String,
    /// The run, e.g. `2026-12-04`, or `lock` for a plain lock.
    pub run_key: String,
}

impl LeaseKey {
    /// A key from its two parts.
    pub fn new(job: &str, run_key: &str) -> Self {
        Self {
            job: job.to_string(),
            run_key: run_key.to_string(),
        }
    }
}

/// Lease rows shared by all instances. Times are Unix milliseconds from the caller's clock.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait JobLeaseStore: Send + Sync {
    /// Takes the lease for `holder` until `until_ms`, unless another holder's lease runs past
    /// `now_ms` or the run is finished. Atomic: of two instances racing, one gets `Acquired`.
    async fn claim(
        &self,
        key: &LeaseKey,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Claim>;
    /// Extends a lease `holder` still holds (unfinished); false when it was lost.
    async fn renew(&self, key: &LeaseKey, holder: &str, until_ms: i64) -> StoreResult<bool>;
    /// Gives an unfinished lease up at once (a lock's normal end), so anyone may claim it.
    async fn release(&self, key: &LeaseKey, holder: &str) -> StoreResult<()>;
    /// Marks the run done with a short outcome text; it will not be claimed again. Also
    /// removes this job's finished runs older than `prune_before_ms` (bounding the table).
    async fn finish(
        &self,
        key: &LeaseKey,
        holder: &str,
        now_ms: i64,
        outcome: &str,
        prune_before_ms: i64,
    ) -> StoreResult<()>;
    /// The latest finished runs of a job, newest first (at most `limit`), as
    /// (run key, finished at ms, outcome).
    async fn finished_runs(&self, job: &str, limit: i64)
    -> StoreResult<Vec<(String, i64, String)>>;
}
