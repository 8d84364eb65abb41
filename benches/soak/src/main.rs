//! `cch-soak`: runs the release `cch` binary under load with a fault-injecting fake upstream in
//! this process, and reports what happens to its memory, latency and CPU. See "Soak benchmark"
//! in the README for the commands.
//!
//! - `soak` (default): fixed-rate open-loop load for `--duration` (30 min), sampled every
//!   `--interval` (10 s) into `soak.csv`, summarised in `summary.txt` and drawn in `soak.png`.
//! - `closed`: a closed loop at `--concurrency` (16) for `--duration` (20 s): throughput and
//!   cch's process CPU per request (utime + stime over requests served).
//! - `faults`: the fault suite (see `faults.rs`): outages, a half-failing provider, SIGTERM
//!   with open streams, SIGKILL of one of two instances; figures in `faults.txt`.

mod args;
mod faults;
mod gateway;
mod load;
mod plot;
mod redis_info;
mod report;
mod stats;
mod upstream;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use args::{Mode, Opts};
use gateway::Gateway;
use load::Workload;
use report::{Baseline, CsvWriter, Row};
use stats::{Recorder, percentile_ms};
use upstream::FakeUpstream;

fn main() -> ExitCode {
    let opts = match args::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cch-soak: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cch-soak: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        std::fs::create_dir_all(&opts.out)
            .map_err(|e| format!("cannot create {}: {e}", opts.out.display()))?;
        match opts.mode {
            Mode::Soak => soak(&opts).await,
            Mode::Closed => closed(&opts).await,
            Mode::Faults => faults::run(&opts).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cch-soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the open-loop generator chosen by `--connections` until `end`.
async fn generate(o: &Opts, w: Arc<Workload>, rec: Arc<Recorder>, end: Instant) {
    if o.connections == 0 {
        load::open_loop_tasks(w, rec, o.rate, end, o.max_inflight, o.seed).await
    } else {
        load::open_loop_connections(w, rec, o.rate, end, o.connections, o.seed).await
    }
}

/// Latency straight to the fake upstream at the same rate and mix, without faults: what the
/// client, loopback and upstream cost by themselves.
async fn baseline(o: &Opts, upstream: &str) -> Baseline {
    let mut clean = o.clone();
    clean.faults = args::FaultMix {
        error_pct: 0.0,
        drop_pct: 0.0,
        stall_pct: 0.0,
    };
    let w = Arc::new(Workload::new(
        upstream.to_string(),
        vec![None; o.users],
        o.sessions_per_user,
        o.stream_pct,
        clean.faults,
    ));
    let rec = Arc::new(Recorder::new());
    generate(&clean, w, rec.clone(), Instant::now() + o.baseline).await;
    wait_idle(&rec, Duration::from_secs(5)).await;
    let mut i = rec.take();
    let b = Baseline {
        p50_ms: percentile_ms(&mut i.latency_us, 50.0).unwrap_or(0.0),
        p99_ms: percentile_ms(&mut i.latency_us, 99.0).unwrap_or(0.0),
    };
    println!(
        "baseline (direct to the fake upstream, {} req/s, {:?}): p50 {:.3} ms, p99 {:.3} ms over {} requests",
        o.rate,
        o.baseline,
        b.p50_ms,
        b.p99_ms,
        i.latency_us.len()
    );
    b
}

/// CLOCK_MONOTONIC in seconds (what `perf -k CLOCK_MONOTONIC` and Rust's `Instant` use).
fn monotonic_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

async fn wait_idle(rec: &Recorder, max: Duration) {
    let until = Instant::now() + max;
    while rec.inflight.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn describe(o: &Opts) -> String {
    // The stores come from --postgres/--redis, or from a DSN or REDIS_URL passed with --env.
    let env_has =
        |key: &str, ok: &dyn Fn(&str) -> bool| o.env.iter().any(|(k, v)| k == key && ok(v));
    let postgres = o.postgres.is_some() || env_has("DSN", &|v| v.starts_with("postgres"));
    let redis = o.redis.is_some() || env_has("REDIS_URL", &|v| !v.is_empty());
    let backend = match (postgres, redis) {
        (false, false) => "SQLite + memory",
        (true, true) => "Postgres + Redis",
        (true, false) => "Postgres + memory",
        (false, true) => "SQLite + Redis",
    }
    .to_string();
    // Secrets passed with --env (CCH_SECRET_KEY, ADMIN_TOKEN, ...) never reach the report.
    let secret = |k: &str| {
        ["SECRET", "TOKEN", "PASSWORD", "KEY"]
            .iter()
            .any(|w| k.contains(w))
    };
    let extra: Vec<String> = o
        .env
        .iter()
        .map(|(k, v)| {
            if secret(k) {
                format!("{k}=***")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    format!(
        "{backend}{}{}",
        if extra.is_empty() { "" } else { ", " },
        extra.join(" ")
    )
}

/// Samples cch (RSS, CPU) and Redis into a row.
async fn sample(gw: &Gateway, row: &mut Row, cpu: &mut (Duration, Instant)) {
    row.rss_mb = gateway::rss_kib(gw.pid).unwrap_or(0) as f64 / 1024.0;
    let now = Instant::now();
    if let Some(c) = gateway::cpu_time(gw.pid) {
        let used = c.saturating_sub(cpu.0).as_secs_f64();
        let secs = now.duration_since(cpu.1).as_secs_f64().max(1e-9);
        row.cpu_pct = used / secs * 100.0;
        if row.completed > 0 {
            row.cpu_us_per_req = Some(used * 1e6 / row.completed as f64);
        }
        *cpu = (c, now);
    }
    if let Some((url, prefix)) = &gw.redis {
        match tokio::time::timeout(Duration::from_secs(3), redis_info::sample(url, prefix)).await {
            Ok(Ok((used, keys))) => {
                row.redis_used_mb = Some(used as f64 / (1024.0 * 1024.0));
                row.redis_keys = Some(keys);
            }
            Ok(Err(e)) => eprintln!("redis sample failed: {e}"),
            Err(_) => eprintln!("redis sample timed out"),
        }
    }
    row.loadavg = gateway::loadavg();
}

async fn soak(o: &Opts) -> Result<(), String> {
    let up = FakeUpstream::start(o.stall)
        .await
        .map_err(|e| format!("fake upstream: {e}"))?;
    let base = (!o.baseline.is_zero()).then_some(());
    let base = match base {
        Some(()) => Some(baseline(o, &up.url).await),
        None => None,
    };
    let gw = Gateway::start(o, &up.url).await?;
    let title = format!(
        "cch soak: {} req/s, {:.0}% streams, faults {}/{}/{}% (error/drop/stall), {}",
        o.rate,
        o.stream_pct,
        o.faults.error_pct,
        o.faults.drop_pct,
        o.faults.stall_pct,
        describe(o)
    );
    println!(
        "{title}\ncch pid {} at {}; output in {}",
        gw.pid,
        gw.url,
        o.out.display()
    );
    let keys = gw.keys.iter().cloned().map(Some).collect();
    let w = Arc::new(Workload::new(
        gw.url.clone(),
        keys,
        o.sessions_per_user,
        o.stream_pct,
        o.faults,
    ));
    let rec = Arc::new(Recorder::with_slow_log(o.slow));
    // The recorder's origin on CLOCK_MONOTONIC, so slow requests can be matched with
    // `perf record -k CLOCK_MONOTONIC` or strace timestamps of cch.
    let origin_mono = monotonic_now();
    let mut csv = CsvWriter::create(&o.out.join("soak.csv")).map_err(|e| e.to_string())?;
    let mut rows: Vec<Row> = Vec::new();
    // Idle memory before the first request, as the first point of the plot.
    let mut idle = Row::default();
    let mut idle_cpu = (Duration::ZERO, Instant::now());
    sample(&gw, &mut idle, &mut idle_cpu).await;
    idle.cpu_pct = 0.0;
    println!("{}", idle.line());
    csv.push(&idle).map_err(|e| e.to_string())?;
    rows.push(idle);
    let start = Instant::now();
    let end = start + o.duration;
    let load = {
        let (o, w, rec) = (o.clone(), w.clone(), rec.clone());
        tokio::spawn(async move { generate(&o, w, rec, end).await })
    };
    let admin = o.admin_post.clone().map(|(at, path)| {
        let url = format!("{}{path}", gw.url);
        let token = gw.token.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until((start + at).into()).await;
            let sent = start.elapsed().as_secs_f64();
            let answer = reqwest::Client::new()
                .post(&url)
                .bearer_auth(token)
                .send()
                .await;
            let (line, answered) = match answer {
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    let at = start.elapsed().as_secs_f64();
                    (format!("admin POST {path}: sent at {sent:.1} s, answered {status} at {at:.1} s: {body}"), at)
                }
                Err(e) => (format!("admin POST {path}: sent at {sent:.1} s, failed: {e}"), start.elapsed().as_secs_f64()),
            };
            println!("{line}");
            (line, answered)
        })
    });
    let mut tick = tokio::time::interval_at((start + o.interval).into(), o.interval);
    let mut all_latency: Vec<u32> = Vec::new();
    let mut cpu = (gateway::cpu_time(gw.pid).unwrap_or_default(), start);
    let mut last = start;
    let mut interrupted = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => { interrupted = true; }
        }
        let now = Instant::now();
        let interval = rec.take();
        all_latency.extend_from_slice(&interval.latency_us);
        let secs = now.duration_since(last).as_secs_f64();
        last = now;
        let mut row = Row::from_interval(
            interval,
            now.duration_since(start).as_secs_f64(),
            secs,
            base,
        );
        row.inflight = rec.inflight.load(Ordering::Relaxed);
        sample(&gw, &mut row, &mut cpu).await;
        println!("{}", row.line());
        csv.push(&row).map_err(|e| e.to_string())?;
        rows.push(row);
        if interrupted || now + Duration::from_millis(100) >= end {
            break;
        }
    }
    load.abort();
    wait_idle(&rec, o.stall + Duration::from_secs(5)).await;
    let mut text = format!(
        "{title}\nduration {:.0} s, sampled every {:?}; load average at the end {}\nfake upstream: {} requests, {} faults injected\n",
        start.elapsed().as_secs_f64(),
        o.interval,
        gateway::loadavg(),
        up.stats.requests.load(Ordering::Relaxed),
        up.stats.faults.load(Ordering::Relaxed),
    );
    text += &report::summary(&rows, &mut all_latency, base);
    if let (Some(task), Some((at, _))) = (admin, &o.admin_post) {
        let sent = at.as_secs_f64();
        let interval = o.interval.as_secs_f64();
        if task.is_finished() {
            let (line, answered) = task.await.unwrap_or_default();
            text += &format!("{line}\n");
            text += &report::phases_around(&rows, interval, sent, Some(answered));
        } else {
            task.abort();
            text += "admin POST still running when the load ended\n";
            text += &report::phases_around(&rows, interval, sent, None);
        }
    }
    println!("\n{text}");
    std::fs::write(o.out.join("summary.txt"), &text).map_err(|e| e.to_string())?;
    let png = o.out.join("soak.png");
    match plot::render(&png, &title, &rows, o.font.as_deref()) {
        Ok(_) => println!("plot: {}", png.display()),
        Err(e) => eprintln!("no plot: {e}"),
    }
    println!("csv: {}", o.out.join("soak.csv").display());
    if o.slow.is_some() {
        let lines: String = rec
            .slow_requests()
            .iter()
            .map(|(at, lat)| {
                format!(
                    "{:.4},{:.6},{:.3}\n",
                    at.as_secs_f64(),
                    origin_mono + at.as_secs_f64(),
                    lat.as_secs_f64() * 1000.0
                )
            })
            .collect();
        let path = o.out.join("slow.csv");
        std::fs::write(
            &path,
            format!("sent_s,sent_monotonic_s,latency_ms\n{lines}"),
        )
        .map_err(|e| e.to_string())?;
        println!("slow requests: {}", path.display());
    }
    gw.stop().await;
    Ok(())
}

async fn closed(o: &Opts) -> Result<(), String> {
    let up = FakeUpstream::start(o.stall)
        .await
        .map_err(|e| format!("fake upstream: {e}"))?;
    let gw = Gateway::start(o, &up.url).await?;
    let keys = gw.keys.iter().cloned().map(Some).collect();
    let w = Arc::new(Workload::new(
        gw.url.clone(),
        keys,
        o.sessions_per_user,
        o.stream_pct,
        o.faults,
    ));
    let rec = Arc::new(Recorder::new());
    load::closed_loop(
        w.clone(),
        rec.clone(),
        o.concurrency,
        Instant::now() + o.warmup,
    )
    .await;
    rec.take();
    let cpu0 = gateway::cpu_time(gw.pid).unwrap_or_default();
    let own0 = gateway::own_cpu_time().unwrap_or_default();
    let t0 = Instant::now();
    load::closed_loop(w, rec.clone(), o.concurrency, t0 + o.duration).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = gateway::cpu_time(gw.pid)
        .unwrap_or_default()
        .saturating_sub(cpu0)
        .as_secs_f64();
    let own = gateway::own_cpu_time()
        .unwrap_or_default()
        .saturating_sub(own0)
        .as_secs_f64();
    let rss = gateway::rss_kib(gw.pid).unwrap_or(0) as f64 / 1024.0;
    let mut i = rec.take();
    let n = i.completed().max(1) as f64;
    let ok = i.count(stats::Outcome::Ok);
    let text = format!(
        "closed loop: concurrency {}, {:.0} s, {:.0}% streams, {}\n\
         throughput {:.0} req/s ({} ok of {} completed)\n\
         cch process CPU {:.1} µs per request ({:.0}% of one core); load generator + fake upstream {:.1} µs per request\n\
         latency p50 {:.3} ms p99 {:.3} ms; cch RSS at the end {:.1} MB\n\
         load average {}\n",
        o.concurrency,
        secs,
        o.stream_pct,
        describe(o),
        n / secs,
        ok,
        i.completed(),
        cpu * 1e6 / n,
        cpu / secs * 100.0,
        own * 1e6 / n,
        percentile_ms(&mut i.latency_us, 50.0).unwrap_or(0.0),
        percentile_ms(&mut i.latency_us, 99.0).unwrap_or(0.0),
        rss,
        gateway::loadavg(),
    );
    println!("{text}");
    std::fs::write(o.out.join("closed.txt"), &text).map_err(|e| e.to_string())?;
    gw.stop().await;
    Ok(())
}
