//! What one proxied request costs in Redis: every command cch sends for it, seen by a
//! `MONITOR` client. Before forwarding, one round trip of a bounded number of commands
//! (independent of how many providers are configured); after the answer, a bounded few.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const MODEL: &str = "claude-sonnet-4-5";

/// Commands (name and arguments, Lua-internal calls excluded) that touched `prefix`, as
/// `MONITOR` reports them. Test-only; the list lives as long as the test.
async fn monitor(host_port: &str, prefix: String) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut conn = tokio::net::TcpStream::connect(host_port).await.unwrap();
    conn.write_all(b"MONITOR\r\n").await.unwrap();
    let mut lines = BufReader::new(conn).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    assert_eq!(first, "+OK");
    let out = seen.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(&prefix) && !line.contains(" lua]") {
                let cmd = line.split("] ").nth(1).unwrap_or_default().to_string();
                out.lock().unwrap().push(cmd);
            }
        }
    });
    seen
}

async fn provider(t: &TestApp, up: &FakeUpstream, name: &str, extra: Value) {
    let mut p = json!({"name": name, "provider_type": "claude", "base_url": up.url(),
                       "api_key": "sk-up"});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            p[k] = v;
        }
    }
    let (s, b) = t.post("/api/v1/providers", p).await;
    assert_eq!(s, 201, "{b}");
}

/// cch on the test Redis, and a fake upstream answering `ok` by default.
async fn app_on(redis: &support::redis::TestRedis) -> (TestApp, FakeUpstream) {
    let vars = [
        ("REDIS_URL", redis.url.as_str()),
        ("REDIS_KEY_PREFIX", redis.prefix.as_str()),
    ];
    let t = spawn_app(&vars).await;
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("ok").usage(100, 10, 0, 0));
    (t, up)
}

/// Creates the user `user` (admin API body) with one key, reloads the snapshot and returns
/// the key's plaintext.
async fn user_key(t: &TestApp, user: Value) -> String {
    let (_, _, key) = t.user_with_key(user).await;
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
    key
}

/// The command names, sorted (commands sent together may reach Redis in any order).
fn names(cmds: &[String]) -> Vec<String> {
    let mut v: Vec<String> = cmds
        .iter()
        .map(|c| {
            c.split(' ')
                .next()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string()
        })
        .collect();
    v.sort();
    v
}

fn body(session: &str, history: bool) -> Value {
    let mut messages = vec![json!({"role": "user", "content": "hi"})];
    if history {
        messages.push(json!({"role": "assistant", "content": "hello"}));
        messages.push(json!({"role": "user", "content": "again"}));
    }
    json!({"model": MODEL, "max_tokens": 10, "metadata": {"session_id": session},
           "messages": messages})
}

/// Sends one request the upstream holds for a while; returns (commands before the upstream
/// saw it, commands in all once the answer is out and the after-effects settled).
async fn measure(
    t: &TestApp,
    up: &FakeUpstream,
    seen: &Arc<Mutex<Vec<String>>>,
    key: &str,
    session: &str,
) -> (Vec<String>, Vec<String>) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    seen.lock().unwrap().clear();
    up.clear_requests();
    up.push(
        Reply::message("ok")
            .usage(100, 10, 0, 0)
            .delay_first_byte(Duration::from_millis(400)),
    );
    let (http, url, key2, b) = (
        t.http.clone(),
        t.url("/v1/messages"),
        key.to_string(),
        body(session, true),
    );
    let call = tokio::spawn(async move {
        http.post(url)
            .header("x-api-key", key2)
            .header("anthropic-version", "2023-06-01")
            .json(&b)
            .send()
            .await
            .unwrap()
            .status()
    });
    for _ in 0..200 {
        if !up.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(up.requests().len(), 1, "the request reached the upstream");
    let before = seen.lock().unwrap().clone();
    assert_eq!(call.await.unwrap(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = seen.lock().unwrap().clone();
    (before, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_costs_a_bounded_number_of_redis_commands() {
    let Some(redis) = support::redis::test_redis("redis_round_trips").await else {
        return;
    };
    let (t, up) = app_on(&redis).await;
    provider(&t, &up, "p0", json!({"limit_daily_usd": "100"})).await;
    let key = user_key(
        &t,
        json!({"name": "u", "rpm_limit": 1000, "limit_daily_usd": "50",
               "limit_5h_usd": "20", "limit_monthly_usd": "500"}),
    )
    .await;
    let seen = monitor(&redis.host_port(), redis.prefix.clone()).await;

    // Warm up (first-use markers, session binding), then measure with one provider.
    for _ in 0..2 {
        measure(&t, &up, &seen, &key, "s1").await;
    }
    let (before_1, all_1) = measure(&t, &up, &seen, &key, "s1").await;
    // Before forwarding: the user's and key's limit script, the providers' limit reads, one
    // MGET of the breakers, the session binding; sent together (one round trip).
    assert_eq!(
        names(&before_1),
        ["EVALSHA", "EVALSHA", "GET", "MGET"],
        "{before_1:#?}"
    );
    // After the answer: the spend record and the session touch (binding refresh + listing
    // entry in one script, replacing the bare PEXPIRE: same round trips).
    let after_1 = &all_1[before_1.len()..];
    assert_eq!(names(after_1), ["EVALSHA", "EVALSHA"], "{all_1:#?}");

    // Eleven more providers, each with limits of its own: the request costs the same.
    for i in 1..12 {
        provider(&t, &up, &format!("p{i}"), json!({"limit_daily_usd": "100"})).await;
    }
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
    measure(&t, &up, &seen, &key, "s1").await;
    let (before_12, all_12) = measure(&t, &up, &seen, &key, "s1").await;
    assert_eq!(names(&before_12), names(&before_1), "{before_12:#?}");
    assert_eq!(names(&all_12), names(&all_1), "{all_12:#?}");
    let mget = before_12
        .iter()
        .find(|c| c.starts_with("\"MGET\""))
        .unwrap();
    assert_eq!(
        mget.matches(":breaker:").count(),
        12,
        "one MGET for every breaker"
    );
    redis.cleanup().await;
}

/// A provider that limits concurrent sessions adds a slot check-and-take before forwarding for
/// a session's first request only: once this instance has seen the session hold the slot, its
/// next requests are forwarded after the one pre-routing round trip, and the slot is refreshed
/// after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_holding_its_provider_slot_costs_no_second_round_trip() {
    let Some(redis) = support::redis::test_redis("redis_slot_trips").await else {
        return;
    };
    let (t, up) = app_on(&redis).await;
    provider(&t, &up, "p0", json!({"limit_concurrent_sessions": 2})).await;
    let key = user_key(&t, json!({"name": "u"})).await;
    let seen = monitor(&redis.host_port(), redis.prefix.clone()).await;

    let evals = |cmds: &[String]| cmds.iter().filter(|c| c.starts_with("\"EVALSHA\"")).count();
    // First request of the session: the slot is checked and taken before forwarding, so two
    // round trips: the pre-routing one, then the slot's script.
    measure(&t, &up, &seen, &key, "s0").await;
    let (before_first, all_first) = measure(&t, &up, &seen, &key, "s1").await;
    // Its next requests: one script fewer before forwarding (the pre-routing round trip
    // only), the slot's refresh after the answer instead: the same commands in all.
    for _ in 0..2 {
        let (before, all) = measure(&t, &up, &seen, &key, "s1").await;
        assert_eq!(
            evals(&before) + 1,
            evals(&before_first),
            "{before:#?} vs {before_first:#?}"
        );
        assert_eq!(names(&all), names(&all_first), "{all:#?} vs {all_first:#?}");
    }
    // Both slots are taken (s0, s1): a third session is refused (no other provider), so
    // the limit holds.
    let refused = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&body("s3", false))
        .send()
        .await
        .unwrap();
    assert_ne!(refused.status().as_u16(), 200);
    redis.cleanup().await;
}

/// The routing state is read only for providers that may serve the request: eleven providers
/// of another group (each with limits and a breaker) add nothing to the pre-routing reads of a
/// user in group `a`, whose two providers are still both read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_that_cannot_serve_the_request_are_not_read() {
    let Some(redis) = support::redis::test_redis("redis_eligible_reads").await else {
        return;
    };
    let (t, up) = app_on(&redis).await;
    for i in 0..2 {
        let extra = json!({"limit_daily_usd": "100", "group_tag": "a"});
        provider(&t, &up, &format!("a{i}"), extra).await;
    }
    for i in 0..11 {
        let extra = json!({"limit_daily_usd": "100", "group_tag": "b"});
        provider(&t, &up, &format!("b{i}"), extra).await;
    }
    // In group a, but not for this model.
    let extra = json!({"limit_daily_usd": "100", "group_tag": "a",
                       "allowed_models": ["claude-opus-4-1"]});
    provider(&t, &up, "a-opus", extra).await;
    let key = user_key(
        &t,
        json!({"name": "u", "provider_group": "a", "limit_daily_usd": "50"}),
    )
    .await;
    let seen = monitor(&redis.host_port(), redis.prefix.clone()).await;

    measure(&t, &up, &seen, &key, "s1").await;
    let (before, _) = measure(&t, &up, &seen, &key, "s1").await;
    assert_eq!(
        names(&before),
        ["EVALSHA", "EVALSHA", "GET", "MGET"],
        "{before:#?}"
    );
    let mget = before.iter().find(|c| c.starts_with("\"MGET\"")).unwrap();
    assert_eq!(mget.matches(":breaker:").count(), 2, "{mget}");
    // The providers' limit read names the two providers of group a, and only them.
    let provider_read = before
        .iter()
        .find(|c| c.contains(":lim:p:"))
        .expect("the providers' limit read");
    let mut read_ids: Vec<&str> = provider_read
        .split(":lim:p:")
        .skip(1)
        .filter_map(|rest| rest.split(':').next())
        .collect();
    read_ids.sort();
    read_ids.dedup();
    assert_eq!(read_ids.len(), 2, "{provider_read}");
    redis.cleanup().await;
}
