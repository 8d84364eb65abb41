//! The fast paths of [`super::WordSet::check`]: a sampled 4-byte-gram filter in front of the
//! words automaton, and the required literals of patterns (so a pattern runs only on text that
//! contains one of them). Both are necessary conditions only: what they let through is decided
//! by the same automaton and regexes as before, so the results do not change.
//!
//! **Sampled filter.** Every occurrence of a word of at least `m` bytes covers `m` bytes of the
//! text, so probing the 4-byte gram at every `s = m - 3` bytes lands inside every occurrence,
//! on one of the word's first `s` grams. Those grams (ASCII case folded, see [`gram`]) are set
//! in a bitmap; a probe that misses proves no word starts in the `s` bytes before it. A probe
//! that hits is checked by the word's first gram, then by an anchored search at each candidate
//! start. Words are split by length into tiers (each with its own stride), and words under 5
//! bytes (stride 1: no gain) stay in a plain automaton scan.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, Input, MatchKind, StartKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Bytes per sampled gram.
const Q: usize = 4;
/// Words shorter than this (bytes) cannot be sampled with a stride above 1.
const MIN_SAMPLED_LEN: usize = Q + 1;
/// Words at least this long (bytes) form the long tier (stride ≥ 9).
const LONG_LEN: usize = 12;
/// Largest stride (more would only add bitmap entries and candidate starts per hit).
const MAX_STRIDE: usize = 16;
/// Bitmap bits per entry (about 3 % of bits set, so about 3 % of probes on unrelated text
/// pass the first test).
const BITS_PER_ENTRY: usize = 32;
/// Smallest and largest bitmap (bits): at most 2 MB whatever the number of words.
const MIN_BITS: usize = 1 << 12;
const MAX_BITS: usize = 1 << 24;

/// The gram at `i`, every byte OR 0x20: ASCII letters fold to lower case. Other bytes may fold
/// together too (`@` with `` ` ``), which only adds candidates: the same fold is applied to
/// words and text, so an ASCII-case-insensitive occurrence always has equal grams.
#[inline(always)]
fn gram(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + Q)?;
    let mut a = [0u8; Q];
    a.copy_from_slice(s);
    Some(u32::from_le_bytes(a) | 0x2020_2020)
}

/// A bitmap of hashed grams.
#[derive(Debug)]
struct GramBits {
    words: Vec<u64>,
    shift: u32,
}

impl GramBits {
    fn new(entries: usize) -> Self {
        let bits = entries
            .saturating_mul(BITS_PER_ENTRY)
            .next_power_of_two()
            .clamp(MIN_BITS, MAX_BITS);
        Self {
            words: vec![0; bits / 64],
            shift: 32 - bits.trailing_zeros(),
        }
    }

    #[inline(always)]
    fn index(&self, g: u32) -> usize {
        (g.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    fn set(&mut self, g: u32) {
        let i = self.index(g);
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    #[inline(always)]
    fn get(&self, g: u32) -> bool {
        let i = self.index(g);
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Words of one length range behind one sampled filter.
#[derive(Debug)]
struct Tier {
    stride: usize,
    /// The first `stride` grams of every word.
    any: GramBits,
    /// The first gram of every word.
    first: GramBits,
    /// This tier's words, anchored searches only.
    ac: AhoCorasick,
}

impl Tier {
    fn build(words: &[&str]) -> Option<Self> {
        let min = words.iter().map(|w| w.len()).min()?;
        let stride = min.checked_sub(Q - 1)?.clamp(1, MAX_STRIDE);
        let mut any = GramBits::new(words.len().saturating_mul(stride));
        let mut first = GramBits::new(words.len());
        for w in words {
            let b = w.as_bytes();
            for g in (0..stride).filter_map(|k| gram(b, k)) {
                any.set(g);
            }
            if let Some(g) = gram(b, 0) {
                first.set(g);
            }
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Anchored)
            .build(words)
            .ok()?;
        Some(Self {
            stride,
            any,
            first,
            ac,
        })
    }

    /// The end of some word occurrence in `b`, if there is one.
    fn find_end(&self, b: &[u8]) -> Option<usize> {
        let last = b.len().checked_sub(Q)?;
        let mut p = self.stride - 1;
        loop {
            // The last probe is clamped to the last gram, so the tail is covered too.
            let at = p.min(last);
            if gram(b, at).is_some_and(|g| self.any.get(g)) {
                for j in at.saturating_sub(self.stride - 1)..=at {
                    if gram(b, j).is_some_and(|g| self.first.get(g))
                        && let Some(m) = self
                            .ac
                            .find(Input::new(b).range(j..).anchored(Anchored::Yes))
                    {
                        return Some(m.end());
                    }
                }
            }
            if at == last {
                return None;
            }
            p += self.stride;
        }
    }
}

/// All words of a snapshot: tiers for finding whether one occurs, the full automaton for which.
#[derive(Debug)]
pub(super) struct WordScan {
    tiers: Vec<Tier>,
    /// Words under [`MIN_SAMPLED_LEN`] bytes, scanned as before (unanchored).
    short: Option<AhoCorasick>,
    /// All words: on a hit, the first match as the plain automaton reports it.
    all: AhoCorasick,
}

impl WordScan {
    /// Builds the scan; `None` if an automaton cannot be built (then the caller reports the
    /// words as bad, as before).
    pub(super) fn build(words: &[String]) -> Option<Self> {
        let all = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(words)
            .ok()?;
        let pick = |lo: usize, hi: usize| -> Vec<&str> {
            words
                .iter()
                .map(String::as_str)
                .filter(|w| (lo..hi).contains(&w.len()))
                .collect()
        };
        let short = pick(0, MIN_SAMPLED_LEN);
        let short = if short.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&short)
                    .ok()?,
            )
        };
        let mut tiers = Vec::new();
        for (lo, hi) in [(MIN_SAMPLED_LEN, LONG_LEN), (LONG_LEN, usize::MAX)] {
            let w = pick(lo, hi);
            if !w.is_empty() {
                tiers.push(Tier::build(&w)?);
            }
        }
        Some(Self { tiers, short, all })
    }

    /// The first word match in `text` (pattern index), the same one
    /// `AhoCorasick::find` on all words returns.
    pub(super) fn find(&self, text: &str) -> Option<usize> {
        let b = text.as_bytes();
        let end = self
            .tiers
            .iter()
            .filter_map(|t| t.find_end(b))
            .chain(
                self.short
                    .as_ref()
                    .and_then(|ac| ac.find(b))
                    .map(|m| m.end()),
            )
            .min()?;
        // Some word ends at `end`, so the first match (by end) lies within `..end`.
        self.all
            .find(Input::new(b).range(..end))
            .map(|m| m.pattern().as_usize())
    }

    /// Heap bytes of the automata and bitmaps.
    pub(super) fn memory_usage(&self) -> usize {
        self.all.memory_usage()
            + self.short.as_ref().map_or(0, AhoCorasick::memory_usage)
            + self
                .tiers
                .iter()
                .map(|t| t.ac.memory_usage() + (t.any.words.len() + t.first.words.len()) * 8)
                .sum::<usize>()
    }
}

/// Shortest literal worth a prefilter (bytes): shorter ones occur everywhere.
const MIN_LITERAL_LEN: usize = 3;
/// Most literals per pattern (after folding ASCII case).
const MAX_LITERALS: usize = 64;

/// Literals one of which every match of `pattern` (case-insensitive, Unicode, as the patterns
/// are compiled) must contain, ASCII lower-cased and deduplicated (they are searched with
/// ASCII case folding); `None` when the pattern has no usable set (it may match the empty
/// string, starts and ends with a large class or repetition, or its literals are too short or
/// too many).
pub(super) fn required_literals(pattern: &str, nest_limit: u32) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .unicode(true)
        .nest_limit(nest_limit)
        .build()
        .parse(pattern)
        .ok()?;
    let mut best: Option<Vec<Vec<u8>>> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let seq = Extractor::new().kind(kind).extract(&hir);
        let Some(lits) = seq.literals() else {
            continue;
        };
        let mut folded: Vec<Vec<u8>> = lits
            .iter()
            .map(|l| l.as_bytes().to_ascii_lowercase())
            .collect();
        folded.sort();
        folded.dedup();
        let min = folded.iter().map(Vec::len).min().unwrap_or(0);
        if folded.is_empty() || folded.len() > MAX_LITERALS || min < MIN_LITERAL_LEN {
            continue;
        }
        let better = best.as_ref().is_none_or(|b| {
            let bmin = b.iter().map(Vec::len).min().unwrap_or(0);
            (min, std::cmp::Reverse(folded.len())) > (bmin, std::cmp::Reverse(b.len()))
        });
        if better {
            best = Some(folded);
        }
    }
    best
}
