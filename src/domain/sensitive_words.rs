//! The sensitive-word filter (the original's 「敏感词」): admin rules that refuse a request when
//! the text a user sends contains a word, equals a phrase, or matches a pattern. All enabled
//! rules are compiled once per configuration snapshot into one Aho-Corasick automaton (words),
//! one set of exact phrases and one `RegexSet` (patterns), so a check costs one pass over the
//! text per kind, whatever the number of rules.
//!
//! Matching is case-insensitive and Unicode-aware, and never copies the text: the automaton
//! folds ASCII case as it scans, Chinese has no case and matches as is, and the rare word with
//! non-ASCII cased letters (`Ärger`) is matched as a Unicode case-insensitive literal by the
//! pattern set. Exact phrases compare the Unicode lower case of one (short) text part. Patterns run on the `regex` crate's linear-time engines with size limits, so
//! no pattern can make a check take more than linear time.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind as AcMatchKind};
use regex::{RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

use super::error::ValidationError;

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
        .nest_limit(64);
    b
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
    words: Option<AhoCorasick>,
    /// Rule id of each automaton pattern.
    word_ids: Vec<i64>,
    /// Lower-cased, trimmed phrases → rule id.
    exact: HashMap<String, i64>,
    /// Longest exact phrase in bytes (longer text parts cannot equal one).
    exact_max_len: usize,
    /// All patterns.
    patterns: Option<RegexSet>,
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
            match AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(AcMatchKind::Standard)
                .build(&words)
            {
                Ok(ac) => set.words = Some(ac),
                Err(_) => {
                    bad.append(&mut set.word_ids);
                }
            }
        }
        if !patterns.is_empty() {
            match pattern_builder(&patterns, REGEX_SET_SIZE_LIMIT).build() {
                Ok(rs) => set.patterns = Some(rs),
                Err(_) => bad.extend(set.pattern_ids.drain(..).map(|(id, _)| id)),
            }
        }
        (set, bad)
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

    /// The first rule one text part breaks, if any.
    pub fn check(&self, text: &str) -> Option<WordHit> {
        if text.is_empty() || self.is_empty() {
            return None;
        }
        if let Some(ac) = &self.words
            && let Some(m) = ac.find(text)
            && let Some(&rule_id) = self.word_ids.get(m.pattern().as_usize())
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
        // `is_match` stops at the first match; only a hit pays for finding which pattern.
        if let Some(rs) = &self.patterns
            && rs.is_match(text)
            && let Some(i) = rs.matches(text).iter().next()
            && let Some(&(rule_id, match_type)) = self.pattern_ids.get(i)
        {
            return Some(WordHit {
                rule_id,
                match_type,
            });
        }
        None
    }
}

#[cfg(test)]
#[path = "sensitive_words_tests.rs"]
mod tests;
