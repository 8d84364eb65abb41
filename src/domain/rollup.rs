//! Hourly roll-ups (the usage ledger): what the request log says, summed per UTC hour and per
//! (user, key, provider, model, endpoint format, outcome class). Roll-ups are written with the
//! log rows they summarise and are never deleted by log cleanup, so statistics and quota
//! recomputes stay exact after the log is gone.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::request_log::RequestLog;

/// Seconds in one roll-up bucket (a UTC hour).
pub const HOUR_SECS: i64 = 3600;

/// Upper bounds (ms, inclusive) of the time-to-first-byte histogram kept in each roll-up; the
/// last bucket (index `TTFB_BOUNDS_MS.len()`) holds everything slower. p50/p95 are read from it
/// (interpolated inside a bucket), so they survive log cleanup.
pub const TTFB_BOUNDS_MS: [i64; 11] = [
    100, 250, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 30_000,
];

/// Histogram buckets per roll-up row.
pub const TTFB_BUCKETS: usize = TTFB_BOUNDS_MS.len() + 1;

/// How a request ended, coarsely: one roll-up row per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeClass {
    /// 2xx/3xx.
    Success,
    /// 429: refused by a limit or rate-limited upstream.
    RateLimited,
    /// 499: the client went away.
    Cancelled,
    /// Any other 4xx.
    ClientError,
    /// 5xx.
    ServerError,
}

impl OutcomeClass {
    /// The class of an HTTP status returned to the client.
    pub fn of_status(status: i32) -> Self {
        match status {
            429 => Self::RateLimited,
            499 => Self::Cancelled,
            400..=498 => Self::ClientError,
            s if s >= 500 => Self::ServerError,
            _ => Self::Success,
        }
    }

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RateLimited => "rate_limited",
            Self::Cancelled => "cancelled",
            Self::ClientError => "client_error",
            Self::ServerError => "server_error",
        }
    }

    /// Whether requests of this class count as errors.
    pub fn is_error(self) -> bool {
        self != Self::Success
    }
}

/// The identity of one roll-up row. Missing ids are stored as 0 and a missing model as "",
/// so the key is a plain unique tuple in both databases.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    /// Start of the UTC hour, in epoch seconds.
    pub hour: i64,
    /// User id, 0 when unknown.
    pub user_id: i64,
    /// Key id, 0 when unknown.
    pub key_id: i64,
    /// Final provider id, 0 when none.
    pub provider_id: i64,
    /// The model billed: the forwarded model, else the requested one, else "".
    pub model: String,
    /// Client wire format (`claude`, `openai`, `response`, `gemini`).
    pub endpoint_format: String,
    /// Outcome class.
    pub outcome: OutcomeClass,
}

/// The sums of one roll-up row. Cost is split into whole micro-dollars and the remaining
/// pico-dollars (0..1e6), so both databases add integers exactly and no sum overflows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupSums {
    /// Requests.
    pub requests: i64,
    /// Requests whose outcome is an error.
    pub errors: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache-read tokens.
    pub cache_read_tokens: i64,
    /// Cache writes, 5 minute TTL.
    pub cache_write_5m_tokens: i64,
    /// Cache writes, 1 hour TTL.
    pub cache_write_1h_tokens: i64,
    /// Whole micro-dollars of cost.
    pub cost_micros: i64,
    /// Pico-dollars of cost beyond `cost_micros` (each row adds 0..1e6).
    pub cost_pico: i64,
    /// Sum of durations (ms).
    pub duration_ms: i64,
    /// Sum of times to first byte (ms), over the requests that have one.
    pub ttfb_ms: i64,
    /// Requests with a time to first byte.
    pub ttfb_count: i64,
    /// Time-to-first-byte histogram (see [`TTFB_BOUNDS_MS`]).
    pub ttfb_hist: [i64; TTFB_BUCKETS],
    /// Requests converted to another wire format.
    pub converted: i64,
}

/// Pico-dollars in one micro-dollar.
const PICO_PER_MICRO: i64 = 1_000_000;

/// Splits a cost into whole micro-dollars and the pico-dollar rest (0..1e6), rounding to
/// 12 decimals as the log column does. Costs beyond the i64 range saturate.
pub fn split_cost(usd: Decimal) -> (i64, i64) {
    let pico = usd
        .round_dp_with_strategy(12, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .checked_mul(Decimal::from(1_000_000_000_000_i64))
        .unwrap_or(Decimal::MAX);
    let micros = (pico / Decimal::from(PICO_PER_MICRO)).floor();
    let rest = pico - micros * Decimal::from(PICO_PER_MICRO);
    let to_i64 = |d: Decimal| -> i64 {
        use rust_decimal::prelude::ToPrimitive;
        d.to_i64().unwrap_or(if d.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        })
    };
    (to_i64(micros), to_i64(rest))
}

/// The cost given by summed micro- and pico-dollars.
pub fn join_cost(micros: i64, pico: i64) -> Decimal {
    (Decimal::from(micros) / Decimal::from(PICO_PER_MICRO)
        + Decimal::from(pico) / Decimal::from(1_000_000_000_000_i64))
    .normalize()
}

/// The histogram bucket of a time to first byte.
pub fn ttfb_bucket(ms: i64) -> usize {
    TTFB_BOUNDS_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(TTFB_BOUNDS_MS.len())
}

/// The start of the UTC hour holding `epoch_secs`.
pub fn hour_of(epoch_secs: i64) -> i64 {
    epoch_secs.div_euclid(HOUR_SECS) * HOUR_SECS
}

/// Whether the request was converted to another wire format (the last attempt of its chain).
pub fn was_converted(log: &RequestLog) -> bool {
    log.provider_chain
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e.get("converted"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// The roll-up key of one log row.
pub fn key_of(log: &RequestLog) -> RollupKey {
    RollupKey {
        hour: hour_of(log.created_at.timestamp()),
        user_id: log.user_id.unwrap_or(0),
        key_id: log.key_id.unwrap_or(0),
        provider_id: log.provider_id.unwrap_or(0),
        model: log
            .forwarded_model
            .clone()
            .or_else(|| log.requested_model.clone())
            .unwrap_or_default(),
        endpoint_format: log.client_format.clone(),
        outcome: OutcomeClass::of_status(log.status_code),
    }
}

impl RollupSums {
    /// Adds one log row.
    pub fn add(&mut self, log: &RequestLog) {
        let outcome = OutcomeClass::of_status(log.status_code);
        let (micros, pico) = split_cost(log.cost_usd);
        self.requests += 1;
        self.errors += i64::from(outcome.is_error());
        self.input_tokens = self.input_tokens.saturating_add(log.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(log.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.saturating_add(log.cache_read_tokens);
        self.cache_write_5m_tokens = self
            .cache_write_5m_tokens
            .saturating_add(log.cache_creation_5m_tokens);
        self.cache_write_1h_tokens = self
            .cache_write_1h_tokens
            .saturating_add(log.cache_creation_1h_tokens);
        self.cost_micros = self.cost_micros.saturating_add(micros);
        self.cost_pico = self.cost_pico.saturating_add(pico);
        self.duration_ms = self.duration_ms.saturating_add(log.duration_ms);
        if let Some(t) = log.ttfb_ms {
            self.ttfb_ms = self.ttfb_ms.saturating_add(t);
            self.ttfb_count += 1;
            if let Some(slot) = self.ttfb_hist.get_mut(ttfb_bucket(t)) {
                *slot += 1;
            }
        }
        self.converted += i64::from(was_converted(log));
    }

    /// Adds another row's sums (roll-ups of roll-ups: hourly totals and period tiers).
    pub fn merge(&mut self, other: &RollupSums) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(other.cache_read_tokens);
        self.cache_write_5m_tokens = self
            .cache_write_5m_tokens
            .saturating_add(other.cache_write_5m_tokens);
        self.cache_write_1h_tokens = self
            .cache_write_1h_tokens
            .saturating_add(other.cache_write_1h_tokens);
        self.cost_micros = self.cost_micros.saturating_add(other.cost_micros);
        self.cost_pico = self.cost_pico.saturating_add(other.cost_pico);
        self.duration_ms = self.duration_ms.saturating_add(other.duration_ms);
        self.ttfb_ms = self.ttfb_ms.saturating_add(other.ttfb_ms);
        self.ttfb_count = self.ttfb_count.saturating_add(other.ttfb_count);
        for (a, b) in self.ttfb_hist.iter_mut().zip(other.ttfb_hist.iter()) {
            *a = a.saturating_add(*b);
        }
        self.converted = self.converted.saturating_add(other.converted);
    }

    /// The summed cost.
    pub fn cost(&self) -> Decimal {
        join_cost(self.cost_micros, self.cost_pico)
    }
}

/// Sums log rows into roll-up rows, ordered by key (a stable order keeps concurrent upserts
/// from deadlocking each other in Postgres).
pub fn summarise<'a>(
    logs: impl IntoIterator<Item = &'a RequestLog>,
) -> Vec<(RollupKey, RollupSums)> {
    // Bounded by the batch it summarises.
    let mut by_key: HashMap<RollupKey, RollupSums> = HashMap::new();
    for log in logs {
        by_key.entry(key_of(log)).or_default().add(log);
    }
    let mut rows: Vec<(RollupKey, RollupSums)> = by_key.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// A quantile (0..=1) estimated from a time-to-first-byte histogram: linear inside the bucket
/// that holds it; the open last bucket answers its lower bound. `None` for an empty histogram.
pub fn histogram_quantile(hist: &[i64; TTFB_BUCKETS], q: f64) -> Option<f64> {
    let total: i64 = hist.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut seen = 0.0;
    for (i, n) in hist.iter().enumerate() {
        let n = *n as f64;
        if n > 0.0 && seen + n >= rank {
            let low = if i == 0 { 0 } else { TTFB_BOUNDS_MS[i - 1] } as f64;
            let Some(high) = TTFB_BOUNDS_MS.get(i) else {
                return Some(low);
            };
            let frac = ((rank - seen) / n).clamp(0.0, 1.0);
            return Some(low + frac * (*high as f64 - low));
        }
        seen += n;
    }
    TTFB_BOUNDS_MS.last().map(|b| *b as f64)
}

#[cfg(test)]
#[path = "rollup_tests.rs"]
mod tests;
