//! Request outcomes and latencies, gathered per sampling interval and for the whole run.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a request ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete answer to a request without an injected fault.
    Ok,
    /// A complete answer although the first upstream attempt had a fault (cch retried).
    Recovered,
    /// 429 from a limit.
    Rejected,
    /// Another non-2xx status.
    Failed,
    /// 200, but the stream ended with an error event or without `message_stop`.
    StreamError,
    /// The connection to cch failed.
    Transport,
}

const OUTCOMES: usize = 6;

impl Outcome {
    fn index(self) -> usize {
        self as usize
    }
}

/// Counts and latencies of one interval.
#[derive(Default, Clone)]
pub struct Interval {
    /// Requests sent.
    pub sent: u64,
    /// Requests completed, by outcome.
    pub done: [u64; OUTCOMES],
    /// Sends skipped because too many requests were in flight.
    pub skipped: u64,
    /// Latencies (µs) of clean requests: no fault, complete answer.
    pub latency_us: Vec<u32>,
    /// Time to first byte (µs) of clean streaming requests.
    pub ttfb_us: Vec<u32>,
    /// Longest delay of a send behind its schedule (the load generator's own lag).
    pub max_lag: Duration,
}

impl Interval {
    /// Completed requests.
    pub fn completed(&self) -> u64 {
        self.done.iter().sum()
    }

    /// Completed requests with this outcome.
    pub fn count(&self, o: Outcome) -> u64 {
        self.done[o.index()]
    }
}

/// Most slow requests kept for `slow.csv` (the rest are counted in the intervals only).
const MAX_SLOW: usize = 100_000;

/// Where requests report; the sampler takes one [`Interval`] at a time.
pub struct Recorder {
    current: Mutex<Interval>,
    /// Requests in flight.
    pub inflight: AtomicU64,
    /// Clean requests slower than this are listed with their send time (`--slow-ms`).
    slow_threshold: Option<Duration>,
    /// (send time since `origin`, latency) of slow requests, at most [`MAX_SLOW`].
    slow: Mutex<Vec<(Duration, Duration)>>,
    origin: std::time::Instant,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::with_slow_log(None)
    }

    /// A recorder that also lists clean requests slower than `threshold`.
    pub fn with_slow_log(threshold: Option<Duration>) -> Self {
        Self {
            current: Mutex::new(Interval::default()),
            inflight: AtomicU64::new(0),
            slow_threshold: threshold,
            slow: Mutex::new(Vec::new()),
            origin: std::time::Instant::now(),
        }
    }

    /// The slow requests seen so far: (send time since the recorder was made, latency).
    pub fn slow_requests(&self) -> Vec<(Duration, Duration)> {
        self.slow.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Interval) -> R) -> R {
        let mut g = self.current.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// A request is about to be sent `lag` behind its schedule.
    pub fn sent(&self, lag: Duration) {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        self.with(|i| {
            i.sent += 1;
            i.max_lag = i.max_lag.max(lag);
        });
    }

    /// A send was skipped (too many in flight).
    pub fn skipped(&self) {
        self.with(|i| i.skipped += 1);
    }

    /// A request ended.
    pub fn done(&self, outcome: Outcome, latency: Duration, ttfb: Option<Duration>) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
        if outcome == Outcome::Ok && self.slow_threshold.is_some_and(|t| latency >= t) {
            let sent = std::time::Instant::now()
                .saturating_duration_since(self.origin)
                .saturating_sub(latency);
            let mut slow = self.slow.lock().unwrap_or_else(|e| e.into_inner());
            if slow.len() < MAX_SLOW {
                slow.push((sent, latency));
            }
        }
        self.with(|i| {
            i.done[outcome.index()] += 1;
            if outcome == Outcome::Ok {
                i.latency_us.push(micros(latency));
                if let Some(t) = ttfb {
                    i.ttfb_us.push(micros(t));
                }
            }
        });
    }

    /// Takes what was gathered since the last call.
    pub fn take(&self) -> Interval {
        self.with(std::mem::take)
    }
}

/// Nearest-rank percentile (`p` in 0–100) of unsorted µs values, in ms.
pub fn percentile_ms(values: &mut [u32], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1] as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_intervals() {
        let mut v: Vec<u32> = (1..=100).map(|n| n * 1000).collect();
        assert_eq!(percentile_ms(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&mut [], 99.0), None);
        let r = Recorder::new();
        r.sent(Duration::from_millis(3));
        r.done(Outcome::Ok, Duration::from_millis(2), None);
        r.sent(Duration::ZERO);
        r.done(Outcome::Rejected, Duration::from_millis(1), None);
        let i = r.take();
        assert_eq!(
            (i.sent, i.completed(), i.count(Outcome::Rejected)),
            (2, 2, 1)
        );
        assert_eq!(i.latency_us, vec![2000]);
        assert_eq!(i.max_lag, Duration::from_millis(3));
        assert_eq!(r.take().sent, 0);
    }
}
