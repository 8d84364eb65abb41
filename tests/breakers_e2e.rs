//! Circuit breakers, probing, provider tests, routing diagnosis and admin error rules, end to
//! end: the whole app on loopback against fake upstreams. Breaker time is driven by a manual
//! clock (the open duration cannot be shorter than a minute), probing runs on real time.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use claude_code_hub::app::wiring;
use claude_code_hub::ports::clock::Clock;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app, test_settings};
use support::fake_upstream::{FakeUpstream, Reply};

const MODEL: &str = "claude-sonnet-4-5";

/// A clock the test moves by hand.
struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, d: chrono::Duration) {
        *self.0.lock().unwrap() += d;
    }
}

async fn start_with(
    dir: tempfile::TempDir,
    extra: &[(&str, &str)],
    clock: Arc<dyn Clock>,
) -> TestApp {
    support::init_crypto();
    let settings = test_settings(dir.path(), extra);
    let app = wiring::start_with_clock(settings, clock)
        .await
        .expect("app starts");
    let base = format!("http://{}", app.addr);
    TestApp {
        app,
        base,
        http: reqwest::Client::new(),
        dir,
    }
}

async fn add_provider(t: &TestApp, name: &str, base_url: &str, extra: Value) -> i64 {
    let mut body = json!({"name": name, "provider_type": "claude", "base_url": base_url,
                          "api_key": format!("sk-{name}"), "max_retry_attempts": 1});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    let (status, p) = t.post("/api/v1/providers", body).await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_i64().unwrap()
}

async fn add_user_key(t: &TestApp) -> (i64, String) {
    add_user_key_with(t, json!({"name": "alice"})).await
}

async fn add_user_key_with(t: &TestApp, user: Value) -> (i64, String) {
    let (status, u) = t.post("/api/v1/users", user).await;
    assert_eq!(status, 201, "{u}");
    let (status, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    (
        u["id"].as_i64().unwrap(),
        k["key"].as_str().unwrap().to_string(),
    )
}

async fn send(t: &TestApp, key: &str) -> (u16, Value) {
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": MODEL, "max_tokens": 10,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn breaker(t: &TestApp, id: i64) -> Value {
    let (status, b) = t.get(&format!("/api/v1/providers/{id}/breaker")).await;
    assert_eq!(status, 200, "{b}");
    b
}

#[tokio::test]
async fn five_failures_open_the_breaker_then_half_open_and_close_after_two_successes() {
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let t = start_with(tempfile::tempdir().unwrap(), &[], clock.clone()).await;
    let bad = FakeUpstream::start().await;
    let good = FakeUpstream::start().await;
    bad.set_default(Reply::error(500, "api_error", "upstream exploded"));
    let a = add_provider(&t, "a", &bad.url(), json!({"priority": 0})).await;
    let b = add_provider(&t, "b", &good.url(), json!({"priority": 1})).await;
    let (user_id, key) = add_user_key(&t).await;

    for i in 1..=5 {
        let (status, body) = send(&t, &key).await;
        assert_eq!(status, 200, "failover to b: {body}");
        assert_eq!(bad.request_count(), i, "a tried while closed");
    }
    let view = breaker(&t, a).await;
    assert_eq!(view["state"], "open", "{view}");
    assert_eq!(view["failure_count"], 5);
    assert!(view["next_try_at"].is_string());

    // Open: a is skipped without being tried.
    clock.advance(chrono::Duration::minutes(29));
    let (status, _) = send(&t, &key).await;
    assert_eq!(status, 200);
    assert_eq!(bad.request_count(), 5, "a skipped while open");
    let (status, d) = t
        .get(&format!(
            "/api/v1/diagnostics/route?user_id={user_id}&model={MODEL}&format=claude"
        ))
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["chosen"]["provider_id"], b);
    let ex = d["excluded"].as_array().unwrap();
    assert!(
        ex.iter()
            .any(|e| e["provider_id"] == a && e["reason"]["type"] == "breaker_open"),
        "{d}"
    );

    // The open duration is up: half-open, a is tried again and two successes close it.
    clock.advance(chrono::Duration::minutes(1));
    bad.set_default(Reply::default());
    let (status, _) = send(&t, &key).await;
    assert_eq!(status, 200);
    assert_eq!(bad.request_count(), 6, "a tried when half-open");
    assert_eq!(breaker(&t, a).await["state"], "half_open");
    send(&t, &key).await;
    let view = breaker(&t, a).await;
    assert_eq!(
        (view["state"].as_str(), view["failure_count"].as_u64()),
        (Some("closed"), Some(0))
    );
    let _ = b;
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn half_open_lets_only_a_few_trials_through_then_closes_or_reopens() {
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let t = start_with(tempfile::tempdir().unwrap(), &[], clock.clone()).await;
    let bad = FakeUpstream::start().await;
    let good = FakeUpstream::start().await;
    bad.set_default(Reply::error(500, "api_error", "upstream exploded"));
    let a = add_provider(
        &t,
        "a",
        &bad.url(),
        json!({"priority": 0, "failure_threshold": 2, "half_open_success_threshold": 2}),
    )
    .await;
    add_provider(&t, "b", &good.url(), json!({"priority": 1})).await;
    let (_, key) = add_user_key(&t).await;
    for _ in 0..2 {
        assert_eq!(send(&t, &key).await.0, 200);
    }
    let view = breaker(&t, a).await;
    assert_eq!(view["state"], "open", "{view}");
    assert_eq!(view["last_error"], "upstream exploded", "{view}");

    // Half-open, a answers slowly: of ten requests at once, two try a, the rest go to b.
    clock.advance(chrono::Duration::minutes(30));
    bad.set_default(Reply::default().delay_first_byte(Duration::from_millis(500)));
    let (a0, b0) = (bad.request_count(), good.request_count());
    let burst = || futures_util::future::join_all((0..10).map(|_| send(&t, &key)));
    let answers = burst().await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(bad.request_count() - a0, 2, "only the trials reach a");
    assert_eq!(good.request_count() - b0, 8);
    // Two successful trials closed it: everything flows to a again.
    let view = breaker(&t, a).await;
    assert_eq!(view["state"], "closed", "{view}");
    assert_eq!(view["trials_in_flight"], 0);
    bad.set_default(Reply::default());
    let (a0, b0) = (bad.request_count(), good.request_count());
    let answers = burst().await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(
        (bad.request_count() - a0, good.request_count() - b0),
        (10, 0)
    );

    // Open it again; a failing trial in half-open re-opens it at once.
    bad.set_default(Reply::error(529, "overloaded_error", "Overloaded"));
    for _ in 0..2 {
        send(&t, &key).await;
    }
    assert_eq!(breaker(&t, a).await["state"], "open");
    clock.advance(chrono::Duration::minutes(30));
    let a0 = bad.request_count();
    assert_eq!(send(&t, &key).await.0, 200, "failover to b");
    assert_eq!(bad.request_count() - a0, 1, "one trial");
    let view = breaker(&t, a).await;
    assert_eq!(view["state"], "open", "{view}");
    assert_eq!(view["last_error"], "Overloaded", "{view}");
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_breaking_mid_way_opens_with_a_clear_last_error() {
    let t = spawn_app(&[]).await;
    let up = FakeUpstream::start().await;
    // Broken after the first text delta: mid-way, after the content gate released the stream.
    up.set_default(Reply::stream("abcdefgh").drop_after_events(4));
    let a = add_provider(&t, "a", &up.url(), json!({"failure_threshold": 1})).await;
    let (_, key) = add_user_key(&t).await;
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": MODEL, "max_tokens": 10, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let _ = r.bytes().await;
    // The stream's outcome is recorded in the background.
    let started = std::time::Instant::now();
    let view = loop {
        let v = breaker(&t, a).await;
        if v["state"] == "open" || started.elapsed() > Duration::from_secs(3) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(view["state"], "open", "{view}");
    let last = view["last_error"].as_str().unwrap_or_default();
    assert!(last.starts_with("stream broke mid-way"), "{view}");
    assert!(!last.contains("abcdefgh"), "no stream content: {view}");
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn admin_reset_and_why_no_provider_names_every_exclusion() {
    let t = spawn_app(&[]).await;
    let bad = FakeUpstream::start().await;
    bad.set_default(Reply::overloaded());
    let a = add_provider(
        &t,
        "a",
        &bad.url(),
        json!({"failure_threshold": 1, "group_tag": "basic"}),
    )
    .await;
    let off = add_provider(&t, "off", &bad.url(), json!({"enabled": false})).await;
    let grp = add_provider(&t, "grp", &bad.url(), json!({"group_tag": "vip"})).await;
    let gem = add_provider(&t, "gem", &bad.url(), json!({"provider_type": "gemini"})).await;
    let models = add_provider(&t, "m", &bad.url(), json!({"allowed_models": ["other"]})).await;
    let (user_id, key) =
        add_user_key_with(&t, json!({"name": "bob", "provider_group": "basic"})).await;
    let (status, body) = send(&t, &key).await;
    assert_eq!(status, 502, "{body}");
    let (status, body) = send(&t, &key).await;
    assert_eq!(status, 503, "{body}");
    let msg = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("no provider available"), "{msg}");

    let (_, d) = t
        .get(&format!(
            "/api/v1/diagnostics/route?user_id={user_id}&model={MODEL}"
        ))
        .await;
    assert!(d["chosen"].is_null(), "{d}");
    let reason = |id: i64| {
        d["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["provider_id"] == id)
            .map(|e| e["reason"]["type"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(reason(a).as_deref(), Some("breaker_open"));
    assert_eq!(reason(off).as_deref(), Some("disabled"));
    assert_eq!(reason(grp).as_deref(), Some("group_mismatch"));
    assert_eq!(reason(gem).as_deref(), Some("format_mismatch"));
    assert_eq!(reason(models).as_deref(), Some("model_not_allowed"));
    assert!(d["message"].is_string());

    let (status, list) = t.get("/api/v1/breakers").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 5);
    let (status, v) = t
        .post(&format!("/api/v1/providers/{a}/breaker/reset"), json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "closed");
    let (status, _) = t
        .get("/api/v1/diagnostics/route?user_id=999999&model=x")
        .await;
    assert_eq!(status, 404);
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn probing_brings_a_recovered_provider_back_within_one_interval() {
    let t = spawn_app(&[
        ("ENABLE_SMART_PROBING", "true"),
        ("PROBE_INTERVAL_MS", "1000"),
    ])
    .await;
    let up = FakeUpstream::start().await;
    up.set_default(Reply::error(500, "api_error", "down"));
    let a = add_provider(&t, "a", &up.url(), json!({"failure_threshold": 1})).await;
    let (_, key) = add_user_key(&t).await;
    send(&t, &key).await;
    assert_eq!(breaker(&t, a).await["state"], "open");
    // Still failing: probes do not half-open it.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(breaker(&t, a).await["state"], "open");
    // Recovered: back within one probe interval (+10 % jitter and a margin).
    up.set_default(Reply::default());
    let recovered = std::time::Instant::now();
    loop {
        if breaker(&t, a).await["state"] == "half_open" {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_millis(1600),
            "not probed in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = send(&t, &key).await;
    assert_eq!(status, 200);
    t.app.shutdown().await.unwrap();
}

async fn network_error_opens(extra: &[(&str, &str)]) -> bool {
    let t = spawn_app(extra).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let a = add_provider(&t, "a", &url, json!({"failure_threshold": 1})).await;
    let (_, key) = add_user_key(&t).await;
    send(&t, &key).await;
    let open = breaker(&t, a).await["state"] == "open";
    t.app.shutdown().await.unwrap();
    open
}

#[tokio::test]
async fn network_errors_count_only_with_the_setting() {
    assert!(!network_error_opens(&[]).await);
    assert!(network_error_opens(&[("ENABLE_CIRCUIT_BREAKER_ON_NETWORK_ERRORS", "true")]).await);
}

#[tokio::test]
async fn test_connection_reports_success_auth_failure_and_timeout() {
    let t = spawn_app(&[("API_TEST_TIMEOUT_MS", "5000")]).await;
    let up = FakeUpstream::start().await;
    let a = add_provider(&t, "a", &up.url(), json!({"allowed_models": [MODEL]})).await;
    let test = |t: &TestApp| {
        let url = format!("/api/v1/providers/{a}/test");
        let r = t.admin(reqwest::Method::POST, &url).send();
        async move { r.await.unwrap().json::<Value>().await.unwrap() }
    };
    let ok = test(&t).await;
    assert_eq!(
        (ok["ok"].as_bool(), ok["outcome"].as_str()),
        (Some(true), Some("success")),
        "{ok}"
    );
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["model"], MODEL);
    let sent = up.last_request().unwrap();
    assert_eq!(sent.header("x-api-key"), Some("sk-a"));
    assert_eq!(sent.path_only(), "/v1/messages");

    up.push(Reply::unauthorized());
    let auth = test(&t).await;
    assert_eq!(auth["outcome"], "auth_failed", "{auth}");
    assert_eq!(auth["status"], 401);
    assert_eq!(auth["message"], "invalid x-api-key");

    up.push(Reply::default().delay_first_byte(Duration::from_secs(8)));
    let slow = test(&t).await;
    assert_eq!(slow["outcome"], "timeout", "{slow}");
    assert_eq!(slow["ok"], false);
    assert!(slow["latency_ms"].as_u64().unwrap() >= 4900);
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_admin_error_rule_applies_on_both_instances_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let dsn = format!("sqlite://{}", dir.path().join("cch.db").display());
    let extra = [("DSN", dsn.as_str()), ("CONFIG_REFRESH_INTERVAL_MS", "200")];
    let clock: Arc<dyn Clock> = Arc::new(claude_code_hub::app::wiring::SystemClock);
    let one = start_with(dir, &extra, clock.clone()).await;
    let two = start_with(dir2, &extra, clock).await;
    let up = FakeUpstream::start().await;
    let other = FakeUpstream::start().await;
    up.set_default(Reply::error(
        403,
        "permission_error",
        "Your credit balance is too low",
    ));
    add_provider(&one, "a", &up.url(), json!({"priority": 0})).await;
    add_provider(&one, "b", &other.url(), json!({"priority": 1})).await;
    let (_, key) = add_user_key(&one).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Without a rule: a provider error, failover to b.
    let (status, _) = send(&two, &key).await;
    assert_eq!(status, 200);
    assert_eq!(other.request_count(), 1);

    let (status, bad) = one
        .post(
            "/api/v1/error-rules",
            json!({"pattern": "(unclosed", "match_kind": "regex"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["field"], "pattern");
    let (status, rule) = one
        .post(
            "/api/v1/error-rules",
            json!({"pattern": r"credit balance is (too )?low", "match_kind": "regex",
                   "status": 403, "class": "non_retryable_client_error",
                   "override_status": 402, "override_message": "Top up your plan"}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    for t in [&one, &two] {
        let (status, body) = send(t, &key).await;
        assert_eq!(status, 402, "{body}");
        assert_eq!(body["error"]["message"], "Top up your plan");
    }
    assert_eq!(other.request_count(), 1, "no failover for a client error");

    // Presets: listed, deletable and restorable.
    let (_, all) = one.get("/api/v1/error-rules").await;
    let all = all.as_array().unwrap().clone();
    assert_eq!(all[0]["id"], rule["id"], "admin rules come first");
    let preset = all.iter().find(|r| r["is_preset"] == true).unwrap();
    assert_eq!(
        one.delete(&format!("/api/v1/error-rules/{}", preset["id"]))
            .await,
        204
    );
    let (status, restored) = one
        .post("/api/v1/error-rules/presets/restore", json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(restored.as_array().unwrap().len(), all.len());
    let (status, patched) = one
        .patch(
            &format!("/api/v1/error-rules/{}", rule["id"]),
            json!({"override_status": 700}),
        )
        .await;
    assert_eq!(status, 400, "{patched}");
    one.app.shutdown().await.unwrap();
    two.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_breaker_opened_by_one_instance_is_respected_by_the_other() {
    let Some(redis) = support::redis::test_redis("breakers_two_instances").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let dsn = format!("sqlite://{}", dir.path().join("cch.db").display());
    let extra = [
        ("DSN", dsn.as_str()),
        ("REDIS_URL", redis.url.as_str()),
        ("REDIS_KEY_PREFIX", redis.prefix.as_str()),
        ("CONFIG_REFRESH_INTERVAL_MS", "200"),
    ];
    let clock: Arc<dyn Clock> = Arc::new(claude_code_hub::app::wiring::SystemClock);
    let one = start_with(dir, &extra, clock.clone()).await;
    let two = start_with(dir2, &extra, clock).await;
    let bad = FakeUpstream::start().await;
    let good = FakeUpstream::start().await;
    bad.set_default(Reply::error(500, "api_error", "boom"));
    let a = add_provider(
        &one,
        "a",
        &bad.url(),
        json!({"priority": 0, "failure_threshold": 1}),
    )
    .await;
    add_provider(&one, "b", &good.url(), json!({"priority": 1})).await;
    let (_, key) = add_user_key(&one).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, _) = send(&one, &key).await;
    assert_eq!(status, 200);
    assert_eq!(bad.request_count(), 1);
    assert_eq!(breaker(&two, a).await["state"], "open");
    let (status, _) = send(&two, &key).await;
    assert_eq!(status, 200);
    assert_eq!(
        bad.request_count(),
        1,
        "instance two skips the provider instance one opened"
    );
    // A reset on instance two reaches instance one.
    two.post(&format!("/api/v1/providers/{a}/breaker/reset"), json!({}))
        .await;
    assert_eq!(breaker(&one, a).await["state"], "closed");
    one.app.shutdown().await.unwrap();
    two.app.shutdown().await.unwrap();
}
