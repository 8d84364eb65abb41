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

/// A gauge with one `mode` label per possible value, 1 for the current one.
fn one_hot(out: &mut String, name: &str, help: &str, modes: &[&str], current: &str) {
    let labels: Vec<String> = modes.iter().map(|m| format!("mode=\"{m}\"")).collect();
    let samples: Vec<(&str, u64)> = labels
        .iter()
        .zip(modes)
        .map(|(l, m)| (l.as_str(), u64::from(*m == current)))
        .collect();
    line(out, name, help, "gauge", &samples);
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
    let counters_mode = ctx.counters.mode().as_str();
    one_hot(
        &mut out,
        "cch_counters_mode",
        "Where counters, sessions and breakers live (1 = current).",
        &["local", "shared", "degraded"],
        counters_mode,
    );
    let limits_mode = ctx
        .limits
        .as_ref()
        .map_or("disabled", |l| l.store().mode().as_str());
    one_hot(
        &mut out,
        "cch_limits_mode",
        "Where limit windows are counted (1 = current).",
        &["local", "shared", "degraded", "disabled"],
        limits_mode,
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
