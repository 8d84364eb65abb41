//! Request log rows survive a database outage: spooled to disk while PostgreSQL is unreachable,
//! replayed when it returns, also across a restart of cch in between.

mod support;

use std::time::Duration;

use claude_code_hub::app::wiring;
use claude_code_hub::domain::request_log::LogFilter;
use serde_json::json;
use support::app::{TestApp, test_settings};
use support::fake_upstream::FakeUpstream;
use support::postgres::TestDatabase;
use support::tcp_proxy::TcpProxy;

async fn start(dir: &tempfile::TempDir, dsn: &str) -> wiring::RunningApp {
    let settings = test_settings(
        dir.path(),
        &[("DSN", dsn), ("CONFIG_REFRESH_INTERVAL_MS", "100000")],
    );
    wiring::start(settings).await.expect("app starts")
}

#[tokio::test]
async fn rows_written_while_the_database_is_down_appear_after_it_returns_even_across_a_restart() {
    support::init_crypto();
    let Some(db) = TestDatabase::create("log_spool").await else {
        return;
    };
    let pg = url::Url::parse(&db.url).unwrap();
    let proxy = TcpProxy::start(format!(
        "{}:{}",
        pg.host_str().unwrap(),
        pg.port().unwrap_or(5432)
    ))
    .await
    .unwrap();
    let mut via = pg.clone();
    via.set_port(Some(proxy.addr().port())).unwrap();
    let dsn = via.to_string();
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();

    let app = start(&dir, &dsn).await;
    let base = format!("http://{}", app.addr);
    let t = TestApp {
        app,
        base,
        http: reqwest::Client::new(),
        dir: tempfile::tempdir().unwrap(),
    };
    let (s, _) = t.post("/api/v1/providers", json!({"name": "a", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-123456789"})).await;
    assert_eq!(s, 201);
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    let key = k["key"].as_str().unwrap().to_string();

    proxy.cut();
    for _ in 0..3 {
        let r = t
            .http
            .post(t.url("/v1/messages"))
            .header("x-api-key", &key)
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "requests are served while the database is down"
        );
    }
    // Give the writer time to fail and spool, then stop cch while the database is still down.
    let spool_dir = dir.path().join("spool");
    for _ in 0..100 {
        let spooled = std::fs::read_dir(&spool_dir)
            .map(|d| d.count() > 0)
            .unwrap_or(false);
        if spooled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.app.shutdown().await.unwrap();
    assert!(
        std::fs::read_dir(&spool_dir).unwrap().count() > 0,
        "rows were spooled to disk"
    );

    proxy.restore();
    let app = start(&dir, &dsn).await;
    let mut found = 0;
    for _ in 0..100 {
        let rows = app
            .ctx
            .log_store
            .list_logs(&LogFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        found = rows.iter().filter(|r| r.status_code == 200).count();
        if found >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        found, 3,
        "every row written during the outage is in the database"
    );
    app.shutdown().await.unwrap();
    db.drop_db().await;
}
