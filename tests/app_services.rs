//! The whole app on PostgreSQL and on Redis: admin API on Postgres, and Redis cut mid-test
//! (through a TCP proxy the test controls) without the admin API or counters failing.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::app::spawn_app;
use support::postgres::TestDatabase;
use support::redis::test_redis;
use support::tcp_proxy::TcpProxy;

#[tokio::test]
async fn admin_api_works_on_postgres() {
    let Some(db) = TestDatabase::create("admin_api_works_on_postgres").await else {
        return;
    };
    let t = spawn_app(&[("DSN", db.url.as_str())]).await;
    let (status, u) = t
        .post(
            "/api/v1/users",
            json!({"name": "pg-user", "limit_monthly_usd": "99.99"}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    let uid = u["id"].as_i64().unwrap();
    let (status, k) = t
        .post(&format!("/api/v1/users/{uid}/keys"), json!({"name": "k"}))
        .await;
    assert_eq!(status, 201);
    let (status, p) = t
        .post("/api/v1/providers", json!({"name": "pg-p", "provider_type": "claude", "base_url": "https://x.example", "api_key": "sk-123456789"}))
        .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(
        t.post("/api/v1/users", json!({"name": "pg-user"})).await.0,
        409
    );
    let ready: Value = t
        .http
        .get(t.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["database_backend"], "postgres");
    let plaintext = k["key"].as_str().unwrap();
    assert!(
        t.app
            .ctx
            .snapshot
            .get()
            .keys_by_hash
            .contains_key(&claude_code_hub::domain::api_key::hash_key(plaintext))
    );
    t.app.shutdown().await.unwrap();
    db.drop_db().await;
}

async fn ready(t: &support::app::TestApp) -> Value {
    t.http
        .get(t.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn redis_cut_mid_test_degrades_then_recovers() {
    let Some(redis) = test_redis("redis_cut_mid_test_degrades_then_recovers").await else {
        return;
    };
    let proxy = TcpProxy::start(redis.host_port()).await.unwrap();
    let url = redis.url_via(proxy.addr());
    let t = spawn_app(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_KEY_PREFIX", redis.prefix.as_str()),
    ])
    .await;
    assert_eq!(ready(&t).await["redis"], "ok");
    let counters = t.app.ctx.counters.clone();
    assert_eq!(
        counters
            .incr("c", 1, Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );

    proxy.cut();
    // Every call keeps answering: the admin API and the counters.
    for i in 0..5 {
        let (status, _) = t
            .post(
                "/api/v1/users",
                json!({"name": format!("during-outage-{i}")}),
            )
            .await;
        assert_eq!(status, 201);
        counters
            .incr("c", 1, Duration::from_secs(60))
            .await
            .expect("counters never fail");
        counters
            .set("s", "v", Some(Duration::from_secs(60)))
            .await
            .expect("counters never fail");
    }
    let r = ready(&t).await;
    assert_eq!(r["redis"], "degraded", "{r}");
    assert_eq!(r["status"], "degraded");

    proxy.restore();
    let mut recovered = false;
    for _ in 0..100 {
        if ready(&t).await["redis"] == "ok" {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "switched back to Redis after it returned");
    counters
        .set("after", "1", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let mut direct = redis.direct().await;
    let v: Option<String> = redis::cmd("GET")
        .arg(format!("{}after", redis.prefix))
        .query_async(&mut direct)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("1"), "writes reach Redis again");
    t.app.shutdown().await.unwrap();
    redis.cleanup().await;
}
