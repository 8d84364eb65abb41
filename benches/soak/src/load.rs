//! The load: Claude Code-shaped requests (JSON and streaming, with and without history, several
//! users and sessions, a chosen share of injected upstream faults), sent at a fixed rate
//! (open loop) or by a fixed number of workers (closed loop).
//!
//! Open loop without coordinated omission: sends follow a schedule, never the answers. With
//! one task per request (the default) a slow answer delays nothing else, so latency is timed
//! from the actual send and the generator's own lag behind the schedule is reported apart.
//! With N connections, a send whose connection was still busy at its scheduled time is timed
//! from that scheduled time, so the wait it suffered counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use crate::args::FaultMix;
use crate::stats::{Outcome, Recorder};
use crate::upstream::MODEL;

/// A small, fast, seedable generator for the request mix (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 100).
    pub fn percent(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }
}

/// What the load sends, built once.
pub struct Workload {
    /// Base URL (cch, or the upstream itself for the baseline).
    pub base: String,
    /// One key per user (`None` for the direct baseline).
    pub keys: Vec<Option<String>>,
    /// Bodies by [user][session][stream as usize][history as usize].
    bodies: Vec<Vec<[[Bytes; 2]; 2]>>,
    session_ids: Vec<Vec<String>>,
    /// Percent of streaming requests.
    pub stream_pct: f64,
    /// Injected faults.
    pub faults: FaultMix,
}

/// One request of the mix.
pub struct Pick {
    user: usize,
    session: usize,
    stream: bool,
    history: bool,
    fault: Option<&'static str>,
}

fn body(session: &str, stream: bool, history: bool) -> Bytes {
    let prompt =
        "You are an interactive CLI tool that helps users with software engineering tasks. "
            .repeat(70);
    let user_id =
        json!({"device_id": "0".repeat(64), "account_uuid": "", "session_id": session}).to_string();
    let schema = json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]});
    let mut messages =
        vec![json!({"role": "user", "content": [{"type": "text", "text": "hello"}]})];
    if history {
        messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": "Hello! What shall we do?"}]}));
        messages.push(json!({"role": "user", "content": [{"type": "text", "text": "List the files.", "cache_control": {"type": "ephemeral"}}]}));
    }
    json!({
        "model": MODEL,
        "max_tokens": 32000,
        "stream": stream,
        "metadata": {"user_id": user_id},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [
            {"name": "Bash", "description": "Run a shell command.", "input_schema": schema},
            {"name": "Read", "description": "Read a file.", "input_schema": schema},
        ],
        "messages": messages,
    })
    .to_string()
    .into()
}

impl Workload {
    /// Bodies for `users` × `sessions`, both stream flags, with and without history.
    pub fn new(
        base: String,
        keys: Vec<Option<String>>,
        sessions: usize,
        stream_pct: f64,
        faults: FaultMix,
    ) -> Self {
        let mut bodies = Vec::new();
        let mut session_ids = Vec::new();
        for u in 0..keys.len() {
            let ids: Vec<String> = (0..sessions)
                .map(|s| format!("50a50a50-0000-4000-8000-{:06}{:06}", u, s))
                .collect();
            bodies.push(
                ids.iter()
                    .map(|id| {
                        [
                            [body(id, false, false), body(id, false, true)],
                            [body(id, true, false), body(id, true, true)],
                        ]
                    })
                    .collect(),
            );
            session_ids.push(ids);
        }
        Self {
            base,
            keys,
            bodies,
            session_ids,
            stream_pct,
            faults,
        }
    }

    /// The next request of the mix.
    pub fn pick(&self, rng: &mut Rng, n: u64) -> Pick {
        let users = self.keys.len();
        let user = (n % users as u64) as usize;
        let session = ((rng.percent() / 100.0) * self.session_ids[user].len() as f64) as usize;
        let stream = rng.percent() < self.stream_pct;
        let history = rng.percent() < 50.0;
        let f = self.faults;
        let roll = rng.percent();
        let fault = if roll < f.error_pct {
            Some("error")
        } else if roll < f.error_pct + f.drop_pct {
            Some("drop")
        } else if roll < f.error_pct + f.drop_pct + f.stall_pct {
            Some("stall")
        } else {
            None
        };
        Pick {
            user,
            session: session.min(self.session_ids[user].len() - 1),
            stream,
            history,
            fault,
        }
    }
}

/// An HTTP client for the load (no proxy, keep-alive pool).
pub fn client(pool: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default()
}

/// Sends one request and reads the whole answer; returns the outcome, the latency from
/// `t0` and the time to first byte of a stream.
pub async fn send(
    client: &reqwest::Client,
    w: &Workload,
    pick: &Pick,
    id: u64,
    t0: Instant,
) -> (Outcome, Duration, Option<Duration>) {
    // The fault and the id travel in the query string, which cch forwards as it is (it
    // forwards only a known list of headers).
    let fault = pick
        .fault
        .map(|f| format!("&soak_fault={f}"))
        .unwrap_or_default();
    let mut req = client
        .post(format!(
            "{}/v1/messages?beta=true&soak_id={id}{fault}",
            w.base
        ))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .header("user-agent", "claude-cli/2.1.197 (external, sdk-cli)")
        .header("x-app", "cli")
        .header(
            "x-claude-code-session-id",
            &w.session_ids[pick.user][pick.session],
        )
        .body(
            w.bodies[pick.user][pick.session][pick.stream as usize][pick.history as usize].clone(),
        );
    if let Some(k) = &w.keys[pick.user] {
        req = req.header("x-api-key", k);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(_) => return (Outcome::Transport, t0.elapsed(), None),
    };
    let status = resp.status().as_u16();
    let mut body = resp.bytes_stream();
    let mut ttfb = None;
    let mut seen = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                if ttfb.is_none() && !c.is_empty() {
                    ttfb = Some(t0.elapsed());
                }
                seen.extend_from_slice(&c);
            }
            Err(_) => return (Outcome::Transport, t0.elapsed(), None),
        }
    }
    let latency = t0.elapsed();
    let contains = |n: &[u8]| seen.windows(n.len()).any(|w| w == n);
    let outcome = match status {
        429 => Outcome::Rejected,
        200 if pick.stream && (contains(b"event: error") || !contains(b"message_stop")) => {
            Outcome::StreamError
        }
        200 if pick.fault.is_some() => Outcome::Recovered,
        200 => Outcome::Ok,
        _ => Outcome::Failed,
    };
    (outcome, latency, if pick.stream { ttfb } else { None })
}

/// Open loop: `rate` sends per second until `end`, one task per request; `max_inflight`
/// bounds the tasks (sends beyond it are skipped and counted).
pub async fn open_loop_tasks(
    w: Arc<Workload>,
    rec: Arc<Recorder>,
    rate: f64,
    end: Instant,
    max_inflight: usize,
    seed: u64,
) {
    let client = client(256);
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut rng = Rng::new(seed);
    let mut n: u64 = 0;
    let ids = AtomicU64::new(0);
    loop {
        let due = start + period.mul_f64(n as f64);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        while start + period.mul_f64(n as f64) <= now {
            let due = start + period.mul_f64(n as f64);
            if due >= end {
                break;
            }
            n += 1;
            if rec.inflight.load(Ordering::Relaxed) as usize >= max_inflight {
                rec.skipped();
                continue;
            }
            let pick = w.pick(&mut rng, n);
            let id = ids.fetch_add(1, Ordering::Relaxed);
            rec.sent(now.saturating_duration_since(due));
            let (w, rec, client) = (w.clone(), rec.clone(), client.clone());
            tokio::spawn(async move {
                let t0 = Instant::now();
                let (o, lat, ttfb) = send(&client, &w, &pick, id, t0).await;
                rec.done(o, lat, ttfb);
            });
        }
    }
}

/// Open loop over `conns` connections: each worker takes the next scheduled send; a send
/// whose worker was busy at its scheduled time is timed from that time.
pub async fn open_loop_connections(
    w: Arc<Workload>,
    rec: Arc<Recorder>,
    rate: f64,
    end: Instant,
    conns: usize,
    seed: u64,
) {
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for c in 0..conns {
        let (w, rec, next) = (w.clone(), rec.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let client = client(1);
            let mut rng = Rng::new(seed.wrapping_add(c as u64 * 7919));
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let due = start + period.mul_f64(n as f64);
                if due >= end {
                    return;
                }
                let busy_past_due = Instant::now() > due;
                tokio::time::sleep_until(due.into()).await;
                let now = Instant::now();
                let t0 = if busy_past_due { due } else { now };
                rec.sent(now.saturating_duration_since(due));
                let pick = w.pick(&mut rng, n);
                let (o, lat, ttfb) = send(&client, &w, &pick, n, t0).await;
                rec.done(o, lat, ttfb);
            }
        }));
    }
    for h in workers {
        let _ = h.await;
    }
}

/// Closed loop: `conc` workers send back to back until `end`.
pub async fn closed_loop(w: Arc<Workload>, rec: Arc<Recorder>, conc: usize, end: Instant) {
    let mut workers = Vec::new();
    let ids = Arc::new(AtomicU64::new(0));
    for c in 0..conc {
        let (w, rec, ids) = (w.clone(), rec.clone(), ids.clone());
        workers.push(tokio::spawn(async move {
            let client = client(1);
            let mut rng = Rng::new(c as u64 + 1);
            let mut n = c as u64;
            while Instant::now() < end {
                let pick = w.pick(&mut rng, n);
                n += conc as u64;
                let id = ids.fetch_add(1, Ordering::Relaxed);
                rec.sent(Duration::ZERO);
                let t0 = Instant::now();
                let (o, lat, ttfb) = send(&client, &w, &pick, id, t0).await;
                rec.done(o, lat, ttfb);
            }
        }));
    }
    for h in workers {
        let _ = h.await;
    }
}
