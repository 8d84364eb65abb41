use std::str::FromStr;

use serde_json::json;

use super::*;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn sonnet() -> ModelPrice {
    ModelPrice {
        model: "claude-sonnet-4-5".into(),
        input_per_mtok: d("3"),
        output_per_mtok: d("15"),
        cache_write_5m_per_mtok: d("3.75"),
        cache_write_1h_per_mtok: d("6"),
        cache_read_per_mtok: d("0.3"),
    }
}

#[test]
fn cost_sums_every_token_kind_exactly() {
    let u = Usage {
        input_tokens: 1_000,
        output_tokens: 2_000,
        cache_creation_5m_tokens: 10_000,
        cache_creation_1h_tokens: 100_000,
        cache_read_tokens: 1_000_000,
    };
    // 0.003 + 0.03 + 0.0375 + 0.6 + 0.3
    assert_eq!(cost(&u, Some(&sonnet()), Decimal::ONE), (d("0.9705"), true));
    assert_eq!(cost(&u, Some(&sonnet()), d("1.5")), (d("1.45575"), true));
    assert_eq!(
        cost(&u, Some(&sonnet()), Decimal::ZERO),
        (Decimal::ZERO, true)
    );
    assert_eq!(cost(&u, None, Decimal::ONE), (Decimal::ZERO, false));
    let one = Usage {
        output_tokens: 1,
        ..Usage::default()
    };
    assert_eq!(cost(&one, Some(&sonnet()), Decimal::ONE).0, d("0.000015"));
}

#[test]
fn cost_never_panics_on_huge_numbers() {
    let u = Usage {
        input_tokens: u64::MAX,
        output_tokens: u64::MAX,
        ..Usage::default()
    };
    let mut p = sonnet();
    p.input_per_mtok = d("1000000");
    let (c, known) = cost(&u, Some(&p), d("1000"));
    assert!(known && c > Decimal::ZERO);
}

#[test]
fn finds_prices_by_exact_prefixed_and_dated_names() {
    let prices = default_prices();
    let name = |m: &str| find_price(&prices, m).map(|p| p.model.clone());
    assert_eq!(name("claude-sonnet-4-5"), Some("claude-sonnet-4-5".into()));
    assert_eq!(
        name("claude-sonnet-4-5-20250929"),
        Some("claude-sonnet-4-5".into())
    );
    assert_eq!(
        name("anthropic/claude-sonnet-4-5-20250929"),
        Some("claude-sonnet-4-5".into())
    );
    assert_eq!(
        name("claude-sonnet-4-5@20250929"),
        Some("claude-sonnet-4-5".into())
    );
    assert_eq!(name("Claude-Opus-4-1"), Some("claude-opus-4-1".into()));
    assert_eq!(
        name("claude-3-5-haiku-20241022"),
        Some("claude-3-5-haiku".into())
    );
    assert_eq!(name("gpt-4o-2024-08-06"), Some("gpt-4o".into()));
    assert_eq!(name("openai/gpt-5-2025-08-07"), Some("gpt-5".into()));
    assert_eq!(name("gpt-5-mini"), Some("gpt-5-mini".into()));
    assert_eq!(name("models/gemini-2.5-pro"), Some("gemini-2.5-pro".into()));
    assert_eq!(name("unknown-model"), None);
    assert_eq!(name(""), None);
    // An exact entry wins over a stripped one.
    let mut ps = prices.clone();
    let mut dated = sonnet();
    dated.model = "claude-sonnet-4-5-20250929".into();
    dated.input_per_mtok = d("9");
    ps.push(dated);
    assert_eq!(
        find_price(&ps, "claude-sonnet-4-5-20250929")
            .unwrap()
            .input_per_mtok,
        d("9")
    );
}

#[test]
fn date_suffixes() {
    assert_eq!(
        strip_date_suffix("claude-sonnet-4-20250514"),
        "claude-sonnet-4"
    );
    assert_eq!(strip_date_suffix("gpt-4.1-2025-04-14"), "gpt-4.1");
    assert_eq!(strip_date_suffix("x@20250101"), "x");
    assert_eq!(strip_date_suffix("claude-sonnet-4-5"), "claude-sonnet-4-5");
    assert_eq!(strip_date_suffix("20250514"), "20250514");
    assert_eq!(strip_date_suffix("-20250514"), "-20250514");
    assert_eq!(strip_date_suffix("model-1234567"), "model-1234567");
    assert_eq!(strip_date_suffix("é-20250514"), "é");
}

#[test]
fn default_table_is_valid_and_consistent() {
    let prices = default_prices();
    assert!(prices.len() >= 25);
    let mut names = std::collections::HashSet::new();
    for p in &prices {
        assert_eq!(p.validate(), Ok(()), "{}", p.model);
        assert!(names.insert(p.model.clone()), "duplicate {}", p.model);
        assert!(p.input_per_mtok > Decimal::ZERO && p.output_per_mtok > p.input_per_mtok);
        if p.model.starts_with("claude") {
            assert_eq!(
                p.cache_write_5m_per_mtok,
                p.input_per_mtok * d("1.25"),
                "{}",
                p.model
            );
            assert_eq!(p.cache_write_1h_per_mtok, p.input_per_mtok * d("2"));
            assert_eq!(p.cache_read_per_mtok, p.input_per_mtok * d("0.1"));
        }
    }
    let opus = find_price(&prices, "claude-opus-4-5-20251101").unwrap();
    assert_eq!(
        (opus.input_per_mtok, opus.output_per_mtok),
        (d("5"), d("25"))
    );
}

#[test]
fn decimals_from_json_numbers_are_exact() {
    assert_eq!(decimal_from_json(&json!(3e-06)), Some(d("0.000003")));
    assert_eq!(decimal_from_json(&json!(1.25e-5)), Some(d("0.0000125")));
    assert_eq!(decimal_from_json(&json!(0.0000003)), Some(d("0.0000003")));
    assert_eq!(decimal_from_json(&json!(0)), Some(Decimal::ZERO));
    assert_eq!(decimal_from_json(&json!("1.5E-7")), Some(d("0.00000015")));
    assert_eq!(decimal_from_json(&json!(null)), None);
    assert_eq!(decimal_from_json(&json!("abc")), None);
    let parsed: Value = serde_json::from_str(r#"{"x": 3.75e-06}"#).unwrap();
    assert_eq!(decimal_from_json(&parsed["x"]), Some(d("0.00000375")));
}

#[test]
fn imports_litellm_prices() {
    let doc: Value = serde_json::from_str(
        r#"{
        "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0},
        "claude-sonnet-4-5-20250929": {
            "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
            "cache_creation_input_token_cost": 3.75e-06,
            "cache_creation_input_token_cost_above_1hr": 6e-06,
            "cache_read_input_token_cost": 3e-07, "litellm_provider": "anthropic"},
        "claude-haiku-4-5": {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06},
        "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                   "cache_read_input_token_cost": 1.25e-06},
        "dall-e-3": {"output_cost_per_pixel": 0.0},
        "embed-only": {"input_cost_per_token": 1e-07},
        "negative": {"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06},
        "stringy": {"input_cost_per_token": "0.000001", "output_cost_per_token": "2e-6"},
        "weird": 5
    }"#,
    )
    .unwrap();
    let mut ps = parse_litellm_prices(&doc).unwrap();
    ps.sort_by(|a, b| a.model.cmp(&b.model));
    let names: Vec<&str> = ps.iter().map(|p| p.model.as_str()).collect();
    assert_eq!(
        names,
        [
            "claude-haiku-4-5",
            "claude-sonnet-4-5-20250929",
            "gpt-4o",
            "stringy"
        ]
    );
    let s = &ps[1];
    assert_eq!(
        (
            s.input_per_mtok,
            s.output_per_mtok,
            s.cache_write_5m_per_mtok,
            s.cache_write_1h_per_mtok,
            s.cache_read_per_mtok
        ),
        (d("3"), d("15"), d("3.75"), d("6"), d("0.3"))
    );
    let h = &ps[0];
    assert_eq!(
        (
            h.cache_write_5m_per_mtok,
            h.cache_write_1h_per_mtok,
            h.cache_read_per_mtok
        ),
        (d("1.25"), d("2"), d("0.1")),
        "Claude fallbacks"
    );
    let g = &ps[2];
    assert_eq!(
        (
            g.cache_write_5m_per_mtok,
            g.cache_write_1h_per_mtok,
            g.cache_read_per_mtok
        ),
        (d("2.5"), d("2.5"), d("1.25"))
    );
    assert_eq!(
        (ps[3].input_per_mtok, ps[3].output_per_mtok),
        (d("1"), d("2"))
    );
    assert_eq!(
        parse_litellm_prices(&json!([])),
        Err(PriceImportError::NotAnObject)
    );
}
