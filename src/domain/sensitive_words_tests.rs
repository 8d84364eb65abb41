use super::{SensitiveWord, WordMatch, WordSet};

fn rule(id: i64, word: &str, match_type: WordMatch) -> SensitiveWord {
    SensitiveWord {
        id,
        word: word.into(),
        match_type,
        enabled: true,
        note: String::new(),
    }
}

#[test]
fn contains_is_case_insensitive_in_ascii_and_unicode() {
    let (set, bad) = WordSet::compile(&[
        rule(1, "Secret Project", WordMatch::Contains),
        rule(2, "机密", WordMatch::Contains),
        rule(3, "ÄRGER", WordMatch::Contains),
    ]);
    assert!(bad.is_empty());
    assert_eq!(
        set.check("about the SECRET project plan")
            .map(|h| h.rule_id),
        Some(1)
    );
    assert_eq!(set.check("这是公司机密文件").map(|h| h.rule_id), Some(2));
    assert_eq!(set.check("kein ärger hier").map(|h| h.rule_id), Some(3));
    // Non-ASCII text with an ASCII word elsewhere in it.
    assert_eq!(
        set.check("中文 secret PROJECT 中文").map(|h| h.rule_id),
        Some(1)
    );
    assert_eq!(set.check("nothing to see"), None);
}

#[test]
fn exact_matches_a_whole_trimmed_part_only() {
    let (set, _) = WordSet::compile(&[rule(7, "Drop Table", WordMatch::Exact)]);
    assert_eq!(set.check("  drop TABLE \n").map(|h| h.rule_id), Some(7));
    assert_eq!(set.check("please drop table now"), None);
}

#[test]
fn regex_is_case_insensitive_and_linear_time() {
    let (set, bad) = WordSet::compile(&[
        rule(9, r"sk-[a-z0-9]{20,}", WordMatch::Regex),
        rule(10, r"(a+)+$", WordMatch::Regex),
    ]);
    assert!(bad.is_empty());
    let hit = set.check("key SK-ABCDEFGHIJKLMNOPQRSTUV").expect("hit");
    assert_eq!((hit.rule_id, hit.match_type), (9, WordMatch::Regex));
    // Catastrophic in a backtracking engine (exponential: this would not finish); linear
    // here. The end-to-end test times it.
    let evil = format!("{}!", "a".repeat(100_000));
    assert_eq!(set.check(&evil), None);
}

#[test]
fn disabled_and_invalid_rules_do_not_apply() {
    let mut off = rule(1, "word", WordMatch::Contains);
    off.enabled = false;
    let (set, bad) = WordSet::compile(&[off, rule(2, "(unclosed", WordMatch::Regex)]);
    assert_eq!(bad, [2]);
    assert!(set.is_empty());
    assert_eq!(set.check("word (unclosed"), None);
}

#[test]
fn validation_rejects_empty_long_multiline_and_bad_patterns() {
    assert!(rule(0, "ok", WordMatch::Contains).validate().is_ok());
    assert!(rule(0, "  ", WordMatch::Contains).validate().is_err());
    assert!(rule(0, "a\nb", WordMatch::Contains).validate().is_err());
    assert!(
        rule(0, &"x".repeat(501), WordMatch::Contains)
            .validate()
            .is_err()
    );
    let e = rule(0, "(", WordMatch::Regex).validate().unwrap_err();
    assert_eq!(e.field, "word");
    // A pattern whose compiled program exceeds the size limit.
    assert!(
        rule(0, r"\w{1000}\w{1000}", WordMatch::Regex)
            .validate()
            .is_err()
    );
    assert!(WordMatch::parse("fuzzy").is_err());
}

/// A small deterministic generator for the equivalence tests below.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Letters without non-ASCII case (a word with one, such as `é`, is matched as a pattern, after
/// the words, so a plain automaton over all words would not be the reference for it).
const ALPHABET: &[&str] = &["a", "b", "c", "x", "-", "_", "0", "机", "密", "の", " "];

fn random_word(r: &mut Lcg, len: u64) -> String {
    (0..len)
        .map(|_| ALPHABET[r.below(ALPHABET.len() as u64) as usize])
        .collect()
}

/// Flips the case of some ASCII letters (the filter and the automaton fold ASCII case).
fn recase(r: &mut Lcg, s: &str) -> String {
    s.chars()
        .map(|c| {
            if r.below(2) == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// The sampled-gram filter and tiers give the same answer as one plain automaton over all the
/// words (the implementation before the filter), on texts with and without the words, in any
/// ASCII case, at any position, including the very start and end of the text.
#[test]
fn filtered_word_scan_agrees_with_a_plain_automaton() {
    let mut r = Lcg(7);
    for round in 0..300 {
        let n = 1 + r.below(40) as usize;
        let words: Vec<String> = (0..n)
            .map(|_| {
                let len = 1 + r.below(20);
                random_word(&mut r, len)
            })
            .filter(|w| !w.trim().is_empty() && w.trim() == w)
            .collect();
        if words.is_empty() {
            continue;
        }
        let rules: Vec<SensitiveWord> = words
            .iter()
            .enumerate()
            .map(|(i, w)| rule(i as i64 + 1, w, WordMatch::Contains))
            .collect();
        let (set, bad) = WordSet::compile(&rules);
        assert!(bad.is_empty());
        let plain = aho_corasick::AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(&words)
            .expect("automaton");
        for _ in 0..20 {
            let len = r.below(200);
            let mut text = random_word(&mut r, len);
            if r.below(2) == 0 {
                let pick = r.below(words.len() as u64) as usize;
                let w = recase(&mut r, &words[pick]);
                let at = r.below(3);
                text = match at {
                    0 => format!("{w}{text}"),
                    1 => format!("{text}{w}"),
                    _ => {
                        let cut = text
                            .char_indices()
                            .map(|(i, _)| i)
                            .nth(text.chars().count() / 2)
                            .unwrap_or(0);
                        format!("{}{w}{}", &text[..cut], &text[cut..])
                    }
                };
            }
            let expected = plain.find(&text).map(|m| m.pattern().as_usize() as i64 + 1);
            let got = set.check(&text).map(|h| h.rule_id);
            assert_eq!(got, expected, "round {round}: {words:?} in {text:?}");
        }
    }
}

/// Patterns behind the literal prefilter report what the whole pattern set reports: the
/// lowest-numbered matching pattern, or none when only a literal occurs.
#[test]
fn prefiltered_patterns_agree_with_the_whole_set() {
    let patterns = [
        r"tok1_[a-f0-9]{24}\b",
        r"sk-[A-Za-z0-9]{20,}",
        r"foo|bar\d+",
        r"\d{16}",
        r"(?i)ärger\s+\w+",
        r"x*",
        r"secret(key|token)=\S+",
        r"[a-z]+@corp\.example",
    ];
    let rules: Vec<SensitiveWord> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| rule(i as i64 + 1, p, WordMatch::Regex))
        .collect();
    let (set, bad) = WordSet::compile(&rules);
    assert!(bad.is_empty());
    let whole = regex::RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .build()
        .expect("set");
    // (An empty text is never checked: it holds nothing to refuse.)
    for text in [
        "nothing here",
        "tok1_ but not followed by hex",
        "tok1_0123456789abcdef01234567 end",
        "TOK1_0123456789ABCDEF01234567",
        "an sk- prefix alone",
        "key sk-abcdefghijklmnopqrstuvwxyz",
        "bar without digits",
        "bar42",
        "FOO",
        "card 1234567812345678",
        "ÄRGER  bitte",
        "Ärger",
        "secretkey=hunter2 and secret alone",
        "mail bob@corp.example",
        "@corp.example alone",
    ] {
        let expected = whole.matches(text).iter().next().map(|i| i as i64 + 1);
        let got = set.check(text).map(|h| h.rule_id);
        assert_eq!(got, expected, "{text:?}");
    }
}

/// A text holding the literals of many prefiltered patterns still reports the lowest one.
#[test]
fn many_triggered_patterns_fall_back_to_the_whole_set() {
    let rules: Vec<SensitiveWord> = (0..20)
        .map(|i| rule(i + 1, &format!(r"lit{i:02}x\d"), WordMatch::Regex))
        .collect();
    let (set, _) = WordSet::compile(&rules);
    let text: String = (0..20).rev().map(|i| format!("lit{i:02}x ")).collect();
    assert_eq!(set.check(&text), None, "literals alone never match");
    let text = format!("{text} lit07x5 lit03x9");
    assert_eq!(set.check(&text).map(|h| h.rule_id), Some(4));
}
