//! The provider chain: one entry per upstream attempt of a request, stored in the request log so
//! admins can see which providers were tried, why, and how each attempt ended.

use serde::{Deserialize, Serialize};

use super::failure::ErrorClass;
use super::routing::{Exclusion, ExclusionReason};

/// Why this provider was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainReason {
    /// The session's bound provider was reused.
    SessionReuse,
    /// The first pick of the routing rules.
    InitialSelection,
    /// Another try on the same provider after a retryable failure.
    Retry,
    /// A different provider after the previous one failed.
    Failover,
    /// The same provider again after cch repaired the request it refused (thinking blocks
    /// stripped, see `thinking_rectifier`).
    RectifiedRetry,
}

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainOutcome {
    /// The upstream answered successfully.
    Success,
    /// The attempt failed (see the error class).
    Failure,
    /// The client went away during the attempt.
    ClientAbort,
}

/// One upstream attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainEntry {
    /// The provider tried.
    pub provider_id: i64,
    /// Its name at the time.
    pub provider_name: String,
    /// Why it was tried.
    pub reason: ChainReason,
    /// How it ended.
    pub outcome: ChainOutcome,
    /// The upstream HTTP status, when one arrived.
    pub status: Option<u16>,
    /// The failure class, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    /// The upstream error message (capped), for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// Whether the request was converted to another wire format for this provider.
    pub converted: bool,
    /// Providers left out when this one was selected, with reasons (selection entries only;
    /// at most [`MAX_LISTED_EXCLUSIONS`], see [`listed_exclusions`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<Exclusion>,
    /// How many more providers were left out than `excluded` lists.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excluded_more: u32,
    /// What cch recognised in this attempt's answer (a fake success such as `fake_200_html` or
    /// `empty_stream`, or `thinking_signature` for a rejected signature that was rectified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Most exclusions one chain entry lists. A request-log row must stay a few KB whatever the
/// number of providers: with 1,000 providers (most of them disabled) the full list made every
/// row ~150 KB, and the log queue, bounded in rows, then held gigabytes when the database
/// fell behind.
pub const MAX_LISTED_EXCLUSIONS: usize = 20;

/// The exclusions a chain entry lists, and how many more there were. Providers left out by
/// their live state (tried already, breaker open, a limit reached, sessions full, a lower
/// priority, a conversion avoided) explain a choice better than configuration does (disabled,
/// another format, model or group), so they are listed first.
pub fn listed_exclusions(mut all: Vec<Exclusion>) -> (Vec<Exclusion>, u32) {
    if all.len() <= MAX_LISTED_EXCLUSIONS {
        return (all, 0);
    }
    all.sort_by_key(|e| match e.reason {
        ExclusionReason::Disabled
        | ExclusionReason::FormatMismatch
        | ExclusionReason::ModelNotAllowed
        | ExclusionReason::GroupMismatch => 1,
        _ => 0,
    });
    let more = all.len() - MAX_LISTED_EXCLUSIONS;
    all.truncate(MAX_LISTED_EXCLUSIONS);
    (all, u32::try_from(more).unwrap_or(u32::MAX))
}

/// The whole chain of a request, as stored in the log's `provider_chain` column.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderChain(pub Vec<ChainEntry>);

impl ProviderChain {
    /// Appends an attempt.
    pub fn push(&mut self, entry: ChainEntry) {
        self.0.push(entry);
    }

    /// The provider that finally succeeded, if any.
    pub fn final_provider(&self) -> Option<i64> {
        self.0
            .iter()
            .rev()
            .find(|e| e.outcome == ChainOutcome::Success)
            .map(|e| e.provider_id)
    }

    /// The ids of providers that failed in this request (to exclude on the next pick).
    pub fn failed_providers(&self) -> impl Iterator<Item = i64> + '_ {
        self.0
            .iter()
            .filter(|e| e.outcome == ChainOutcome::Failure)
            .map(|e| e.provider_id)
    }

    /// The chain as JSON for the request log.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Array(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::routing::ExclusionReason;

    fn entry(id: i64, reason: ChainReason, outcome: ChainOutcome) -> ChainEntry {
        ChainEntry {
            provider_id: id,
            provider_name: format!("p{id}"),
            reason,
            outcome,
            status: None,
            error_class: None,
            error: None,
            duration_ms: 10,
            converted: false,
            excluded: vec![],
            excluded_more: 0,
            detection: None,
        }
    }

    #[test]
    fn serialises_with_snake_case_names_and_round_trips() {
        let mut e = entry(1, ChainReason::InitialSelection, ChainOutcome::Failure);
        e.status = Some(529);
        e.error_class = Some(ErrorClass::ProviderError);
        e.error = Some("Overloaded".into());
        e.excluded = vec![Exclusion {
            provider_id: 2,
            provider_name: "p2".into(),
            reason: ExclusionReason::Disabled,
        }];
        let mut chain = ProviderChain::default();
        chain.push(e);
        chain.push(entry(3, ChainReason::Failover, ChainOutcome::Success));
        let v = chain.to_json();
        assert_eq!(v[0]["reason"], "initial_selection");
        assert_eq!(v[0]["outcome"], "failure");
        assert_eq!(v[0]["error_class"], "provider_error");
        assert_eq!(v[0]["excluded"][0]["reason"]["type"], "disabled");
        assert_eq!(v[1]["reason"], "failover");
        assert!(v[1].get("error").is_none() && v[1].get("excluded").is_none());
        let back: ProviderChain = serde_json::from_value(v).unwrap();
        assert_eq!(back, chain);
        assert_eq!(chain.final_provider(), Some(3));
        assert_eq!(chain.failed_providers().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn empty_chain() {
        let c = ProviderChain::default();
        assert_eq!(c.to_json(), serde_json::json!([]));
        assert_eq!(c.final_provider(), None);
        let abort = ProviderChain(vec![entry(
            1,
            ChainReason::SessionReuse,
            ChainOutcome::ClientAbort,
        )]);
        assert_eq!(abort.final_provider(), None);
        assert_eq!(abort.failed_providers().count(), 0);
    }

    #[test]
    fn a_selection_among_a_thousand_providers_lists_twenty_live_reasons_first() {
        let exclusion = |id: i64, reason: ExclusionReason| Exclusion {
            provider_id: id,
            provider_name: format!("provider-{id:04}"),
            reason,
        };
        let mut all: Vec<Exclusion> = (1..=995)
            .map(|id| exclusion(id, ExclusionReason::Disabled))
            .collect();
        all.extend((996..=1000).map(|id| exclusion(id, ExclusionReason::ConcurrencyFull)));
        let (listed, more) = listed_exclusions(all);
        assert_eq!((listed.len(), more), (MAX_LISTED_EXCLUSIONS, 980));
        assert!(
            listed[..5]
                .iter()
                .all(|e| e.reason == ExclusionReason::ConcurrencyFull),
            "the live reasons come first"
        );
        let mut e = entry(7, ChainReason::InitialSelection, ChainOutcome::Success);
        (e.excluded, e.excluded_more) = (listed, more);
        let json = serde_json::to_string(&ProviderChain(vec![e])).unwrap();
        assert!(
            json.len() < 2_000,
            "a row stays small: {} bytes",
            json.len()
        );
        assert!(json.contains("\"excluded_more\":980"));

        let few = vec![exclusion(1, ExclusionReason::Disabled)];
        assert_eq!(listed_exclusions(few.clone()), (few, 0));
    }
}
