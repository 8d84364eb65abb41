//! PostgreSQL side of issue 16 item 0: a pooled connection left inside a transaction (open or
//! failed) is never handed to the next caller, so it cannot hold locks or swallow writes, and a
//! written row is visible to another connection as soon as the store reports it.

mod support;

use std::time::{Duration, Instant};

use claude_code_hub::adapters::postgres::PostgresStore;
use claude_code_hub::ports::store::RequestLogStore;
use sqlx::{Connection, PgConnection, Row};
use support::postgres::TestDatabase;

/// Whether an outside connection can take the strongest lock on `request_logs` within `wait`.
async fn outside_can_lock(url: &str, wait: Duration) -> bool {
    let mut c = PgConnection::connect(url).await.expect("outside");
    let until = Instant::now() + wait;
    loop {
        let mut tx = c.begin().await.expect("begin");
        let locked = sqlx::query("LOCK TABLE request_logs IN ACCESS EXCLUSIVE MODE NOWAIT")
            .execute(&mut *tx)
            .await
            .is_ok();
        let _ = tx.rollback().await;
        if locked || Instant::now() > until {
            return locked;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_connection_left_in_a_transaction_is_not_reused_and_holds_no_lock() {
    tokio::time::timeout(Duration::from_secs(60), scenario())
        .await
        .expect("the scenario finishes (a hang means a connection kept a lock)");
}

async fn scenario() {
    let Some(db) = TestDatabase::create("postgres_pool_hygiene").await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");

    // A connection inside a transaction sqlx did not begin, holding a write lock, goes back.
    {
        let mut conn = store.pool().acquire().await.expect("acquire");
        sqlx::raw_sql("BEGIN; LOCK TABLE request_logs IN ROW EXCLUSIVE MODE")
            .execute(&mut *conn)
            .await
            .expect("open transaction");
    }
    // A connection inside a failed transaction goes back.
    {
        let mut conn = store.pool().acquire().await.expect("acquire");
        sqlx::raw_sql("BEGIN")
            .execute(&mut *conn)
            .await
            .expect("begin");
        assert!(sqlx::query("SELECT 1/0").execute(&mut *conn).await.is_err());
    }
    // Every connection the pool hands out now works, outside any transaction.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut conn = store.pool().acquire().await.expect("acquire");
        let idle: bool = sqlx::raw_sql("SELECT now() = statement_timestamp()")
            .fetch_one(&mut *conn)
            .await
            .expect("a pooled connection is usable")
            .get(0);
        assert!(idle, "a pooled connection is outside any transaction");
        held.push(conn);
    }
    drop(held);

    // A row the store reports written is visible to another connection at once.
    assert_eq!(
        store
            .insert_logs(&[support::log_rows::minimal("pg-hygiene-1")])
            .await
            .unwrap(),
        1
    );
    let mut outside = PgConnection::connect(&db.url).await.expect("outside");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM request_logs WHERE request_id = $1")
        .bind("pg-hygiene-1")
        .fetch_one(&mut outside)
        .await
        .expect("count");
    assert_eq!(n, 1);
    let _ = outside.close().await;

    assert!(
        outside_can_lock(&db.url, Duration::from_secs(3)).await,
        "no pooled connection keeps a lock on request_logs"
    );
    store.pool().close().await;
    db.drop_db().await;
}

/// cch's sessions run without JIT: compiling cost 50-75 ms on statistics reads that run in a
/// few milliseconds (their cost estimates pass `jit_above_cost`). An option given in the URL
/// is kept beside it.
#[tokio::test]
async fn sessions_run_without_jit_and_keep_the_urls_options() {
    let Some(db) = TestDatabase::create("postgres_pool_no_jit").await else {
        return;
    };
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}application_name=cch-test", db.url);
    let store = PostgresStore::connect(&url).await.expect("connect");
    for _ in 0..3 {
        let mut conn = store.pool().acquire().await.expect("acquire");
        let row = sqlx::query("SELECT current_setting('jit'), current_setting('application_name')")
            .fetch_one(&mut *conn)
            .await
            .expect("settings");
        assert_eq!(row.get::<String, _>(0), "off");
        assert_eq!(row.get::<String, _>(1), "cch-test");
    }
    store.pool().close().await;
    db.drop_db().await;
}
