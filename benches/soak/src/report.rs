//! One CSV row per sampling interval, and the end-of-run summary.

use std::io::Write;

use crate::stats::{Interval, Outcome, percentile_ms};

/// Latency of the direct-to-upstream baseline, subtracted to get what cch adds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Baseline {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One sample.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub elapsed_s: f64,
    pub sent: u64,
    pub completed: u64,
    pub throughput: f64,
    pub ok: u64,
    pub recovered: u64,
    pub rejected: u64,
    pub failed: u64,
    pub stream_errors: u64,
    pub transport_errors: u64,
    pub skipped: u64,
    pub not_ok_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub added_p50_ms: Option<f64>,
    pub added_p99_ms: Option<f64>,
    pub ttfb_p99_ms: Option<f64>,
    pub rss_mb: f64,
    pub cpu_pct: f64,
    pub cpu_us_per_req: Option<f64>,
    pub redis_used_mb: Option<f64>,
    pub redis_keys: Option<u64>,
    pub inflight: u64,
    pub gen_lag_ms: f64,
    pub loadavg: String,
}

/// The CSV header, matching [`Row::csv`].
pub const HEADER: &str = "elapsed_s,sent,completed,throughput_rps,ok,recovered,rejected_429,failed,stream_errors,transport_errors,skipped,p50_ms,p99_ms,max_ms,added_p50_ms,added_p99_ms,ttfb_p99_ms,rss_mb,cch_cpu_pct,cpu_us_per_req,redis_used_memory_mb,redis_keys,inflight,generator_lag_ms,loadavg";

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_default()
}

impl Row {
    /// Builds a row from an interval; `secs` is its length.
    pub fn from_interval(
        mut i: Interval,
        elapsed_s: f64,
        secs: f64,
        base: Option<Baseline>,
    ) -> Self {
        let completed = i.completed();
        let p50 = percentile_ms(&mut i.latency_us, 50.0);
        let p99 = percentile_ms(&mut i.latency_us, 99.0);
        let not_ok = completed - i.count(Outcome::Ok) - i.count(Outcome::Recovered);
        Row {
            elapsed_s,
            sent: i.sent,
            completed,
            throughput: completed as f64 / secs,
            ok: i.count(Outcome::Ok),
            recovered: i.count(Outcome::Recovered),
            rejected: i.count(Outcome::Rejected),
            failed: i.count(Outcome::Failed),
            stream_errors: i.count(Outcome::StreamError),
            transport_errors: i.count(Outcome::Transport),
            skipped: i.skipped,
            not_ok_per_s: not_ok as f64 / secs,
            p50_ms: p50,
            p99_ms: p99,
            max_ms: i.latency_us.last().map(|v| *v as f64 / 1000.0),
            added_p50_ms: base.and_then(|b| p50.map(|v| v - b.p50_ms)),
            added_p99_ms: base.and_then(|b| p99.map(|v| v - b.p99_ms)),
            ttfb_p99_ms: percentile_ms(&mut i.ttfb_us, 99.0),
            gen_lag_ms: i.max_lag.as_secs_f64() * 1000.0,
            ..Row::default()
        }
    }

    /// The row as CSV, in [`HEADER`] order.
    pub fn csv(&self) -> String {
        format!(
            "{:.1},{},{},{:.1},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.1},{:.1},{},{},{},{},{:.1},{}",
            self.elapsed_s,
            self.sent,
            self.completed,
            self.throughput,
            self.ok,
            self.recovered,
            self.rejected,
            self.failed,
            self.stream_errors,
            self.transport_errors,
            self.skipped,
            opt(self.p50_ms),
            opt(self.p99_ms),
            opt(self.max_ms),
            opt(self.added_p50_ms),
            opt(self.added_p99_ms),
            opt(self.ttfb_p99_ms),
            self.rss_mb,
            self.cpu_pct,
            opt(self.cpu_us_per_req),
            opt(self.redis_used_mb),
            self.redis_keys.map(|k| k.to_string()).unwrap_or_default(),
            self.inflight,
            self.gen_lag_ms,
            self.loadavg,
        )
    }

    /// A one-line progress report.
    pub fn line(&self) -> String {
        format!(
            "{:>6.0}s {:>7.0} req/s  ok {:>6} rec {:>4} 429 {:>5} 5xx {:>4} streamerr {:>4} net {:>3} skip {:>3} | p50 {:>7} p99 {:>7} (+{} / +{}) ms | rss {:>6.1} MB cpu {:>4.0}% {} µs/req{} | load {}",
            self.elapsed_s,
            self.throughput,
            self.ok,
            self.recovered,
            self.rejected,
            self.failed,
            self.stream_errors,
            self.transport_errors,
            self.skipped,
            opt(self.p50_ms),
            opt(self.p99_ms),
            opt(self.added_p50_ms),
            opt(self.added_p99_ms),
            self.rss_mb,
            self.cpu_pct,
            opt(self.cpu_us_per_req),
            self.redis_used_mb
                .map(|m| format!(" redis {m:.1} MB {} keys", self.redis_keys.unwrap_or(0)))
                .unwrap_or_default(),
            self.loadavg,
        )
    }
}

/// Writes rows to a CSV file as they come, flushed every row (a killed run keeps its data).
pub struct CsvWriter(std::fs::File);

impl CsvWriter {
    /// Creates the file and writes the header.
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let mut f = std::fs::File::create(path)?;
        writeln!(f, "{HEADER}")?;
        Ok(Self(f))
    }

    /// Appends a row.
    pub fn push(&mut self, r: &Row) -> std::io::Result<()> {
        writeln!(self.0, "{}", r.csv())?;
        self.0.flush()
    }
}

/// The end-of-run summary: memory growth after warm-up, latency over the whole run, counts.
pub fn summary(rows: &[Row], all_latency_us: &mut [u32], base: Option<Baseline>) -> String {
    let mut s = String::new();
    let total = |f: fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    s += &format!(
        "requests: sent {} completed {}: ok {} recovered-after-fault {} rejected-429 {} failed {} stream-errors {} transport-errors {} skipped {}\n",
        total(|r| r.sent),
        total(|r| r.completed),
        total(|r| r.ok),
        total(|r| r.recovered),
        total(|r| r.rejected),
        total(|r| r.failed),
        total(|r| r.stream_errors),
        total(|r| r.transport_errors),
        total(|r| r.skipped),
    );
    let p50 = percentile_ms(all_latency_us, 50.0);
    let p99 = percentile_ms(all_latency_us, 99.0);
    let p999 = percentile_ms(all_latency_us, 99.9);
    s += &format!(
        "latency of clean requests over the run: p50 {} p99 {} p99.9 {} ms",
        opt(p50),
        opt(p99),
        opt(p999)
    );
    if let Some(b) = base {
        s += &format!(
            "; baseline direct p50 {:.3} p99 {:.3} ms; added p50 {} p99 {} ms",
            b.p50_ms,
            b.p99_ms,
            opt(p50.map(|v| v - b.p50_ms)),
            opt(p99.map(|v| v - b.p99_ms)),
        );
    }
    s.push('\n');
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let max = rows.iter().map(|r| r.rss_mb).fold(0.0, f64::max);
        s += &format!(
            "cch RSS: first sample {:.1} MB, last {:.1} MB, max {:.1} MB",
            first.rss_mb, last.rss_mb, max
        );
        if let Some(m5) = rows.iter().find(|r| r.elapsed_s >= 300.0) {
            s += &format!(
                "; growth from minute 5 to the end {:+.1} MB",
                last.rss_mb - m5.rss_mb
            );
        }
        s.push('\n');
        let redis: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.redis_used_mb.map(|m| (r.elapsed_s, m)))
            .collect();
        if let (Some(a), Some(b)) = (redis.first(), redis.last()) {
            s += &format!(
                "Redis used_memory: first {:.1} MB, last {:.1} MB; this run's keys at the end: {}\n",
                a.1,
                b.1,
                last.redis_keys.unwrap_or(0)
            );
        }
        let cpu: Vec<f64> = rows.iter().filter_map(|r| r.cpu_us_per_req).collect();
        if !cpu.is_empty() {
            s += &format!(
                "cch CPU per completed request (mean of samples): {:.0} µs\n",
                cpu.iter().sum::<f64>() / cpu.len() as f64
            );
        }
    }
    s
}

/// The median of the samples' added p99 before an admin POST was sent, while it ran and after
/// it answered (a sample counts for a phase only when its whole interval lies inside it), with
/// the change while it ran: what a cleanup under load is judged by. `answered` is `None` when
/// the POST was still running at the end.
pub fn phases_around(rows: &[Row], interval_s: f64, sent: f64, answered: Option<f64>) -> String {
    let end = answered.unwrap_or(f64::INFINITY);
    let pick = |keep: &dyn Fn(f64, f64) -> bool| -> Vec<f64> {
        rows.iter()
            .filter(|r| keep(r.elapsed_s - interval_s, r.elapsed_s))
            .filter_map(|r| r.added_p99_ms)
            .collect()
    };
    let before = pick(&|_, to| to <= sent);
    let during = pick(&|from, to| from >= sent && to <= end);
    let after = pick(&|from, _| from >= end);
    let show = |v: &[f64]| match median(v) {
        Some(m) => format!("{m:.3} ms (n={})", v.len()),
        None => "- (n=0)".to_string(),
    };
    let change = match (median(&before), median(&during)) {
        (Some(b), Some(d)) if b > 0.0 => format!(", {:+.0} % while it ran", (d / b - 1.0) * 100.0),
        _ => String::new(),
    };
    format!(
        "added p99, median of samples: before the admin POST {}, while it ran {}, after it {}{change}\n",
        show(&before),
        show(&during),
        show(&after),
    )
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[mid]
    } else {
        (s[mid - 1] + s[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(p99: &[f64]) -> Vec<Row> {
        p99.iter()
            .enumerate()
            .map(|(i, v)| Row {
                elapsed_s: 10.0 * (i as f64 + 1.0),
                added_p99_ms: Some(*v),
                ..Row::default()
            })
            .collect()
    }

    #[test]
    fn phases_take_only_samples_wholly_inside_them() {
        // Samples end at 10, 20, …, 80 s; the POST runs from 25 to 55 s.
        let r = rows(&[1.0, 1.0, 9.0, 2.0, 2.0, 9.0, 3.0, 3.0]);
        let line = phases_around(&r, 10.0, 25.0, Some(55.0));
        assert_eq!(
            line,
            "added p99, median of samples: before the admin POST 1.000 ms (n=2), while it ran 2.000 ms (n=2), after it 3.000 ms (n=2), +100 % while it ran\n"
        );
        let open = phases_around(&r, 10.0, 25.0, None);
        assert!(open.contains("while it ran 3.000 ms (n=5)"), "{open}");
        assert!(open.contains("after it - (n=0)"), "{open}");
    }
}
