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
    /// Requests refused before routing, by reason (bounded: one counter per reason).
    pub rejected: super::proxy::reject::RejectionCounters,
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

/// Client connection counters, kept by the HTTP server and shown in `/metrics`, so an operator
/// sees a connection flood (refusals at the cap) or slow clients (timeouts) instead of silence.
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: AtomicU64,
    /// The connection cap in force (after fitting it to the open-file limit).
    pub limit: AtomicU64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Connections closed at once because the cap was reached.
    pub refused: AtomicU64,
    /// Connections closed because no request head (or no complete head) came in time.
    pub timed_out_header: AtomicU64,
    /// Kept-alive connections closed after waiting too long for their next request.
    pub timed_out_keepalive: AtomicU64,
    /// Requests whose body stopped arriving for longer than the body idle timeout.
    pub timed_out_body: AtomicU64,
}

/// Which bound closed a connection or request (see [`ConnectionMetrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Waiting for (the rest of) a request head.
    Header,
    /// Waiting for the next request on a kept-alive connection.
    KeepAlive,
    /// Waiting for more of a request body.
    Body,
}

impl ConnectionMetrics {
    /// Counts one timeout.
    pub fn timed_out(&self, phase: TimeoutPhase) {
        let counter = match phase {
            TimeoutPhase::Header => &self.timed_out_header,
            TimeoutPhase::KeepAlive => &self.timed_out_keepalive,
            TimeoutPhase::Body => &self.timed_out_body,
        };
        counter.fetch_add(1, Ordering::Relaxed);
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

fn render_connections(out: &mut String, c: &ConnectionMetrics) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    line(
        out,
        "cch_client_connections_open",
        "Client connections open now.",
        "gauge",
        &[("", get(&c.open))],
    );
    line(
        out,
        "cch_client_connections_limit",
        "Most client connections open at once (MAX_CLIENT_CONNECTIONS fitted to the open-file limit).",
        "gauge",
        &[("", get(&c.limit))],
    );
    line(
        out,
        "cch_client_connections_accepted_total",
        "Client connections accepted.",
        "counter",
        &[("", get(&c.accepted))],
    );
    line(
        out,
        "cch_client_connections_refused_total",
        "Client connections closed at once because the connection cap was reached.",
        "counter",
        &[("", get(&c.refused))],
    );
    line(
        out,
        "cch_client_connections_timed_out_total",
        "Client connections or request bodies cut by a timeout, by phase.",
        "counter",
        &[
            ("phase=\"header\"", get(&c.timed_out_header)),
            ("phase=\"keepalive\"", get(&c.timed_out_keepalive)),
            ("phase=\"body\"", get(&c.timed_out_body)),
        ],
    );
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
    let rejected: Vec<(String, u64)> = m
        .rejected
        .snapshot()
        .map(|(r, n)| (format!("reason=\"{}\"", r.as_str()), n))
        .collect();
    let rejected: Vec<(&str, u64)> = rejected.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    line(
        &mut out,
        "cch_rejected_requests_total",
        "Requests refused before routing, by reason (also counted in cch_requests_total).",
        "counter",
        &rejected,
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
    line(
        &mut out,
        "cch_request_log_rows_dropped_total",
        "Request-log rows lost because the queue, its overflow and the spool were all full.",
        "counter",
        &[("", ctx.log_writer.dropped())],
    );
    render_connections(&mut out, &ctx.connections);
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
