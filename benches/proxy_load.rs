//! Load benchmark for the proxy core: a fixed-concurrency closed loop of Claude Messages
//! requests, first straight at a fake Anthropic upstream (the baseline), then through the
//! gateway, printing throughput, latency percentiles and the latency the gateway adds.
//!
//! Usage (arguments after `--`):
//!
//! ```text
//! cargo bench --bench proxy_load -- [options]
//!
//!   --target URL          gateway base URL (e.g. http://127.0.0.1:23000); without it only the
//!                         direct baseline runs
//!   --key KEY             key sent as `x-api-key` to the target (default: none)
//!   --concurrency LIST    comma-separated concurrency levels (default: 1,16,64)
//!   --duration SECS       measured seconds per level and target (default: 10)
//!   --warmup SECS         unmeasured warm-up before each run (default: 1)
//!   --stream              send `"stream": true` and measure time to first byte too
//!   --model NAME          model in the request body (default: claude-sonnet-4-5)
//!   --upstream-url URL    use an already running fake upstream instead of starting one
//!   --upstream-listen A   address for the built-in fake (default: 127.0.0.1:0); give a fixed
//!                         one (e.g. 127.0.0.1:18080) so the gateway's provider can point at it
//!   --serve-only          only run the built-in fake upstream until Ctrl-C
//! ```
//!
//! Typical gateway run: configure a Claude provider in cch whose base URL is
//! `http://127.0.0.1:18080`, create a key, then
//!
//! ```text
//! cargo bench --bench proxy_load -- --upstream-listen 127.0.0.1:18080 \
//!     --target http://127.0.0.1:23000 --key cch_... --concurrency 1,64,256 --duration 10 --stream
//! ```
//!
//! Or keep a fake running in one terminal (`-- --serve-only --upstream-listen 127.0.0.1:18080`)
//! and pass `--upstream-url http://127.0.0.1:18080` to the benchmark runs. Build in release mode
//! (`cargo bench` does) for meaningful numbers; the client, the fake and the gateway share the
//! machine's cores, so compare "added" latency rather than absolute throughput.

#[path = "../tests/support/fake_upstream.rs"]
mod fake_upstream;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use fake_upstream::FakeUpstream;

/// Command-line options.
struct Opts {
    target: Option<String>,
    key: Option<String>,
    concurrency: Vec<usize>,
    duration: Duration,
    warmup: Duration,
    stream: bool,
    model: String,
    upstream_url: Option<String>,
    upstream_listen: String,
    serve_only: bool,
}

const USAGE: &str = "usage: cargo bench --bench proxy_load -- [--target URL] [--key KEY] \
[--concurrency 1,16,64] [--duration SECS] [--warmup SECS] [--stream] [--model NAME] \
[--upstream-url URL] [--upstream-listen ADDR] [--serve-only]";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        target: None,
        key: None,
        concurrency: vec![1, 16, 64],
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        stream: false,
        model: "claude-sonnet-4-5".into(),
        upstream_url: None,
        upstream_listen: "127.0.0.1:0".into(),
        serve_only: false,
    };
    let mut args = std::env::args().skip(1);
    let secs = |v: String| -> Result<Duration, String> {
        v.parse::<f64>()
            .ok()
            .filter(|s| *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("not a number of seconds: {v}"))
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--target" => o.target = Some(value()?.trim_end_matches('/').to_string()),
            "--key" => o.key = Some(value()?),
            "--concurrency" => {
                o.concurrency = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("--concurrency takes a list like 1,64,256")?;
            }
            "--duration" => o.duration = secs(value()?)?,
            "--warmup" => o.warmup = secs(value()?)?,
            "--stream" => o.stream = true,
            "--model" => o.model = value()?,
            "--upstream-url" => o.upstream_url = Some(value()?.trim_end_matches('/').to_string()),
            "--upstream-listen" => o.upstream_listen = value()?,
            "--serve-only" => o.serve_only = true,
            // `cargo bench` passes `--bench` to harness-less benchmarks.
            "--bench" => {}
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("proxy_load: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(opts))
}

async fn run(o: Opts) -> ExitCode {
    let mut _fake = None;
    let upstream = match &o.upstream_url {
        Some(u) => u.clone(),
        None => {
            let f = match FakeUpstream::start_on(&o.upstream_listen).await {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("proxy_load: cannot bind {}: {e}", o.upstream_listen);
                    return ExitCode::FAILURE;
                }
            };
            f.set_recording(false);
            let u = f.url();
            _fake = Some(f);
            u
        }
    };
    if o.serve_only {
        if o.upstream_url.is_some() {
            eprintln!("proxy_load: --serve-only runs the built-in fake; drop --upstream-url");
            return ExitCode::from(2);
        }
        println!("fake upstream listening on {upstream} (Ctrl-C to stop)");
        let _ = tokio::signal::ctrl_c().await;
        return ExitCode::SUCCESS;
    }
    println!(
        "upstream (direct): {upstream}\ntarget: {}\nmode: {}, {:?} per run, warm-up {:?}",
        o.target.as_deref().unwrap_or("(none: baseline only)"),
        if o.stream { "stream" } else { "non-stream" },
        o.duration,
        o.warmup
    );
    let max_conc = o.concurrency.iter().copied().max().unwrap_or(1);
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(max_conc * 2)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");
    let mut failed = false;
    for &conc in &o.concurrency {
        println!("\n== concurrency {conc} ==");
        print_header(o.stream);
        let direct = load(&client, &upstream, None, conc, &o).await;
        print_row("direct", &direct, o.stream);
        failed |= direct.ok == 0;
        if let Some(target) = &o.target {
            let via = load(&client, target, o.key.as_deref(), conc, &o).await;
            print_row("target", &via, o.stream);
            failed |= via.ok == 0;
            print_added(&direct, &via, o.stream);
        }
    }
    if failed {
        eprintln!("\nproxy_load: a run had no successful request");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Results of one closed-loop run.
#[derive(Default)]
struct Stats {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
    ttfb: Vec<Duration>,
}

/// A Claude Code-shaped request body (about 6 KB: three system blocks, two tools).
fn request_body(model: &str, stream: bool, session: &str) -> Bytes {
    let prompt =
        "You are an interactive CLI tool that helps users with software engineering tasks. "
            .repeat(70);
    let user_id =
        json!({"device_id": "0".repeat(64), "account_uuid": "", "session_id": session}).to_string();
    let schema = json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]});
    json!({
        "model": model,
        "max_tokens": 32000,
        "stream": stream,
        "metadata": {"user_id": user_id},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer concisely.", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [
            {"name": "Bash", "description": "Run a shell command.", "input_schema": schema},
            {"name": "Read", "description": "Read a file.", "input_schema": schema},
        ],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}],
    })
    .to_string()
    .into()
}

/// Runs `conc` workers in a closed loop against `base` for the warm-up (discarded) and then
/// the measured duration.
async fn load(
    client: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    conc: usize,
    o: &Opts,
) -> Stats {
    if !o.warmup.is_zero() {
        closed_loop(client, base, key, conc, o, o.warmup).await;
    }
    closed_loop(client, base, key, conc, o, o.duration).await
}

async fn closed_loop(
    client: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    conc: usize,
    o: &Opts,
    duration: Duration,
) -> Stats {
    let url: Arc<str> = format!("{base}/v1/messages?beta=true").into();
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(conc);
    for w in 0..conc {
        let session = format!("00000000-0000-4000-8000-{w:012}");
        let body = request_body(&o.model, o.stream, &session);
        let (client, url, key, stream) = (
            client.clone(),
            url.clone(),
            key.map(str::to_string),
            o.stream,
        );
        workers.push(tokio::spawn(async move {
            let mut s = Stats::default();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let mut req = client
                    .post(&*url)
                    .header("content-type", "application/json")
                    .header("anthropic-version", "2023-06-01")
                    .header(
                        "anthropic-beta",
                        "claude-code-20250219,interleaved-thinking-2025-05-14",
                    )
                    .header("user-agent", "claude-cli/2.1.197 (external, sdk-cli)")
                    .header("x-app", "cli")
                    .header("x-claude-code-session-id", &session)
                    .body(body.clone());
                if let Some(k) = &key {
                    req = req.header("x-api-key", k);
                }
                match one_request(req, stream, t0).await {
                    Ok((lat, ttfb)) => {
                        s.ok += 1;
                        s.latencies.push(lat);
                        if let Some(t) = ttfb {
                            s.ttfb.push(t);
                        }
                    }
                    Err(e) => {
                        s.errors += 1;
                        s.first_error.get_or_insert(e);
                    }
                }
            }
            s
        }));
    }
    let mut all = Stats::default();
    for w in workers {
        let s = w.await.expect("worker");
        all.ok += s.ok;
        all.errors += s.errors;
        if all.first_error.is_none() {
            all.first_error = s.first_error;
        }
        all.latencies.extend(s.latencies);
        all.ttfb.extend(s.ttfb);
    }
    all.elapsed = start.elapsed();
    all.latencies.sort_unstable();
    all.ttfb.sort_unstable();
    all
}

/// Sends one request and reads the whole body; returns (total latency, time to first body
/// byte when streaming).
async fn one_request(
    req: reqwest::RequestBuilder,
    stream: bool,
    t0: Instant,
) -> Result<(Duration, Option<Duration>), String> {
    let mut resp = req.send().await.map_err(|e| format!("send: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("status {status}: {}", truncate(&body, 200)));
    }
    let mut ttfb = None;
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("body: {e}"))? {
        if ttfb.is_none() && !chunk.is_empty() {
            ttfb = Some(t0.elapsed());
        }
    }
    Ok((t0.elapsed(), if stream { ttfb } else { None }))
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Nearest-rank percentile of a sorted slice.
fn pct(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn print_header(stream: bool) {
    print!(
        "{:<8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
    if stream {
        print!(" {:>12} {:>12}", "ttfb p50 ms", "ttfb p99 ms");
    }
    println!();
}

fn print_row(name: &str, s: &Stats, stream: bool) {
    let rps = s.ok as f64 / s.elapsed.as_secs_f64().max(1e-9);
    print!(
        "{:<8} {:>10.1} {:>9} {:>9} {:>9} {:>9} {:>9}",
        name,
        rps,
        ms(pct(&s.latencies, 50.0)),
        ms(pct(&s.latencies, 90.0)),
        ms(pct(&s.latencies, 99.0)),
        ms(s.latencies.last().copied()),
        s.errors
    );
    if stream {
        print!(
            " {:>12} {:>12}",
            ms(pct(&s.ttfb, 50.0)),
            ms(pct(&s.ttfb, 99.0))
        );
    }
    println!();
    if let Some(e) = &s.first_error {
        println!("         first error: {e}");
    }
}

fn diff_ms(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.3}", (b.as_secs_f64() - a.as_secs_f64()) * 1000.0),
        _ => "-".into(),
    }
}

fn print_added(direct: &Stats, via: &Stats, stream: bool) {
    print!(
        "added    latency p50 {} ms, p99 {} ms",
        diff_ms(pct(&direct.latencies, 50.0), pct(&via.latencies, 50.0)),
        diff_ms(pct(&direct.latencies, 99.0), pct(&via.latencies, 99.0)),
    );
    if stream {
        print!(
            "; ttfb p50 {} ms, p99 {} ms",
            diff_ms(pct(&direct.ttfb, 50.0), pct(&via.ttfb, 50.0)),
            diff_ms(pct(&direct.ttfb, 99.0), pct(&via.ttfb, 99.0)),
        );
    }
    println!();
}
