//! The daily scheduler on both SQL backends with a manual clock: runs at the local time in the
//! configured zone, once per day across instances, catches up once after downtime, takes over
//! a run whose holder died, follows a changed time of day.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveTime, Utc};
use claude_code_hub::adapters::postgres::PostgresStore;
use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::app::scheduler::{DailyJob, DueRun, Scheduler, TickOutcome, ZoneSource};
use claude_code_hub::ports::clock::Clock;
use claude_code_hub::ports::jobs::{Claim, JobLeaseStore, LeaseKey};

struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn at(s: &str) -> Arc<Self> {
        Arc::new(Self(Mutex::new(utc(s))))
    }
    fn set(&self, s: &str) {
        *self.0.lock().unwrap() = utc(s);
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Counts its runs and remembers their dates; its time of day can be changed.
struct CountingJob {
    at: Mutex<Option<NaiveTime>>,
    runs: AtomicUsize,
    dates: Mutex<Vec<String>>,
    pause: Duration,
}

impl CountingJob {
    fn new(at: &str) -> Arc<Self> {
        Arc::new(Self {
            at: Mutex::new(Some(NaiveTime::parse_from_str(at, "%H:%M").unwrap())),
            runs: AtomicUsize::new(0),
            dates: Mutex::new(Vec::new()),
            pause: Duration::from_millis(0),
        })
    }
}

#[async_trait]
impl DailyJob for CountingJob {
    fn name(&self) -> &str {
        "count"
    }
    fn run_at(&self) -> Option<NaiveTime> {
        *self.at.lock().unwrap()
    }
    async fn run(&self, run: &DueRun) -> Result<String, String> {
        tokio::time::sleep(self.pause).await;
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.dates.lock().unwrap().push(run.date.to_string());
        Ok(format!("run {}", run.date))
    }
}

fn shanghai() -> ZoneSource {
    Arc::new(|| chrono_tz::Asia::Shanghai)
}

fn scheduler(
    leases: Arc<dyn JobLeaseStore>,
    clock: Arc<ManualClock>,
    job: Arc<CountingJob>,
    holder: &str,
) -> Scheduler {
    Scheduler::new(leases, clock, shanghai(), holder.to_string()).with_job(job)
}

fn ran(outcomes: &[TickOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, TickOutcome::Ran { .. }))
        .count()
}

/// Two handles on one database, as two instances would have.
type Pair = (Arc<dyn JobLeaseStore>, Arc<dyn JobLeaseStore>);

async fn runs_once_a_day_at_the_local_time(stores: Pair) {
    // 03:00 in Shanghai is 19:00 UTC the day before.
    let clock = ManualClock::at("2026-12-03T18:59:59Z");
    let job = CountingJob::new("03:00");
    let s = scheduler(stores.0, clock.clone(), job.clone(), "a");
    // The first check catches up yesterday's (Dec 3) run once: a new install runs once.
    assert_eq!(ran(&s.tick().await), 1);
    assert_eq!(*job.dates.lock().unwrap(), vec!["2026-12-03"]);
    assert_eq!(ran(&s.tick().await), 0);
    clock.set("2026-12-03T19:00:00Z");
    assert_eq!(ran(&s.tick().await), 1);
    assert_eq!(ran(&s.tick().await), 0);
    clock.set("2026-12-04T18:00:00Z");
    assert_eq!(ran(&s.tick().await), 0);
    clock.set("2026-12-04T19:00:01Z");
    assert_eq!(ran(&s.tick().await), 1);
    assert_eq!(
        *job.dates.lock().unwrap(),
        vec!["2026-12-03", "2026-12-04", "2026-12-05"]
    );
    // The outcome is kept with the run.
    let runs = stores.1.finished_runs("count", 10).await.unwrap();
    assert_eq!(runs[0].0, "2026-12-05");
    assert_eq!(runs[0].2, "ok: run 2026-12-05");
}

async fn one_instance_runs_each_day(stores: Pair) {
    let clock = ManualClock::at("2026-12-03T19:00:00Z");
    let job = Arc::new(CountingJob {
        pause: Duration::from_millis(200),
        ..Arc::into_inner(CountingJob::new("03:00")).unwrap()
    });
    let a = scheduler(stores.0, clock.clone(), job.clone(), "a");
    let b = scheduler(stores.1, clock.clone(), job.clone(), "b");
    for day in [
        "2026-12-03T19:00:00Z",
        "2026-12-04T19:00:00Z",
        "2026-12-05T20:00:00Z",
    ] {
        clock.set(day);
        let (x, y) = tokio::join!(a.tick(), b.tick());
        assert_eq!(ran(&x) + ran(&y), 1, "{day}");
        let (x, y) = tokio::join!(a.tick(), b.tick());
        assert_eq!(ran(&x) + ran(&y), 0, "{day}");
    }
    assert_eq!(job.runs.load(Ordering::SeqCst), 3);
}

async fn catches_up_once_after_downtime(stores: Pair) {
    let clock = ManualClock::at("2026-12-03T19:00:00Z");
    let job = CountingJob::new("03:00");
    let s = scheduler(stores.0, clock.clone(), job.clone(), "a");
    assert_eq!(ran(&s.tick().await), 1);
    // Down for three days; a new process starts at 10:00 Shanghai on Dec 8.
    clock.set("2026-12-08T02:00:00Z");
    let restarted = scheduler(stores.1, clock.clone(), job.clone(), "a2");
    assert_eq!(ran(&restarted.tick().await), 1);
    assert_eq!(ran(&restarted.tick().await), 0);
    assert_eq!(*job.dates.lock().unwrap(), vec!["2026-12-04", "2026-12-08"]);
}

async fn a_dead_holders_run_is_taken_over(stores: Pair) {
    let clock = ManualClock::at("2026-12-03T19:00:00Z");
    let now_ms = clock.now().timestamp_millis();
    // Instance "dead" claimed today's run and stopped (no renewal, no finish).
    let key = LeaseKey::new("count", "2026-12-04");
    assert_eq!(
        stores
            .0
            .claim(&key, "dead", now_ms, now_ms + 300_000)
            .await
            .unwrap(),
        Claim::Acquired
    );
    let job = CountingJob::new("03:00");
    let s = scheduler(stores.1.clone(), clock.clone(), job.clone(), "b")
        .with_lease(Duration::from_secs(300));
    assert_eq!(ran(&s.tick().await), 0, "the lease still runs");
    clock.set("2026-12-03T19:05:00Z");
    assert_eq!(ran(&s.tick().await), 1, "expired lease taken over");
    assert_eq!(
        stores
            .0
            .claim(&key, "dead", now_ms, now_ms + 1)
            .await
            .unwrap(),
        Claim::Finished
    );
}

async fn follows_a_changed_time_and_can_be_switched_off(stores: Pair) {
    let clock = ManualClock::at("2026-12-03T19:00:00Z");
    let job = CountingJob::new("03:00");
    let s = scheduler(stores.0, clock.clone(), job.clone(), "a");
    assert_eq!(ran(&s.tick().await), 1);
    *job.at.lock().unwrap() = None;
    clock.set("2026-12-04T19:00:00Z");
    assert_eq!(ran(&s.tick().await), 0, "switched off");
    // Back on at 05:00 (21:00 UTC): Dec 4 already ran, so nothing until Dec 5's time.
    *job.at.lock().unwrap() = Some(NaiveTime::from_hms_opt(5, 0, 0).unwrap());
    clock.set("2026-12-04T20:59:00Z");
    assert_eq!(ran(&s.tick().await), 0);
    clock.set("2026-12-04T21:00:00Z");
    assert_eq!(ran(&s.tick().await), 1);
    // Off for a day and on again later: the missed run happens once.
    *job.at.lock().unwrap() = None;
    clock.set("2026-12-06T02:00:00Z");
    assert_eq!(ran(&s.tick().await), 0);
    *job.at.lock().unwrap() = Some(NaiveTime::from_hms_opt(5, 0, 0).unwrap());
    assert_eq!(ran(&s.tick().await), 1);
    assert_eq!(ran(&s.tick().await), 0);
    assert_eq!(
        *job.dates.lock().unwrap(),
        vec!["2026-12-04", "2026-12-05", "2026-12-06"]
    );
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}/cch.db", dir.path().display());
                    let a = super::SqliteStore::connect(&url).await.unwrap();
                    a.migrate().await.unwrap();
                    let b = super::SqliteStore::connect(&url).await.unwrap();
                    super::$case((std::sync::Arc::new(a), std::sync::Arc::new(b))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let name = concat!("scheduler::postgres::", stringify!($case));
                    let Some(db) = crate::support::postgres::TestDatabase::create(name).await
                    else {
                        return;
                    };
                    let a = super::PostgresStore::connect(&db.url).await.unwrap();
                    a.migrate().await.unwrap();
                    let b = super::PostgresStore::connect(&db.url).await.unwrap();
                    let (pa, pb) = (a.pool().clone(), b.pool().clone());
                    super::$case((std::sync::Arc::new(a), std::sync::Arc::new(b))).await;
                    pa.close().await;
                    pb.close().await;
                    db.drop_db().await;
                }
            )*
        }
    };
}

both_backends!(
    runs_once_a_day_at_the_local_time,
    one_instance_runs_each_day,
    catches_up_once_after_downtime,
    a_dead_holders_run_is_taken_over,
    follows_a_changed_time_and_can_be_switched_off,
);
