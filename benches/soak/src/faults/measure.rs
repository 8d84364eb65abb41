//! What the fault scenarios measure: load phases, outcome counts, log rows, and each user's
//! spend counters against a recompute from the log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::servers::Servers;
use crate::args::Opts;
use crate::gateway::Gateway;
use crate::load::{self, Workload};
use crate::stats::{Interval, Outcome, Recorder};

/// Load at `o.rate` on `w` until `end`, in the background.
pub(super) fn spawn_load(o: &Opts, w: Arc<Workload>, rec: Arc<Recorder>, end: Instant) {
    let (rate, max, seed) = (o.rate, o.max_inflight, o.seed);
    tokio::spawn(async move { load::open_loop_tasks(w, rec, rate, end, max, seed).await });
}

pub(super) async fn wait_idle(rec: &Recorder, max: Duration) {
    let until = Instant::now() + max;
    while rec.inflight.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) fn add(total: &mut Interval, i: &Interval) {
    total.sent += i.sent;
    total.skipped += i.skipped;
    for (t, n) in total.done.iter_mut().zip(i.done) {
        *t += n;
    }
}

/// Requests that did not get a complete answer (a 429 from a limit is an answer).
pub(super) fn failed(i: &Interval) -> u64 {
    i.count(Outcome::Failed) + i.count(Outcome::Transport) + i.count(Outcome::StreamError)
}

pub(super) fn phase_line(name: &str, i: &Interval) -> String {
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

pub(super) async fn admin(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
) -> Result<Value, String> {
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

pub(super) fn spend_windows(usage: &Value) -> Vec<(String, f64)> {
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
pub(super) async fn limits_exactness(gw: &Gateway) -> Result<String, String> {
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
pub(super) fn log_rows(s: &Servers, gw: &Gateway) -> Result<u64, String> {
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
pub(super) async fn settled_rows(s: &Servers, gw: &Gateway, max: Duration) -> Result<u64, String> {
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

pub(super) fn workload(gw: &Gateway, o: &Opts) -> Arc<Workload> {
    Arc::new(Workload::new(
        gw.url.clone(),
        gw.keys.iter().cloned().map(Some).collect(),
        o.sessions_per_user,
        o.stream_pct,
        o.faults,
    ))
}
