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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::args::{FaultMix, Opts};
use crate::gateway::Gateway;
use crate::load::{self, Rng, Workload};
use crate::stats::{Interval, Outcome, Recorder};
use crate::upstream::FakeUpstream;

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_for(what: &str, max: Duration, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let until = Instant::now() + max;
    while !ok() {
        if Instant::now() > until {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A private `redis-server` (no persistence: a restart comes back empty).
struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(dir: &Path) -> Result<Self, String> {
        let mut r = Self {
            port: free_port()?,
            dir: dir.to_path_buf(),
            child: None,
        };
        r.spawn()?;
        Ok(r)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        self.child = Some(child);
        let port = self.port;
        wait_for("redis-server", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private PostgreSQL cluster (initdb), run as the `postgres` user when this runs as root.
struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    running: bool,
}

fn pg_bin() -> Result<PathBuf, String> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL server binaries in /usr/lib/postgresql: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".into())
}

impl PrivatePostgres {
    fn start(dir: &Path) -> Result<Self, String> {
        let pg = Self {
            bin: pg_bin()?,
            dir: dir.to_path_buf(),
            port: free_port()?,
            running: false,
        };
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot chown {} to postgres", dir.display()));
            }
        }
        let d = dir.display().to_string();
        pg.run(
            "initdb",
            &["-D", &d, "-A", "trust", "-U", "postgres", "--no-sync"],
        )?;
        let mut pg = pg;
        pg.resume()?;
        Ok(pg)
    }

    fn run(&self, prog: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(prog);
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{prog}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{prog} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn resume(&mut self) -> Result<(), String> {
        let d = self.dir.display().to_string();
        let opts = format!("-p {} -k {d} -c listen_addresses=127.0.0.1", self.port);
        let log = format!("{d}/server.log");
        self.run(
            "pg_ctl",
            &["-D", &d, "-l", &log, "-w", "-o", &opts, "start"],
        )?;
        self.running = true;
        Ok(())
    }

    fn stop(&mut self) -> Result<(), String> {
        let d = self.dir.display().to_string();
        self.running = false;
        self.run("pg_ctl", &["-D", &d, "-m", "fast", "-w", "stop"])
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    fn query(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .arg(format!("{}/{db}", self.url()))
            .args(["-tAq", "-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let d = self.dir.display().to_string();
            let _ = self.run("pg_ctl", &["-D", &d, "-m", "immediate", "-w", "stop"]);
        }
    }
}

/// The private servers of one scenario, in a temporary folder under /tmp (the `postgres` user
/// must be able to reach it).
struct Servers {
    pg: PrivatePostgres,
    redis: PrivateRedis,
    root: PathBuf,
}

impl Servers {
    fn start(name: &str) -> Result<Self, String> {
        let root = std::env::temp_dir().join(format!("cch-faults-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("redis")).map_err(|e| e.to_string())?;
        let pg = PrivatePostgres::start(&root.join("pg"))?;
        let redis = PrivateRedis::start(&root.join("redis"))?;
        Ok(Self { pg, redis, root })
    }

    /// Options for cch on these servers.
    fn opts(&self, o: &Opts, name: &str) -> Opts {
        let mut o = o.clone();
        o.postgres = Some(self.pg.url());
        o.redis = Some(self.redis.url());
        o.out = o.out.join(name);
        o
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.redis.kill();
        if self.pg.running {
            let _ = self.pg.stop();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Load at `o.rate` on `w` until `end`, in the background.
fn spawn_load(o: &Opts, w: Arc<Workload>, rec: Arc<Recorder>, end: Instant) {
    let (rate, max, seed) = (o.rate, o.max_inflight, o.seed);
    tokio::spawn(async move { load::open_loop_tasks(w, rec, rate, end, max, seed).await });
}

async fn wait_idle(rec: &Recorder, max: Duration) {
    let until = Instant::now() + max;
    while rec.inflight.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn add(total: &mut Interval, i: &Interval) {
    total.sent += i.sent;
    total.skipped += i.skipped;
    for (t, n) in total.done.iter_mut().zip(i.done) {
        *t += n;
    }
}

/// Requests that did not get a complete answer (a 429 from a limit is an answer).
fn failed(i: &Interval) -> u64 {
    i.count(Outcome::Failed) + i.count(Outcome::Transport) + i.count(Outcome::StreamError)
}

fn phase_line(name: &str, i: &Interval) -> String {
    format!(
        "  {name:<28} sent {:>6}  ok {:>6}  429 {:>5}  failed {:>4} (status {}, transport {}, broken stream {})\n",
        i.sent,
        i.count(Outcome::Ok) + i.count(Outcome::Recovered),
        i.count(Outcome::Rejected),
        failed(i),
        i.count(Outcome::Failed),
        i.count(Outcome::Transport),
        i.count(Outcome::StreamError),
    )
}

async fn admin(gw: &Gateway, method: reqwest::Method, path: &str) -> Result<Value, String> {
    let r = reqwest::Client::new()
        .request(method, format!("{}/api/v1{path}", gw.url))
        .bearer_auth(&gw.token)
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{path}: {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

fn spend_windows(usage: &Value) -> Vec<(String, f64)> {
    usage["windows"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .filter(|w| w["unit"] == "usd")
                .map(|w| {
                    let used = w["used"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| w["used"].to_string())
                        .parse::<f64>()
                        .unwrap_or(f64::NAN);
                    (w["window"].as_str().unwrap_or("?").to_string(), used)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Each user's live spend counters against a recompute from the log (what the counters would
/// hold had nothing gone wrong): the largest difference, in dollars and in percent.
async fn limits_exactness(gw: &Gateway) -> Result<String, String> {
    let mut worst = (0.0f64, 0.0f64, String::new());
    let mut total = 0.0;
    for id in &gw.user_ids {
        let live = admin(gw, reqwest::Method::GET, &format!("/users/{id}/usage")).await?;
        let rebuilt = admin(
            gw,
            reqwest::Method::POST,
            &format!("/users/{id}/usage/recompute"),
        )
        .await?;
        for ((window, a), (_, b)) in spend_windows(&live).iter().zip(spend_windows(&rebuilt)) {
            if window == "total" {
                total += b;
            }
            let diff = (a - b).abs();
            if diff > worst.0 {
                let pct = if b > 0.0 { diff / b * 100.0 } else { 0.0 };
                worst = (
                    diff,
                    pct,
                    format!("user {id} {window}: counter {a:.6}, log {b:.6}"),
                );
            }
        }
    }
    Ok(if worst.0 < 1e-9 {
        format!(
            "  limits: every user's spend counters equal a recompute from the log (total spend ${total:.4})\n"
        )
    } else {
        format!(
            "  limits: largest difference ${:.6} ({:.3} %): {}\n",
            worst.0, worst.1, worst.2
        )
    })
}

/// Request-log rows in the scenario's database.
fn log_rows(s: &Servers, gw: &Gateway) -> Result<u64, String> {
    let db = gw
        .dsn
        .as_deref()
        .and_then(|d| d.rsplit('/').next())
        .ok_or("no database")?;
    s.pg.query(db, "SELECT count(*) FROM request_logs")?
        .parse()
        .map_err(|e| format!("row count: {e}"))
}

/// Waits until the row count stops changing (the log queue and spool are drained).
async fn settled_rows(s: &Servers, gw: &Gateway, max: Duration) -> Result<u64, String> {
    let until = Instant::now() + max;
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = log_rows(s, gw)?;
        if now == last || Instant::now() > until {
            return Ok(now);
        }
        last = now;
    }
}

fn workload(gw: &Gateway, o: &Opts) -> Arc<Workload> {
    Arc::new(Workload::new(
        gw.url.clone(),
        gw.keys.iter().cloned().map(Some).collect(),
        o.sessions_per_user,
        o.stream_pct,
        o.faults,
    ))
}

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
