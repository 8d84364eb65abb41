//! Breaker service contract: the same cases on in-memory counters and on Redis (two services
//! on one Redis prefix stand for two cch instances). Time is passed in, so no sleeping.

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use claude_code_hub::adapters::memory::MemoryCounters;
use claude_code_hub::adapters::redis::RedisCounters;
use claude_code_hub::app::breakers::BreakerService;
use claude_code_hub::app::policy::{Breakers, ProviderOutcome};
use claude_code_hub::domain::breaker::{Admission, BreakerEvent, BreakerEventKind, BreakerState};
use claude_code_hub::domain::failure::ErrorClass;
use claude_code_hub::domain::provider::{BreakerSettings, Provider, ProviderType, Timeouts};
use claude_code_hub::ports::counters::CounterStore;
use claude_code_hub::ports::notifier::Notifier;

/// Remembers every event.
#[derive(Default)]
struct Recorded(Mutex<Vec<BreakerEvent>>);

#[async_trait]
impl Notifier for Recorded {
    async fn breaker_event(&self, e: &BreakerEvent) {
        self.0.lock().unwrap().push(e.clone());
    }

    async fn probe_result(&self, _: &claude_code_hub::ports::notifier::ProbeReport) {}
}

impl Recorded {
    fn kinds(&self) -> Vec<BreakerEventKind> {
        self.0.lock().unwrap().iter().map(|e| e.kind).collect()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn provider(id: i64) -> Provider {
    Provider {
        id,
        name: format!("p{id}"),
        description: String::new(),
        provider_type: ProviderType::Claude,
        base_url: "http://127.0.0.1:9".into(),
        api_key: "sk".into(),
        enabled: true,
        priority: 0,
        weight: 1,
        cost_multiplier: rust_decimal::Decimal::ONE,
        group_tag: String::new(),
        allowed_models: vec![],
        model_redirects: Default::default(),
        extra_client_formats: vec![],
        proxy_url: None,
        proxy_fallback_to_direct: false,
        limits: Default::default(),
        timeouts: Timeouts::default(),
        breaker: BreakerSettings::default(),
        max_retry_attempts: None,
        shaping: Default::default(),
        created_at: t0(),
        updated_at: t0(),
    }
}

fn fail() -> ProviderOutcome {
    ProviderOutcome::failure(ErrorClass::ProviderError, "upstream exploded")
}

/// Two "instances" sharing one store, each with its own notifier.
struct Pair {
    a: BreakerService,
    b: BreakerService,
    ev_a: Arc<Recorded>,
    ev_b: Arc<Recorded>,
}

fn pair(sa: Arc<dyn CounterStore>, sb: Arc<dyn CounterStore>, net: bool) -> Pair {
    let ev_a = Arc::new(Recorded::default());
    let ev_b = Arc::new(Recorded::default());
    Pair {
        a: BreakerService::new(sa, ev_a.clone(), net),
        b: BreakerService::new(sb, ev_b.clone(), net),
        ev_a,
        ev_b,
    }
}

async fn full_cycle_and_sharing(s: Pair) {
    let p = provider(1);
    let all = [p.clone(), provider(2)];
    for _ in 0..4 {
        s.a.record(&p, fail(), t0()).await;
    }
    assert!(s.b.open_providers(&all, t0()).await.is_empty());
    // The fifth failure, recorded by the other instance, opens it for both.
    s.b.record(&p, fail(), t0()).await;
    let until = t0() + Duration::minutes(30);
    let open = s.a.open_providers(&all, t0() + Duration::minutes(29)).await;
    assert_eq!(open.get(&1), Some(&Some(until)));
    assert_eq!(open.len(), 1);
    assert_eq!(s.ev_b.kinds(), vec![BreakerEventKind::Opened]);
    let opened = s.ev_b.0.lock().unwrap()[0].clone();
    assert_eq!(opened.failure_count, 5);
    assert_eq!(opened.expected_recovery, Some(until));
    assert_eq!(opened.last_error.as_deref(), Some("upstream exploded"));
    let view = s.a.view(&p, t0()).await;
    assert_eq!(view.state, BreakerState::Open);
    assert_eq!(view.next_try_at, Some(until));
    assert_eq!(view.opened_at, Some(t0()));
    assert_eq!(view.last_error.as_deref(), Some("upstream exploded"));
    // Time is up: both instances look at once; exactly one performs the half-open transition.
    let (oa, ob) = tokio::join!(
        s.a.open_providers(&all, until),
        s.b.open_providers(&all, until)
    );
    assert!(oa.is_empty() && ob.is_empty());
    let half: usize = [s.ev_a.kinds(), s.ev_b.kinds()]
        .iter()
        .flatten()
        .filter(|k| **k == BreakerEventKind::HalfOpened)
        .count();
    assert_eq!(half, 1, "one half-open transition across instances");
    assert_eq!(s.b.view(&p, until).await.state, BreakerState::HalfOpen);
    // Two successes (one per instance) close it.
    s.a.record(&p, ProviderOutcome::Success, until).await;
    assert_eq!(s.b.view(&p, until).await.state, BreakerState::HalfOpen);
    s.b.record(&p, ProviderOutcome::Success, until).await;
    let v = s.a.view(&p, until).await;
    assert_eq!((v.state, v.failure_count), (BreakerState::Closed, 0));
    assert_eq!(s.ev_b.kinds().last(), Some(&BreakerEventKind::Closed));
}

/// The views of many breakers, read together, equal the view of each read alone, and an OPEN
/// breaker whose time ran out is moved to HALF-OPEN (once) as a single read does.
async fn views_read_together_equal_each_view(s: Pair) {
    let (closed, failing, open) = (provider(20), provider(21), provider(22));
    s.a.record(&failing, fail(), t0()).await;
    for _ in 0..5 {
        s.a.record(&open, fail(), t0()).await;
    }
    let all = [&closed, &failing, &open];
    for at in [t0(), t0() + Duration::minutes(31)] {
        let together = s.b.views(&all, at).await;
        assert_eq!(together.len(), 3);
        for (p, v) in all.iter().zip(&together) {
            let alone = s.a.view(p, at).await;
            assert_eq!(v.provider_id, p.id);
            assert_eq!(
                (v.state, v.failure_count, v.next_try_at, &v.last_error),
                (
                    alone.state,
                    alone.failure_count,
                    alone.next_try_at,
                    &alone.last_error
                ),
                "provider {}",
                p.id
            );
        }
    }
    let states: Vec<_> = s.a.views(&all, t0() + Duration::minutes(31)).await;
    assert_eq!(
        states.iter().map(|v| v.state).collect::<Vec<_>>(),
        [
            BreakerState::Closed,
            BreakerState::Closed,
            BreakerState::HalfOpen
        ]
    );
    assert_eq!(states[1].failure_count, 1);
    let half: usize = [s.ev_a.kinds(), s.ev_b.kinds()]
        .iter()
        .flatten()
        .filter(|k| **k == BreakerEventKind::HalfOpened)
        .count();
    assert_eq!(half, 1, "the expiry is applied once");
}

async fn half_open_failure_reopens_and_reset_closes(s: Pair) {
    let p = provider(3);
    for _ in 0..5 {
        s.a.record(&p, fail(), t0()).await;
    }
    let later = t0() + Duration::minutes(31);
    s.a.record(&p, ProviderOutcome::Success, later).await;
    s.b.record(&p, fail(), later).await;
    let open = s.a.open_providers(std::slice::from_ref(&p), later).await;
    assert_eq!(open.get(&3), Some(&Some(later + Duration::minutes(30))));
    s.b.reset(&p, later).await;
    assert!(
        s.a.open_providers(std::slice::from_ref(&p), later)
            .await
            .is_empty()
    );
    assert_eq!(s.ev_b.kinds().last(), Some(&BreakerEventKind::Closed));
    assert_eq!(s.a.view(&p, later).await.failure_count, 0);
}

async fn network_errors_do_not_count_by_default(s: Pair) {
    let p = provider(4);
    for _ in 0..10 {
        s.a.record(
            &p,
            ProviderOutcome::failure(ErrorClass::SystemError, "x"),
            t0(),
        )
        .await;
        s.a.record(
            &p,
            ProviderOutcome::failure(ErrorClass::NotFound, "x"),
            t0(),
        )
        .await;
        s.a.record(
            &p,
            ProviderOutcome::failure(ErrorClass::NonRetryableClientError, "x"),
            t0(),
        )
        .await;
    }
    assert!(
        s.b.open_providers(std::slice::from_ref(&p), t0())
            .await
            .is_empty()
    );
    assert_eq!(s.b.view(&p, t0()).await.failure_count, 0);
}

async fn network_errors_count_when_enabled(s: Pair) {
    let p = provider(5);
    for _ in 0..5 {
        s.a.record(
            &p,
            ProviderOutcome::failure(ErrorClass::SystemError, "x"),
            t0(),
        )
        .await;
    }
    assert!(
        s.b.open_providers(std::slice::from_ref(&p), t0())
            .await
            .contains_key(&5)
    );
}

async fn concurrent_failures_are_all_counted(s: Pair) {
    let p = provider(6);
    let mut futs = Vec::new();
    for i in 0..4 {
        let svc = if i % 2 == 0 { &s.a } else { &s.b };
        futs.push(svc.record(&p, fail(), t0()));
    }
    futures_util::future::join_all(futs).await;
    assert_eq!(s.a.view(&p, t0()).await.failure_count, 4);
}

async fn probe_success_half_opens_early(s: Pair) {
    let p = provider(7);
    for _ in 0..5 {
        s.a.record(&p, fail(), t0()).await;
    }
    s.b.probe_succeeded(&p, t0() + Duration::minutes(1)).await;
    assert!(
        s.a.open_providers(std::slice::from_ref(&p), t0() + Duration::minutes(1))
            .await
            .is_empty()
    );
    assert_eq!(s.ev_b.kinds(), vec![BreakerEventKind::HalfOpened]);
}

/// Opens `p`'s breaker at t0 and returns the instant it half-opens.
async fn opened(s: &Pair, p: &Provider) -> DateTime<Utc> {
    for _ in 0..5 {
        s.a.record(p, fail(), t0()).await;
    }
    t0() + Duration::minutes(30)
}

async fn half_open_admits_limited_trials_across_instances(s: Pair) {
    let p = provider(8);
    let now = opened(&s, &p).await;
    // Ten requests at once on two instances: exactly two trials (the success threshold).
    let admissions = futures_util::future::join_all(
        (0..10).map(|i| if i % 2 == 0 { &s.a } else { &s.b }.admit(&p, now)),
    )
    .await;
    let trials = admissions
        .iter()
        .filter(|a| **a == Admission::Trial)
        .count();
    assert_eq!(trials, 2, "{admissions:?}");
    assert!(
        admissions
            .iter()
            .all(|a| matches!(a, Admission::Trial | Admission::Refused { until: None }))
    );
    let half: usize = [s.ev_a.kinds(), s.ev_b.kinds()]
        .iter()
        .flatten()
        .filter(|k| **k == BreakerEventKind::HalfOpened)
        .count();
    assert_eq!(half, 1);
    // While both slots are taken, selection skips it (no retry instant).
    let open = s.b.open_providers(std::slice::from_ref(&p), now).await;
    assert_eq!(open.get(&8), Some(&None));
    assert_eq!(s.a.view(&p, now).await.trials_in_flight, 2);
    // The first success frees a slot, the second closes the breaker; then traffic flows.
    s.a.record(&p, ProviderOutcome::Success, now).await;
    assert!(
        s.b.open_providers(std::slice::from_ref(&p), now)
            .await
            .is_empty()
    );
    assert_eq!(s.b.view(&p, now).await.state, BreakerState::HalfOpen);
    s.b.record(&p, ProviderOutcome::Success, now).await;
    assert_eq!(s.a.view(&p, now).await.state, BreakerState::Closed);
    let admissions = futures_util::future::join_all((0..10).map(|_| s.a.admit(&p, now))).await;
    assert!(
        admissions.iter().all(|a| *a == Admission::Pass),
        "{admissions:?}"
    );
}

async fn a_failed_trial_reopens_and_refuses_until_the_new_end(s: Pair) {
    let p = provider(9);
    let now = opened(&s, &p).await;
    assert_eq!(s.a.admit(&p, now).await, Admission::Trial);
    assert_eq!(s.b.admit(&p, now).await, Admission::Trial);
    s.b.record(
        &p,
        ProviderOutcome::failure(ErrorClass::ProviderError, "overloaded"),
        now,
    )
    .await;
    let until = now + Duration::minutes(30);
    assert_eq!(
        s.a.admit(&p, now).await,
        Admission::Refused { until: Some(until) }
    );
    let v = s.a.view(&p, now).await;
    assert_eq!((v.state, v.trials_in_flight), (BreakerState::Open, 0));
    assert_eq!(v.last_error.as_deref(), Some("overloaded"));
    // The late outcome of the other trial changes nothing.
    s.a.record(&p, ProviderOutcome::Success, now).await;
    assert_eq!(s.b.view(&p, now).await.state, BreakerState::Open);
}

async fn lost_and_uncounted_trials_free_their_slot(s: Pair) {
    let p = provider(10);
    let now = opened(&s, &p).await;
    assert_eq!(s.a.admit(&p, now).await, Admission::Trial);
    assert_eq!(s.a.admit(&p, now).await, Admission::Trial);
    assert_eq!(s.b.admit(&p, now).await, Admission::Refused { until: None });
    // A client abort does not count, but gives its slot back.
    s.a.record(
        &p,
        ProviderOutcome::failure(ErrorClass::ClientAbort, "client closed the connection"),
        now,
    )
    .await;
    assert_eq!(s.b.admit(&p, now).await, Admission::Trial);
    // Trials never released lapse after the provider's request timeout (120 s by default).
    let almost = now + Duration::seconds(119);
    assert_eq!(
        s.b.admit(&p, almost).await,
        Admission::Refused { until: None }
    );
    let lapsed = now + Duration::seconds(120);
    assert_eq!(s.b.admit(&p, lapsed).await, Admission::Trial);
    let v = s.a.view(&p, lapsed).await;
    assert_eq!(
        (v.state, v.failure_count, v.trials_in_flight),
        (BreakerState::HalfOpen, 5, 1)
    );
}

async fn the_last_error_keeps_the_message_without_the_key(s: Pair) {
    let mut p = provider(11);
    p.api_key = "sk-ant-secret-0123456789".into();
    p.breaker.failure_threshold = 1;
    let msg = "invalid x-api-key: sk-ant-secret-0123456789 was rejected";
    s.a.record(
        &p,
        ProviderOutcome::failure(ErrorClass::ProviderError, msg),
        t0(),
    )
    .await;
    let v = s.b.view(&p, t0()).await;
    assert_eq!(v.state, BreakerState::Open);
    let want = "invalid x-api-key: [redacted] was rejected";
    assert_eq!(v.last_error.as_deref(), Some(want));
    let ev = s.ev_a.0.lock().unwrap()[0].clone();
    assert_eq!(
        (ev.kind, ev.last_error.as_deref()),
        (BreakerEventKind::Opened, Some(want))
    );
}

macro_rules! contract {
    ($($case:ident $(: $net:expr)?),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let store: Arc<dyn CounterStore> = Arc::new(MemoryCounters::new());
                    #[allow(unused_mut, unused_assignments)]
                    let mut net = false;
                    $( net = $net; )?
                    super::$case(pair(store.clone(), store, net)).await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(r) = support::redis::test_redis(stringify!($case)).await else {
                        return;
                    };
                    let a: Arc<dyn CounterStore> =
                        Arc::new(RedisCounters::connect(&r.url, &r.prefix).await.unwrap());
                    let b: Arc<dyn CounterStore> =
                        Arc::new(RedisCounters::connect(&r.url, &r.prefix).await.unwrap());
                    #[allow(unused_mut, unused_assignments)]
                    let mut net = false;
                    $( net = $net; )?
                    super::$case(pair(a, b, net)).await;
                }
            )*
        }
    };
}

contract!(
    full_cycle_and_sharing,
    views_read_together_equal_each_view,
    half_open_failure_reopens_and_reset_closes,
    network_errors_do_not_count_by_default,
    network_errors_count_when_enabled: true,
    concurrent_failures_are_all_counted,
    probe_success_half_opens_early,
    half_open_admits_limited_trials_across_instances,
    a_failed_trial_reopens_and_refuses_until_the_new_end,
    lost_and_uncounted_trials_free_their_slot,
    the_last_error_keeps_the_message_without_the_key,
);
