//! SQLite on a disk that fills up for a moment: after the disk is freed, every write that
//! reported success is committed and visible to another connection, admin-style writes work,
//! and no pooled connection keeps the database locked (issue 16, item 0, at the store level).
//! Batches alternate between the normal insert and the unhurried one, which has its own
//! low-priority connection.

mod support;

use std::path::Path;

use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::domain::request_log::RequestLog;
use claude_code_hub::ports::store::RequestLogStore;
use sqlx::Connection;
use support::small_disk::SmallDisk;

fn row(id: &str) -> RequestLog {
    RequestLog {
        // Large enough that every batch needs new pages.
        error_message: Some("x".repeat(2000)),
        ..support::log_rows::minimal(id)
    }
}

async fn outside_count(db: &Path) -> i64 {
    let url = format!("sqlite://{}", db.display());
    let mut c = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("outside");
    sqlx::query_scalar("SELECT COUNT(*) FROM request_logs")
        .fetch_one(&mut c)
        .await
        .expect("count")
}

#[tokio::test]
async fn writes_after_a_full_disk_is_freed_are_committed_and_nothing_holds_the_lock() {
    let Some(disk) = SmallDisk::mount(16) else {
        return;
    };
    let db = disk.path().join("cch.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");

    let mut acknowledged = 0u64;
    let mut n = 0;
    let mut batch = |k: usize| {
        let rows: Vec<RequestLog> = (0..k).map(|i| row(&format!("r{n}-{i}"))).collect();
        n += 1;
        rows
    };
    // Every other batch through the log writer's unhurried connection.
    async fn insert(store: &SqliteStore, i: usize, rows: &[RequestLog]) -> Result<u64, String> {
        let r = if i.is_multiple_of(2) {
            store.insert_logs(rows).await
        } else {
            store.insert_logs_unhurried(rows).await
        };
        r.map_err(|e| e.to_string())
    }
    for i in 0..6 {
        acknowledged += insert(&store, i, &batch(20)).await.expect("before");
    }
    let filler = disk.fill();
    let mut failures = [0; 2];
    for i in 0..30 {
        match insert(&store, i, &batch(20)).await {
            Ok(k) => acknowledged += k,
            Err(_) => failures[i % 2] += 1,
        }
    }
    assert!(
        failures[0] > 0 && failures[1] > 0,
        "the full disk must make inserts of both kinds fail: {failures:?}"
    );
    std::fs::remove_file(filler).expect("free the disk");
    for i in 0..30 {
        acknowledged += insert(&store, i, &batch(20))
            .await
            .expect("after the fault");
    }
    // Another connection sees every acknowledged row, and can take the write lock.
    assert_eq!(outside_count(&db).await as u64, acknowledged);
    let url = format!("sqlite://{}", db.display());
    let mut c = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("outside");
    sqlx::query("PRAGMA busy_timeout = 2000")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut c)
        .await
        .expect("outside writer takes the lock");
    sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
    drop(c);
    store.close().await;
    assert_eq!(
        outside_count(&db).await as u64,
        acknowledged,
        "nothing rolled back at close"
    );
}
