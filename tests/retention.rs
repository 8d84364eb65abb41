//! Log retention: batched deletion of expired rows on both backends (with the cluster lock),
//! the daily job at the configured local time, `POST /api/v1/logs/cleanup`, and the settings
//! API (validation, effective time zone, reaching a second instance through the refresh).

mod support;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use claude_code_hub::adapters::postgres::PostgresStore;
use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::app::retention::{CleanupError, RetentionJob, RetentionService};
use claude_code_hub::app::scheduler::{Scheduler, TickOutcome};
use claude_code_hub::app::snapshot::SnapshotHolder;
use claude_code_hub::app::system_settings::SystemSettings;
use claude_code_hub::domain::request_log::LogFilter;
use claude_code_hub::domain::settings::SettingsPatch;
use claude_code_hub::ports::clock::Clock;
use claude_code_hub::ports::jobs::{JobLeaseStore, LeaseKey};
use claude_code_hub::ports::retention::{DeletedBatch, DeletedUpTo, LogRetentionStore};
use claude_code_hub::ports::store::{ConfigStore, RequestLogStore};
use serde_json::json;

struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

trait Backend: ConfigStore + RequestLogStore + LogRetentionStore + JobLeaseStore {}
impl<T: ConfigStore + RequestLogStore + LogRetentionStore + JobLeaseStore> Backend for T {}

async fn all_rows(store: &dyn RequestLogStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .list_logs(&LogFilter {
            limit: 1000,
            ..LogFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    ids.sort();
    ids
}

/// The run-time settings stored in `store`, as of `clock`'s time, with `zone` as `TZ`.
async fn settings_of<S: Backend + 'static>(
    store: &Arc<S>,
    clock: &Arc<ManualClock>,
    zone: chrono_tz::Tz,
) -> Arc<SystemSettings> {
    let snapshot = SnapshotHolder::load(store.clone(), clock.now())
        .await
        .unwrap();
    Arc::new(SystemSettings::new(
        snapshot,
        store.clone(),
        clock.clone(),
        zone,
    ))
}

/// 23 rows older than 10 days, 5 newer; retention 10 days, batches of 4.
async fn deletes_expired_rows_in_batches<S: Backend + 'static>(store: Arc<S>) {
    let now = utc("2026-12-04T12:00:00Z");
    let clock = Arc::new(ManualClock(Mutex::new(now)));
    let mut rows = Vec::new();
    for i in 0..23 {
        let mut r = support::log_rows::minimal(&format!("old-{i:02}"));
        r.created_at = now - Duration::days(11) - Duration::minutes(i);
        rows.push(r);
    }
    for i in 0..5 {
        let mut r = support::log_rows::minimal(&format!("new-{i}"));
        r.created_at = now - Duration::days(9) + Duration::minutes(i);
        rows.push(r);
    }
    store.insert_logs(&rows).await.unwrap();
    let settings = settings_of(&store, &clock, chrono_tz::Asia::Shanghai).await;
    let service = RetentionService::new(
        store.clone(),
        store.clone(),
        clock.clone(),
        settings.clone(),
        "a".into(),
    )
    .with_batch_rows(4);
    // Retention off: nothing happens.
    let off = service.run_now(None).await.unwrap();
    assert_eq!((off.cutoff, off.rows_deleted), (None, 0));
    settings
        .patch(&SettingsPatch {
            log_retention_days: Some(10),
            ..Default::default()
        })
        .await
        .unwrap();
    // Another instance is cleaning: refused, nothing deleted.
    let lock = LeaseKey::new("log-retention", "lock");
    let t = now.timestamp_millis();
    store.claim(&lock, "b", t, t + 60_000).await.unwrap();
    assert!(matches!(
        service.run_now(None).await,
        Err(CleanupError::Busy)
    ));
    store.release(&lock, "b").await.unwrap();
    let report = service.run_now(None).await.unwrap();
    assert_eq!(report.cutoff, Some(now - Duration::days(10)));
    assert_eq!(report.rows_deleted, 23);
    assert_eq!(
        report.batches, 7,
        "5 full batches of 4, then 3, then one from the oldest row for rows behind the cursor"
    );
    assert!(!report.reclaimed.is_empty());
    assert_eq!(
        all_rows(store.as_ref()).await,
        vec!["new-0", "new-1", "new-2", "new-3", "new-4"]
    );
    // The lock was released: an explicit cutoff runs at once and removes the rest.
    let all = service.run_now(Some(now)).await.unwrap();
    assert_eq!(all.rows_deleted, 5);
    assert!(all_rows(store.as_ref()).await.is_empty());
}

/// The daily job runs at `log_cleanup_time` in the effective zone, only while retention is on.
async fn daily_job_follows_the_settings<S: Backend + 'static>(store: Arc<S>) {
    // 02:59 in Kolkata (UTC+5:30) on Dec 4.
    let clock = Arc::new(ManualClock(Mutex::new(utc("2026-12-03T21:29:00Z"))));
    let mut r = support::log_rows::minimal("ancient");
    r.created_at = utc("2026-01-01T00:00:00Z");
    store.insert_logs(&[r]).await.unwrap();
    let settings = settings_of(&store, &clock, chrono_tz::UTC).await;
    let service = Arc::new(RetentionService::new(
        store.clone(),
        store.clone(),
        clock.clone(),
        settings.clone(),
        "a".into(),
    ));
    let scheduler = Scheduler::new(
        store.clone(),
        clock.clone(),
        settings.zone_source(),
        "a".into(),
    )
    .with_job(Arc::new(RetentionJob::new(service, settings.clone())));
    let ran = |o: Vec<TickOutcome>| {
        o.into_iter()
            .filter_map(|o| match o {
                TickOutcome::Ran { result, .. } => Some(result.unwrap()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(ran(scheduler.tick().await).is_empty(), "retention is off");
    settings
        .patch(&SettingsPatch {
            timezone: Some(Some("Asia/Kolkata".into())),
            log_retention_days: Some(30),
            log_cleanup_time: Some("03:00".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // Dec 3's 03:00 Kolkata run is caught up once at first sight...
    assert_eq!(ran(scheduler.tick().await), vec!["1 rows removed"]);
    assert!(ran(scheduler.tick().await).is_empty());
    // ...and Dec 4's happens at 03:00 Kolkata = 21:30 UTC.
    *clock.0.lock().unwrap() = utc("2026-12-03T21:30:00Z");
    assert_eq!(ran(scheduler.tick().await), vec!["0 rows removed"]);
}

/// A batch starts after the cursor it is given (ties on `created_at` ordered by id) and
/// reports the last row it deleted; a row logged behind the cursor stays for a pass from the
/// oldest row.
async fn batches_follow_the_cursor<S: Backend + 'static>(store: Arc<S>) {
    let now = utc("2026-12-04T12:00:00Z");
    let old = now - Duration::days(20);
    let mut rows = Vec::new();
    for i in 0..6 {
        let mut r = support::log_rows::minimal(&format!("old-{i}"));
        // Two rows share each instant: the cursor must order them by id.
        r.created_at = old + Duration::minutes(i / 2);
        rows.push(r);
    }
    store.insert_logs(&rows).await.unwrap();
    let cutoff = now - Duration::days(10);
    let first = store.delete_logs_before(cutoff, None, 3).await.unwrap();
    assert_eq!(first.rows, 3);
    let cursor = first.last.expect("a cursor after deleting");
    assert_eq!(cursor.created_at, old + Duration::minutes(1));
    assert_eq!(
        all_rows(store.as_ref()).await,
        vec!["old-3", "old-4", "old-5"]
    );
    // A row logged late, behind the cursor.
    let mut late = support::log_rows::minimal("late");
    late.created_at = old - Duration::hours(1);
    store.insert_logs(&[late]).await.unwrap();
    let rest = store
        .delete_logs_before(cutoff, Some(cursor), 10)
        .await
        .unwrap();
    assert_eq!(rest.rows, 3);
    assert_eq!(
        rest.last.map(|c| c.created_at),
        Some(old + Duration::minutes(2))
    );
    let empty = store
        .delete_logs_before(cutoff, rest.last, 10)
        .await
        .unwrap();
    assert_eq!((empty.rows, empty.last), (0, None));
    assert_eq!(all_rows(store.as_ref()).await, vec!["late"]);
    let swept = store.delete_logs_before(cutoff, None, 10).await.unwrap();
    assert_eq!(swept.rows, 1);
    assert!(all_rows(store.as_ref()).await.is_empty());
}

/// Inserts `n` rows (`old-0`, …) created 20 days before `now`, a minute apart.
async fn insert_old_rows(store: &dyn RequestLogStore, now: DateTime<Utc>, n: i64) {
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let mut r = support::log_rows::minimal(&format!("old-{i}"));
            r.created_at = now - Duration::days(20) + Duration::minutes(i);
            r
        })
        .collect();
    store.insert_logs(&rows).await.unwrap();
}

/// Inserts one expired row older than everything else right after the first batch: the row a
/// spool replay writes behind the cleanup's cursor.
struct LateRowDuringCleanup<S> {
    inner: Arc<S>,
    late: Mutex<Option<claude_code_hub::domain::request_log::RequestLog>>,
}

#[async_trait::async_trait]
impl<S: Backend + 'static> LogRetentionStore for LateRowDuringCleanup<S> {
    async fn delete_logs_before(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<DeletedUpTo>,
        batch: i64,
    ) -> claude_code_hub::ports::store::StoreResult<DeletedBatch> {
        let done = self.inner.delete_logs_before(cutoff, after, batch).await?;
        let late = self.late.lock().unwrap().take();
        if let Some(row) = late {
            self.inner.insert_logs(&[row]).await?;
        }
        Ok(done)
    }
    async fn reclaim_space(&self) -> claude_code_hub::ports::store::StoreResult<String> {
        self.inner.reclaim_space().await
    }
}

/// A cleanup run removes every expired row, also one logged behind its cursor while it ran.
async fn a_run_catches_rows_logged_behind_its_cursor<S: Backend + 'static>(store: Arc<S>) {
    let now = utc("2026-12-04T12:00:00Z");
    insert_old_rows(store.as_ref(), now, 10).await;
    let mut late = support::log_rows::minimal("late");
    late.created_at = now - Duration::days(30);
    let wrapped = Arc::new(LateRowDuringCleanup {
        inner: store.clone(),
        late: Mutex::new(Some(late)),
    });
    let clock = Arc::new(ManualClock(Mutex::new(now)));
    let settings = settings_of(&store, &clock, chrono_tz::UTC).await;
    let service = RetentionService::new(wrapped, store.clone(), clock, settings, "a".into())
        .with_batch_rows(3);
    let report = service
        .run_now(Some(now - Duration::days(10)))
        .await
        .unwrap();
    assert_eq!(report.rows_deleted, 11);
    assert!(all_rows(store.as_ref()).await.is_empty());
}

/// Records the retention calls a cleanup makes, in order; can fail the second deletion.
struct Recording<S> {
    inner: Arc<S>,
    calls: Mutex<Vec<&'static str>>,
    fail_second_delete: bool,
}

#[async_trait::async_trait]
impl<S: Backend + 'static> LogRetentionStore for Recording<S> {
    async fn delete_logs_before(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<DeletedUpTo>,
        batch: i64,
    ) -> claude_code_hub::ports::store::StoreResult<DeletedBatch> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push("delete");
            calls.iter().filter(|c| **c == "delete").count()
        };
        if self.fail_second_delete && n == 2 {
            return Err(claude_code_hub::ports::store::StoreError::Unavailable(
                "injected".into(),
            ));
        }
        self.inner.delete_logs_before(cutoff, after, batch).await
    }
    async fn reclaim_space(&self) -> claude_code_hub::ports::store::StoreResult<String> {
        self.calls.lock().unwrap().push("reclaim");
        self.inner.reclaim_space().await
    }
    async fn hold_background_vacuum(&self) -> claude_code_hub::ports::store::StoreResult<bool> {
        self.calls.lock().unwrap().push("hold");
        self.inner.hold_background_vacuum().await
    }
    async fn release_background_vacuum(&self) -> claude_code_hub::ports::store::StoreResult<()> {
        self.calls.lock().unwrap().push("release");
        self.inner.release_background_vacuum().await
    }
}

/// The background vacuum is held from the first full batch (more rows to come) until after the
/// reclaim, and given back also when a deletion fails; a run with nothing to delete holds
/// nothing.
async fn the_vacuum_hold_spans_the_deletion<S: Backend + 'static>(store: Arc<S>) {
    let now = utc("2026-12-04T12:00:00Z");
    insert_old_rows(store.as_ref(), now, 5).await;
    let clock = Arc::new(ManualClock(Mutex::new(now)));
    let settings = settings_of(&store, &clock, chrono_tz::UTC).await;
    let run = |fail_second_delete: bool| {
        let recording = Arc::new(Recording {
            inner: store.clone(),
            calls: Mutex::new(Vec::new()),
            fail_second_delete,
        });
        let service = RetentionService::new(
            recording.clone(),
            store.clone(),
            clock.clone(),
            settings.clone(),
            "a".into(),
        )
        .with_batch_rows(2);
        (recording, service)
    };
    let (failing, service) = run(true);
    assert!(matches!(
        service.run_now(Some(now - Duration::days(10))).await,
        Err(CleanupError::Store(_))
    ));
    assert_eq!(
        *failing.calls.lock().unwrap(),
        vec!["delete", "hold", "delete", "release"]
    );
    let (recording, service) = run(false);
    let report = service
        .run_now(Some(now - Duration::days(10)))
        .await
        .unwrap();
    assert_eq!(
        report.rows_deleted, 3,
        "two went in the failed run's first batch"
    );
    let calls = recording.calls.lock().unwrap().clone();
    let at = |name: &str| calls.iter().position(|c| *c == name).unwrap();
    assert_eq!(&calls[..2], ["delete", "hold"]);
    assert!(at("reclaim") < at("release"), "{calls:?}");
    assert_eq!(calls.iter().filter(|c| **c == "release").count(), 1);
    assert!(all_rows(store.as_ref()).await.is_empty());
    // Nothing left to delete: no hold (on PostgreSQL no `ALTER TABLE`), only the release of a
    // hold a crashed run might have left.
    let (idle, service) = run(false);
    let report = service
        .run_now(Some(now - Duration::days(10)))
        .await
        .unwrap();
    assert_eq!(report.rows_deleted, 0);
    assert_eq!(*idle.calls.lock().unwrap(), vec!["delete", "release"]);
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}/cch.db", dir.path().display());
                    let store = super::SqliteStore::connect(&url).await.unwrap();
                    store.migrate().await.unwrap();
                    super::$case(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let name = concat!("retention::postgres::", stringify!($case));
                    let Some(db) = crate::support::postgres::TestDatabase::create(name).await
                    else {
                        return;
                    };
                    let store = super::PostgresStore::connect(&db.url).await.unwrap();
                    store.migrate().await.unwrap();
                    let pool = store.pool().clone();
                    super::$case(std::sync::Arc::new(store)).await;
                    pool.close().await;
                    db.drop_db().await;
                }
            )*
        }
    };
}

both_backends!(
    deletes_expired_rows_in_batches,
    batches_follow_the_cursor,
    a_run_catches_rows_logged_behind_its_cursor,
    daily_job_follows_the_settings,
    the_vacuum_hold_spans_the_deletion
);

/// `request_logs`' storage options, as PostgreSQL lists them (`None` when it has none).
async fn log_table_options(pool: &sqlx::PgPool) -> Option<Vec<String>> {
    sqlx::query_scalar("SELECT reloptions FROM pg_class WHERE oid = 'request_logs'::regclass")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// PostgreSQL: autovacuum is held off the log while a cleanup deletes, recorded so that a
/// crashed run's hold is given back at the next start; an operator's own setting stays.
#[tokio::test]
async fn postgres_holds_autovacuum_off_the_log_and_gives_it_back() {
    let Some(db) = support::postgres::TestDatabase::create("retention_autovacuum_hold").await
    else {
        return;
    };
    let store = Arc::new(PostgresStore::connect(&db.url).await.unwrap());
    store.migrate().await.unwrap();
    let pool = store.pool().clone();
    let held = || Some(vec!["autovacuum_enabled=false".to_string()]);
    assert_eq!(log_table_options(&pool).await, None);

    assert!(store.hold_background_vacuum().await.unwrap());
    assert_eq!(log_table_options(&pool).await, held());
    assert!(
        store.hold_background_vacuum().await.unwrap(),
        "a recorded hold is kept"
    );
    store.release_background_vacuum().await.unwrap();
    assert_eq!(log_table_options(&pool).await, None);
    store.release_background_vacuum().await.unwrap();
    assert_eq!(log_table_options(&pool).await, None, "nothing to undo");

    // A crashed cleanup's hold: the next start gives it back.
    assert!(store.hold_background_vacuum().await.unwrap());
    let now = utc("2026-12-04T12:00:00Z");
    let clock = Arc::new(ManualClock(Mutex::new(now)));
    let settings = settings_of(&store, &clock, chrono_tz::UTC).await;
    let service = RetentionService::new(
        store.clone(),
        store.clone(),
        clock.clone(),
        settings,
        "restarted".into(),
    );
    let lock = LeaseKey::new("log-retention", "lock");
    let t = now.timestamp_millis();
    store.claim(&lock, "crashed", t, t + 60_000).await.unwrap();
    assert!(
        !service.try_release_leftover_hold().await,
        "a cleanup's lock is taken: its hold stays"
    );
    assert_eq!(log_table_options(&pool).await, held());
    store.release(&lock, "crashed").await.unwrap();
    assert!(service.try_release_leftover_hold().await);
    assert_eq!(log_table_options(&pool).await, None);
    let marks: i64 = sqlx::query_scalar("SELECT count(*) FROM maintenance_marks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(marks, 0);

    // A whole run leaves no hold behind.
    let mut old = support::log_rows::minimal("old");
    old.created_at = now - Duration::days(30);
    store.insert_logs(&[old]).await.unwrap();
    let report = service.run_now(Some(now)).await.unwrap();
    assert_eq!(report.rows_deleted, 1);
    assert_eq!(log_table_options(&pool).await, None);

    // The operator's own setting is neither changed nor reset.
    sqlx::raw_sql("ALTER TABLE request_logs SET (autovacuum_enabled = true)")
        .execute(&pool)
        .await
        .unwrap();
    let own = Some(vec!["autovacuum_enabled=true".to_string()]);
    assert!(!store.hold_background_vacuum().await.unwrap());
    assert_eq!(log_table_options(&pool).await, own);
    store.release_background_vacuum().await.unwrap();
    assert_eq!(log_table_options(&pool).await, own);

    pool.close().await;
    db.drop_db().await;
}

/// SQLite runs each statement on its connection's own thread: the cleanup's connection is a
/// separate one whose thread runs at background priority, so a long deletion only takes the
/// CPU the proxy leaves; the request path's connections keep their priority.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cleanup_runs_on_a_background_priority_thread() {
    use claude_code_hub::adapters::sqlite::BACKGROUND_THREAD;
    use claude_code_hub::adapters::thread_priority::{BACKGROUND_NICE, nice_of_threads_named};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cch.db", dir.path().display());
    let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
    store.migrate().await.unwrap();
    assert!(
        nice_of_threads_named(BACKGROUND_THREAD).is_empty(),
        "opened on first use only"
    );
    let now = utc("2026-12-04T12:00:00Z");
    let rows: Vec<_> = (0..30)
        .map(|i| {
            let mut r = support::log_rows::minimal(&format!("old-{i:02}"));
            r.created_at = now - Duration::days(20);
            r
        })
        .collect();
    store.insert_logs(&rows).await.unwrap();
    let clock = Arc::new(ManualClock(Mutex::new(now)));
    let settings = settings_of(&store, &clock, chrono_tz::UTC).await;
    let service = RetentionService::new(store.clone(), store.clone(), clock, settings, "a".into());
    let report = service.run_now(Some(now)).await.unwrap();
    assert_eq!(report.rows_deleted, 30);
    assert_eq!(
        nice_of_threads_named(BACKGROUND_THREAD),
        vec![BACKGROUND_NICE],
        "one background connection, lowered"
    );
    // The pool's threads: `sqlx-sqlite-worker-N`, cut to the kernel's 15 bytes.
    let others = nice_of_threads_named("sqlx-sqlite-wor");
    assert!(
        !others.is_empty() && others.iter().all(|&n| n != BACKGROUND_NICE),
        "the pool's threads keep their priority: {others:?}"
    );
}

/// Ten minimal log rows whose request ids start with `prefix`.
#[cfg(target_os = "linux")]
fn ten_rows(prefix: &str) -> Vec<claude_code_hub::domain::request_log::RequestLog> {
    (0..10)
        .map(|i| support::log_rows::minimal(&format!("{prefix}-{i}")))
        .collect()
}

/// How many log rows `store` holds (at most 100 are listed).
#[cfg(target_os = "linux")]
async fn stored_rows(store: &impl RequestLogStore) -> usize {
    store
        .list_logs(&LogFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

/// The log writer's batches in no hurry (the linger did not fill them) run on their own
/// connection, whose thread runs at the log writer's low priority; a full batch uses the
/// request path's pool at normal priority. Both store their rows.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_unhurried_log_batches_run_on_a_low_priority_thread() {
    use claude_code_hub::adapters::sqlite::LOG_WRITER_THREAD;
    use claude_code_hub::adapters::thread_priority::{LOG_WRITER_NICE, nice_of_threads_named};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cch.db", dir.path().display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.insert_logs(&ten_rows("full")).await.unwrap(), 10);
    assert!(
        nice_of_threads_named(LOG_WRITER_THREAD).is_empty(),
        "a full batch does not open the unhurried connection"
    );
    assert_eq!(
        store
            .insert_logs_unhurried(&ten_rows("calm"))
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        nice_of_threads_named(LOG_WRITER_THREAD),
        vec![LOG_WRITER_NICE],
        "one unhurried connection, lowered"
    );
    assert_eq!(
        nice_of_threads_named(claude_code_hub::adapters::sqlite::LOG_LANE_THREAD),
        vec![LOG_WRITER_NICE],
        "the batch is composed on one lowered thread too"
    );
    let others = nice_of_threads_named("sqlx-sqlite-wor");
    assert!(
        !others.is_empty() && others.iter().all(|&n| n != LOG_WRITER_NICE),
        "the pool's threads keep their priority: {others:?}"
    );
    assert_eq!(stored_rows(&store).await, 20);
}

/// PostgreSQL: an unhurried log batch is composed and sent on a thread of its own at the log
/// writer's low priority, with its own connection, and its rows are stored exactly once (a
/// replay of the same rows adds none); a full batch stays on the request path's pool.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unhurried_log_batches_run_on_a_low_priority_thread() {
    use claude_code_hub::adapters::postgres::LOG_WRITER_THREAD;
    use claude_code_hub::adapters::thread_priority::{LOG_WRITER_NICE, nice_of_threads_named};
    let Some(db) = support::postgres::TestDatabase::create("retention_pg_unhurried").await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let before = nice_of_threads_named(LOG_WRITER_THREAD).len();
    assert_eq!(store.insert_logs(&ten_rows("full")).await.unwrap(), 10);
    assert_eq!(
        nice_of_threads_named(LOG_WRITER_THREAD).len(),
        before,
        "a full batch starts no thread"
    );
    assert_eq!(
        store
            .insert_logs_unhurried(&ten_rows("calm"))
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        store
            .insert_logs_unhurried(&ten_rows("calm"))
            .await
            .unwrap(),
        0,
        "a replayed batch adds nothing"
    );
    let lowered = nice_of_threads_named(LOG_WRITER_THREAD);
    assert_eq!(lowered.len(), before + 1, "one lane for the store");
    assert!(lowered.iter().all(|&n| n == LOG_WRITER_NICE), "{lowered:?}");
    assert_eq!(stored_rows(&store).await, 20);
}

#[tokio::test]
async fn settings_api_validates_and_cleanup_endpoint_reports() {
    let app = support::app::spawn_app(&[("TZ", "America/New_York")]).await;
    let (status, body) = app.get("/api/v1/settings").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["timezone"], json!(null));
    assert_eq!(body["effective_timezone"], "America/New_York");
    assert_eq!(body["log_retention_days"], 0);
    assert_eq!(body["log_cleanup_time"], "03:00");

    for (patch, field) in [
        (json!({"timezone": "Nowhere/Atlantis"}), "timezone"),
        (json!({"log_retention_days": -3}), "log_retention_days"),
        (json!({"log_retention_days": "7"}), "log_retention_days"),
        (json!({"log_cleanup_time": "7am"}), "log_cleanup_time"),
        (json!({"site_title": ""}), "site_title"),
        (json!({"site_title": null}), "site_title"),
    ] {
        let (status, body) = app.patch("/api/v1/settings", patch.clone()).await;
        assert_eq!(status, 400, "{patch}: {body}");
        assert!(body.to_string().contains(field), "{patch}: {body}");
    }
    let (status, body) = app.patch("/api/v1/settings", json!({"bogus": 1})).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = app
        .patch(
            "/api/v1/settings",
            json!({"timezone": "Asia/Shanghai", "log_retention_days": 7, "site_title": "Team"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["effective_timezone"], "Asia/Shanghai");
    assert_eq!(body["env_timezone"], "America/New_York");
    assert_eq!(body["site_title"], "Team");
    assert_eq!(
        app.app.ctx.system_settings.effective_zone(),
        chrono_tz::Asia::Shanghai
    );

    // Rows older than 7 days go; newer stay.
    let now = Utc::now();
    let mut old = support::log_rows::minimal("old");
    old.created_at = now - Duration::days(8);
    let fresh = support::log_rows::minimal("fresh");
    app.app
        .ctx
        .log_store
        .insert_logs(&[old, fresh])
        .await
        .unwrap();
    let (status, body) = app.post("/api/v1/logs/cleanup", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows_deleted"], 1);
    let (_, logs) = app.get("/api/v1/logs").await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 1);
    assert_eq!(logs["data"][0]["request_id"], "fresh");
    let future = (now + Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, _) = app
        .post(&format!("/api/v1/logs/cleanup?before={future}"), json!({}))
        .await;
    assert_eq!(status, 400);

    // Clearing the override goes back to TZ.
    let (status, body) = app
        .patch("/api/v1/settings", json!({"timezone": null}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["timezone"], json!(null));
    assert_eq!(body["effective_timezone"], "America/New_York");
    app.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_settings_change_reaches_another_instance() {
    let Some(db) = support::postgres::TestDatabase::create("settings_two_instances").await else {
        return;
    };
    let extra = [
        ("DSN", db.url.as_str()),
        ("CONFIG_REFRESH_INTERVAL_MS", "200"),
    ];
    let a = support::app::spawn_app(&extra).await;
    let b = support::app::spawn_app(&extra).await;
    let (status, _) = a
        .patch("/api/v1/settings", json!({"log_retention_days": 30}))
        .await;
    assert_eq!(status, 200);
    let mut seen = 0;
    for _ in 0..50 {
        let (_, body) = b.get("/api/v1/settings").await;
        seen = body["log_retention_days"].as_i64().unwrap();
        if seen == 30 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 30);
    a.app.shutdown().await.unwrap();
    b.app.shutdown().await.unwrap();
    db.drop_db().await;
}
