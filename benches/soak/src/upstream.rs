//! A fault-injecting fake Anthropic upstream on loopback: a small HTTP/1.1 server on raw tokio
//! sockets (keep-alive, chunked SSE), cheap enough to serve thousands of requests per second
//! next to cch on two cores.
//!
//! The load generator decides each request's fault and says so in the query string, which cch
//! forwards unchanged: `soak_fault=error|drop|stall` and `soak_id=N` (headers would not reach
//! the upstream: cch forwards only a known list of them). A fault hits the first
//! attempt of a request only (tracked by id), so cch's retry of a JSON request succeeds, as it
//! would against a real provider's transient failure:
//! - `error`: `529 overloaded_error`.
//! - `drop`: the answer stops after a few SSE events (or half the JSON body) and the socket
//!   closes.
//! - `stall`: the answer pauses for the stall length after a few SSE events (before the answer
//!   for JSON), longer than the provider timeouts cch is given, so cch's timeouts end it.

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body read.
const MAX_BODY: usize = 16 << 20;
/// Ids of requests whose first attempt got a fault, waiting for the retry; cleared whole when
/// it reaches this size (an entry only outlives its request when cch gave up retrying).
const MAX_FAULTED_IDS: usize = 100_000;
/// SSE events sent before a drop or a stall.
const EVENTS_BEFORE_FAULT: usize = 3;
/// The model in every answer (priced in cch's default table, so requests cost money).
pub const MODEL: &str = "claude-sonnet-4-5";

/// Counters the tool reports.
#[derive(Default)]
pub struct UpstreamStats {
    /// Requests answered (any way).
    pub requests: AtomicU64,
    /// Faults injected.
    pub faults: AtomicU64,
}

struct State {
    faulted: Mutex<HashSet<u64>>,
    /// Percent of requests failed at random, whatever their headers (`start_chaos`).
    chaos_pct: f64,
    rng: AtomicU64,
    stall: Duration,
    stats: Arc<UpstreamStats>,
    json: Vec<u8>,
    sse: Vec<Vec<u8>>,
}

/// The running fake upstream.
pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Counters.
    pub stats: Arc<UpstreamStats>,
}

impl FakeUpstream {
    /// Binds `127.0.0.1:0` and serves until the runtime stops.
    pub async fn start(stall: Duration) -> io::Result<Self> {
        Self::start_chaos(stall, 0.0).await
    }

    /// Like `start`, but `chaos_pct` percent of all requests (every attempt, retries too) fail
    /// at random, in equal shares: 529, a hang past the timeouts, a drop before the first
    /// content, and three fake 200s (an HTML page, an empty body, a JSON or SSE `error`).
    pub async fn start_chaos(stall: Duration, chaos_pct: f64) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(UpstreamStats::default());
        let st = Arc::new(State {
            faulted: Mutex::new(HashSet::new()),
            chaos_pct,
            rng: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
            stall,
            stats: stats.clone(),
            json: json_body(),
            sse: sse_events(),
        });
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let _ = sock.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, st).await;
                });
            }
        });
        Ok(Self {
            url: format!("http://{addr}"),
            stats,
        })
    }
}

fn usage() -> serde_json::Value {
    serde_json::json!({"input_tokens": 25, "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 2048, "output_tokens": 15,
        "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 0}})
}

fn json_body() -> Vec<u8> {
    serde_json::json!({"id": "msg_soak", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "Hello from the soak upstream. ".repeat(8)}],
        "stop_reason": "end_turn", "stop_sequence": null, "usage": usage()})
    .to_string()
    .into_bytes()
}

fn sse_events() -> Vec<Vec<u8>> {
    let mut ev = vec![
        serde_json::json!({"type": "message_start", "message": {"id": "msg_soak", "type": "message",
            "role": "assistant", "model": MODEL, "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": usage()}}),
        serde_json::json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        serde_json::json!({"type": "ping"}),
    ];
    for i in 0..8 {
        ev.push(
            serde_json::json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": format!("piece {i} of the soak answer. ")}}),
        );
    }
    ev.push(serde_json::json!({"type": "content_block_stop", "index": 0}));
    ev.push(serde_json::json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": usage()}));
    ev.push(serde_json::json!({"type": "message_stop"}));
    ev.iter()
        .map(|v| {
            let t = v["type"].as_str().unwrap_or("message");
            let event = format!("event: {t}\ndata: {v}\n\n");
            let mut chunk = format!("{:x}\r\n", event.len()).into_bytes();
            chunk.extend_from_slice(event.as_bytes());
            chunk.extend_from_slice(b"\r\n");
            chunk
        })
        .collect()
}

/// One parsed request: what the fake needs of it.
struct Req {
    stream: bool,
    fault: Option<String>,
    id: Option<u64>,
    keep_alive: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request; `None` when the peer closed between requests.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Req>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut len = 0usize;
    let mut fault = None;
    let mut id = None;
    let target = head.split(' ').nth(1).unwrap_or_default();
    if let Some((_, query)) = target.split_once('?') {
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("soak_fault", v)) => fault = Some(v.to_string()),
                Some(("soak_id", v)) => id = v.parse().ok(),
                _ => {}
            }
        }
    }
    let mut keep_alive = true;
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.parse().unwrap_or(0),
            "connection" => keep_alive = !v.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    if len > MAX_BODY {
        return Err(io::Error::other("request body too large"));
    }
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 16 * 1024];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = &buf[head_end..head_end + len];
    let stream = find(body, b"\"stream\":true").is_some();
    buf.drain(..head_end + len);
    Ok(Some(Req {
        stream,
        fault,
        id,
        keep_alive,
    }))
}

/// The faults a chaos upstream picks from.
const CHAOS: [&str; 6] = ["error", "hang", "drop", "html", "empty", "json_error"];

/// A random number in 0..100 (xorshift; shared state, good enough for fault picking).
fn roll(st: &State) -> f64 {
    let mut x = st.rng.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st.rng.store(x, Ordering::Relaxed);
    (x % 10_000) as f64 / 100.0
}

/// Whether this request's fault applies now (first attempt of its id only; a chaos upstream
/// rolls for every attempt).
fn fault_now(st: &State, req: &Req) -> Option<String> {
    if st.chaos_pct > 0.0 {
        let r = roll(st);
        if r >= st.chaos_pct {
            return None;
        }
        let i = ((r / st.chaos_pct) * CHAOS.len() as f64) as usize;
        return Some(CHAOS[i.min(CHAOS.len() - 1)].to_string());
    }
    let fault = req.fault.clone()?;
    let Some(id) = req.id else {
        return Some(fault);
    };
    let mut seen = st.faulted.lock().unwrap_or_else(|e| e.into_inner());
    if seen.remove(&id) {
        return None;
    }
    if seen.len() >= MAX_FAULTED_IDS {
        seen.clear();
    }
    seen.insert(id);
    Some(fault)
}

async fn serve(mut sock: TcpStream, st: Arc<State>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(req) = read_request(&mut sock, &mut buf).await? {
        st.stats.requests.fetch_add(1, Ordering::Relaxed);
        let fault = fault_now(&st, &req);
        if fault.is_some() {
            st.stats.faults.fetch_add(1, Ordering::Relaxed);
        }
        let conn = if req.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        match (fault.as_deref(), req.stream) {
            (Some("hang"), _) => {
                tokio::time::sleep(st.stall).await;
                return Ok(());
            }
            (Some(fake @ ("html" | "empty" | "json_error")), stream) => {
                let (ctype, body): (&str, &[u8]) = match (fake, stream) {
                    ("html", _) => (
                        "text/html",
                        b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                    ),
                    ("empty", true) => ("text/event-stream", b""),
                    ("empty", _) => ("application/json", b""),
                    (_, true) => (
                        "text/event-stream",
                        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream failed\"}}\n\n",
                    ),
                    _ => (
                        "application/json",
                        br#"{"error":{"type":"api_error","message":"upstream failed"}}"#,
                    ),
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: {conn}\r\n\r\n",
                    body.len()
                );
                let mut out = head.into_bytes();
                out.extend_from_slice(body);
                sock.write_all(&out).await?;
            }
            (Some("error"), _) => {
                let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
                let head = format!(
                    "HTTP/1.1 529 Overloaded\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {conn}\r\n\r\n",
                    body.len()
                );
                let mut out = head.into_bytes();
                out.extend_from_slice(body);
                sock.write_all(&out).await?;
            }
            (fault, false) => {
                if fault == Some("stall") {
                    tokio::time::sleep(st.stall).await;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {conn}\r\n\r\n",
                    st.json.len()
                );
                let mut out = head.into_bytes();
                if fault == Some("drop") {
                    out.extend_from_slice(&st.json[..st.json.len() / 2]);
                    sock.write_all(&out).await?;
                    return Ok(());
                }
                out.extend_from_slice(&st.json);
                sock.write_all(&out).await?;
            }
            (fault, true) => {
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: {conn}\r\n\r\n"
                )
                .into_bytes();
                let split = if fault.is_some() {
                    EVENTS_BEFORE_FAULT
                } else {
                    st.sse.len()
                };
                for e in &st.sse[..split] {
                    out.extend_from_slice(e);
                }
                if fault.is_none() {
                    // The whole answer in one write, like a fast upstream.
                    out.extend_from_slice(b"0\r\n\r\n");
                    sock.write_all(&out).await?;
                    if !req.keep_alive {
                        return Ok(());
                    }
                    continue;
                }
                sock.write_all(&out).await?;
                if fault == Some("drop") {
                    return Ok(());
                }
                if fault == Some("stall") {
                    tokio::time::sleep(st.stall).await;
                }
                let mut rest = Vec::new();
                for e in &st.sse[split..] {
                    rest.extend_from_slice(e);
                }
                rest.extend_from_slice(b"0\r\n\r\n");
                sock.write_all(&rest).await?;
            }
        }
        if !req.keep_alive {
            return Ok(());
        }
    }
    Ok(())
}
