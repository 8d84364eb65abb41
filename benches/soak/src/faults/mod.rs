//! `cch-soak faults`: the fault suite (issue 15 item 2). Each scenario runs the release cch
//! against a private PostgreSQL (initdb in a temporary folder, its own port) and a private
//! Redis (its own port), so stopping and killing them touches nothing else on the machine,
//! under fixed-rate load from this process, and reports figures:
//!
//! - `redis`: Redis killed (SIGKILL) for 30 s under load and restarted empty: failed client
//!   requests, and each user's limit counters against a recompute from the log afterwards.
//! - `postgres`: Postgres stopped for 60 s under load: failed client requests, and request-log
//!   rows against answered requests once the spool is replayed.
//! - `providers`: two providers, one failing half of its requests (529, hangs past the
//!   timeout, drops before the first content, fake 200s): client success rate; mid-stream
//!   breaks counted apart.
//! - `sigterm`: 100 streams open when cch gets SIGTERM: streams that finished cleanly, and
//!   the exit code.
//! - `kill`: two cch instances on one Postgres and Redis, one killed with SIGKILL mid-load
//!   (a load balancer's retry moves later requests to the survivor): requests lost beyond
//!   those in flight on the killed one, rows, and limits against a recompute.

mod measure;
mod servers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::args::{FaultMix, Opts};
use crate::gateway::Gateway;
use crate::load::{self, Rng};
use crate::stats::{Interval, Outcome, Recorder};
use crate::upstream::FakeUpstream;
use measure::{
    add, failed, limits_exactness, phase_line, settled_rows, spawn_load, wait_idle, workload,
};
use servers::Servers;

async fn redis_outage(o: &Opts) -> Result<String, String> {
    let mut s = Servers::start("redis")?;
    let o = s.opts(o, "redis");
    let up = FakeUpstream::start(o.stall)
        .await
        .map_err(|e| e.to_string())?;
    let gw = Gateway::start(&o, &up.url).await?;
    let rec = Arc::new(Recorder::new());
    let (before, outage, after) = (
        Duration::from_secs(15),
        Duration::from_secs(30),
        Duration::from_secs(20),
    );
    let start = Instant::now();
    spawn_load(
        &o,
        workload(&gw, &o),
        rec.clone(),
        start + before + outage + after,
    );
    tokio::time::sleep(before).await;
    let a = rec.take();
    s.redis.kill();
    tokio::time::sleep(outage).await;
    let b = rec.take();
    s.redis.spawn()?;
    tokio::time::sleep(after).await;
    wait_idle(&rec, Duration::from_secs(10)).await;
    let c = rec.take();
    // The log writer batches; give it and the counters' warm-up a moment.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rows = settled_rows(&s, &gw, Duration::from_secs(30)).await?;
    let mut total = Interval::default();
    for i in [&a, &b, &c] {
        add(&mut total, i);
    }
    let mut out = format!(
        "redis: Redis killed (SIGKILL) for {} s at {} req/s, restarted empty\n",
        outage.as_secs(),
        o.rate
    );
    out += &phase_line("before", &a);
    out += &phase_line("Redis down", &b);
    out += &phase_line("after the restart", &c);
    out += &phase_line("all", &total);
    out += &format!(
        "  failed client requests: {} of {}; request-log rows {rows}\n",
        failed(&total),
        total.sent
    );
    out += &limits_exactness(&gw).await?;
    gw.stop().await;
    Ok(out)
}

async fn postgres_outage(o: &Opts) -> Result<String, String> {
    let mut s = Servers::start("postgres")?;
    let o = s.opts(o, "postgres");
    let up = FakeUpstream::start(o.stall)
        .await
        .map_err(|e| e.to_string())?;
    let gw = Gateway::start(&o, &up.url).await?;
    let rec = Arc::new(Recorder::new());
    let (before, outage, after) = (
        Duration::from_secs(15),
        Duration::from_secs(60),
        Duration::from_secs(20),
    );
    let start = Instant::now();
    spawn_load(
        &o,
        workload(&gw, &o),
        rec.clone(),
        start + before + outage + after,
    );
    tokio::time::sleep(before).await;
    let a = rec.take();
    s.pg.stop()?;
    tokio::time::sleep(outage).await;
    let b = rec.take();
    s.pg.resume()?;
    tokio::time::sleep(after).await;
    wait_idle(&rec, Duration::from_secs(10)).await;
    let c = rec.take();
    let rows = settled_rows(&s, &gw, Duration::from_secs(120)).await?;
    let mut total = Interval::default();
    for i in [&a, &b, &c] {
        add(&mut total, i);
    }
    let answered = total.count(Outcome::Ok)
        + total.count(Outcome::Recovered)
        + total.count(Outcome::Rejected)
        + total.count(Outcome::Failed)
        + total.count(Outcome::StreamError);
    let mut out = format!(
        "postgres: Postgres stopped for {} s at {} req/s, then started again\n",
        outage.as_secs(),
        o.rate
    );
    out += &phase_line("before", &a);
    out += &phase_line("Postgres down", &b);
    out += &phase_line("after the restart", &c);
    out += &phase_line("all", &total);
    out += &format!(
        "  failed client requests: {} of {}\n  request-log rows: {rows} for {answered} answered requests ({} lost)\n",
        failed(&total),
        total.sent,
        answered.saturating_sub(rows)
    );
    gw.stop().await;
    Ok(out)
}

async fn half_failing_provider(o: &Opts) -> Result<String, String> {
    let s = Servers::start("providers")?;
    let mut o = s.opts(o, "providers");
    o.rate = o.rate.min(200.0);
    let bad = FakeUpstream::start_chaos(o.stall, 50.0)
        .await
        .map_err(|e| e.to_string())?;
    let good = FakeUpstream::start(o.stall)
        .await
        .map_err(|e| e.to_string())?;
    let gw = Gateway::start_instance(&o, &[&bad.url, &good.url], "data", None).await?;
    // Ordinary breakers (the soak's are lenient): 5 failures open it for 60 s (the shortest
    // cch accepts).
    for id in &gw.provider_ids {
        let r = reqwest::Client::new()
            .patch(format!("{}/api/v1/providers/{id}", gw.url))
            .bearer_auth(&gw.token)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"failure_threshold": 5, "open_duration_ms": 60_000}).to_string(),
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            let status = r.status();
            return Err(format!(
                "provider {id}: {status}: {}",
                r.text().await.unwrap_or_default()
            ));
        }
    }
    let rec = Arc::new(Recorder::new());
    let run = Duration::from_secs(60);
    spawn_load(&o, workload(&gw, &o), rec.clone(), Instant::now() + run);
    tokio::time::sleep(run).await;
    wait_idle(&rec, o.stall + Duration::from_secs(10)).await;
    let i = rec.take();
    let ok = i.count(Outcome::Ok) + i.count(Outcome::Recovered);
    let before_first_byte = i.count(Outcome::Failed) + i.count(Outcome::Transport);
    let mid_stream = i.count(Outcome::StreamError);
    let mut out = format!(
        "providers: two providers, one failing {}% of its attempts (529, hang past the {} s timeout, drop before content, fake 200: HTML, empty, error), {} req/s, {}% streams, {} s\n",
        50,
        o.provider_timeout.as_secs(),
        o.rate,
        o.stream_pct,
        run.as_secs()
    );
    out += &phase_line("all", &i);
    out += &format!(
        "  the failing upstream got {} requests and failed {}; the healthy one got {}\n",
        bad.stats.requests.load(Ordering::Relaxed),
        bad.stats.faults.load(Ordering::Relaxed),
        good.stats.requests.load(Ordering::Relaxed),
    );
    let rate = ok as f64 / (ok + before_first_byte).max(1) as f64 * 100.0;
    out += &format!(
        "  success rate of requests failing before the first byte: {rate:.3} % ({ok} of {}); broken mid-stream: {mid_stream}\n",
        ok + before_first_byte
    );
    gw.stop().await;
    Ok(out)
}

async fn sigterm_streams(o: &Opts) -> Result<String, String> {
    let s = Servers::start("sigterm")?;
    let mut o = s.opts(o, "sigterm");
    // Each stream pauses 3 s mid-answer (within the providers' timeouts), so all 100 are open
    // when the signal arrives.
    o.stall = Duration::from_secs(3);
    o.provider_timeout = Duration::from_secs(10);
    o.stream_pct = 100.0;
    o.faults = FaultMix {
        error_pct: 0.0,
        drop_pct: 0.0,
        stall_pct: 100.0,
    };
    let up = FakeUpstream::start(o.stall)
        .await
        .map_err(|e| e.to_string())?;
    let mut gw = Gateway::start(&o, &up.url).await?;
    let w = workload(&gw, &o);
    let rec = Arc::new(Recorder::new());
    let client = load::client(128);
    let mut rng = Rng::new(o.seed);
    for n in 0..100u64 {
        let pick = w.pick(&mut rng, n);
        let (w, rec, client) = (w.clone(), rec.clone(), client.clone());
        rec.sent(Duration::ZERO);
        tokio::spawn(async move {
            let t0 = Instant::now();
            let (out, lat, ttfb) = load::send(&client, &w, &pick, n, t0).await;
            rec.done(out, lat, ttfb);
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open = rec.inflight.load(Ordering::Relaxed);
    gw.signal(libc::SIGTERM);
    let exit = gw.wait_exit(Duration::from_secs(60)).await;
    wait_idle(&rec, Duration::from_secs(10)).await;
    let i = rec.take();
    let clean = i.count(Outcome::Ok) + i.count(Outcome::Recovered);
    let mut out = format!(
        "sigterm: 100 streams, each pausing {} s mid-answer; SIGTERM after 1 s ({open} open)\n",
        o.stall.as_secs()
    );
    out += &phase_line("all", &i);
    out += &format!(
        "  streams finished cleanly: {clean} of 100 ({:.1} %); cch exit: {}\n",
        clean as f64,
        exit.map_or("did not exit within 60 s".to_string(), |s| s.to_string())
    );
    gw.stop().await;
    Ok(out)
}

async fn kill_one_of_two(o: &Opts) -> Result<String, String> {
    let s = Servers::start("kill")?;
    let o = s.opts(o, "kill");
    let up = FakeUpstream::start(o.stall)
        .await
        .map_err(|e| e.to_string())?;
    let first = Gateway::start(&o, &up.url).await?;
    let second = Gateway::start_instance(&o, &[&up.url], "data-b", Some(&first)).await?;
    let (w1, w2) = (workload(&first, &o), workload(&second, &o));
    let rec = Arc::new(Recorder::new());
    let dead = Arc::new(AtomicBool::new(false));
    let (in_flight_lost, retried) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let run = Duration::from_secs(30);
    let kill_at = Duration::from_secs(10);
    let start = Instant::now();
    let load = {
        let (rec, dead, lost, retried) = (
            rec.clone(),
            dead.clone(),
            in_flight_lost.clone(),
            retried.clone(),
        );
        let rate = o.rate;
        tokio::spawn(async move {
            let client = load::client(256);
            let period = Duration::from_secs_f64(1.0 / rate);
            let mut rng = Rng::new(7);
            let mut n = 0u64;
            loop {
                let due = start + period.mul_f64(n as f64);
                if due >= start + run {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                n += 1;
                // Round robin; a load balancer stops sending to the dead one.
                let to_second = n.is_multiple_of(2) && !dead.load(Ordering::Relaxed);
                let (w, other) = if to_second {
                    (w2.clone(), w1.clone())
                } else {
                    (w1.clone(), w2.clone())
                };
                let pick = w.pick(&mut rng, n);
                let (rec, client, dead, lost, retried) = (
                    rec.clone(),
                    client.clone(),
                    dead.clone(),
                    lost.clone(),
                    retried.clone(),
                );
                rec.sent(Duration::ZERO);
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let was_dead = dead.load(Ordering::Relaxed);
                    let (mut out, mut lat, mut ttfb) = load::send(&client, &w, &pick, n, t0).await;
                    if to_second && matches!(out, Outcome::Transport | Outcome::StreamError) {
                        if was_dead {
                            // Sent after the kill: the balancer retries it elsewhere.
                            retried.fetch_add(1, Ordering::Relaxed);
                            (out, lat, ttfb) = load::send(&client, &other, &pick, n, t0).await;
                        } else {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    rec.done(out, lat, ttfb);
                });
            }
        })
    };
    tokio::time::sleep(kill_at).await;
    let a = rec.take();
    dead.store(true, Ordering::Relaxed);
    second.signal(libc::SIGKILL);
    let _ = load.await;
    wait_idle(&rec, Duration::from_secs(10)).await;
    let b = rec.take();
    let rows = settled_rows(&s, &first, Duration::from_secs(30)).await?;
    let mut total = Interval::default();
    add(&mut total, &a);
    add(&mut total, &b);
    let lost = in_flight_lost.load(Ordering::Relaxed);
    let answered = total.count(Outcome::Ok)
        + total.count(Outcome::Recovered)
        + total.count(Outcome::Rejected)
        + total.count(Outcome::Failed);
    let mut out = format!(
        "kill: two instances on one Postgres and Redis, {} req/s round robin; the second killed (SIGKILL) after {} s of {} s\n",
        o.rate,
        kill_at.as_secs(),
        run.as_secs()
    );
    out += &phase_line("both up", &a);
    out += &phase_line("after the kill", &b);
    out += &format!(
        "  in flight on the killed instance: {lost} (lost with it); failed beyond those: {}; sent to it after the kill and retried on the survivor: {}\n",
        failed(&total).saturating_sub(lost),
        retried.load(Ordering::Relaxed)
    );
    out += &format!(
        "  request-log rows: {rows} for {answered} answered requests ({} answered by the killed instance but not logged)\n",
        answered.saturating_sub(rows)
    );
    out += &limits_exactness(&first).await?;
    drop(second);
    first.stop().await;
    Ok(out)
}

/// Runs the scenarios of `o.scenarios` in turn; the report goes to stdout and `faults.txt`.
pub async fn run(o: &Opts) -> Result<(), String> {
    let mut report = format!(
        "cch fault suite, {} (load average at the start {})\n\n",
        chrono_now(),
        crate::gateway::loadavg()
    );
    for name in &o.scenarios {
        println!("running {name} …");
        let started = Instant::now();
        let result = match name.as_str() {
            "redis" => redis_outage(o).await,
            "postgres" => postgres_outage(o).await,
            "providers" => half_failing_provider(o).await,
            "sigterm" => sigterm_streams(o).await,
            "kill" => kill_one_of_two(o).await,
            other => Err(format!("unknown scenario {other}")),
        };
        let text = match result {
            Ok(t) => t,
            Err(e) => format!("{name}: could not run: {e}\n"),
        };
        let text = format!(
            "{text}  ({:.0} s, load average {})\n\n",
            started.elapsed().as_secs_f64(),
            crate::gateway::loadavg()
        );
        print!("{text}");
        report.push_str(&text);
    }
    std::fs::write(o.out.join("faults.txt"), &report).map_err(|e| e.to_string())?;
    println!("report: {}", o.out.join("faults.txt").display());
    Ok(())
}

fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("unix time {secs}")
}
