//! Active sessions across instances: a session made on instance A is listed on instance B (one
//! Redis, one database) and ended there, which frees its concurrent-session slot for A too;
//! the routes are admin-only.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

const MODEL: &str = "claude-sonnet-4-5";

async fn send(t: &TestApp, key: &str, session: &str) -> u16 {
    let body = json!({"model": MODEL, "max_tokens": 10, "metadata": {"session_id": session},
                      "messages": [{"role": "user", "content": "hi"}]});
    t.http
        .post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Logs in to the console with the admin token; the `cch_session=…` pair.
async fn admin_cookie(t: &TestApp) -> String {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(t.url("/api/v1/auth/login"))
        .json(&json!({"token": support::app::TEST_ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string()
}

/// Polls `GET /api/v1/sessions` until `want` ids are listed (the listing entry is written just
/// after the answer).
async fn listed(t: &TestApp, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        let (s, b) = t.get("/api/v1/sessions").await;
        assert_eq!(s, 200, "{b}");
        let items = b["items"].as_array().cloned().unwrap_or_default();
        if items.len() == want {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sessions never reached {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_one_instance_is_listed_and_ended_on_another() {
    let Some(redis) = support::redis::test_redis("sessions_api").await else {
        return;
    };
    let vars = [
        ("REDIS_URL", redis.url.as_str()),
        ("REDIS_KEY_PREFIX", redis.prefix.as_str()),
    ];
    let a = spawn_app(&vars).await;
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("ok").usage(100, 10, 0, 0));
    let (s, p) = a
        .post(
            "/api/v1/providers",
            json!({"name": "p<b>", "provider_type": "claude", "base_url": up.url(),
                   "api_key": "sk-up"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (s, u) = a
        .post(
            "/api/v1/users",
            json!({"name": "alice", "limit_concurrent_sessions": 1}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let uid = u["id"].as_i64().unwrap();
    let (s, k) = a
        .post(&format!("/api/v1/users/{uid}/keys"), json!({"name": "k1"}))
        .await;
    assert_eq!(s, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    a.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();

    // Instance B: same Redis, same database.
    let dsn = format!("sqlite://{}", a.dir.path().join("cch.db").display());
    let mut b_vars = vars.to_vec();
    b_vars.push(("DSN", dsn.as_str()));
    let b = spawn_app(&b_vars).await;
    b.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();

    assert_eq!(send(&a, &key, "sess-one").await, 200);
    assert_eq!(send(&a, &key, "sess-one").await, 200);
    // The user's only concurrent-session slot is taken.
    assert_eq!(send(&a, &key, "sess-two").await, 429);

    let items = listed(&b, 1).await;
    let s1 = &items[0];
    assert_eq!(s1["id"], "sess-one");
    assert_eq!(s1["user_name"], "alice");
    assert_eq!(s1["key_name"], "k1");
    assert_eq!(s1["provider_name"], "p<b>");
    assert_eq!(s1["model"], MODEL);
    assert_eq!(s1["client_format"], "claude");
    for _ in 0..50 {
        let (_, b2) = b.get("/api/v1/sessions").await;
        if b2["items"][0]["requests"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, b2) = b
        .get(&format!("/api/v1/sessions?user_id={uid}&limit=5"))
        .await;
    assert_eq!(b2["items"][0]["requests"], 2, "{b2}");
    let (_, none) = b
        .get(&format!("/api/v1/sessions?user_id={}", uid + 1000))
        .await;
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0), "{none}");
    let (s, _) = b.get("/api/v1/sessions?limit=0").await;
    assert_eq!(s, 400);
    let (s, _) = b.get("/api/v1/sessions?limit=1001").await;
    assert_eq!(s, 400);

    // The console page on B lists it with its names, escaped.
    let page = b
        .http
        .get(b.url("/sessions"))
        .header("cookie", admin_cookie(&b).await)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("sess-one") && html.contains("alice"),
        "{html}"
    );
    assert!(
        html.contains("p&#60;b&#62;") && !html.contains("p<b>"),
        "{html}"
    );

    // Ended on B: gone everywhere, and A admits a new session at once.
    assert_eq!(b.delete("/api/v1/sessions/sess-one").await, 204);
    assert_eq!(listed(&b, 0).await.len(), 0);
    assert_eq!(listed(&a, 0).await.len(), 0);
    assert_eq!(b.delete("/api/v1/sessions/sess-one").await, 404);
    assert_eq!(send(&a, &key, "sess-two").await, 200);
    let items = listed(&a, 1).await;
    assert_eq!(items[0]["id"], "sess-two");

    // Admin only.
    let r = b.http.get(b.url("/api/v1/sessions")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = b
        .http
        .get(b.url("/api/v1/sessions"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());
    let r = b
        .http
        .delete(b.url("/api/v1/sessions/sess-two"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());
    assert_eq!(listed(&a, 1).await.len(), 1);
    redis.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_work_without_redis_on_one_instance() {
    let a = spawn_app(&[]).await;
    let (s, b) = a.get("/api/v1/sessions").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(a.delete("/api/v1/sessions/nope").await, 404);
    assert_eq!(a.delete("/api/v1/sessions/bad%20id").await, 404);
}
