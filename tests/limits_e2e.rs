//! Quotas end to end: 429s in Claude shape with rate-limit headers, spend budgets, the usage
//! APIs, and two cch instances sharing one Postgres and one Redis (RPM exact under 200
//! concurrent requests, concurrency across instances, a Redis cut mid-load).

mod support;

use std::time::Duration;

use claude_code_hub::ports::counters::CounterMode;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};
use support::postgres::TestDatabase;
use support::tcp_proxy::TcpProxy;

const MODEL: &str = "claude-sonnet-4-5";

/// Creates a provider for `up`, a user with `limits` and a key; returns (user id, key).
async fn setup(t: &TestApp, up: &FakeUpstream, limits: Value) -> (i64, String) {
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "p", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-up"}),
        )
        .await;
    assert!(s == 201 || s == 409, "{p}");
    let mut user = json!({"name": format!("u{}", support::unique_suffix())});
    if let Value::Object(m) = limits {
        for (k, v) in m {
            user[k] = v;
        }
    }
    let (uid, _, key) = t.user_with_key(user).await;
    (uid, key)
}

fn body(session: &str) -> Value {
    json!({"model": MODEL, "max_tokens": 10,
           "metadata": {"session_id": session},
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn send(t: &TestApp, key: &str, session: &str) -> reqwest::Response {
    t.http
        .post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body(session))
        .send()
        .await
        .unwrap()
}

fn window<'a>(usage: &'a Value, name: &str) -> &'a Value {
    usage["windows"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["window"] == name))
        .unwrap_or_else(|| panic!("no {name} window in {usage}"))
}

/// A JSON number or decimal string as text.
fn val(v: &Value) -> String {
    v.to_string().trim_matches('"').to_string()
}

/// Waits until the user's `window` shows `used` (spend is recorded after the response).
async fn wait_used(t: &TestApp, uid: i64, name: &str, used: &str) -> Value {
    for _ in 0..100 {
        let (_, u) = t.get(&format!("/api/v1/users/{uid}/usage")).await;
        if val(&window(&u, name)["used"]) == used {
            return u;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (_, u) = t.get(&format!("/api/v1/users/{uid}/usage")).await;
    panic!("{name} never reached {used}: {u}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_limit_answers_429_in_claude_shape_with_headers() {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("ok").usage(10, 5, 0, 0));
    let t = spawn_app(&[]).await;
    let (uid, key) = setup(&t, &up, json!({"rpm_limit": 2})).await;
    assert_eq!(send(&t, &key, "s1").await.status(), 200);
    assert_eq!(send(&t, &key, "s1").await.status(), 200);
    let r = send(&t, &key, "s1").await;
    assert_eq!(r.status(), 429);
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h("x-rate-limit-limit").as_deref(), Some("2"));
    assert_eq!(h("x-rate-limit-remaining").as_deref(), Some("0"));
    let reset: i64 = h("x-rate-limit-reset").unwrap().parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(reset > now - 1 && reset <= now + 61, "{reset} vs {now}");
    let retry: i64 = h("retry-after").unwrap().parse().unwrap();
    // RPM counts in 1 s buckets, each request as if made at its second's end: room frees up
    // to 61 s after the oldest request (one bucket late at most).
    assert!((1..=61).contains(&retry), "{retry}");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error");
    assert_eq!(b["error"]["type"], "rate_limit_error");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("requests per minute") && msg.contains("2 of 2") && msg.contains("resets at"),
        "{msg}"
    );
    assert_eq!(
        up.request_count(),
        2,
        "the rejected request never reached upstream"
    );
    // Usage: admin view and the key holder's own view.
    let (s, u) = t.get(&format!("/api/v1/users/{uid}/usage")).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(val(&window(&u, "rpm")["used"]), "2");
    assert_eq!(val(&window(&u, "rpm")["remaining"]), "0");
    let mine: Value = t
        .http
        .get(t.url("/v1/usage"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(val(&window(&mine["user"], "rpm")["limit"]), "2");
    assert_eq!(
        val(&window(&mine["user"], "concurrent_sessions")["used"]),
        "1"
    );
    let s = t
        .http
        .get(t.url("/v1/usage"))
        .bearer_auth("cch_nope")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_budget_blocks_once_reached_then_recompute_and_reset() {
    // 1M input tokens of claude-sonnet-4-5 cost $3.
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("ok").usage(1_000_000, 0, 0, 0));
    let t = spawn_app(&[]).await;
    let (uid, key) = setup(
        &t,
        &up,
        json!({"limit_daily_usd": "5", "limit_total_usd": "100"}),
    )
    .await;
    assert_eq!(send(&t, &key, "a").await.status(), 200);
    wait_used(&t, uid, "daily", "3").await;
    assert_eq!(send(&t, &key, "a").await.status(), 200);
    let u = wait_used(&t, uid, "daily", "6").await;
    assert_eq!(val(&window(&u, "daily")["remaining"]), "0");
    assert!(window(&u, "daily")["resets_at"].is_string());
    let r = send(&t, &key, "a").await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.headers()["x-rate-limit-limit"].to_str().unwrap(),
        "5",
        "limit in USD"
    );
    let b: Value = r.json().await.unwrap();
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains("daily spend") && msg.contains("$6"), "{msg}");

    // Recompute from the log gives the same figures once the rows are written.
    for _ in 0..200 {
        let filter = claude_code_hub::domain::request_log::LogFilter {
            limit: 100,
            ..Default::default()
        };
        if t.app.ctx.log_store.list_logs(&filter).await.unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, u) = t
        .post(&format!("/api/v1/users/{uid}/usage/recompute"), json!({}))
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(val(&window(&u, "daily")["used"]), "6");
    assert_eq!(val(&window(&u, "5h")["used"]), "6");
    assert_eq!(val(&window(&u, "total")["used"]), "6");
    // Reset the total: it reads 0 and a recompute does not bring it back.
    let (s, u) = t
        .post(&format!("/api/v1/users/{uid}/usage/reset-total"), json!({}))
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(val(&window(&u, "total")["used"]), "0");
    let (_, u) = t
        .post(&format!("/api/v1/users/{uid}/usage/recompute"), json!({}))
        .await;
    assert_eq!(val(&window(&u, "total")["used"]), "0");
    assert_eq!(val(&window(&u, "daily")["used"]), "6");
    let (s, _) = t.get("/api/v1/users/999999/usage").await;
    assert_eq!(s, 404);
}

/// Rolling budgets (5 h, rolling day) live in bucket rings; a recompute empties them and
/// refills them from the request log bucket by bucket: the same figures, the same refusals.
/// Windows without a limit are summed from the log and say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_budgets_are_rebuilt_into_rings() {
    rolling_budgets_rebuilt(&spawn_app(&[]).await).await;
}

/// The same on Redis (hash rings filled by the Lua).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_budgets_are_rebuilt_into_redis_rings() {
    let Some(redis) = support::redis::test_redis("rolling_budgets_redis").await else {
        return;
    };
    let vars = [
        ("REDIS_URL", redis.url.as_str()),
        ("REDIS_KEY_PREFIX", redis.prefix.as_str()),
    ];
    let t = spawn_app(&vars).await;
    assert_eq!(t.app.ctx.counters.mode(), CounterMode::Shared);
    rolling_budgets_rebuilt(&t).await;
    redis.cleanup().await;
}

async fn rolling_budgets_rebuilt(t: &TestApp) {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("ok").usage(1_000_000, 0, 0, 0)); // $3 each
    let (uid, key) = setup(
        t,
        &up,
        json!({"limit_5h_usd": "5", "limit_daily_usd": "5", "daily_reset_mode": "rolling"}),
    )
    .await;
    assert_eq!(send(t, &key, "a").await.status(), 200);
    wait_used(t, uid, "5h", "3").await;
    assert_eq!(send(t, &key, "a").await.status(), 200);
    let u = wait_used(t, uid, "5h", "6").await;
    assert_eq!(window(&u, "5h")["source"], "counter");
    assert_eq!(val(&window(&u, "daily")["used"]), "6");
    assert_eq!(window(&u, "daily")["source"], "counter");
    assert_eq!(send(t, &key, "a").await.status(), 429);
    for _ in 0..200 {
        let filter = claude_code_hub::domain::request_log::LogFilter {
            limit: 100,
            ..Default::default()
        };
        if t.app.ctx.log_store.list_logs(&filter).await.unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, u) = t
        .post(&format!("/api/v1/users/{uid}/usage/recompute"), json!({}))
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(val(&window(&u, "5h")["used"]), "6");
    assert_eq!(val(&window(&u, "daily")["used"]), "6");
    // Unlimited windows: spend from the log, RPM not counted.
    assert_eq!(window(&u, "weekly")["source"], "request_log");
    assert_eq!(val(&window(&u, "weekly")["used"]), "6");
    assert_eq!(window(&u, "rpm")["source"], "untracked");
    assert_eq!(val(&window(&u, "rpm")["used"]), "0");
    let r = send(t, &key, "a").await;
    assert_eq!(r.status(), 429);
    let b: Value = r.json().await.unwrap();
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains("5-hour spend") && msg.contains("$6"), "{msg}");
}

/// Unlimited windows are not counted; setting a limit later fills its window from the request
/// log at once, so spend made before the limit existed still counts against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_limit_counts_spend_made_before_it() {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("ok").usage(1_000_000, 0, 0, 0)); // $3 each
    let t = spawn_app(&[]).await;
    let (uid, key) = setup(&t, &up, json!({})).await;
    for _ in 0..2 {
        assert_eq!(send(&t, &key, "a").await.status(), 200);
    }
    // The 5 h spend shows from the log (no counter yet).
    let u = wait_used(&t, uid, "5h", "6").await;
    assert_eq!(window(&u, "5h")["source"], "request_log");
    let (s, u) = t
        .patch(
            &format!("/api/v1/users/{uid}"),
            json!({"limit_5h_usd": "5", "limit_daily_usd": "100", "daily_reset_mode": "rolling"}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    let (_, u) = t.get(&format!("/api/v1/users/{uid}/usage")).await;
    assert_eq!(window(&u, "5h")["source"], "counter");
    assert_eq!(val(&window(&u, "5h")["used"]), "6");
    assert_eq!(val(&window(&u, "daily")["used"]), "6");
    let r = send(&t, &key, "a").await;
    assert_eq!(r.status(), 429);
    let b: Value = r.json().await.unwrap();
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains("5-hour spend") && msg.contains("$6"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_rate_limiting_admits_everything() {
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[("ENABLE_RATE_LIMIT", "false")]).await;
    let (uid, key) = setup(&t, &up, json!({"rpm_limit": 1})).await;
    for _ in 0..3 {
        assert_eq!(send(&t, &key, "s").await.status(), 200);
    }
    let (s, _) = t.get(&format!("/api/v1/users/{uid}/usage")).await;
    assert_eq!(s, 400);
}

/// Two instances on one Postgres and one Redis (optionally through a proxy).
async fn two_instances(
    test: &str,
    via_proxy: bool,
) -> Option<(TestApp, TestApp, TcpProxy, TestDatabase)> {
    let db = TestDatabase::create(test).await?;
    let redis = support::redis::test_redis(test).await?;
    let proxy = TcpProxy::start(redis.host_port()).await.unwrap();
    let url = if via_proxy {
        redis.url_via(proxy.addr())
    } else {
        redis.url.clone()
    };
    let vars = [
        ("DSN", db.url.as_str()),
        ("REDIS_URL", url.as_str()),
        ("REDIS_KEY_PREFIX", redis.prefix.as_str()),
    ];
    let a = spawn_app(&vars).await;
    let b = spawn_app(&vars).await;
    Some((a, b, proxy, db))
}

async fn reload(t: &TestApp) {
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_let_exactly_the_rpm_through() {
    let Some((a, b, _proxy, _db)) = two_instances("two_instances_rpm", false).await else {
        return;
    };
    let up = FakeUpstream::start().await;
    up.set_recording(false);
    let (_uid, key) = setup(&a, &up, json!({"rpm_limit": 50})).await;
    reload(&b).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (http, url, key) = (
            a.http.clone(),
            if i % 2 == 0 {
                a.url("/v1/messages")
            } else {
                b.url("/v1/messages")
            },
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("x-api-key", key)
                .json(&body(&format!("s{i}")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut counts = std::collections::BTreeMap::new();
    for t in tasks {
        *counts.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(counts.get(&200), Some(&50), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&150), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_budget_and_concurrency() {
    let Some((a, b, _proxy, _db)) = two_instances("two_instances_budget", false).await else {
        return;
    };
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("ok").usage(1_000_000, 0, 0, 0)); // $3 each
    let (uid, key) = setup(
        &a,
        &up,
        json!({"limit_total_usd": "10", "limit_concurrent_sessions": 2}),
    )
    .await;
    reload(&b).await;
    // Concurrency 2 across instances: sessions s1 (A) and s2 (B) hold the slots.
    assert_eq!(send(&a, &key, "s1").await.status(), 200);
    wait_used(&a, uid, "total", "3").await;
    assert_eq!(send(&b, &key, "s2").await.status(), 200);
    wait_used(&a, uid, "total", "6").await;
    let r = send(&a, &key, "s3").await;
    assert_eq!(r.status(), 429);
    let msg: Value = r.json().await.unwrap();
    assert!(
        msg["error"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrent sessions")
    );
    // An active session keeps its slot on the other instance.
    assert_eq!(send(&b, &key, "s1").await.status(), 200);
    wait_used(&a, uid, "total", "9").await;
    // $9 < $10: one more passes; at $12 the budget is closed on both instances.
    assert_eq!(send(&a, &key, "s2").await.status(), 200);
    wait_used(&b, uid, "total", "12").await;
    for t in [&a, &b] {
        let r = send(t, &key, "s1").await;
        assert_eq!(r.status(), 429);
        let m: Value = r.json().await.unwrap();
        assert!(
            m["error"]["message"]
                .as_str()
                .unwrap()
                .contains("total spend")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cut_mid_load_fails_no_request_and_limits_apply_per_instance() {
    let Some((a, b, proxy, _db)) = two_instances("redis_cut_limits", true).await else {
        return;
    };
    let up = FakeUpstream::start().await;
    up.set_recording(false);
    let (_uid, key) = setup(&a, &up, json!({})).await;
    reload(&b).await;
    // Load across both instances while Redis is cut halfway through.
    let mut tasks = Vec::new();
    for i in 0..120 {
        let (http, url, key) = (
            a.http.clone(),
            if i % 2 == 0 {
                a.url("/v1/messages")
            } else {
                b.url("/v1/messages")
            },
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            http.post(url)
                .header("x-api-key", key)
                .json(&body(&format!("s{i}")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            200,
            "a request failed because Redis went away"
        );
    }
    let limits = a.app.ctx.limits.clone().unwrap();
    assert_eq!(limits.store().mode(), CounterMode::Degraded);
    let (_, ready) = a.get("/ready").await;
    assert_eq!(ready["limits"], "degraded", "{ready}");

    // During the outage each instance enforces RPM on its own.
    let (_uid, key2) = setup(&a, &up, json!({"rpm_limit": 3})).await;
    reload(&b).await;
    for t in [&a, &b] {
        let mut ok = 0;
        for _ in 0..5 {
            if send(t, &key2, "x").await.status() == 200 {
                ok += 1;
            }
        }
        assert_eq!(ok, 3, "per-instance RPM during the outage");
    }

    // Recovery: shared counting resumes across both instances.
    proxy.restore();
    for t in [&a, &b] {
        let limits = t.app.ctx.limits.clone().unwrap();
        let started = std::time::Instant::now();
        while limits.store().mode() != CounterMode::Shared {
            assert!(started.elapsed() < Duration::from_secs(10), "no recovery");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (_uid, key3) = setup(&a, &up, json!({"rpm_limit": 3})).await;
    reload(&b).await;
    let mut ok = 0;
    for i in 0..6 {
        let t = if i % 2 == 0 { &a } else { &b };
        if send(t, &key3, "y").await.status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "shared RPM after recovery");
}

/// Creates a provider for `up` with extra fields; returns its id.
async fn add_provider(t: &TestApp, name: &str, up: &FakeUpstream, extra: Value) -> i64 {
    let mut p = json!({"name": name, "provider_type": "claude", "base_url": up.url(),
                       "api_key": "sk-up"});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            p[k] = v;
        }
    }
    let (s, p) = t.post("/api/v1/providers", p).await;
    assert_eq!(s, 201, "{p}");
    p["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_concurrency_slot_is_taken_atomically_across_instances() {
    let Some((a, b, _proxy, _db)) = two_instances("provider_slots", false).await else {
        return;
    };
    // Slow answers keep the requests of each round in flight together.
    let (up_limited, up_other) = (FakeUpstream::start().await, FakeUpstream::start().await);
    for up in [&up_limited, &up_other] {
        up.set_default(Reply::message("ok").delay_first_byte(Duration::from_millis(300)));
    }
    // The limited provider is preferred (better priority): without an atomic take both instances
    // would send their session to it.
    let limited = add_provider(
        &a,
        "limited",
        &up_limited,
        json!({"priority": 0, "limit_concurrent_sessions": 1}),
    )
    .await;
    let other = add_provider(&a, "other", &up_other, json!({"priority": 1})).await;
    let (uid, key) = setup_user(&a).await;
    reload(&b).await;

    // Round 1: two sessions at once, one through each instance → one on each provider.
    let send_all = |sessions: Vec<(bool, String)>| {
        let (a_url, b_url, http, key) = (
            a.url("/v1/messages"),
            b.url("/v1/messages"),
            a.http.clone(),
            key.clone(),
        );
        async move {
            let tasks: Vec<_> = sessions
                .into_iter()
                .map(|(on_a, session)| {
                    let url = if on_a { a_url.clone() } else { b_url.clone() };
                    let (http, key) = (http.clone(), key.clone());
                    tokio::spawn(async move {
                        http.post(url)
                            .header("x-api-key", key)
                            .json(&body(&session))
                            .send()
                            .await
                            .unwrap()
                            .status()
                            .as_u16()
                    })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), 200);
            }
        }
    };
    send_all(vec![(true, "s1".into()), (false, "s2".into())]).await;
    assert_eq!(
        up_limited.request_count(),
        1,
        "one session on the limited provider"
    );
    assert_eq!(
        up_other.request_count(),
        1,
        "the other session on the second"
    );

    // Round 2: both sessions again plus new ones, spread over both instances: the limited
    // provider still serves one session only.
    let mut round = vec![(false, "s1".to_string()), (true, "s2".to_string())];
    round.extend((3..9).map(|i| (i % 2 == 0, format!("s{i}"))));
    send_all(round).await;

    // The request log (shared Postgres) tells which session each provider served.
    let logs = loop_logs(&a, uid, 10).await;
    let sessions_on = |pid: i64| {
        logs.iter()
            .filter(|l| l.provider_id == Some(pid))
            .filter_map(|l| l.session_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        sessions_on(limited).len(),
        1,
        "never two sessions on the limited provider: {:?}",
        sessions_on(limited)
    );
    assert_eq!(sessions_on(other).len(), 7, "{:?}", sessions_on(other));
    // Requests that found the limited provider full say so in their decision chain.
    let full = logs
        .iter()
        .filter(|l| l.provider_id == Some(other))
        .filter(|l| {
            l.provider_chain.as_array().is_some_and(|entries| {
                entries.iter().any(|e| {
                    e["excluded"].as_array().is_some_and(|ex| {
                        ex.iter().any(|x| {
                            x["provider_id"] == limited && x["reason"]["type"] == "concurrency_full"
                        })
                    })
                })
            })
        })
        .count();
    assert_eq!(
        full, 8,
        "every request on the second provider names the full one"
    );
}

/// A user without limits and a key; returns (user id, key).
async fn setup_user(t: &TestApp) -> (i64, String) {
    let (uid, _, key) = t
        .user_with_key(json!({"name": format!("u{}", support::unique_suffix())}))
        .await;
    (uid, key)
}

/// Waits until `n` log rows of the user are written; returns them.
async fn loop_logs(
    t: &TestApp,
    uid: i64,
    n: usize,
) -> Vec<claude_code_hub::domain::request_log::RequestLog> {
    let filter = claude_code_hub::domain::request_log::LogFilter {
        user_id: Some(uid),
        limit: 100,
        ..Default::default()
    };
    for _ in 0..200 {
        let logs = t.app.ctx.log_store.list_logs(&filter).await.unwrap();
        if logs.len() >= n {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("request log rows never reached {n}");
}

/// Two providers on instance `a` (`limited`: one concurrent session, tried first; `other`), a
/// user whose key is returned; session `s1` takes the limited slot through `a` (which then
/// remembers it as the holder) and is ended through `b`.
async fn s1_held_then_ended(a: &TestApp, b: &TestApp) -> (FakeUpstream, FakeUpstream, String) {
    let (up_limited, up_other) = (FakeUpstream::start().await, FakeUpstream::start().await);
    for up in [&up_limited, &up_other] {
        up.set_default(Reply::message("ok").usage(10, 1, 0, 0));
    }
    add_provider(
        a,
        "limited",
        &up_limited,
        json!({"priority": 0, "limit_concurrent_sessions": 1}),
    )
    .await;
    add_provider(a, "other", &up_other, json!({"priority": 1})).await;
    let (_uid, key) = setup_user(a).await;
    reload(a).await;
    reload(b).await;

    assert_eq!(send(a, &key, "s1").await.status(), 200);
    assert_eq!(send(a, &key, "s1").await.status(), 200);
    assert_eq!(up_limited.request_count(), 2, "s1 holds the limited slot");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.delete("/api/v1/sessions/s1").await, 204);
    (up_limited, up_other, key)
}

/// An instance trusts a provider slot it saw a session hold (no check-and-take before
/// forwarding), yet a session ended on another instance, whose slot was given away, is never
/// sent to the full provider again: the pre-routing read (same round trip as every request)
/// counts the other sessions and selection skips the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ended_session_loses_the_provider_slot_an_instance_remembered() {
    let Some((a, b, _proxy, _db)) = two_instances("remembered_slot", false).await else {
        return;
    };
    let (up_limited, up_other, key) = s1_held_then_ended(&a, &b).await;
    assert_eq!(send(&b, &key, "s2").await.status(), 200);
    assert_eq!(up_limited.request_count(), 3, "s2 took the freed slot");
    assert_eq!(up_other.request_count(), 0);

    // A still remembers s1 as the holder, but the provider is full with s2.
    for _ in 0..3 {
        assert_eq!(send(&a, &key, "s1").await.status(), 200);
    }
    assert_eq!(
        up_limited.request_count(),
        3,
        "never again on the full provider"
    );
    assert_eq!(up_other.request_count(), 3);
}

/// A session ended while an instance still remembers it as a holder: its next request on that
/// instance goes through on the memory (the slot is vacant, so the pre-routing read finds the
/// provider not full), but the refresh after the answer finds it holds no slot and gives it
/// none. The vacant slot goes to the next session that asks, and the ended session's following
/// request is checked in full like a newcomer's (refused here: the provider is full again).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ended_session_is_not_given_its_slot_back_by_the_refresh() {
    let Some((a, b, _proxy, _db)) = two_instances("refresh_no_retake", false).await else {
        return;
    };
    let (up_limited, up_other, key) = s1_held_then_ended(&a, &b).await;

    // A still remembers s1; the slot is vacant, so nothing keeps s1 off the provider.
    assert_eq!(send(&a, &key, "s1").await.status(), 200);
    assert_eq!(up_limited.request_count(), 3);
    // Let the refresh after that answer land: it must not take the slot back for s1.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(send(&b, &key, "s2").await.status(), 200);
    assert_eq!(up_limited.request_count(), 4, "s2 took the vacant slot");
    assert_eq!(up_other.request_count(), 0);

    // s1 is checked in full now, and the provider is full with s2.
    assert_eq!(send(&a, &key, "s1").await.status(), 200);
    assert_eq!(up_limited.request_count(), 4);
    assert_eq!(up_other.request_count(), 1);
}
