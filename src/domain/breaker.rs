//! The per-provider circuit breaker: a pure three-state machine. The caller passes the clock
//! (`now`) and stores the [`BreakerRecord`] wherever it likes (Redis, memory); every transition
//! returns the [`BreakerEvent`] it caused, for notifications.
//!
//! CLOSED: consecutive counted failures are tallied and a success resets the tally; reaching the
//! provider's failure threshold opens the breaker. OPEN: selection skips the provider until
//! `open_until` (inclusive boundary: at exactly `opened_at + open_duration` it is no longer
//! open). HALF-OPEN: at most `half_open_success_threshold` trial requests may be in flight at
//! once ([`BreakerRecord::admit`]); each trial is released by the outcome of its request or lapses
//! after a caller-chosen time, so a lost trial cannot wedge the breaker. That many consecutive
//! successes close it, any counted failure opens it again for a full duration. A failure while
//! OPEN does not extend `open_until`. A threshold of 0 or less disables the breaker (always
//! CLOSED).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::failure::{ErrorClass, counts_for_breaker};
use super::provider::BreakerSettings;

/// The three states of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    #[default]
    Closed,
    /// Selection skips the provider.
    Open,
    /// Requests may test the provider.
    HalfOpen,
}

impl BreakerState {
    /// The wire name (`closed`, `open`, `half_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// The stored state of one provider's breaker.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BreakerRecord {
    /// Current state (as stored: an OPEN record past `open_until` is half-open in effect, see
    /// [`BreakerRecord::effective`]).
    pub state: BreakerState,
    /// Consecutive counted failures (kept while OPEN and HALF-OPEN).
    pub failure_count: u32,
    /// Consecutive successes while HALF-OPEN.
    pub half_open_successes: u32,
    /// When the breaker last opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// When an OPEN breaker may be tried again.
    pub open_until: Option<DateTime<Utc>>,
    /// When the last counted failure happened.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The message of the last counted failure.
    pub last_error: Option<String>,
    /// HALF-OPEN trial requests in flight, each as the instant it lapses (absent in records
    /// written before trials existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trials: Vec<DateTime<Utc>>,
}

/// Whether one request may go to the provider now (see [`BreakerRecord::admit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// CLOSED (or disabled): traffic flows, nothing to release.
    Pass,
    /// HALF-OPEN: the request took a trial slot, released by its recorded outcome.
    Trial,
    /// Not now: OPEN (with the instant it may be tried again) or HALF-OPEN with every trial slot
    /// taken (`until: None`).
    Refused {
        /// When an OPEN breaker half-opens; `None` while half-open trials are full.
        until: Option<DateTime<Utc>>,
    },
}

/// What a transition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerEventKind {
    /// CLOSED or HALF-OPEN → OPEN.
    Opened,
    /// OPEN → HALF-OPEN (duration elapsed, or a successful probe).
    HalfOpened,
    /// HALF-OPEN → CLOSED, or an admin reset.
    Closed,
}

/// A breaker transition, as sent to the notifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerEvent {
    /// The provider.
    pub provider_id: i64,
    /// Its name at the time.
    pub provider_name: String,
    /// The transition.
    pub kind: BreakerEventKind,
    /// Consecutive failures at the time.
    pub failure_count: u32,
    /// When the provider is expected back (for `Opened`).
    pub expected_recovery: Option<DateTime<Utc>>,
    /// The last counted failure's message.
    pub last_error: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// The outcome the breaker is told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation<'a> {
    /// A successful answer.
    Success,
    /// A failure of this class with this message.
    Failure {
        /// The class (decides whether it counts).
        class: ErrorClass,
        /// The upstream message, kept as `last_error`.
        message: &'a str,
    },
}

/// A transition's result: the new record and the event, if the state changed.
pub type Step = (BreakerRecord, Option<BreakerEventKind>);

fn disabled(s: &BreakerSettings) -> bool {
    s.failure_threshold <= 0
}

fn open_duration(s: &BreakerSettings) -> Duration {
    Duration::milliseconds(s.open_duration_ms.max(0))
}

fn success_threshold(s: &BreakerSettings) -> u32 {
    u32::try_from(s.half_open_success_threshold.max(1)).unwrap_or(1)
}

/// Longest `last_error` kept (in characters).
pub const MAX_LAST_ERROR_CHARS: usize = 500;

impl BreakerRecord {
    /// The record as it is at `now`: an OPEN breaker whose time is up becomes HALF-OPEN (with the
    /// `HalfOpened` event); a disabled breaker is CLOSED.
    pub fn effective(&self, settings: &BreakerSettings, now: DateTime<Utc>) -> Step {
        if disabled(settings) {
            if self.state == BreakerState::Closed {
                return (self.clone(), None);
            }
            return (BreakerRecord::default(), Some(BreakerEventKind::Closed));
        }
        match (self.state, self.open_until) {
            (BreakerState::Open, Some(until)) if now >= until => (
                BreakerRecord {
                    state: BreakerState::HalfOpen,
                    half_open_successes: 0,
                    trials: Vec::new(),
                    ..self.clone()
                },
                Some(BreakerEventKind::HalfOpened),
            ),
            (BreakerState::Open, None) => (
                BreakerRecord {
                    state: BreakerState::HalfOpen,
                    half_open_successes: 0,
                    trials: Vec::new(),
                    ..self.clone()
                },
                Some(BreakerEventKind::HalfOpened),
            ),
            _ => (self.clone(), None),
        }
    }

    /// When the breaker is open at `now`, the instant it may be tried again.
    pub fn open_at(&self, settings: &BreakerSettings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (eff, _) = self.effective(settings, now);
        (eff.state == BreakerState::Open)
            .then_some(eff.open_until)
            .flatten()
    }

    /// The trials still in flight at `now` (lapsed ones are gone).
    pub fn live_trials(&self, now: DateTime<Utc>) -> usize {
        self.trials.iter().filter(|t| **t > now).count()
    }

    /// Whether selection must skip the provider at `now`, without taking anything:
    /// `Some(until)` when OPEN (`until` = when it half-opens) or HALF-OPEN with every trial slot
    /// taken (`until` = `None`); `None` when a request could go.
    pub fn unavailable(
        &self,
        settings: &BreakerSettings,
        now: DateTime<Utc>,
    ) -> Option<Option<DateTime<Utc>>> {
        let (eff, _) = self.effective(settings, now);
        match eff.state {
            BreakerState::Closed => None,
            BreakerState::Open => Some(eff.open_until),
            BreakerState::HalfOpen => {
                let full = eff.live_trials(now) >= success_threshold(settings) as usize;
                full.then_some(None)
            }
        }
    }

    /// Asks to send one request at `now`. CLOSED passes; OPEN refuses; HALF-OPEN takes a trial
    /// slot lapsing at `now + trial_ttl` while fewer than `half_open_success_threshold` are live,
    /// else refuses. The step holds the record to store (with the trial taken and lapsed trials
    /// dropped) and the OPEN → HALF-OPEN expiry event, if any.
    pub fn admit(
        &self,
        settings: &BreakerSettings,
        trial_ttl: Duration,
        now: DateTime<Utc>,
    ) -> (Step, Admission) {
        let (mut cur, expired) = self.effective(settings, now);
        let admission = match cur.state {
            BreakerState::Closed => Admission::Pass,
            BreakerState::Open => Admission::Refused {
                until: cur.open_until,
            },
            BreakerState::HalfOpen => {
                cur.trials.retain(|t| *t > now);
                if cur.trials.len() < success_threshold(settings) as usize {
                    cur.trials.push(now + trial_ttl.max(Duration::zero()));
                    Admission::Trial
                } else {
                    Admission::Refused { until: None }
                }
            }
        };
        ((cur, expired), admission)
    }

    /// Gives back one trial slot (the oldest; lapsed ones are dropped first).
    fn release_trial(mut self, now: DateTime<Utc>) -> Self {
        self.trials.retain(|t| *t > now);
        if let Some(i) = self
            .trials
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| **t)
            .map(|(i, _)| i)
        {
            self.trials.remove(i);
        }
        self
    }

    /// Applies an outcome at `now`. `network_errors_count` is
    /// `ENABLE_CIRCUIT_BREAKER_ON_NETWORK_ERRORS`; failures that do not count leave the record as
    /// it is (apart from the OPEN → HALF-OPEN expiry).
    pub fn observe(
        &self,
        obs: &Observation<'_>,
        settings: &BreakerSettings,
        network_errors_count: bool,
        now: DateTime<Utc>,
    ) -> Step {
        let (cur, expired) = self.effective(settings, now);
        if disabled(settings) {
            return (cur, expired);
        }
        let (next, event) = match obs {
            Observation::Success => cur.release_trial(now).on_success(settings),
            Observation::Failure { class, message } => {
                if !counts_for_breaker(*class, network_errors_count) {
                    // Does not count, but a trial it held is free again.
                    (cur.release_trial(now), None)
                } else {
                    cur.on_failure(settings, message, now)
                }
            }
        };
        (next, event.or(expired))
    }

    fn on_success(self, settings: &BreakerSettings) -> Step {
        match self.state {
            BreakerState::Closed => (
                BreakerRecord {
                    failure_count: 0,
                    ..self
                },
                None,
            ),
            BreakerState::HalfOpen => {
                let successes = self.half_open_successes.saturating_add(1);
                if successes >= success_threshold(settings) {
                    (BreakerRecord::default(), Some(BreakerEventKind::Closed))
                } else {
                    (
                        BreakerRecord {
                            half_open_successes: successes,
                            ..self
                        },
                        None,
                    )
                }
            }
            // A late success of a request sent before the breaker opened changes nothing.
            BreakerState::Open => (self, None),
        }
    }

    fn on_failure(self, settings: &BreakerSettings, message: &str, now: DateTime<Utc>) -> Step {
        let failure_count = self.failure_count.saturating_add(1);
        let base = BreakerRecord {
            failure_count,
            last_failure_at: Some(now),
            last_error: Some(message.chars().take(MAX_LAST_ERROR_CHARS).collect()),
            ..self
        };
        let open = |r: BreakerRecord| {
            (
                BreakerRecord {
                    state: BreakerState::Open,
                    half_open_successes: 0,
                    trials: Vec::new(),
                    opened_at: Some(now),
                    open_until: Some(now + open_duration(settings)),
                    ..r
                },
                Some(BreakerEventKind::Opened),
            )
        };
        match base.state {
            BreakerState::Closed => {
                let threshold = u32::try_from(settings.failure_threshold).unwrap_or(u32::MAX);
                if failure_count >= threshold {
                    open(base)
                } else {
                    (base, None)
                }
            }
            BreakerState::HalfOpen => open(base),
            // Already open: counted, but the open period is not extended.
            BreakerState::Open => (base, None),
        }
    }

    /// A successful probe: OPEN → HALF-OPEN early; other states are unchanged.
    pub fn probe_succeeded(&self, settings: &BreakerSettings, now: DateTime<Utc>) -> Step {
        let (cur, expired) = self.effective(settings, now);
        if cur.state == BreakerState::Open {
            return (
                BreakerRecord {
                    state: BreakerState::HalfOpen,
                    half_open_successes: 0,
                    trials: Vec::new(),
                    ..cur
                },
                Some(BreakerEventKind::HalfOpened),
            );
        }
        (cur, expired)
    }

    /// The event a transition of `kind` on this (new) record describes.
    pub fn event(
        &self,
        kind: BreakerEventKind,
        provider_id: i64,
        provider_name: &str,
        now: DateTime<Utc>,
    ) -> BreakerEvent {
        BreakerEvent {
            provider_id,
            provider_name: provider_name.to_string(),
            kind,
            failure_count: self.failure_count,
            expected_recovery: match kind {
                BreakerEventKind::Opened => self.open_until,
                _ => None,
            },
            last_error: self.last_error.clone(),
            at: now,
        }
    }
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;
