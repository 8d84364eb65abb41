//! Compressed request bodies (issue 12 item 6): gzip, deflate, br and zstd are decoded before
//! routing, so the provider receives plain JSON; an unknown encoding is 415, a corrupt stream
//! 400, a body decoding past `MAX_DECOMPRESSED_REQUEST_BYTES` 413 (a decompression bomb is
//! refused without being expanded), each in the client's error format and logged.

mod support;

use std::io::Write;
use std::time::Duration;

use claude_code_hub::domain::request_log::LogFilter;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

async fn setup(extra: &[(&str, &str)]) -> (TestApp, FakeUpstream, String) {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::text("ok"));
    let t = spawn_app(extra).await;
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "c", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-up",
                   "extra_client_formats": ["openai"]}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    (t, up, k["key"].as_str().unwrap().to_string())
}

fn body() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
           "messages": [{"role": "user", "content": "compressed hello ".repeat(200)}]})
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A Brotli stream of stored meta-blocks (RFC 7932 §9.2): what a real encoder emits for
/// incompressible input, and enough to prove the decoder path.
fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut first = true;
    for chunk in data.chunks(1 << 16) {
        let shift = u32::from(first);
        let bits: u32 = ((chunk.len() as u32 - 1) << (3 + shift)) | (1 << (19 + shift));
        out.extend_from_slice(&bits.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
        first = false;
    }
    out.push(if first { 0b110 } else { 0b11 });
    out
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

async fn send(t: &TestApp, key: &str, path: &str, encoding: &str, bytes: Vec<u8>) -> (u16, Value) {
    let r = t
        .http
        .post(t.url(path))
        .header("x-api-key", key)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_encoding_reaches_the_provider_as_plain_json() {
    let (t, up, key) = setup(&[]).await;
    let plain = serde_json::to_vec(&body()).unwrap();
    for (name, bytes) in [
        ("gzip", gzip(&plain)),
        ("x-gzip", gzip(&plain)),
        ("deflate", zlib(&plain)),
        ("br", brotli(&plain)),
        ("zstd", zstd(&plain)),
        ("gzip, zstd", zstd(&gzip(&plain))),
        ("identity", plain.clone()),
    ] {
        let (s, a) = send(&t, &key, "/v1/messages", name, bytes).await;
        assert_eq!(s, 200, "{name}: {a}");
        let seen = up.last_request().unwrap();
        assert_eq!(seen.json.as_ref(), Some(&body()), "{name}");
        assert!(seen.header("content-encoding").is_none(), "{name}");
    }
    // Another client format, through conversion.
    let chat =
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]});
    let (s, a) = send(
        &t,
        &key,
        "/v1/chat/completions",
        "gzip",
        gzip(chat.to_string().as_bytes()),
    )
    .await;
    assert_eq!(s, 200, "{a}");
}

#[tokio::test]
async fn bad_encodings_bombs_and_corrupt_streams_are_refused_in_the_clients_format() {
    let (t, up, key) = setup(&[("MAX_DECOMPRESSED_REQUEST_BYTES", "1048576")]).await;
    let (s, a) = send(&t, &key, "/v1/messages", "compress", b"x".to_vec()).await;
    assert_eq!(s, 415, "{a}");
    assert_eq!(a["type"], "error");
    assert!(a["error"]["message"].as_str().unwrap().contains("compress"));
    let (s, a) = send(
        &t,
        &key,
        "/v1/messages",
        "gzip",
        b"not gzip at all".to_vec(),
    )
    .await;
    assert_eq!(s, 400, "{a}");
    // 64 MiB of spaces inside a JSON string, gzip'd to ~64 KiB: refused at the 1 MiB cap.
    let mut bomb_src = b"{\"model\":\"m\",\"x\":\"".to_vec();
    bomb_src.extend(std::iter::repeat_n(b' ', 64 << 20));
    bomb_src.extend_from_slice(b"\"}");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&bomb_src).unwrap();
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 256 << 10);
    let (s, a) = send(&t, &key, "/v1/chat/completions", "gzip", bomb).await;
    assert_eq!(s, 413, "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_DECOMPRESSED_REQUEST_BYTES")
    );
    assert_eq!(up.request_count(), 0);
    // Each refusal is logged under the key.
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = t
            .app
            .ctx
            .log_store
            .list_logs(&LogFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if rows.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses: Vec<i32> = rows.iter().map(|r| r.status_code).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![400, 413, 415]);
    // The server still answers normally.
    let plain = serde_json::to_vec(&body()).unwrap();
    assert_eq!(
        send(&t, &key, "/v1/messages", "gzip", gzip(&plain)).await.0,
        200
    );
}
