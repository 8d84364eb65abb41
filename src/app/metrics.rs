//! Counters the proxy keeps about itself, and the Prometheus text rendering of everything an
//! operator watches: requests by outcome, counter/limit backends (Redis or degraded), the
//! request-log writer, the configuration size.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::context::AppContext;

/// Request counters, updated when each request's log row is written.
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    ok: AtomicU64,
    client_errors: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    client_aborts: AtomicU64,
    streams: AtomicU64,
    cost_micro_usd: AtomicU64,
}

impl ProxyMetrics {
    /// Counts one finished request.
    pub fn observe(&self, status: u16, stream: bool, cost_micro_usd: u64) {
        let bucket = match status {
            200..=399 => &self.ok,
            429 => &self.rate_limited,
            499 => &self.client_aborts,
            400..=498 => &self.client_errors,
            _ => &self.server_errors,
        };
        bucket.fetch_add(1, Ordering::Relaxed);
        if stream {
            self.streams.fetch_add(1, Ordering::Relaxed);
        }
        self.cost_micro_usd
            .fetch_add(cost_micro_usd, Ordering::Relaxed);
    }
}

fn line(out: &mut String, name: &str, help: &str, kind: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Renders all metrics in the Prometheus text format.
pub fn render(ctx: &AppContext) -> String {
    let m = ctx.proxy.metrics();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    line(
        &mut out,
        "cch_requests_total",
        "Proxied requests by outcome.",
        "counter",
        &[
            ("outcome=\"ok\"", get(&m.ok)),
            ("outcome=\"client_error\"", get(&m.client_errors)),
            ("outcome=\"rate_limited\"", get(&m.rate_limited)),
            ("outcome=\"server_error\"", get(&m.server_errors)),
            ("outcome=\"client_abort\"", get(&m.client_aborts)),
        ],
    );
    line(
        &mut out,
        "cch_streams_total",
        "Streamed requests.",
        "counter",
        &[("", get(&m.streams))],
    );
    line(
        &mut out,
        "cch_cost_micro_usd_total",
        "Cost of served requests in micro-USD.",
        "counter",
        &[("", get(&m.cost_micro_usd))],
    );
    let mode = ctx.counters.mode().as_str();
    let modes = ["local", "shared", "degraded"].map(|k| (k, u64::from(k == mode)));
    let labels: Vec<String> = modes.iter().map(|(k, _)| format!("mode=\"{k}\"")).collect();
    let samples: Vec<(&str, u64)> = labels
        .iter()
        .zip(modes.iter())
        .map(|(l, (_, v))| (l.as_str(), *v))
        .collect();
    line(
        &mut out,
        "cch_counters_mode",
        "Where counters, sessions and breakers live (1 = current).",
        "gauge",
        &samples,
    );
    let limits_mode = ctx
        .limits
        .as_ref()
        .map_or("disabled", |l| l.store().mode().as_str());
    let lmodes =
        ["local", "shared", "degraded", "disabled"].map(|k| (k, u64::from(k == limits_mode)));
    let llabels: Vec<String> = lmodes
        .iter()
        .map(|(k, _)| format!("mode=\"{k}\""))
        .collect();
    let lsamples: Vec<(&str, u64)> = llabels
        .iter()
        .zip(lmodes.iter())
        .map(|(l, (_, v))| (l.as_str(), *v))
        .collect();
    line(
        &mut out,
        "cch_limits_mode",
        "Where limit windows are counted (1 = current).",
        "gauge",
        &lsamples,
    );
    line(
        &mut out,
        "cch_request_log_database_down",
        "1 while request-log rows are being spooled to disk.",
        "gauge",
        &[("", u64::from(ctx.log_writer.database_down()))],
    );
    line(
        &mut out,
        "cch_request_log_rows_written_total",
        "Request-log rows stored in the database.",
        "counter",
        &[("", ctx.log_writer.written())],
    );
    let snap = ctx.snapshot.get();
    line(
        &mut out,
        "cch_config_entities",
        "Entities in the configuration snapshot.",
        "gauge",
        &[
            ("kind=\"providers\"", snap.providers.len() as u64),
            ("kind=\"users\"", snap.users.len() as u64),
            ("kind=\"keys\"", snap.keys_by_hash.len() as u64),
        ],
    );
    out
}
