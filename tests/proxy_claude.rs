//! Claude clients through cch to Claude providers, against real fake upstreams on loopback:
//! passthrough, accounting, failover classes, stickiness, groups, redirects, proxies, errors.

mod support;

use std::time::Duration;

use claude_code_hub::domain::request_log::{LogFilter, RequestLog};
use futures_util::StreamExt;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

const MODEL: &str = "claude-sonnet-4-5";

async fn add_provider(t: &TestApp, name: &str, up: &FakeUpstream, extra: Value) -> i64 {
    let mut body = json!({"name": name, "provider_type": "claude", "base_url": up.url(), "api_key": format!("sk-up-{name}-secret")});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    let (status, p) = t.post("/api/v1/providers", body).await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_i64().unwrap()
}

async fn add_key(t: &TestApp, user: Value) -> String {
    let (status, u) = t.post("/api/v1/users", user).await;
    assert_eq!(status, 201, "{u}");
    let (status, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    assert_eq!(status, 201);
    k["key"].as_str().unwrap().to_string()
}

fn messages_body(stream: bool) -> Value {
    json!({"model": MODEL, "max_tokens": 100, "stream": stream,
           "metadata": {"user_id": "user_abc_account__session_11111111-2222-3333-4444-555555555555"},
           "messages": [{"role": "user", "content": "hello"}]})
}

async fn send(t: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    t.http
        .post(t.url("/v1/messages?beta=true"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn logs(t: &TestApp, n: usize) -> Vec<RequestLog> {
    for _ in 0..100 {
        let rows = t
            .app
            .ctx
            .log_store
            .list_logs(&LogFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} log rows appeared");
}

#[tokio::test]
async fn streaming_passes_through_byte_identical_and_is_accounted() {
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    let pid = add_provider(&t, "a", &up, json!({"cost_multiplier": "2"})).await;
    let key = add_key(&t, json!({"name": "u"})).await;
    let reply = Reply::stream("a streamed answer in pieces").usage(100, 50, 10, 1000);
    up.push(reply.clone());
    let r = send(&t, &key, &messages_body(true)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("text/event-stream")
    );
    let got = r.bytes().await.unwrap();
    assert_eq!(
        got.as_ref(),
        FakeUpstream::sse_bytes(&reply, MODEL).as_slice(),
        "byte-identical"
    );

    let seen = up.last_request().unwrap();
    assert_eq!(seen.path, "/v1/messages?beta=true");
    assert_eq!(
        seen.header("x-api-key"),
        Some("sk-up-a-secret"),
        "client credentials replaced"
    );
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("claude-code-20250219,interleaved-thinking-2025-05-14")
    );
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert!(seen.header("authorization").is_none());

    let row = &logs(&t, 1).await[0];
    assert_eq!(row.provider_id, Some(pid));
    assert_eq!(row.status_code, 200);
    assert!(row.is_stream);
    assert_eq!(
        (
            row.input_tokens,
            row.output_tokens,
            row.cache_creation_5m_tokens,
            row.cache_read_tokens
        ),
        (100, 50, 10, 1000)
    );
    // sonnet 4.5: $3 in, $15 out, $3.75 cache write 5m, $0.30 cache read per Mtok; × 2.
    // (100×3 + 50×15 + 10×3.75 + 1000×0.30) / 1e6 × 2 = 0.002775
    let expected: rust_decimal::Decimal = "0.002775".parse().unwrap();
    assert_eq!(row.cost_usd, expected);
    assert!(row.cost_known);
    assert_eq!(
        row.session_id.as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert!(row.ttfb_ms.is_some());
    assert_eq!(row.provider_chain[0]["reason"], "initial_selection");
    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cch_requests_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("cch_streams_total 1"));
    assert!(metrics.contains("cch_counters_mode{mode=\"local\"} 1"));
    assert!(
        metrics.contains("cch_cost_micro_usd_total 2775"),
        "{metrics}"
    );
}

#[tokio::test]
async fn non_streaming_tool_use_and_redirect_reach_the_upstream() {
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    add_provider(
        &t,
        "a",
        &up,
        json!({"model_redirects": {MODEL: "claude-sonnet-4-5-20250929"}}),
    )
    .await;
    let key = add_key(&t, json!({"name": "u"})).await;
    up.push(Reply::tool_use("Bash", json!({"command": "ls"})));
    let r = send(&t, &key, &messages_body(false)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    let seen = up.last_request().unwrap();
    assert_eq!(
        seen.json.unwrap()["model"],
        "claude-sonnet-4-5-20250929",
        "redirect applied upstream"
    );
    let row = &logs(&t, 1).await[0];
    assert_eq!(row.requested_model.as_deref(), Some(MODEL));
    assert_eq!(
        row.forwarded_model.as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
    assert!(row.output_tokens > 0);
}

#[tokio::test]
async fn fails_over_on_500_529_401_and_first_byte_timeout() {
    for (label, bad) in [
        ("500", Reply::error(500, "api_error", "internal")),
        ("529", Reply::overloaded()),
        ("401", Reply::unauthorized()),
        (
            "timeout",
            Reply::stream("late").delay_first_byte(Duration::from_millis(3000)),
        ),
    ] {
        let bad_up = FakeUpstream::start().await;
        let good_up = FakeUpstream::start().await;
        bad_up.set_default(bad);
        let t = spawn_app(&[]).await;
        let bad_id = add_provider(
            &t,
            "bad",
            &bad_up,
            json!({"priority": 0, "first_byte_timeout_ms": 1000, "max_retry_attempts": 2}),
        )
        .await;
        let good_id = add_provider(&t, "good", &good_up, json!({"priority": 1})).await;
        let key = add_key(&t, json!({"name": "u"})).await;
        let r = send(&t, &key, &messages_body(true)).await;
        assert_eq!(r.status(), 200, "{label}");
        let body = r.text().await.unwrap();
        assert!(body.contains("message_stop"), "{label}");
        assert_eq!(
            bad_up.request_count(),
            2,
            "{label}: retried on the same provider first"
        );
        let row = &logs(&t, 1).await[0];
        assert_eq!(row.provider_id, Some(good_id), "{label}");
        let chain = row.provider_chain.as_array().unwrap();
        assert_eq!(chain.len(), 3, "{label}: {chain:?}");
        assert_eq!(chain[0]["provider_id"], bad_id);
        assert_eq!(chain[1]["reason"], "retry");
        let class = if label == "timeout" {
            "system_error"
        } else {
            "provider_error"
        };
        assert_eq!(chain[0]["error_class"], class, "{label}");
        assert_eq!(chain[2]["reason"], "failover");
        assert_eq!(chain[2]["outcome"], "success");
    }
}

#[tokio::test]
async fn prompt_too_long_goes_straight_back_without_failover() {
    let bad_up = FakeUpstream::start().await;
    let other = FakeUpstream::start().await;
    bad_up.set_default(Reply::prompt_too_long());
    let t = spawn_app(&[]).await;
    add_provider(&t, "a", &bad_up, json!({"priority": 0})).await;
    add_provider(&t, "b", &other, json!({"priority": 1})).await;
    let key = add_key(&t, json!({"name": "u"})).await;
    let r = send(&t, &key, &messages_body(false)).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prompt is too long")
    );
    assert_eq!(bad_up.request_count(), 1);
    assert_eq!(other.request_count(), 0);
    let row = &logs(&t, 1).await[0];
    assert_eq!(
        row.provider_chain[0]["error_class"],
        "non_retryable_client_error"
    );
}

#[tokio::test]
async fn no_retry_after_the_first_byte_client_gets_an_error_event() {
    let up = FakeUpstream::start().await;
    let other = FakeUpstream::start().await;
    // Dropped after the first text delta (event 4): the client has seen content, so the break
    // can only be reported in-stream (a break before content fails over: fake_200_matrix).
    up.set_default(Reply::stream("x y z w").drop_after_events(5));
    let t = spawn_app(&[]).await;
    add_provider(&t, "a", &up, json!({"priority": 0})).await;
    add_provider(&t, "b", &other, json!({"priority": 1})).await;
    let key = add_key(&t, json!({"name": "u"})).await;
    let r = send(&t, &key, &messages_body(true)).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("event: error"), "{body}");
    assert!(!body.contains("message_stop"));
    assert_eq!(up.request_count(), 1);
    assert_eq!(
        other.request_count(),
        0,
        "never retried after the first byte"
    );
    let row = &logs(&t, 1).await[0];
    assert!(
        row.error_message.as_deref().unwrap_or("").contains("broke"),
        "{:?}",
        row.error_message
    );
}

#[tokio::test]
async fn session_sticks_expires_and_moves_after_a_failure() {
    let a = FakeUpstream::start().await;
    let b = FakeUpstream::start().await;
    let t = spawn_app(&[("SESSION_TTL", "2")]).await;
    add_provider(&t, "a", &a, json!({})).await;
    add_provider(&t, "b", &b, json!({})).await;
    let key = add_key(&t, json!({"name": "u"})).await;
    let mut body = messages_body(false);
    body["messages"] = json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "more"}]);
    for _ in 0..3 {
        assert_eq!(send(&t, &key, &body).await.status(), 200);
    }
    let (na, nb) = (a.request_count(), b.request_count());
    assert!(
        na == 3 || nb == 3,
        "three requests of one session hit one provider: {na}/{nb}"
    );
    let (bound, other) = if na == 3 { (&a, &b) } else { (&b, &a) };
    // The bound provider fails: the request fails over and the binding moves.
    bound.set_default(Reply::error(500, "api_error", "down"));
    assert_eq!(send(&t, &key, &body).await.status(), 200);
    bound.set_default(Reply::default());
    let before = other.request_count();
    assert_eq!(send(&t, &key, &body).await.status(), 200);
    assert_eq!(
        other.request_count(),
        before + 1,
        "binding moved to the provider that succeeded"
    );
    // After the TTL the binding is gone.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let key_name = "session:11111111-2222-3333-4444-555555555555";
    assert_eq!(
        t.app.ctx.counters.get(key_name).await.unwrap(),
        None,
        "binding expired after SESSION_TTL"
    );
}

#[tokio::test]
async fn group_isolation_and_errors_in_anthropic_shape() {
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[("MAX_BODY_BYTES", "4096")]).await;
    add_provider(&t, "a", &up, json!({"group_tag": "team-a"})).await;
    let key = add_key(&t, json!({"name": "u", "provider_group": "team-b"})).await;
    let r = send(&t, &key, &messages_body(false)).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("team-b"), "names the group: {msg}");
    assert_eq!(up.request_count(), 0);

    let r = send(&t, "cch_unknown", &messages_body(false)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "authentication_error"
    );
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model")
    );
    let big = json!({"model": MODEL, "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let r = send(&t, &key, &big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "error");
    let (_, users) = t.get("/api/v1/users").await;
    let uid = users[0]["id"].as_i64().unwrap();
    t.patch(&format!("/api/v1/users/{uid}"), json!({"enabled": false}))
        .await;
    let r = send(&t, &key, &messages_body(false)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "permission_error"
    );
    for m in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let r = t.http.request(m, t.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn socks5_proxy_carries_requests_and_falls_back_to_direct() {
    let up = FakeUpstream::start().await;
    let socks = support::socks5::Socks5Proxy::start_with_auth("user", "pass").await;
    let t = spawn_app(&[]).await;
    let proxy_url = format!("socks5://user:pass@{}", socks.addr());
    add_provider(
        &t,
        "a",
        &up,
        json!({"proxy_url": proxy_url, "proxy_fallback_to_direct": true}),
    )
    .await;
    let key = add_key(&t, json!({"name": "u"})).await;
    assert_eq!(send(&t, &key, &messages_body(false)).await.status(), 200);
    assert_eq!(socks.connections(), 1, "the request went through the proxy");
    socks.stop().await;
    let r = send(&t, &key, &messages_body(true)).await;
    assert_eq!(r.status(), 200, "proxy down, fallback to direct");
    assert!(r.text().await.unwrap().contains("message_stop"));
    assert_eq!(up.request_count(), 2);
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_and_is_logged() {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::stream("a b c d e f g h").drip(Duration::from_millis(200)));
    let t = spawn_app(&[]).await;
    add_provider(&t, "a", &up, json!({})).await;
    let key = add_key(&t, json!({"name": "u"})).await;
    let r = send(&t, &key, &messages_body(true)).await;
    let mut s = r.bytes_stream();
    let _first = s.next().await;
    drop(s);
    let row = &logs(&t, 1).await[0];
    assert_eq!(row.status_code, 499);
    assert_eq!(row.provider_chain[0]["outcome"], "client_abort");
}

#[tokio::test]
async fn models_and_count_tokens() {
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    add_provider(
        &t,
        "a",
        &up,
        json!({"allowed_models": [MODEL, "claude-haiku-4-5"]}),
    )
    .await;
    let key = add_key(&t, json!({"name": "u"})).await;
    let r = t
        .http
        .get(t.url("/v1/models"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["claude-haiku-4-5", MODEL]);
    assert_eq!(v["has_more"], false);
    // Without anthropic-version the same path answers in OpenAI's list shape.
    let r = t
        .http
        .get(t.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let r = t
        .http
        .post(t.url("/v1/messages/count_tokens"))
        .bearer_auth(&key)
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.unwrap()["input_tokens"].is_u64());
    assert_eq!(
        up.last_request().unwrap().path_only(),
        "/v1/messages/count_tokens"
    );
}
