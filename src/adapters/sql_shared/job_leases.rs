//! [`JobLeaseStore`](crate::ports::jobs::JobLeaseStore) over the `job_leases` table
//! (migration 0015), for both SQL backends.

/// Takes or re-takes a lease: inserted when absent, else taken over only when unfinished and
/// expired (or already ours). Zero rows affected means busy or finished.
pub(crate) const CLAIM: &str = "INSERT INTO job_leases \
     (job, run_key, holder, lease_until_ms, claimed_at_ms) VALUES ($1, $2, $3, $5, $4) \
     ON CONFLICT (job, run_key) DO UPDATE SET holder = excluded.holder, \
     lease_until_ms = excluded.lease_until_ms, claimed_at_ms = excluded.claimed_at_ms \
     WHERE job_leases.finished_at_ms IS NULL \
     AND (job_leases.lease_until_ms <= $4 OR job_leases.holder = $3)";

/// Whether a run is finished (after a claim that changed nothing).
pub(crate) const IS_FINISHED: &str =
    "SELECT finished_at_ms FROM job_leases WHERE job = $1 AND run_key = $2";

/// Extends a lease still held.
pub(crate) const RENEW: &str = "UPDATE job_leases SET lease_until_ms = $4 \
     WHERE job = $1 AND run_key = $2 AND holder = $3 AND finished_at_ms IS NULL";

/// Ends a lock's lease at once.
pub(crate) const RELEASE: &str = "UPDATE job_leases SET lease_until_ms = 0 \
     WHERE job = $1 AND run_key = $2 AND holder = $3 AND finished_at_ms IS NULL";

/// Marks a run done.
pub(crate) const FINISH: &str = "UPDATE job_leases SET finished_at_ms = $4, outcome = $5 \
     WHERE job = $1 AND run_key = $2 AND holder = $3";

/// Drops a job's old finished runs.
pub(crate) const PRUNE: &str =
    "DELETE FROM job_leases WHERE job = $1 AND finished_at_ms IS NOT NULL AND finished_at_ms < $2";

/// The latest finished runs of a job.
pub(crate) const FINISHED_RUNS: &str = "SELECT run_key, finished_at_ms, outcome FROM job_leases \
     WHERE job = $1 AND finished_at_ms IS NOT NULL AND outcome IS NOT NULL \
     ORDER BY finished_at_ms DESC LIMIT $2";

/// Implements `JobLeaseStore` for a store type with a `pool` field, using the adapter's
/// `map_err` to turn sqlx errors into `StoreError`s.
macro_rules! impl_job_lease_store {
    ($store:ty, $map_err:path) => {
        #[async_trait::async_trait]
        impl $crate::ports::jobs::JobLeaseStore for $store {
            async fn claim(
                &self,
                key: &$crate::ports::jobs::LeaseKey,
                holder: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> $crate::ports::store::StoreResult<$crate::ports::jobs::Claim> {
                use $crate::adapters::sql_shared::job_leases as q;
                let done = sqlx::query(q::CLAIM)
                    .bind(&key.job)
                    .bind(&key.run_key)
                    .bind(holder)
                    .bind(now_ms)
                    .bind(until_ms)
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                if done.rows_affected() > 0 {
                    return Ok($crate::ports::jobs::Claim::Acquired);
                }
                let finished: Option<(Option<i64>,)> = sqlx::query_as(q::IS_FINISHED)
                    .bind(&key.job)
                    .bind(&key.run_key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_err)?;
                Ok(match finished {
                    Some((Some(_),)) => $crate::ports::jobs::Claim::Finished,
                    _ => $crate::ports::jobs::Claim::Busy,
                })
            }

            async fn renew(
                &self,
                key: &$crate::ports::jobs::LeaseKey,
                holder: &str,
                until_ms: i64,
            ) -> $crate::ports::store::StoreResult<bool> {
                let done = sqlx::query($crate::adapters::sql_shared::job_leases::RENEW)
                    .bind(&key.job)
                    .bind(&key.run_key)
                    .bind(holder)
                    .bind(until_ms)
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn release(
                &self,
                key: &$crate::ports::jobs::LeaseKey,
                holder: &str,
            ) -> $crate::ports::store::StoreResult<()> {
                sqlx::query($crate::adapters::sql_shared::job_leases::RELEASE)
                    .bind(&key.job)
                    .bind(&key.run_key)
                    .bind(holder)
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                Ok(())
            }

            async fn finish(
                &self,
                key: &$crate::ports::jobs::LeaseKey,
                holder: &str,
                now_ms: i64,
                outcome: &str,
                prune_before_ms: i64,
            ) -> $crate::ports::store::StoreResult<()> {
                use $crate::adapters::sql_shared::job_leases as q;
                sqlx::query(q::FINISH)
                    .bind(&key.job)
                    .bind(&key.run_key)
                    .bind(holder)
                    .bind(now_ms)
                    .bind(outcome)
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                sqlx::query(q::PRUNE)
                    .bind(&key.job)
                    .bind(prune_before_ms)
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                Ok(())
            }

            async fn finished_runs(
                &self,
                job: &str,
                limit: i64,
            ) -> $crate::ports::store::StoreResult<Vec<(String, i64, String)>> {
                sqlx::query_as($crate::adapters::sql_shared::job_leases::FINISHED_RUNS)
                    .bind(job)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_err)
            }
        }
    };
}

pub(crate) use impl_job_lease_store;
