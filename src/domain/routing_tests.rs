use rust_decimal::Decimal;

use super::*;
use crate::domain::provider::ProviderType;
use crate::domain::provider::tests::sample;

/// splitmix64: a tiny deterministic PRNG for tests.
struct SplitMix(u64);
impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn prov(id: i64, ty: ProviderType) -> Provider {
    let mut p = sample();
    p.id = id;
    p.name = format!("p{id}");
    p.provider_type = ty;
    p
}

fn req(model: &str) -> RouteRequest<'_> {
    RouteRequest {
        format: ClientFormat::Claude,
        model,
        user_groups: "",
        native_only: false,
    }
}

fn zero() -> impl FnMut() -> f64 {
    || 0.0
}

fn reason_of(sel: &[Exclusion], id: i64) -> Option<ExclusionReason> {
    sel.iter()
        .find(|e| e.provider_id == id)
        .map(|e| e.reason.clone())
}

#[test]
fn picks_the_only_provider() {
    let ps = vec![prov(1, ProviderType::Claude)];
    let s = select_provider(&ps, &req("claude-x"), &RouteState::default(), &mut zero()).unwrap();
    assert_eq!(s.provider_id, 1);
    assert_eq!(s.forwarded_model, "claude-x");
    assert!(!s.needs_conversion);
    assert!(s.excluded.is_empty());
    assert_eq!(s.candidates, vec![1]);
}

#[test]
fn every_filter_has_its_reason() {
    let mut ps: Vec<Provider> = (1..=10).map(|i| prov(i, ProviderType::Claude)).collect();
    for p in ps.iter_mut() {
        p.group_tag = "a, c".into();
    }
    ps[0].enabled = false;
    ps[1].provider_type = ProviderType::Codex;
    ps[2].allowed_models = vec!["other".into()];
    ps[3].group_tag = "b".into();
    ps[8].priority = 5;
    ps[9].priority = 3;
    let mut st = RouteState::default();
    st.tried.insert(5);
    let until = DateTime::<Utc>::from_timestamp(1_800_000_000, 0);
    st.open_breakers.insert(6, until);
    st.over_limit.insert(7, "daily".into());
    st.concurrency_full.insert(8);
    let r = RouteRequest {
        format: ClientFormat::Claude,
        model: "m",
        user_groups: "a,x",
        native_only: false,
    };
    let s = select_provider(&ps, &r, &st, &mut zero()).unwrap();
    assert_eq!(s.provider_id, 10);
    let ex = &s.excluded;
    assert_eq!(ex.len(), 9);
    assert_eq!(reason_of(ex, 1), Some(ExclusionReason::Disabled));
    assert_eq!(reason_of(ex, 2), Some(ExclusionReason::FormatMismatch));
    assert_eq!(reason_of(ex, 3), Some(ExclusionReason::ModelNotAllowed));
    assert_eq!(reason_of(ex, 4), Some(ExclusionReason::GroupMismatch));
    assert_eq!(reason_of(ex, 5), Some(ExclusionReason::AlreadyTried));
    assert_eq!(
        reason_of(ex, 6),
        Some(ExclusionReason::BreakerOpen { until })
    );
    assert_eq!(
        reason_of(ex, 7),
        Some(ExclusionReason::OverSpendLimit {
            window: "daily".into()
        })
    );
    assert_eq!(reason_of(ex, 8), Some(ExclusionReason::ConcurrencyFull));
    assert_eq!(reason_of(ex, 9), Some(ExclusionReason::LowerPriority));
    assert_eq!(reason_of(ex, 10), None);
    assert_eq!(ex[0].provider_name, "p1");
}

#[test]
fn first_failing_filter_wins() {
    let mut p = prov(1, ProviderType::Codex);
    p.enabled = false;
    let st = RouteState::default();
    assert_eq!(
        check_provider(&p, &req("m"), &st),
        Err(ExclusionReason::Disabled)
    );
    p.enabled = true;
    assert_eq!(
        check_provider(&p, &req("m"), &st),
        Err(ExclusionReason::FormatMismatch)
    );
}

#[test]
fn model_allow_list_checks_requested_and_redirected_names() {
    let mut p = prov(1, ProviderType::Claude);
    assert!(model_allowed(&p, "anything"));
    p.allowed_models = vec!["claude-sonnet-4-5".into()];
    assert!(model_allowed(&p, "claude-sonnet-4-5"));
    assert!(!model_allowed(&p, "claude-opus-4-1"));
    p.model_redirects
        .insert("claude-opus-4-1".into(), "claude-sonnet-4-5".into());
    assert!(model_allowed(&p, "claude-opus-4-1"));
    assert_eq!(forwarded_model(&p, "claude-opus-4-1"), "claude-sonnet-4-5");
    assert_eq!(forwarded_model(&p, "x"), "x");
    let ps = vec![p];
    let s = select_provider(
        &ps,
        &req("claude-opus-4-1"),
        &RouteState::default(),
        &mut zero(),
    )
    .unwrap();
    assert_eq!(s.forwarded_model, "claude-sonnet-4-5");
}

#[test]
fn group_isolation() {
    let mut p = prov(1, ProviderType::Claude);
    assert!(group_allows(&p, ""), "no user groups: every provider");
    assert!(group_allows(&p, " , "), "blank user groups: every provider");
    assert!(
        !group_allows(&p, "vip"),
        "a user with groups never uses an untagged provider"
    );
    p.group_tag = "team-a, vip".into();
    assert!(group_allows(&p, "vip"));
    assert!(group_allows(&p, "x, team-a"));
    assert!(!group_allows(&p, "team"), "tags match whole, not by prefix");
    assert!(group_allows(&p, ""));
}

#[test]
fn user_with_groups_never_falls_back_outside_them() {
    let mut a = prov(1, ProviderType::Claude);
    a.group_tag = "vip".into();
    let b = prov(2, ProviderType::Claude);
    let mut st = RouteState::default();
    st.open_breakers.insert(1, None);
    let r = RouteRequest {
        format: ClientFormat::Claude,
        model: "m",
        user_groups: "vip",
        native_only: false,
    };
    let err = select_provider(&[a, b], &r, &st, &mut zero()).unwrap_err();
    assert_eq!(
        reason_of(&err.excluded, 2),
        Some(ExclusionReason::GroupMismatch)
    );
    assert!(err.message.contains("circuit breaker"), "{}", err.message);
}

#[test]
fn priority_falls_through_only_when_better_tier_is_empty() {
    let mut a = prov(1, ProviderType::Claude);
    a.priority = 0;
    let mut b = prov(2, ProviderType::Claude);
    b.priority = 1;
    let mut c = prov(3, ProviderType::Claude);
    c.priority = 2;
    let ps = vec![c, b, a];
    let mut st = RouteState::default();
    for draw in [0.0, 0.5, 0.999] {
        let s = select_provider(&ps, &req("m"), &st, &mut || draw).unwrap();
        assert_eq!(s.provider_id, 1);
        assert_eq!(
            reason_of(&s.excluded, 2),
            Some(ExclusionReason::LowerPriority)
        );
    }
    st.tried.insert(1);
    let s = select_provider(&ps, &req("m"), &st, &mut zero()).unwrap();
    assert_eq!(s.provider_id, 2);
    assert_eq!(
        reason_of(&s.excluded, 1),
        Some(ExclusionReason::AlreadyTried)
    );
    assert_eq!(
        reason_of(&s.excluded, 3),
        Some(ExclusionReason::LowerPriority)
    );
    st.open_breakers.insert(2, None);
    let s = select_provider(&ps, &req("m"), &st, &mut zero()).unwrap();
    assert_eq!(s.provider_id, 3);
}

#[test]
fn prefers_native_format_within_tier_but_converts_when_needed() {
    let native = prov(1, ProviderType::Claude);
    let mut conv = prov(2, ProviderType::OpenAiCompatible);
    conv.extra_client_formats = vec!["claude".into()];
    conv.cost_multiplier = Decimal::ZERO;
    conv.weight = 100;
    let ps = vec![native.clone(), conv.clone()];
    let s = select_provider(&ps, &req("m"), &RouteState::default(), &mut || 0.9).unwrap();
    assert_eq!(s.provider_id, 1);
    assert_eq!(
        reason_of(&s.excluded, 2),
        Some(ExclusionReason::ConversionAvoided)
    );
    let mut st = RouteState::default();
    st.tried.insert(1);
    let s = select_provider(&ps, &req("m"), &st, &mut zero()).unwrap();
    assert_eq!(s.provider_id, 2);
    assert!(s.needs_conversion);
    // A better tier with only a converting provider beats a worse native tier.
    let mut native2 = native;
    native2.priority = 1;
    let s = select_provider(
        &[native2, conv],
        &req("m"),
        &RouteState::default(),
        &mut zero(),
    )
    .unwrap();
    assert_eq!(s.provider_id, 2);
}

#[test]
fn candidates_are_sorted_by_cost_multiplier() {
    let mut ps: Vec<Provider> = (1..=3).map(|i| prov(i, ProviderType::Claude)).collect();
    ps[0].cost_multiplier = Decimal::new(15, 1);
    ps[1].cost_multiplier = Decimal::new(5, 1);
    ps[2].cost_multiplier = Decimal::ONE;
    let s = select_provider(&ps, &req("m"), &RouteState::default(), &mut zero()).unwrap();
    assert_eq!(s.candidates, vec![2, 3, 1]);
    assert_eq!(
        s.provider_id, 2,
        "a draw of 0 takes the cheapest (equal weights)"
    );
}

#[test]
fn weighted_pick_edges() {
    assert_eq!(weighted_pick(&[], &mut zero()), None);
    assert_eq!(weighted_pick(&[0, 0, 0], &mut || 0.0), Some(0));
    assert_eq!(weighted_pick(&[0, 0, 0], &mut || 0.5), Some(1));
    assert_eq!(weighted_pick(&[0, 0, 0], &mut || 0.9999), Some(2));
    assert_eq!(weighted_pick(&[0, 0, 0], &mut || 1.0), Some(2));
    assert_eq!(
        weighted_pick(&[1, 0], &mut || 0.9999),
        Some(0),
        "weight 0 is never drawn"
    );
    assert_eq!(weighted_pick(&[1, 3], &mut || 0.24), Some(0));
    assert_eq!(weighted_pick(&[1, 3], &mut || 0.26), Some(1));
    assert_eq!(weighted_pick(&[1, 3, 0], &mut || 1.0), Some(1));
    assert_eq!(weighted_pick(&[1, 3], &mut || f64::NAN), Some(0));
    assert_eq!(weighted_pick(&[1, 3], &mut || -5.0), Some(0));
}

#[test]
fn weight_split_is_respected_statistically() {
    let mut a = prov(1, ProviderType::Claude);
    a.weight = 1;
    let mut b = prov(2, ProviderType::Claude);
    b.weight = 3;
    let ps = vec![a, b];
    let st = RouteState::default();
    let mut rng = SplitMix(42);
    let n = 100_000;
    let mut first = 0;
    for _ in 0..n {
        let s = select_provider(&ps, &req("m"), &st, &mut || rng.next_f64()).unwrap();
        if s.provider_id == 1 {
            first += 1;
        }
    }
    let share = first as f64 / n as f64;
    // σ = sqrt(.25·.75/1e5) ≈ 0.00137; allow ~4σ.
    assert!(
        (share - 0.25).abs() < 0.0055,
        "share of weight 1 out of 4 was {share}"
    );
}

#[test]
fn all_zero_weights_are_uniform() {
    let mut ps: Vec<Provider> = (1..=4).map(|i| prov(i, ProviderType::Claude)).collect();
    for p in ps.iter_mut() {
        p.weight = 0;
    }
    let st = RouteState::default();
    let mut rng = SplitMix(7);
    let mut counts = [0usize; 4];
    for _ in 0..40_000 {
        let s = select_provider(&ps, &req("m"), &st, &mut || rng.next_f64()).unwrap();
        counts[(s.provider_id - 1) as usize] += 1;
    }
    for c in counts {
        assert!((9_400..10_600).contains(&c), "{counts:?}");
    }
}

#[test]
fn messages_explain_why_nothing_is_eligible() {
    let st = RouteState::default();
    let msg = |ps: &[Provider], r: &RouteRequest<'_>, st: &RouteState| {
        select_provider(ps, r, st, &mut zero()).unwrap_err().message
    };
    assert_eq!(msg(&[], &req("m"), &st), "no provider is configured");
    let mut off = prov(1, ProviderType::Claude);
    off.enabled = false;
    assert_eq!(
        msg(&[off.clone()], &req("m"), &st),
        "no provider is enabled"
    );
    let codex = prov(2, ProviderType::Codex);
    assert_eq!(
        msg(&[off.clone(), codex], &req("m"), &st),
        "no enabled provider accepts claude requests"
    );
    let mut narrow = prov(3, ProviderType::Claude);
    narrow.allowed_models = vec!["a".into()];
    assert_eq!(
        msg(&[narrow], &req("m"), &st),
        "model 'm' is not allowed by any provider"
    );
    let r = RouteRequest {
        format: ClientFormat::Claude,
        model: "m",
        user_groups: "x",
        native_only: false,
    };
    assert_eq!(
        msg(&[prov(4, ProviderType::Claude)], &r, &st),
        "no provider in your group(s) 'x' can serve model 'm' for claude requests"
    );
    let ps = vec![prov(1, ProviderType::Claude), prov(2, ProviderType::Claude)];
    let mut tried = RouteState::default();
    tried.tried.extend([1, 2]);
    assert_eq!(
        msg(&ps, &req("m"), &tried),
        "every provider failed in this request (2 tried)"
    );
    let mut br = RouteState::default();
    br.open_breakers.insert(1, None);
    br.open_breakers.insert(2, None);
    assert_eq!(
        msg(&ps, &req("m"), &br),
        "all 2 eligible providers have open circuit breakers"
    );
    let t = DateTime::<Utc>::from_timestamp(1_800_000_000, 0);
    br.open_breakers.insert(2, t);
    assert!(msg(&ps, &req("m"), &br).contains("2027-01-15T08:00:00+00:00"));
    let mut lim = RouteState::default();
    lim.over_limit.insert(1, "5h".into());
    lim.over_limit.insert(2, "daily".into());
    assert_eq!(
        msg(&ps, &req("m"), &lim),
        "all 2 eligible providers are over their spend limits"
    );
    let mut busy = RouteState::default();
    busy.concurrency_full.extend([1, 2]);
    assert!(msg(&ps, &req("m"), &busy).contains("concurrent-session limit"));
    let mut mixed = RouteState::default();
    mixed.tried.insert(1);
    mixed.open_breakers.insert(2, None);
    assert_eq!(
        msg(&ps, &req("m"), &mixed),
        "none of the 2 eligible providers is available: 1 already failed in this request, \
         1 circuit breaker open"
    );
}

#[test]
fn session_reuse_ignores_priority_and_tried() {
    let mut p = prov(1, ProviderType::Claude);
    p.priority = 9;
    let mut st = RouteState::default();
    st.tried.insert(1);
    assert_eq!(session_provider_still_eligible(&p, &req("m"), &st), Ok(()));
    st.open_breakers.insert(1, None);
    assert_eq!(
        session_provider_still_eligible(&p, &req("m"), &st),
        Err(ExclusionReason::BreakerOpen { until: None })
    );
    let r = RouteRequest {
        format: ClientFormat::Claude,
        model: "m",
        user_groups: "vip",
        native_only: false,
    };
    assert_eq!(
        session_provider_still_eligible(&p, &r, &RouteState::default()),
        Err(ExclusionReason::GroupMismatch)
    );
    p.enabled = false;
    assert_eq!(
        session_provider_still_eligible(&p, &req("m"), &RouteState::default()),
        Err(ExclusionReason::Disabled)
    );
}

#[test]
fn exclusion_reasons_serialise_with_a_type_tag() {
    let v = serde_json::to_value(ExclusionReason::OverSpendLimit {
        window: "5h".into(),
    })
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"type": "over_spend_limit", "window": "5h"})
    );
    let v = serde_json::to_value(ExclusionReason::LowerPriority).unwrap();
    assert_eq!(v, serde_json::json!({"type": "lower_priority"}));
}
