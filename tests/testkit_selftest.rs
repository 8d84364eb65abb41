//! Tests of the test kit itself: the fake Anthropic upstream (every reply kind and fault,
//! request recording, keep-alive) and the SOCKS5 proxy (auth, counting, stop).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fake_upstream::{FakeUpstream, MESSAGE_ID, Reply, TOOL_USE_ID};
use support::socks5::Socks5Proxy;

fn client() -> reqwest::Client {
    support::init_crypto();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn body(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 1024, "stream": stream,
           "messages": [{"role": "user", "content": "hello"}]})
}

async fn post(c: &reqwest::Client, up: &FakeUpstream, b: &Value) -> reqwest::Response {
    c.post(format!("{}/v1/messages?beta=true", up.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(b)
        .send()
        .await
        .unwrap()
}

/// Parses an SSE body into (event name, data JSON) pairs.
fn parse_sse(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_string();
                }
            }
            (name, serde_json::from_str(&data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn message_reply_echoes_model_reports_usage_and_records_the_request() {
    let up = FakeUpstream::start().await;
    up.push(Reply::message("Hi there").usage(11, 22, 33, 44));
    let c = client();
    let r = post(&c, &up, &body("claude-sonnet-4-5", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], MESSAGE_ID);
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(v["content"][0]["text"], "Hi there");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 11);
    assert_eq!(v["usage"]["output_tokens"], 22);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 33);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 44);

    assert_eq!(up.request_count(), 1);
    let reqs = up.requests();
    let rec = &reqs[0];
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.path, "/v1/messages?beta=true");
    assert_eq!(rec.path_only(), "/v1/messages");
    assert_eq!(rec.query(), Some("beta=true"));
    assert_eq!(rec.header("X-API-Key"), Some("sk-ant-test"));
    assert_eq!(rec.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(rec.json.as_ref().unwrap()["model"], "claude-sonnet-4-5");
    assert_eq!(
        serde_json::from_slice::<Value>(&rec.body).unwrap(),
        body("claude-sonnet-4-5", false)
    );
}

#[tokio::test]
async fn stream_reply_is_a_complete_claude_stream_and_matches_sse_bytes() {
    let up = FakeUpstream::start().await;
    let reply = Reply::stream("The quick brown fox jumps over the lazy dog").usage(5, 6, 7, 8);
    up.push(reply.clone());
    let c = client();
    let r = post(&c, &up, &body("claude-opus-4-8", true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let got = r.bytes().await.unwrap();
    assert_eq!(
        got.as_ref(),
        FakeUpstream::sse_bytes(&reply, "claude-opus-4-8")
    );
    let events = parse_sse(&got);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(names[1], "content_block_start");
    assert_eq!(names[2], "ping");
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    for (n, d) in &events {
        assert_eq!(d["type"], n.as_str(), "event name equals data type");
    }
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert!(deltas.len() >= 3, "text arrives in several pieces");
    assert_eq!(
        deltas.concat(),
        "The quick brown fox jumps over the lazy dog"
    );
    let start = &events[0].1["message"];
    assert_eq!(start["model"], "claude-opus-4-8");
    assert_eq!(start["usage"]["input_tokens"], 5);
    assert_eq!(start["usage"]["cache_creation_input_tokens"], 7);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 8);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 6);
    assert!(got.ends_with(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[tokio::test]
async fn default_reply_follows_the_request_stream_flag() {
    let up = FakeUpstream::start().await;
    let c = client();
    let r = post(&c, &up, &body("m1", true)).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        FakeUpstream::sse_bytes(&Reply::default(), "m1")
    );
    let r = post(&c, &up, &body("m1", false)).await;
    assert_eq!(r.headers()["content-type"], "application/json");
    up.set_default(Reply::overloaded());
    let r = post(&c, &up, &body("m1", false)).await;
    assert_eq!(r.status(), 529);
}

#[tokio::test]
async fn scripted_replies_are_consumed_in_order() {
    let up = FakeUpstream::start().await;
    up.push(Reply::overloaded());
    up.push(Reply::message("second"));
    assert_eq!(up.queued(), 2);
    let c = client();
    assert_eq!(post(&c, &up, &body("m", false)).await.status(), 529);
    let v: Value = post(&c, &up, &body("m", false)).await.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "second");
    let v: Value = post(&c, &up, &body("m", false)).await.json().await.unwrap();
    assert_eq!(
        v["content"][0]["text"],
        support::fake_upstream::DEFAULT_TEXT
    );
}

#[tokio::test]
async fn tool_use_replies() {
    let up = FakeUpstream::start().await;
    let input = json!({"city": "Paris", "units": "metric", "days": 3});
    up.push(Reply::tool_use("get_weather", input.clone()));
    up.push(Reply::tool_use_stream("get_weather", input.clone()));
    let c = client();

    let v: Value = post(&c, &up, &body("m", false)).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["id"], TOOL_USE_ID);
    assert_eq!(v["content"][0]["name"], "get_weather");
    assert_eq!(v["content"][0]["input"], input);

    let got = post(&c, &up, &body("m", true)).await.bytes().await.unwrap();
    let events = parse_sse(&got);
    assert_eq!(events[1].1["content_block"]["type"], "tool_use");
    assert_eq!(events[1].1["content_block"]["input"], json!({}));
    let pieces: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(pieces[0], "", "first piece is empty, as upstream does");
    assert!(pieces.len() >= 3);
    let joined: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert_eq!(joined, input);
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn status_replies() {
    let up = FakeUpstream::start().await;
    up.push(Reply::status(
        500,
        json!({"type": "error", "error": {"type": "api_error", "message": "boom"}}),
    ));
    up.push(Reply::overloaded());
    up.push(Reply::unauthorized());
    up.push(Reply::prompt_too_long());
    up.push(Reply::error(429, "rate_limit_error", "slow down").header("retry-after", "7"));
    up.push(Reply::raw(502, "text/html", "<html>bad gateway</html>"));
    let c = client();
    let cases = [
        (500, "api_error"),
        (529, "overloaded_error"),
        (401, "authentication_error"),
        (400, "invalid_request_error"),
    ];
    for (code, ty) in cases {
        let r = post(&c, &up, &body("m", true)).await;
        assert_eq!(r.status().as_u16(), code);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], ty);
        if code == 400 {
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("prompt is too long")
            );
        }
    }
    let r = post(&c, &up, &body("m", true)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let r = post(&c, &up, &body("m", true)).await;
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "text/html");
    assert_eq!(r.text().await.unwrap(), "<html>bad gateway</html>");
}

#[tokio::test]
async fn delay_first_byte_delays_the_headers() {
    let up = FakeUpstream::start().await;
    up.push(Reply::stream("slow start").delay_first_byte(Duration::from_millis(300)));
    let c = client();
    let t = Instant::now();
    let r = post(&c, &up, &body("m", true)).await;
    let headers_at = t.elapsed();
    assert!(headers_at >= Duration::from_millis(290), "{headers_at:?}");
    assert!(headers_at < Duration::from_millis(2000), "{headers_at:?}");
    // The request was recorded before the delay.
    assert_eq!(up.request_count(), 1);
    let b = r.bytes().await.unwrap();
    assert!(b.ends_with(b"{\"type\":\"message_stop\"}\n\n"));

    // A client with a shorter timeout gives up before anything arrives.
    up.push(Reply::message("x").delay_first_byte(Duration::from_millis(500)));
    let err = c
        .post(format!("{}/v1/messages", up.url()))
        .timeout(Duration::from_millis(100))
        .json(&body("m", false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
}

#[tokio::test]
async fn stall_after_events_pauses_mid_stream() {
    let up = FakeUpstream::start().await;
    up.push(Reply::stream("abcdefgh").stall_after_events(2, Duration::from_millis(300)));
    let c = client();
    let t = Instant::now();
    let mut r = post(&c, &up, &body("m", true)).await;
    let mut got = Vec::new();
    let mut before_stall = None;
    while let Some(chunk) = r.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
        if before_stall.is_none() && parse_sse(&got).len() >= 2 {
            before_stall = Some(t.elapsed());
        }
    }
    let total = t.elapsed();
    let before_stall = before_stall.unwrap();
    assert!(
        before_stall < Duration::from_millis(200),
        "{before_stall:?}"
    );
    assert!(total >= Duration::from_millis(290), "{total:?}");
    assert_eq!(parse_sse(&got).last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn drop_after_events_gives_the_client_a_body_error() {
    let up = FakeUpstream::start().await;
    let reply = Reply::stream("this stream will be cut").drop_after_events(3);
    up.push(reply.clone());
    let c = client();
    let mut r = post(&c, &up, &body("m", true)).await;
    assert_eq!(r.status(), 200);
    let mut got = Vec::new();
    let err = loop {
        match r.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => panic!("stream ended cleanly"),
            Err(e) => break e,
        }
    };
    assert!(err.is_body() || err.is_decode(), "{err:?}");
    assert_eq!(got, FakeUpstream::sse_bytes(&reply, "m"));
    assert_eq!(parse_sse(&got).len(), 3);

    // A JSON reply dropped before its body.
    up.push(Reply::message("never").drop_after_events(0));
    let r = post(&c, &up, &body("m", false)).await;
    assert!(r.bytes().await.is_err());

    // The server is still fine for the next request.
    assert_eq!(post(&c, &up, &body("m", false)).await.status(), 200);
}

#[tokio::test]
async fn drip_sends_one_event_per_interval() {
    let up = FakeUpstream::start().await;
    let reply = Reply::stream("drip drip drip").drip(Duration::from_millis(40));
    let n = reply.sse_events("m").len();
    up.push(reply);
    let c = client();
    let t = Instant::now();
    let mut r = post(&c, &up, &body("m", true)).await;
    let mut arrivals = Vec::new();
    while let Some(_chunk) = r.chunk().await.unwrap() {
        arrivals.push(t.elapsed());
    }
    let total = t.elapsed();
    let expected = Duration::from_millis(40) * (n as u32 - 1);
    assert!(
        total >= expected - Duration::from_millis(5),
        "{total:?} vs {expected:?}"
    );
    assert!(total < expected + Duration::from_millis(1000), "{total:?}");
    assert!(
        arrivals.len() >= n / 2,
        "events arrive separately: {arrivals:?}"
    );
}

#[tokio::test]
async fn error_after_events_ends_with_an_error_event() {
    let up = FakeUpstream::start().await;
    let reply = Reply::stream("partial").error_after_events(3, "overloaded_error", "Overloaded");
    up.push(reply.clone());
    let got = post(&client(), &up, &body("m", true))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), FakeUpstream::sse_bytes(&reply, "m"));
    let events = parse_sse(&got);
    assert_eq!(events.len(), 4);
    assert_eq!(events[3].0, "error");
    assert_eq!(events[3].1["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn count_tokens_models_and_unknown_routes() {
    let up = FakeUpstream::start().await;
    let c = client();
    up.set_count_tokens(Some(1234));
    let v: Value = c
        .post(format!("{}/v1/messages/count_tokens?beta=true", up.url()))
        .json(&json!({"model": "m", "messages": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"input_tokens": 1234}));
    let v: Value = c
        .get(format!("{}/v1/models", up.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
    let r = c.get(format!("{}/nope", up.url())).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // None of these consumed scripted replies.
    assert_eq!(up.request_count(), 3);
    assert_eq!(up.requests()[1].method, "GET");
}

#[tokio::test]
async fn keep_alive_and_chunked_request_bodies() {
    let up = FakeUpstream::start().await;
    let c = client();
    for _ in 0..20 {
        let r = post(&c, &up, &body("m", true)).await;
        r.bytes().await.unwrap();
    }
    assert_eq!(up.request_count(), 20);
    assert_eq!(up.connections(), 1, "one keep-alive connection");

    // A streamed (chunked) request body is de-chunked and recorded.
    let payload = body("chunky", false).to_string();
    let parts: Vec<Result<Vec<u8>, std::io::Error>> = payload
        .as_bytes()
        .chunks(7)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = c
        .post(format!("{}/v1/messages", up.url()))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "chunky");
    let rec = up.last_request().unwrap();
    assert_eq!(rec.header("transfer-encoding"), Some("chunked"));
    assert_eq!(rec.body.as_ref(), payload.as_bytes());

    up.set_recording(false);
    post(&c, &up, &body("m", false))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(up.requests().len(), 21);
    assert_eq!(up.request_count(), 22);
}

#[tokio::test]
async fn many_concurrent_requests() {
    let up = FakeUpstream::start().await;
    let c = client();
    let expected = FakeUpstream::sse_bytes(&Reply::default(), "m");
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (c, url, expected) = (c.clone(), up.url(), expected.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let r = c
                    .post(format!("{url}/v1/messages"))
                    .json(&body("m", true))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.bytes().await.unwrap().as_ref(), expected);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(up.request_count(), 320);
}

fn proxied_client(proxy_url: &str) -> reqwest::Client {
    support::init_crypto();
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy_url).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn socks5_with_credentials_carries_requests_to_the_fake() {
    let up = FakeUpstream::start().await;
    let proxy = Socks5Proxy::start_with_auth("user", "pass").await;
    assert_eq!(proxy.url(), format!("socks5://user:pass@{}", proxy.addr()));
    let c = proxied_client(&format!(
        "socks5://user:pass@127.0.0.1:{}",
        proxy.addr().port()
    ));
    let r = post(&c, &up, &body("via-socks", false)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "via-socks");
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.targets(), vec![up.addr().to_string()]);
    assert_eq!(up.request_count(), 1);

    // Domain-name targets (socks5h: the proxy resolves the name).
    let c = proxied_client(&format!(
        "socks5h://user:pass@127.0.0.1:{}",
        proxy.addr().port()
    ));
    let r = c
        .get(format!("http://localhost:{}/v1/models", up.addr().port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(proxy.connections(), 2);
    assert_eq!(
        proxy.targets()[1],
        format!("localhost:{}", up.addr().port())
    );
}

#[tokio::test]
async fn socks5_refuses_wrong_or_missing_credentials() {
    let up = FakeUpstream::start().await;
    let proxy = Socks5Proxy::start_with_auth("user", "pass").await;
    let port = proxy.addr().port();
    let c = proxied_client(&format!("socks5://user:wrong@127.0.0.1:{port}"));
    assert!(
        c.get(format!("{}/v1/models", up.url()))
            .send()
            .await
            .is_err()
    );
    let c = proxied_client(&format!("socks5://127.0.0.1:{port}"));
    assert!(
        c.get(format!("{}/v1/models", up.url()))
            .send()
            .await
            .is_err()
    );
    assert_eq!(proxy.connections(), 0);
    assert_eq!(proxy.refused_auth(), 2);
    assert_eq!(up.request_count(), 0);
}

#[tokio::test]
async fn socks5_without_auth_and_stop() {
    let up = FakeUpstream::start().await;
    let proxy = Socks5Proxy::start().await;
    let c = proxied_client(&proxy.url());
    for _ in 0..3 {
        let r = post(&c, &up, &body("m", true)).await;
        r.bytes().await.unwrap();
    }
    assert_eq!(proxy.connections(), 1, "keep-alive through one tunnel");
    proxy.stop().await;
    assert!(tokio::net::TcpStream::connect(proxy.addr()).await.is_err());
    // The old tunnel is cut and a new one cannot be made.
    let c2 = proxied_client(&proxy.url());
    assert!(
        c2.get(format!("{}/v1/models", up.url()))
            .send()
            .await
            .is_err()
    );
    assert_eq!(up.request_count(), 3);
}

// ---- The other wire formats (protocols.md §3–§5) ----

use support::fake_upstream::fake_formats::{
    CALL_ID, CHAT_ID, FUNCTION_CALL_ID, GEMINI_RESPONSE_ID, RESPONSE_ID, Target, WireFormat,
};

async fn post_to(
    c: &reqwest::Client,
    up: &FakeUpstream,
    path: &str,
    b: &Value,
) -> reqwest::Response {
    c.post(format!("{}{path}", up.url()))
        .bearer_auth("sk-test")
        .json(b)
        .send()
        .await
        .unwrap()
}

/// Splits an SSE body (LF or CRLF) into (event name, data) pairs, data left as text.
fn sse_frames(bytes: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(bytes).unwrap().replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_string();
                }
            }
            (name, data)
        })
        .collect()
}

fn chat_body(stream: bool, include_usage: bool) -> Value {
    let mut b = json!({"model": "gpt-x", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    if include_usage {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

#[tokio::test]
async fn chat_completion_json_text_and_tool_call() {
    let up = FakeUpstream::start().await;
    up.push(Reply::text("Hi there").usage(11, 22, 33, 44));
    up.push(Reply::tool_use("get_weather", json!({"city": "Paris"})));
    let c = client();
    let r = post_to(&c, &up, "/v1/chat/completions", &chat_body(false, false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], CHAT_ID);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-x");
    let ch = &v["choices"][0];
    assert_eq!(ch["index"], 0);
    assert_eq!(ch["finish_reason"], "stop");
    assert_eq!(ch["message"]["role"], "assistant");
    assert_eq!(ch["message"]["content"], "Hi there");
    let u = &v["usage"];
    assert_eq!(
        u["prompt_tokens"],
        11 + 33 + 44,
        "prompt_tokens counts every input token"
    );
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 44);
    assert_eq!(u["prompt_tokens_details"]["cache_write_tokens"], 33);
    assert_eq!(u["completion_tokens"], 22);
    assert_eq!(u["total_tokens"], 11 + 33 + 44 + 22);

    let v: Value = post_to(&c, &up, "/v1/chat/completions", &chat_body(false, false))
        .await
        .json()
        .await
        .unwrap();
    let ch = &v["choices"][0];
    assert_eq!(ch["finish_reason"], "tool_calls");
    assert!(ch["message"]["content"].is_null());
    let call = &ch["message"]["tool_calls"][0];
    assert_eq!(call["id"], CALL_ID);
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}), "arguments is a JSON string");

    let rec = up.last_request().unwrap();
    assert_eq!(rec.target().unwrap().format, WireFormat::OpenAiChat);
    assert_eq!(up.requests_of(WireFormat::OpenAiChat).len(), 2);
    assert_eq!(rec.header("authorization"), Some("Bearer sk-test"));
}

#[tokio::test]
async fn chat_stream_text_with_usage_chunk_and_done() {
    let up = FakeUpstream::start().await;
    let reply = Reply::text("The quick brown fox jumps").usage(5, 6, 0, 8);
    up.push(reply.clone());
    let c = client();
    let r = post_to(&c, &up, "/v1/chat/completions", &chat_body(true, true)).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let got = r.bytes().await.unwrap();
    assert_eq!(
        got.as_ref(),
        FakeUpstream::body_bytes_for(&reply, &Target::chat("gpt-x", true, true))
    );
    let frames = sse_frames(&got);
    assert!(
        frames.iter().all(|(n, _)| n.is_empty()),
        "chat events have no names"
    );
    assert_eq!(frames.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for ch in &chunks {
        assert_eq!(ch["object"], "chat.completion.chunk");
        assert_eq!(ch["id"], CHAT_ID);
        assert_eq!(ch["model"], "gpt-x");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks[1..].iter().all(|c| {
        c["choices"]
            .get(0)
            .is_none_or(|ch| ch["delta"].get("role").is_none())
    }));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "The quick brown fox jumps");
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert!(chunks[n - 2]["usage"].is_null());
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert_eq!(chunks[n - 1]["usage"]["prompt_tokens"], 13);
    assert_eq!(
        chunks[n - 1]["usage"]["prompt_tokens_details"]["cached_tokens"],
        8
    );
    assert_eq!(chunks[n - 1]["usage"]["completion_tokens"], 6);
}

#[tokio::test]
async fn chat_stream_tool_call_pieces_without_usage_and_errors() {
    let up = FakeUpstream::start().await;
    up.push(Reply::tool_use_stream(
        "get_weather",
        json!({"city": "Paris", "unit": "celsius"}),
    ));
    up.push(Reply::error(429, "rate_limit_error", "slow down"));
    up.push(Reply::stream("abcdefgh").error_after_events(2, "overloaded_error", "Overloaded"));
    let c = client();
    let got = post_to(&c, &up, "/v1/chat/completions", &chat_body(true, false))
        .await
        .bytes()
        .await
        .unwrap();
    let frames = sse_frames(&got);
    assert_eq!(frames.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "no usage unless asked"
    );
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert!(calls.len() >= 3, "arguments arrive in pieces");
    assert!(calls.iter().all(|c| c["index"] == 0));
    assert_eq!(calls[0]["id"], CALL_ID);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(
        calls[1..]
            .iter()
            .all(|c| c.get("id").is_none() && c["function"].get("name").is_none())
    );
    let args: String = calls
        .iter()
        .map(|c| c["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    let r = post_to(&c, &up, "/v1/chat/completions", &chat_body(false, false)).await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "slow down");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(v["error"].get("param").is_some());

    let got = post_to(&c, &up, "/v1/chat/completions", &chat_body(true, false))
        .await
        .bytes()
        .await
        .unwrap();
    let frames = sse_frames(&got);
    assert_eq!(frames.len(), 3);
    let last: Value = serde_json::from_str(&frames[2].1).unwrap();
    assert_eq!(last["error"]["message"], "Overloaded");
    assert!(!String::from_utf8_lossy(&got).contains("[DONE]"));
}

fn responses_body(stream: bool) -> Value {
    json!({"model": "gpt-5", "stream": stream, "input": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn responses_json_text_and_function_call() {
    let up = FakeUpstream::start().await;
    up.push(Reply::text("Hello").usage(10, 20, 30, 40));
    up.push(Reply::tool_use("get_weather", json!({"city": "Paris"})));
    up.push(Reply::unauthorized());
    let c = client();
    let v: Value = post_to(&c, &up, "/v1/responses", &responses_body(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], RESPONSE_ID);
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "gpt-5");
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(v["output"][0]["role"], "assistant");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(v["output"][0]["content"][0]["text"], "Hello");
    let u = &v["usage"];
    assert_eq!(u["input_tokens"], 80);
    assert_eq!(u["input_tokens_details"]["cached_tokens"], 40);
    assert_eq!(u["input_tokens_details"]["cache_write_tokens"], 30);
    assert_eq!(u["output_tokens"], 20);
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(u["total_tokens"], 100);

    let v: Value = post_to(&c, &up, "/v1/responses", &responses_body(false))
        .await
        .json()
        .await
        .unwrap();
    let item = &v["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["id"], FUNCTION_CALL_ID);
    assert_eq!(item["call_id"], CALL_ID);
    assert_eq!(item["name"], "get_weather");
    assert_eq!(item["status"], "completed");
    let args: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));

    let r = post_to(&c, &up, "/v1/responses", &responses_body(false)).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn responses_stream_event_sequence() {
    let up = FakeUpstream::start().await;
    up.push(Reply::text("Let me check the weather").usage(1, 2, 3, 4));
    up.push(Reply::tool_use_stream("get_weather", json!({"city": "Paris"})).usage(1, 2, 3, 4));
    let c = client();
    for tool in [false, true] {
        let r = post_to(&c, &up, "/v1/responses", &responses_body(true)).await;
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let frames = sse_frames(&r.bytes().await.unwrap());
        let events: Vec<(String, Value)> = frames
            .iter()
            .map(|(n, d)| (n.clone(), serde_json::from_str(d).unwrap()))
            .collect();
        for (i, (n, d)) in events.iter().enumerate() {
            assert_eq!(d["type"], n.as_str(), "event name equals data type");
            assert_eq!(d["sequence_number"], i);
        }
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        let mut expected = vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
        ];
        let delta = if tool {
            "response.function_call_arguments.delta"
        } else {
            expected.push("response.content_part.added");
            "response.output_text.delta"
        };
        let n_deltas = names.iter().filter(|n| **n == delta).count();
        assert!(n_deltas >= 2, "{delta} in pieces");
        expected.extend(std::iter::repeat_n(delta, n_deltas));
        if tool {
            expected.push("response.function_call_arguments.done");
        } else {
            expected.extend(["response.output_text.done", "response.content_part.done"]);
        }
        expected.extend(["response.output_item.done", "response.completed"]);
        assert_eq!(names, expected);
        let pieces: String = events
            .iter()
            .filter(|(n, _)| n == delta)
            .map(|(_, d)| d["delta"].as_str().unwrap())
            .collect();
        let done = &events.last().unwrap().1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["usage"]["input_tokens"], 8);
        assert_eq!(done["usage"]["output_tokens"], 2);
        assert_eq!(done["usage"]["total_tokens"], 10);
        let item = &done["output"][0];
        if tool {
            assert_eq!(
                serde_json::from_str::<Value>(&pieces).unwrap(),
                json!({"city": "Paris"})
            );
            assert_eq!(item["arguments"], pieces);
            assert_eq!(item["call_id"], CALL_ID);
        } else {
            assert_eq!(pieces, "Let me check the weather");
            assert_eq!(item["content"][0]["text"], pieces);
        }
        assert_eq!(events[0].1["response"]["status"], "in_progress");
    }
}

#[tokio::test]
async fn gemini_json_stream_errors_and_count_tokens() {
    let up = FakeUpstream::start().await;
    up.push(Reply::text("Hi there").usage(10, 5, 0, 7));
    up.push(Reply::tool_use("get_weather", json!({"city": "Paris"})).usage(10, 5, 0, 0));
    let reply = Reply::text("One two three four five six").usage(3, 4, 0, 0);
    up.push(reply.clone());
    up.push(reply.clone());
    up.push(Reply::overloaded());
    let c = client();
    let b = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let gen_path = "/v1beta/models/gemini-2.5-flash:generateContent";
    let v: Value = post_to(&c, &up, gen_path, &b).await.json().await.unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(cand["content"]["parts"][0]["text"], "Hi there");
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 17);
    assert_eq!(v["usageMetadata"]["cachedContentTokenCount"], 7);
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 5);
    assert_eq!(v["usageMetadata"]["totalTokenCount"], 22);
    assert_eq!(
        v["modelVersion"], "gemini-2.5-flash",
        "model comes from the path"
    );
    assert_eq!(v["responseId"], GEMINI_RESPONSE_ID);

    let v: Value = post_to(&c, &up, gen_path, &b).await.json().await.unwrap();
    let part = &v["candidates"][0]["content"]["parts"][0];
    assert_eq!(part["functionCall"]["name"], "get_weather");
    assert_eq!(
        part["functionCall"]["args"],
        json!({"city": "Paris"}),
        "args is an object"
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert!(v["usageMetadata"].get("cachedContentTokenCount").is_none());

    let stream_path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent";
    let r = post_to(&c, &up, &format!("{stream_path}?alt=sse"), &b).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let got = r.bytes().await.unwrap();
    assert!(
        got.windows(4).any(|w| w == b"\r\n\r\n"),
        "CRLF framing like the real API"
    );
    assert_eq!(
        got.as_ref(),
        FakeUpstream::body_bytes_for(&reply, &Target::gemini("gemini-2.5-pro", true))
    );
    let chunks: Vec<Value> = sse_frames(&got)
        .iter()
        .map(|(n, d)| {
            assert!(n.is_empty());
            serde_json::from_str(d).unwrap()
        })
        .collect();
    assert!(chunks.len() >= 3);
    let text: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "One two three four five six");
    let (last, early) = chunks.split_last().unwrap();
    assert!(
        early
            .iter()
            .all(|c| c["candidates"][0].get("finishReason").is_none())
    );
    assert!(
        early
            .iter()
            .all(|c| c["usageMetadata"].get("candidatesTokenCount").is_none())
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 4);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 7);

    // Without alt=sse a stream is one JSON array.
    let v: Value = post_to(&c, &up, stream_path, &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), chunks.len());

    let r = post_to(&c, &up, "/v1/models/gemini-2.5-pro:generateContent", &b).await;
    assert_eq!(r.status(), 529);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 529);
    assert_eq!(v["error"]["status"], "UNAVAILABLE");
    assert_eq!(v["error"]["message"], "Overloaded");

    up.set_count_tokens(Some(42));
    let v: Value = post_to(&c, &up, "/v1beta/models/gemini-2.5-pro:countTokens", &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["totalTokens"], 42);
    let v: Value = c
        .get(format!("{}/v1beta/models", up.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["models"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("models/")
    );
    let gem = up.requests_of(WireFormat::Gemini);
    assert_eq!(gem.len(), 5, "countTokens is not an inference request");
    assert_eq!(
        gem[2].target().unwrap(),
        Target::gemini("gemini-2.5-pro", true)
    );
}

#[tokio::test]
async fn one_queue_serves_every_format_and_faults_apply() {
    let up = FakeUpstream::start().await;
    up.push(Reply::text("claude"));
    up.push(Reply::text("chat"));
    up.push(Reply::stream("abcdefghijkl").drop_after_events(2));
    let c = client();
    let v: Value = post(&c, &up, &body("claude-x", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["content"][0]["text"], "claude");
    let v: Value = post_to(&c, &up, "/v1/chat/completions", &chat_body(false, false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "chat");
    let r = post_to(&c, &up, "/v1/responses", &responses_body(true)).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "dropped mid-body");
}
