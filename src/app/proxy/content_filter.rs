//! Stage 1b of the pipeline: the sensitive-word filter. The text the user sent (see
//! `domain::user_text`) is checked against the snapshot's compiled rules before any limit is
//! consulted or provider chosen; a match refuses the request with 400 in the client's format,
//! naming the rule's id (never the word), and logs the refusal with the rule.
//!
//! Coding clients resend the whole conversation on every turn, so almost all of a request's
//! text was already checked on the previous one. Parts found clean are remembered by a keyed
//! 64-bit hash (per-process random key, so no client can aim for a collision) against the exact
//! rule set they were checked with; a later request only scans the parts it adds. A change of
//! rules starts the memory afresh.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use crate::domain::client_error::GatewayErrorKind;
use crate::domain::sensitive_words::WordSet;
use crate::domain::user_text::user_texts;

use super::inbound::Inbound;
use super::reject::RejectReason;
use super::{ProxyResponse, ProxyService};

/// Parts shorter than this are scanned every time (cheaper than remembering them).
const MIN_REMEMBERED_BYTES: usize = 512;
/// Bound on remembered clean parts (8 bytes each); the memory is cleared when it is full.
const MAX_REMEMBERED_PARTS: usize = 65_536;

/// Hashes of text parts found clean, and the rule set they were checked against.
#[derive(Default)]
pub(super) struct CleanParts {
    hasher: foldhash::quality::RandomState,
    state: Mutex<CleanState>,
}

#[derive(Default)]
struct CleanState {
    /// Held so its address cannot be reused by another set while the hashes refer to it.
    rules: Option<Arc<WordSet>>,
    /// Bounded by [`MAX_REMEMBERED_PARTS`].
    hashes: HashSet<u64, foldhash::fast::RandomState>,
}

impl CleanParts {
    fn hash(&self, text: &str) -> Option<u64> {
        (text.len() >= MIN_REMEMBERED_BYTES).then(|| self.hasher.hash_one(text))
    }

    /// Which of `hashes` were found clean against `rules` before.
    fn known(&self, rules: &Arc<WordSet>, hashes: &[Option<u64>]) -> Vec<bool> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let same = state.rules.as_ref().is_some_and(|r| Arc::ptr_eq(r, rules));
        hashes
            .iter()
            .map(|h| same && h.is_some_and(|h| state.hashes.contains(&h)))
            .collect()
    }

    /// Remembers parts found clean against `rules`.
    fn remember(&self, rules: &Arc<WordSet>, clean: impl Iterator<Item = u64>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.rules.as_ref().is_some_and(|r| Arc::ptr_eq(r, rules)) {
            state.rules = Some(Arc::clone(rules));
            state.hashes.clear();
        }
        for h in clean {
            if state.hashes.len() >= MAX_REMEMBERED_PARTS {
                state.hashes.clear();
            }
            state.hashes.insert(h);
        }
    }
}

impl ProxyService {
    /// Refuses a request whose user text breaks a sensitive-word rule. Costs nothing when no
    /// rule is enabled. A body whose text cannot be read is refused too (fail closed: the
    /// filter must not be bypassed by a shape it cannot read).
    pub(super) fn content_filter(&self, inb: &Inbound) -> Result<(), ProxyResponse> {
        let words = &inb.snap.sensitive_words;
        if words.is_empty() {
            return Ok(());
        }
        let texts = match user_texts(inb.body.raw()) {
            Ok(t) => t,
            Err(e) => {
                let message =
                    format!("the request body could not be read for the content filter: {e}");
                return Err(self.fail_logged(
                    inb,
                    GatewayErrorKind::InvalidRequest,
                    &message,
                    &message,
                ));
            }
        };
        let hashes: Vec<Option<u64>> = texts.iter().map(|t| self.clean_parts.hash(t)).collect();
        let known = self.clean_parts.known(words, &hashes);
        let hit = texts
            .iter()
            .zip(&known)
            .filter(|(_, known)| !**known)
            .find_map(|(t, _)| words.check(t));
        let Some(hit) = hit else {
            let fresh = hashes
                .iter()
                .zip(&known)
                .filter(|(_, known)| !**known)
                .filter_map(|(h, _)| *h);
            self.clean_parts.remember(words, fresh);
            return Ok(());
        };
        self.metrics.rejected.add(RejectReason::SensitiveWord);
        let client = format!(
            "this request was blocked by the content filter (sensitive-word rule #{})",
            hit.rule_id
        );
        let log = format!(
            "{}: rule #{} ({})",
            RejectReason::SensitiveWord.as_str(),
            hit.rule_id,
            hit.match_type.as_str()
        );
        Err(self.fail_logged(inb, GatewayErrorKind::InvalidRequest, &client, &log))
    }
}
