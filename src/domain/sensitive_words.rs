//! The sensitive-word filter (the original's 「敏感词」): admin rules that refuse a request when
//! the text a user sends contains a word, equals a phrase, or matches a pattern. All enabled
//! rules are compiled once per configuration snapshot into one Aho-Corasick automaton (words),
//! one set of exact phrases and one `RegexSet` (patterns), so a check costs one pass over the
//! text per kind, whatever the number of rules.
//!
//! Matching is case-insensitive and Unicode-aware, and never copies the text: the automaton
//! folds ASCII case as it scans, Chinese has no case and matches as is, and the rare word with
//! non-ASCII cased letters (`Ärger`) is matched as a Unicode case-insensitive literal by the
//! pattern set. Exact phrases compare the Unicode lower case of one (short) text part. Patterns
//! run on the `regex` crate's linear-time engines with size limits, so no pattern can make a
//! check take more than linear time.
//!
//! Two necessary-condition filters keep a check of a 1 MB body under a millisecond (see
//! `sensitive_words_scan.rs`): words of 5 bytes or more are found by probing sampled 4-byte
//! grams against a bitmap before the automaton is asked, and a pattern whose every match
//! contains one of a few literals runs (as its own regex) only on text where one of them
//! occurs. Neither changes which rule a text breaks.
use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind as AcMatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

use super::error::ValidationError;

#[path = "sensitive_words_scan.rs"]
mod scan;
use scan::{WordScan, required_literals};

/// How a rule's text is compared with what the user sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordMatch {
    /// The text contains the word anywhere.
    Contains,
    /// One whole text part (a message, a block), trimmed, equals the phrase.
    Exact,
    /// A regular expression found anywhere in the text.
    Regex,
}

impl WordMatch {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contains => "contains",
            Self::Exact => "exact",
            Self::Regex => "regex",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "contains" => Ok(Self::Contains),
            "exact" => Ok(Self::Exact),
            "regex" => Ok(Self::Regex),
            _ => Err(ValidationError::new(
                "match_type",
                "must be one of: contains, exact, regex",
            )),
        }
    }
}

/// One admin rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitiveWord {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// The word, phrase or pattern.
    pub word: String,
    /// How it is compared.
    pub match_type: WordMatch,
    /// Disabled rules are kept but not checked.
    pub enabled: bool,
    /// Free text for the admin (why the rule exists).
    pub note: String,
}

/// Longest accepted word or pattern (characters).
pub const MAX_WORD_CHARS: usize = 500;
/// Largest compiled program of one pattern (bytes).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Largest compiled program of all patterns together (bytes); a snapshot whose patterns exceed
/// it drops the regex part and says so (see [`WordSet::compile`]).
const REGEX_SET_SIZE_LIMIT: usize = 64 << 20;
/// Cache of the lazy DFA of all patterns together (bytes).
const REGEX_DFA_LIMIT: usize = 8 << 20;
/// Nesting limit of a pattern.
const REGEX_NEST_LIMIT: u32 = 64;
/// Most patterns run on their own behind a literal prefilter; the rest stay in the set.
const MAX_PREFILTERED: usize = 512;
/// Smallest lazy DFA cache of one prefiltered pattern (bytes); they share
/// [`REGEX_DFA_LIMIT`] otherwise.
const MIN_SINGLE_DFA_LIMIT: usize = 128 << 10;
/// A text with literals of more prefiltered patterns than this runs the whole set instead (one
/// pass rather than many).
const MAX_TRIGGERED: usize = 8;

fn pattern_builder<I, S>(patterns: I, size_limit: usize) -> RegexSetBuilder
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut b = RegexSetBuilder::new(patterns);
    b.case_insensitive(true)
        .unicode(true)
        .size_limit(size_limit)
        .dfa_size_limit(REGEX_DFA_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT);
    b
}

/// One pattern on its own, with the same options as the set.
fn single_pattern(pattern: &str, dfa_limit: usize) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .unicode(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(dfa_limit)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .ok()
}

impl SensitiveWord {
    /// Checks an admin-written rule: a non-empty single-line word of at most
    /// [`MAX_WORD_CHARS`], a pattern that compiles within the size limit, a single-line note.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let w = self.word.trim();
        if w.is_empty() {
            return Err(ValidationError::new("word", "must not be empty"));
        }
        if w.chars().count() > MAX_WORD_CHARS {
            return Err(ValidationError::new(
                "word",
                format!("at most {MAX_WORD_CHARS} characters"),
            ));
        }
        super::text::single_line("word", &self.word)?;
        super::text::multi_line("note", &self.note)?;
        if self.match_type == WordMatch::Regex {
            pattern_builder([w], REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| ValidationError::new("word", format!("invalid pattern: {e}")))?;
        }
        Ok(())
    }
}

/// Whether a word has letters with case outside ASCII (`Ä`, `Σ`); Chinese has none.
fn has_unicode_case(w: &str) -> bool {
    w.chars()
        .any(|c| !c.is_ascii() && (c.is_lowercase() || c.is_uppercase()))
}

/// Which rule refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordHit {
    /// The rule's id.
    pub rule_id: i64,
    /// How it matched.
    pub match_type: WordMatch,
}

/// All enabled rules of a snapshot, compiled.
#[derive(Debug, Default)]
pub struct WordSet {
    /// Words without non-ASCII case, matched with ASCII case folding on the text as is.
    words: Option<WordScan>,
    /// Rule id of each automaton pattern.
    word_ids: Vec<i64>,
    /// Lower-cased, trimmed phrases → rule id.
    exact: HashMap<String, i64>,
    /// Longest exact phrase in bytes (longer text parts cannot equal one).
    exact_max_len: usize,
    /// All patterns (run whole when a text has the literals of many prefiltered patterns).
    patterns: Option<RegexSet>,
    /// The patterns without a usable literal prefilter, and their index in `patterns`.
    residual: Option<RegexSet>,
    /// Index in `patterns` of each `residual` pattern.
    residual_idx: Vec<usize>,
    /// Patterns with required literals: index in `patterns` and the pattern on its own.
    prefiltered: Vec<(usize, Regex)>,
    /// The required literals of all prefiltered patterns (ASCII case folded).
    literals: Option<AhoCorasick>,
    /// For each literal, the `prefiltered` entries that require it.
    literal_owners: Vec<Vec<usize>>,
    /// The rules this set was compiled from (so an unchanged list can reuse it).
    source: Vec<SensitiveWord>,
    /// Rule id and kind of each pattern (literal words with non-ASCII case are patterns too).
    pattern_ids: Vec<(i64, WordMatch)>,
}

impl WordSet {
    /// Compiles the enabled rules. Rules that cannot compile (stored before validation, or a
    /// pattern set over the total size limit) are skipped and returned by id, so the snapshot
    /// can report them; the rest still apply.
    pub fn compile(rules: &[SensitiveWord]) -> (Self, Vec<i64>) {
        let mut set = Self {
            source: rules.to_vec(),
            ..Self::default()
        };
        let mut words = Vec::new();
        let mut patterns = Vec::new();
        let mut bad = Vec::new();
        for r in rules.iter().filter(|r| r.enabled) {
            let w = r.word.trim();
            if w.is_empty() {
                bad.push(r.id);
                continue;
            }
            match r.match_type {
                // Words whose letters all fold as ASCII (or have no case, like Chinese) go to
                // the automaton, which folds ASCII case as it scans; a word with non-ASCII
                // cased letters (`Ärger`) becomes a case-insensitive literal pattern instead,
                // so the text never has to be lower-cased (a copy of the whole body).
                WordMatch::Contains if !has_unicode_case(w) => {
                    words.push(w.to_string());
                    set.word_ids.push(r.id);
                }
                WordMatch::Contains => {
                    patterns.push(regex::escape(w));
                    set.pattern_ids.push((r.id, WordMatch::Contains));
                }
                WordMatch::Exact => {
                    let phrase = w.to_lowercase();
                    set.exact_max_len = set.exact_max_len.max(phrase.len());
                    set.exact.entry(phrase).or_insert(r.id);
                }
                WordMatch::Regex => {
                    if pattern_builder([w], REGEX_SIZE_LIMIT).build().is_ok() {
                        patterns.push(w.to_string());
                        set.pattern_ids.push((r.id, WordMatch::Regex));
                    } else {
                        bad.push(r.id);
                    }
                }
            }
        }
        if !words.is_empty() {
            match WordScan::build(&words) {
                Some(scan) => set.words = Some(scan),
                None => bad.append(&mut set.word_ids),
            }
        }
        if !patterns.is_empty() {
            match pattern_builder(&patterns, REGEX_SET_SIZE_LIMIT).build() {
                Ok(rs) => {
                    set.patterns = Some(rs);
                    set.split_patterns(&patterns);
                }
                Err(_) => bad.extend(set.pattern_ids.drain(..).map(|(id, _)| id)),
            }
        }
        (set, bad)
    }

    /// Gives each pattern with required literals its own regex behind a literal automaton;
    /// the others form the residual set. Anything that fails to build stays in the residual
    /// set (the whole set already compiled, so a subset does too).
    fn split_patterns(&mut self, patterns: &[String]) {
        let mut with_literals: Vec<(usize, Vec<Vec<u8>>)> = patterns
            .iter()
            .enumerate()
            .filter_map(|(i, p)| required_literals(p, REGEX_NEST_LIMIT).map(|l| (i, l)))
            .take(MAX_PREFILTERED)
            .collect();
        let dfa_limit = (REGEX_DFA_LIMIT / with_literals.len().max(1)).max(MIN_SINGLE_DFA_LIMIT);
        with_literals.retain(|(i, _)| {
            patterns
                .get(*i)
                .and_then(|p| single_pattern(p, dfa_limit))
                .map(|re| self.prefiltered.push((*i, re)))
                .is_some()
        });
        let mut owners: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (k, (_, lits)) in with_literals.into_iter().enumerate() {
            for l in lits {
                owners.entry(l).or_default().push(k);
            }
        }
        let (lits, owners): (Vec<Vec<u8>>, Vec<Vec<usize>>) = owners.into_iter().unzip();
        let literals = if lits.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(AcMatchKind::Standard)
                .build(&lits)
                .ok()
        };
        if literals.is_none() {
            // No literal automaton: every pattern stays in the residual set.
            self.prefiltered.clear();
        }
        self.literals = literals;
        self.literal_owners = if self.literals.is_some() {
            owners
        } else {
            Vec::new()
        };
        let mut residual = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            if !self.prefiltered.iter().any(|(j, _)| *j == i) {
                residual.push(p.as_str());
                self.residual_idx.push(i);
            }
        }
        if !residual.is_empty() {
            match pattern_builder(&residual, REGEX_SET_SIZE_LIMIT).build() {
                Ok(rs) => self.residual = Some(rs),
                Err(_) => {
                    // Cannot happen (a subset of a set that compiled); run the whole set.
                    self.prefiltered.clear();
                    self.literals = None;
                    self.literal_owners.clear();
                    self.residual_idx.clear();
                }
            }
        }
    }

    /// Whether this set was compiled from exactly `rules` (then a snapshot reload keeps it,
    /// and with it the proxy's cache of text already found clean).
    pub fn compiled_from(&self, rules: &[SensitiveWord]) -> bool {
        self.source == rules
    }

    /// Whether no rule is enabled (the proxy then skips reading the body's text).
    pub fn is_empty(&self) -> bool {
        self.words.is_none() && self.exact.is_empty() && self.patterns.is_none()
    }

    /// Heap bytes of the words' automata and filters (the patterns' engines do not report
    /// theirs).
    pub fn words_memory_usage(&self) -> usize {
        self.words.as_ref().map_or(0, WordScan::memory_usage)
    }

    /// The first rule one text part breaks, if any.
    pub fn check(&self, text: &str) -> Option<WordHit> {
        if text.is_empty() || self.is_empty() {
            return None;
        }
        if let Some(scan) = &self.words
            && let Some(i) = scan.find(text)
            && let Some(&rule_id) = self.word_ids.get(i)
        {
            return Some(WordHit {
                rule_id,
                match_type: WordMatch::Contains,
            });
        }
        if !self.exact.is_empty() {
            let t = text.trim();
            if t.len() <= self.exact_max_len {
                let key = t.to_lowercase();
                if let Some(&rule_id) = self.exact.get(&key) {
                    return Some(WordHit {
                        rule_id,
                        match_type: WordMatch::Exact,
                    });
                }
            }
        }
        if let Some(i) = self.first_pattern(text)
            && let Some(&(rule_id, match_type)) = self.pattern_ids.get(i)
        {
            return Some(WordHit {
                rule_id,
                match_type,
            });
        }
        None
    }

    /// The lowest-numbered pattern `text` matches, as `RegexSet::matches` on all patterns
    /// would report it first.
    fn first_pattern(&self, text: &str) -> Option<usize> {
        let all = self.patterns.as_ref()?;
        // `is_match` stops at the first match; only a hit pays for finding which pattern.
        let first_of = |rs: &RegexSet| {
            if rs.is_match(text) {
                rs.matches(text).iter().next()
            } else {
                None
            }
        };
        let Some(literals) = &self.literals else {
            return first_of(all);
        };
        // Prefiltered patterns whose literal occurs (a necessary condition for a match).
        let mut triggered: Vec<usize> = Vec::new();
        for m in literals.find_overlapping_iter(text) {
            for &k in self
                .literal_owners
                .get(m.pattern().as_usize())
                .map_or(&[][..], Vec::as_slice)
            {
                if !triggered.contains(&k) {
                    triggered.push(k);
                }
            }
            if triggered.len() > MAX_TRIGGERED {
                return first_of(all);
            }
            if triggered.len() == self.prefiltered.len() {
                break;
            }
        }
        let mut best = self
            .residual
            .as_ref()
            .and_then(first_of)
            .and_then(|i| self.residual_idx.get(i).copied());
        for k in triggered {
            if let Some((i, re)) = self.prefiltered.get(k)
                && best.is_none_or(|b| *i < b)
                && re.is_match(text)
            {
                best = Some(*i);
            }
        }
        best
    }
}

#[cfg(test)]
#[path = "sensitive_words_tests.rs"]
mod tests;
