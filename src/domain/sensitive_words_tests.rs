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
