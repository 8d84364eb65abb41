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
use claude_code_hub::domain::breaker::{BreakerEvent, BreakerEventKind, BreakerState};
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
        created_at: t0(),
        updated_at: t0(),
    }
}

const FAIL: ProviderOutcome = ProviderOutcome::Failure(ErrorClass::ProviderError);

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
        s.a.record(&p, FAIL, t0()).await;
    }
    assert!(s.b.open_providers(&all, t0()).await.is_empty());
    // The fifth failure, recorded by the other instance, opens it for both.
    s.b.record(&p, FAIL, t0()).await;
    let until = t0() + Duration::minutes(30);
    let open = s.a.open_providers(&all, t0() + Duration::minutes(29)).await;
    assert_eq!(open.get(&1), Some(&Some(until)));
    assert_eq!(open.len(), 1);
    assert_eq!(s.ev_b.kinds(), vec![BreakerEventKind::Opened]);
    let opened = s.ev_b.0.lock().unwrap()[0].clone();
    assert_eq!(opened.failure_count, 5);
    assert_eq!(opened.expected_recovery, Some(until));
    let view = s.a.view(&p, t0()).await;
    assert_eq!(view.state, BreakerState::Open);
    assert_eq!(view.next_try_at, Some(until));
    assert_eq!(view.opened_at, Some(t0()));
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

async fn half_open_failure_reopens_and_reset_closes(s: Pair) {
    let p = provider(3);
    for _ in 0..5 {
        s.a.record(&p, FAIL, t0()).await;
    }
    let later = t0() + Duration::minutes(31);
    s.a.record(&p, ProviderOutcome::Success, later).await;
    s.b.record(&p, FAIL, later).await;
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
        s.a.record(&p, ProviderOutcome::Failure(ErrorClass::SystemError), t0())
            .await;
        s.a.record(&p, ProviderOutcome::Failure(ErrorClass::NotFound), t0())
            .await;
        s.a.record(
            &p,
            ProviderOutcome::Failure(ErrorClass::NonRetryableClientError),
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
        s.a.record(&p, ProviderOutcome::Failure(ErrorClass::SystemError), t0())
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
        futs.push(svc.record(&p, FAIL, t0()));
    }
    futures_util::future::join_all(futs).await;
    assert_eq!(s.a.view(&p, t0()).await.failure_count, 4);
}

async fn probe_success_half_opens_early(s: Pair) {
    let p = provider(7);
    for _ in 0..5 {
        s.a.record(&p, FAIL, t0()).await;
    }
    s.b.probe_succeeded(&p, t0() + Duration::minutes(1)).await;
    assert!(
        s.a.open_providers(std::slice::from_ref(&p), t0() + Duration::minutes(1))
            .await
            .is_empty()
    );
    assert_eq!(s.ev_b.kinds(), vec![BreakerEventKind::HalfOpened]);
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
    half_open_failure_reopens_and_reset_closes,
    network_errors_do_not_count_by_default,
    network_errors_count_when_enabled: true,
    concurrent_failures_are_all_counted,
    probe_success_half_opens_early,
);
