//! Daily jobs at a local time of day, once per day across all instances.
//!
//! A job names itself and its time of day (read at every check, so a settings change applies
//! at once); the time zone comes from a [`ZoneSource`] (the effective `TZ` setting). At each
//! check the scheduler computes the job's latest due run: the local date whose time of day has
//! most recently passed. If that run has not happened, it claims the run's lease row
//! (`job_leases`, keyed by job and local date); exactly one instance wins and runs it, renewing
//! the lease while it works. A run interrupted by a crash is taken over when its lease expires.
//!
//! Catch-up: after downtime only the latest missed run happens (once), never one per missed
//! day. A new install whose time of day has passed today runs once at start.
//!
//! Use: implement [`DailyJob`], register it with [`Scheduler::with_job`] before
//! [`Scheduler::spawn`]. Tests drive [`Scheduler::tick`] with a manual clock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::domain::schedule::latest_due;
use crate::ports::clock::Clock;
use crate::ports::jobs::{Claim, JobLeaseStore, LeaseKey};

/// Where the scheduler reads the time zone of "local time" (the effective `TZ` setting).
pub type ZoneSource = Arc<dyn Fn() -> Tz + Send + Sync>;

/// One run of a daily job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRun {
    /// The local date this run belongs to.
    pub date: NaiveDate,
    /// When it was due (UTC).
    pub due_at: DateTime<Utc>,
    /// When it started (UTC), later than `due_at` when catching up.
    pub started_at: DateTime<Utc>,
    /// The time zone the date is in.
    pub zone: Tz,
}

/// A job that runs once a day.
#[async_trait]
pub trait DailyJob: Send + Sync {
    /// Stable, unique name: the lease key, e.g. `log-retention`.
    fn name(&self) -> &str;
    /// Local time of day to run at, or `None` while the job is switched off. Read at every
    /// check, so it may follow a setting.
    fn run_at(&self) -> Option<NaiveTime>;
    /// Does the work; returns a short outcome text kept with the run. An `Err` is kept the same
    /// way and the run is not repeated that day.
    async fn run(&self, run: &DueRun) -> Result<String, String>;
}

/// What a check did with one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// This instance ran it (outcome text or error).
    Ran {
        /// The job.
        job: String,
        /// The run's local date.
        date: NaiveDate,
        /// The job's result.
        result: Result<String, String>,
    },
    /// Not due, switched off, already done, or running elsewhere.
    Skipped {
        /// The job.
        job: String,
    },
    /// The lease table could not be reached; the next check tries again.
    Failed {
        /// The job.
        job: String,
        /// Why.
        error: String,
    },
}

/// Runs registered [`DailyJob`]s; see the module documentation.
pub struct Scheduler {
    leases: Arc<dyn JobLeaseStore>,
    clock: Arc<dyn Clock>,
    zone: ZoneSource,
    holder: String,
    lease: Duration,
    jobs: Vec<Arc<dyn DailyJob>>,
    /// The latest local date known finished, per job (one entry per registered job), so a
    /// check of a finished job does not query the database.
    done: Mutex<HashMap<String, NaiveDate>>,
    /// Jobs running in this process now (at most one entry per registered job).
    running: Mutex<HashSet<String>>,
}

/// Finished runs are kept this long in the lease table.
const KEEP_RUNS: chrono::Duration = chrono::Duration::days(90);

impl Scheduler {
    /// A scheduler whose runs are claimed under `holder` (unique per process).
    pub fn new(
        leases: Arc<dyn JobLeaseStore>,
        clock: Arc<dyn Clock>,
        zone: ZoneSource,
        holder: String,
    ) -> Self {
        Self {
            leases,
            clock,
            zone,
            holder,
            lease: Duration::from_secs(300),
            jobs: Vec::new(),
            done: Mutex::new(HashMap::new()),
            running: Mutex::new(HashSet::new()),
        }
    }

    /// Sets how long a claim holds without renewal (default 5 minutes; renewed every third of
    /// it while the job runs). Another instance takes over a run whose holder stopped renewing.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Registers a job.
    pub fn with_job(mut self, job: Arc<dyn DailyJob>) -> Self {
        self.jobs.push(job);
        self
    }

    /// The names of the registered jobs.
    pub fn job_names(&self) -> Vec<String> {
        self.jobs.iter().map(|j| j.name().to_string()).collect()
    }

    /// Checks every job once, running (concurrently, to completion) those that are due and not
    /// yet run by any instance.
    pub async fn tick(&self) -> Vec<TickOutcome> {
        let checks = self.jobs.iter().map(|job| self.check(job.as_ref()));
        futures_util::future::join_all(checks).await
    }

    /// Checks each job every `poll` (and at start) until `shutdown` fires; each job in its own
    /// task, so a long run does not delay another job.
    pub fn spawn(
        self: Arc<Self>,
        poll: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.jobs.len())
            .map(|i| {
                let me = Arc::clone(&self);
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move {
                    loop {
                        let job = Arc::clone(&me.jobs[i]);
                        match me.check(job.as_ref()).await {
                            TickOutcome::Ran { job, date, result } => match result {
                                Ok(outcome) => {
                                    tracing::info!(%job, %date, %outcome, "scheduled job ran")
                                }
                                Err(error) => {
                                    tracing::warn!(%job, %date, %error, "scheduled job failed")
                                }
                            },
                            TickOutcome::Failed { job, error } => {
                                tracing::warn!(%job, %error, "scheduled job check failed")
                            }
                            TickOutcome::Skipped { .. } => {}
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(poll) => {}
                            _ = shutdown.changed() => return,
                        }
                    }
                })
            })
            .collect()
    }

    async fn check(&self, job: &dyn DailyJob) -> TickOutcome {
        let name = job.name().to_string();
        let skipped = || TickOutcome::Skipped { job: name.clone() };
        let Some(at) = job.run_at() else {
            return skipped();
        };
        let zone = (self.zone)();
        let now = self.clock.now();
        let (date, due_at) = latest_due(now, zone, at);
        if self.known_done(&name, date) {
            return skipped();
        }
        let Some(_running) = RunningGuard::enter(&self.running, &name) else {
            return skipped();
        };
        let key = LeaseKey::new(&name, &date.to_string());
        let now_ms = now.timestamp_millis();
        match self
            .leases
            .claim(&key, &self.holder, now_ms, now_ms + self.lease_ms())
            .await
        {
            Ok(Claim::Acquired) => {}
            Ok(Claim::Finished) => {
                self.mark_done(&name, date);
                return skipped();
            }
            Ok(Claim::Busy) => return skipped(),
            Err(e) => {
                return TickOutcome::Failed {
                    job: name,
                    error: e.to_string(),
                };
            }
        }
        let run = DueRun {
            date,
            due_at,
            started_at: now,
            zone,
        };
        let result = self.run_with_heartbeat(job, &key, &run).await;
        let outcome = match &result {
            Ok(text) => format!("ok: {text}"),
            Err(text) => format!("failed: {text}"),
        };
        let finished_at = self.clock.now();
        match self
            .leases
            .finish(
                &key,
                &self.holder,
                finished_at.timestamp_millis(),
                &outcome,
                (finished_at - KEEP_RUNS).timestamp_millis(),
            )
            .await
        {
            Ok(()) => self.mark_done(&name, date),
            // The lease expires and another check runs the job again: better twice than never.
            Err(e) => tracing::warn!(job = %name, error = %e, "cannot record a finished run"),
        }
        TickOutcome::Ran {
            job: name,
            date,
            result,
        }
    }

    async fn run_with_heartbeat(
        &self,
        job: &dyn DailyJob,
        key: &LeaseKey,
        run: &DueRun,
    ) -> Result<String, String> {
        let work = job.run(run);
        tokio::pin!(work);
        let mut beat = tokio::time::interval(self.lease / 3);
        beat.tick().await;
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = beat.tick() => {
                    let until = self.clock.now().timestamp_millis() + self.lease_ms();
                    match self.leases.renew(key, &self.holder, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = %key.job, "scheduled run lost its lease"),
                        Err(e) => tracing::warn!(job = %key.job, error = %e, "cannot renew a scheduled run's lease"),
                    }
                }
            }
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }

    fn known_done(&self, job: &str, date: NaiveDate) -> bool {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.get(job).is_some_and(|d| *d >= date)
    }

    fn mark_done(&self, job: &str, date: NaiveDate) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let entry = done.entry(job.to_string()).or_insert(date);
        if *entry < date {
            *entry = date;
        }
    }
}

/// Marks a job as running in this process for the guard's life.
struct RunningGuard<'a> {
    set: &'a Mutex<HashSet<String>>,
    name: String,
}

impl<'a> RunningGuard<'a> {
    fn enter(set: &'a Mutex<HashSet<String>>, name: &str) -> Option<Self> {
        let mut running = set.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(name.to_string()).then(|| Self {
            set,
            name: name.to_string(),
        })
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut running = self.set.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(&self.name);
    }
}
