//! One contract for every `LimitStore` (memory, Redis, Redis behind the fail-open wrapper), with
//! an explicit clock: each window kind, the atomic all-or-nothing check, session slots, spend
//! recording, reads, rebuilds and resets; and `LimitService::take_provider_slot` on each store.

mod support;

use std::sync::Arc;
use std::time::Instant;

use claude_code_hub::adapters::memory::MemoryLimits;
use claude_code_hub::adapters::redis::RedisLimits;
use claude_code_hub::app::fail_open::FailOpenConfig;
use claude_code_hub::app::limits::LimitService;
use claude_code_hub::app::limits::fail_open::FailOpenLimits;
use claude_code_hub::app::policy::Limiter;
use claude_code_hub::domain::windows::{Ring, SESSION_MEMBERS_CAP};
use claude_code_hub::ports::counters::CounterMode;
use claude_code_hub::ports::limits::{Check, CheckOutcome, CheckRequest, Counter, LimitStore};

type Store = Arc<dyn LimitStore>;

const T0: i64 = 1_700_000_000_000;

fn rpm(key: &str) -> Counter {
    Counter::Requests {
        key: key.into(),
        window_ms: 60_000,
    }
}
fn rolling(key: &str, window_ms: i64) -> Counter {
    Counter::RollingSpend {
        key: key.into(),
        window_ms,
    }
}
fn period(key: &str) -> Counter {
    Counter::PeriodSpend {
        key: key.into(),
        expires_at_ms: T0 + 86_400_000,
    }
}
fn total(key: &str) -> Counter {
    Counter::TotalSpend { key: key.into() }
}
fn sessions(key: &str, ttl_ms: i64) -> Counter {
    Counter::Sessions {
        key: key.into(),
        ttl_ms,
    }
}

/// One admission (`_req` names the request in the test only: windows count, not remember).
async fn check(
    s: &Store,
    now_ms: i64,
    _req: &str,
    session: &str,
    checks: &[Check],
) -> CheckOutcome {
    s.check(CheckRequest {
        now_ms,
        session_id: session,
        checks,
    })
    .await
    .unwrap()
}

async fn rpm_window_slides_exactly_at_the_edge(s: Store) {
    let c = [Check {
        counter: rpm("rpm"),
        limit: 2,
    }];
    assert_eq!(check(&s, T0, "r1", "s", &c).await, CheckOutcome::Admitted);
    assert_eq!(
        check(&s, T0 + 10_000, "r2", "s", &c).await,
        CheckOutcome::Admitted
    );
    // Requests count in 1 s buckets, each as if made at its bucket's end: the request of T0
    // (first instant of its second) counts as T0 + 1 s and leaves the window at T0 + 61 s,
    // one bucket late (strict), never early.
    for at in [T0 + 59_999, T0 + 60_999] {
        assert_eq!(
            check(&s, at, "r3", "s", &c).await,
            CheckOutcome::Rejected {
                index: 0,
                current: 2,
                oldest_ms: Some(T0 + 1_000)
            }
        );
    }
    assert_eq!(
        check(&s, T0 + 61_000, "r4", "s", &c).await,
        CheckOutcome::Admitted
    );
    assert_eq!(s.read(T0 + 61_000, &[rpm("rpm")], None).await.unwrap(), [2]);
}

async fn rejection_counts_nothing_and_reports_the_first_failing_check(s: Store) {
    s.record(T0, 500, &[total("tot")]).await.unwrap();
    let c = [
        Check {
            counter: rpm("rpm"),
            limit: 10,
        },
        Check {
            counter: total("tot"),
            limit: 500,
        },
        Check {
            counter: sessions("ses", 300_000),
            limit: 5,
        },
    ];
    assert_eq!(
        check(&s, T0, "r1", "s1", &c).await,
        CheckOutcome::Rejected {
            index: 1,
            current: 500,
            oldest_ms: None
        }
    );
    // Nothing was counted: no request, no session.
    let read = s
        .read(T0, &[rpm("rpm"), sessions("ses", 300_000)], None)
        .await
        .unwrap();
    assert_eq!(read, [0, 0]);
}

async fn rolling_spend_sums_and_expires_entries(s: Store) {
    let w = 5 * 3_600_000;
    let bucket = 180_000; // 5 h windows use 3 min buckets
    let r = rolling("r5h", w);
    s.record(T0, 1_000, std::slice::from_ref(&r)).await.unwrap();
    s.record(T0 + 1_000, 2_500, std::slice::from_ref(&r))
        .await
        .unwrap();
    assert_eq!(
        s.read(T0 + 2_000, std::slice::from_ref(&r), None)
            .await
            .unwrap(),
        [3_500]
    );
    let c = [Check {
        counter: r.clone(),
        limit: 3_500,
    }];
    // Both entries share T0's bucket, which counts as its end.
    let end = (T0 / bucket + 1) * bucket;
    assert!(end > T0 + 1_000 && end - T0 <= bucket);
    assert_eq!(
        check(&s, T0 + 2_000, "q", "s", &c).await,
        CheckOutcome::Rejected {
            index: 0,
            current: 3_500,
            oldest_ms: Some(end)
        }
    );
    // Still there 5 h after the entries, until 5 h after their bucket's end (one bucket late
    // at most, never early); gone exactly then.
    assert_eq!(
        s.read(T0 + w, std::slice::from_ref(&r), None)
            .await
            .unwrap(),
        [3_500]
    );
    assert_eq!(
        s.read(end + w - 1, std::slice::from_ref(&r), None)
            .await
            .unwrap(),
        [3_500]
    );
    assert_eq!(
        s.read(end + w, std::slice::from_ref(&r), None)
            .await
            .unwrap(),
        [0]
    );
    assert_eq!(
        check(&s, end + w, "q2", "s", &c).await,
        CheckOutcome::Admitted
    );
    // After emptying, new entries count from zero.
    s.record(end + w + 2_000, 7, std::slice::from_ref(&r))
        .await
        .unwrap();
    assert_eq!(
        s.read(end + w + 2_000, std::slice::from_ref(&r), None)
            .await
            .unwrap(),
        [7]
    );
}

async fn period_and_total_counters_add_up(s: Store) {
    let (d1, d2, t) = (period("daily:1"), period("daily:2"), total("total"));
    let all = [d1.clone(), t.clone(), rpm("ignored")];
    s.record(T0, 100, &all).await.unwrap();
    s.record(T0 + 1, 250, &all).await.unwrap();
    // A new period has its own key and starts at zero.
    s.record(T0 + 2, 1, &[d2.clone(), t.clone()]).await.unwrap();
    assert_eq!(
        s.read(T0 + 3, &[d1.clone(), d2, t.clone(), rpm("ignored")], None)
            .await
            .unwrap(),
        [350, 1, 351, 0]
    );
    let c = [Check {
        counter: d1.clone(),
        limit: 351,
    }];
    assert_eq!(
        check(&s, T0 + 3, "q", "s", &c).await,
        CheckOutcome::Admitted
    );
    let c = [Check {
        counter: d1,
        limit: 350,
    }];
    assert!(matches!(
        check(&s, T0 + 3, "q", "s", &c).await,
        CheckOutcome::Rejected { current: 350, .. }
    ));
    s.clear(std::slice::from_ref(&t)).await.unwrap();
    assert_eq!(s.read(T0 + 4, &[t], None).await.unwrap(), [0]);
}

async fn sessions_take_one_slot_each_and_expire_after_ttl(s: Store) {
    let ttl = 300_000;
    let c = [Check {
        counter: sessions("ses", ttl),
        limit: 2,
    }];
    assert_eq!(check(&s, T0, "r1", "A", &c).await, CheckOutcome::Admitted);
    assert_eq!(
        check(&s, T0 + 1, "r2", "B", &c).await,
        CheckOutcome::Admitted
    );
    // A second request of an active session takes no new slot.
    assert_eq!(
        check(&s, T0 + 100_000, "r3", "A", &c).await,
        CheckOutcome::Admitted
    );
    assert_eq!(
        check(&s, T0 + 100_001, "r4", "C", &c).await,
        CheckOutcome::Rejected {
            index: 0,
            current: 2,
            oldest_ms: Some(T0 + 1)
        }
    );
    // Read excludes the asking session.
    assert_eq!(
        s.read(T0 + 100_002, &[sessions("ses", ttl)], Some("A"))
            .await
            .unwrap(),
        [1]
    );
    // B was last seen at T0+1: it stops counting SESSION_TTL later; A was refreshed.
    assert_eq!(
        check(&s, T0 + 1 + ttl, "r5", "C", &c).await,
        CheckOutcome::Admitted
    );
    assert_eq!(
        s.read(T0 + 1 + ttl, &[sessions("ses", ttl)], None)
            .await
            .unwrap(),
        [2]
    );
}

/// A session idle for its TTL neither counts nor is named the oldest when a check is refused.
async fn idle_sessions_neither_count_nor_name_the_oldest(s: Store) {
    let ttl = 300_000;
    let up_to = |limit| {
        [Check {
            counter: sessions("idle", ttl),
            limit,
        }]
    };
    assert_eq!(
        check(&s, T0, "r1", "X", &up_to(2)).await,
        CheckOutcome::Admitted
    );
    assert_eq!(
        check(&s, T0 + ttl - 1, "r2", "Y", &up_to(2)).await,
        CheckOutcome::Admitted
    );
    // X has been idle for 5 ms: only Y counts, and Y is the oldest of those counted.
    let now = T0 + ttl + 5;
    assert_eq!(
        check(&s, now, "r3", "Z", &up_to(1)).await,
        CheckOutcome::Rejected {
            index: 0,
            current: 1,
            oldest_ms: Some(T0 + ttl - 1)
        }
    );
    assert_eq!(
        s.read(now, &[sessions("idle", ttl)], None).await.unwrap(),
        [1]
    );
    // X coming back is a session again, counted once.
    assert_eq!(
        check(&s, now + 1, "r4", "X", &up_to(2)).await,
        CheckOutcome::Admitted
    );
    assert_eq!(
        s.read(now + 2, &[sessions("idle", ttl)], None)
            .await
            .unwrap(),
        [2]
    );
    assert_eq!(
        s.read(now + 2, &[sessions("idle", ttl)], Some("X"))
            .await
            .unwrap(),
        [1]
    );
}

async fn replace_rebuilds_counters(s: Store) {
    let w = 60_000;
    let r = rolling("rb", w);
    s.record(T0, 999, std::slice::from_ref(&r)).await.unwrap();
    // The 999 were read (`seen`) before the log was summed: the log's entries replace them.
    s.replace(
        T0 + 30_000,
        &r,
        &[(T0 - 40_000, 5), (T0 + 10_000, 7), (T0 + 20_000, 11)],
        999,
    )
    .await
    .unwrap();
    // The entry older than the window is dropped; the old content is gone.
    assert_eq!(
        s.read(T0 + 30_000, std::slice::from_ref(&r), None)
            .await
            .unwrap(),
        [18]
    );
    // 1 s buckets: the entry of T0 + 10 s leaves at T0 + 71 s, that of T0 + 20 s at T0 + 81 s.
    assert_eq!(
        s.read(T0 + 70_999, std::slice::from_ref(&r), None)
            .await
            .unwrap(),
        [18]
    );
    assert_eq!(
        s.read(T0 + 71_000, std::slice::from_ref(&r), None)
            .await
            .unwrap(),
        [11]
    );
    let (p, t) = (period("p"), total("t"));
    s.record(T0, 3, &[p.clone(), t.clone()]).await.unwrap();
    s.replace(T0, &p, &[(T0, 40), (T0, 2)], 3).await.unwrap();
    s.replace(T0, &t, &[(T0, 1_000)], 3).await.unwrap();
    assert_eq!(
        s.read(T0, &[p.clone(), t.clone()], None).await.unwrap(),
        [42, 1_000]
    );
}

/// Spend recorded between the rebuild's read of a counter and its replace (a request that
/// finished meanwhile, not yet in the log the rebuild summed) is kept on top of the log's sums.
async fn replace_keeps_what_was_recorded_during_the_rebuild(s: Store) {
    let (r, p, t) = (rolling("kr", 60_000), period("kp"), total("kt"));
    let all = [r.clone(), p.clone(), t.clone()];
    s.record(T0, 10, &all).await.unwrap();
    let seen = s.read(T0, &all, None).await.unwrap();
    assert_eq!(seen, [10, 10, 10]);
    // Recorded after the read; the log summed meanwhile holds only the first 10 (and 20 more
    // that the counters never saw, e.g. spend recorded in memory while the store was down).
    s.record(T0 + 1_000, 5, &all).await.unwrap();
    for (c, seen) in all.iter().zip(seen) {
        s.replace(T0 + 2_000, c, &[(T0, 30)], seen).await.unwrap();
    }
    assert_eq!(s.read(T0 + 2_000, &all, None).await.unwrap(), [35, 35, 35]);
    // A counter that went down meanwhile (a reset) adds nothing.
    s.replace(T0 + 2_000, &t, &[(T0, 30)], 1_000).await.unwrap();
    assert_eq!(
        s.read(T0 + 2_000, std::slice::from_ref(&t), None)
            .await
            .unwrap(),
        [30]
    );
}

async fn markers_are_set_once(s: Store) {
    assert!(s.mark("warm", "1").await.unwrap());
    assert!(!s.mark("warm", "2").await.unwrap());
    s.unmark("warm").await.unwrap();
    assert!(s.mark("warm", "3").await.unwrap());
}

async fn parallel_checks_admit_exactly_the_limit(s: Store) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let c = [
                Check {
                    counter: rpm("prpm"),
                    limit: 50,
                },
                Check {
                    counter: sessions("pses", 300_000),
                    limit: i64::MAX,
                },
            ];
            check(&s, T0 + i, &format!("r{i}"), &format!("s{i}"), &c).await
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() == CheckOutcome::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 50);
}

/// Parallel takes of one session counter for distinct sessions: exactly the limit succeed; the
/// winners may take again (their slot is theirs), the losers stay refused.
async fn parallel_session_takes_admit_exactly_the_limit(s: Store) {
    let ttl = 300_000;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let c = [Check {
                counter: sessions("slots", ttl),
                limit: 2,
            }];
            let session = format!("s{i}");
            let outcome = check(&s, T0 + i, &format!("r{i}"), &session, &c).await;
            (session, outcome)
        }));
    }
    let (mut won, mut lost) = (Vec::new(), Vec::new());
    for t in tasks {
        let (session, outcome) = t.await.unwrap();
        match outcome {
            CheckOutcome::Admitted => won.push(session),
            CheckOutcome::Rejected { current, .. } => {
                assert_eq!(current, 2);
                lost.push(session);
            }
        }
    }
    assert_eq!(won.len(), 2, "winners: {won:?}");
    let c = [Check {
        counter: sessions("slots", ttl),
        limit: 2,
    }];
    for (i, session) in won.iter().enumerate() {
        assert_eq!(
            check(&s, T0 + 100 + i as i64, "again", session, &c).await,
            CheckOutcome::Admitted,
            "a session holding a slot keeps it"
        );
    }
    assert!(matches!(
        check(&s, T0 + 200, "late", &lost[0], &c).await,
        CheckOutcome::Rejected { current: 2, .. }
    ));
}

fn provider(id: i64, concurrent: Option<i32>) -> claude_code_hub::domain::provider::Provider {
    use claude_code_hub::domain::provider::{BreakerSettings, Provider, ProviderType, Timeouts};
    Provider {
        id,
        name: format!("p{id}"),
        description: String::new(),
        provider_type: ProviderType::Claude,
        base_url: "http://127.0.0.1:9".into(),
        api_key: "sk-test".into(),
        enabled: true,
        priority: 0,
        weight: 1,
        cost_multiplier: rust_decimal::Decimal::ONE,
        group_tag: String::new(),
        allowed_models: Vec::new(),
        model_redirects: Default::default(),
        extra_client_formats: Vec::new(),
        proxy_url: None,
        proxy_fallback_to_direct: false,
        limits: claude_code_hub::domain::limits::Limits {
            limit_concurrent_sessions: concurrent,
            ..Default::default()
        },
        timeouts: Timeouts::default(),
        breaker: BreakerSettings::default(),
        max_retry_attempts: None,
        shaping: Default::default(),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

/// `LimitService::take_provider_slot` over the store: parallel takes of distinct sessions on a
/// provider limited to 2 → exactly 2 hold a slot; a holder re-takes; an unlimited provider
/// always grants; the slot frees `SESSION_TTL` after the holder's last request.
async fn provider_slots_are_taken_atomically(s: Store) {
    use claude_code_hub::adapters::sqlite::SqliteStore;
    let db = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    db.migrate().await.unwrap();
    let now = chrono::DateTime::from_timestamp_millis(T0).unwrap();
    let snapshot = claude_code_hub::app::snapshot::SnapshotHolder::load(db.clone(), now)
        .await
        .unwrap();
    let ttl = std::time::Duration::from_secs(300);
    let service = Arc::new(LimitService::new(
        s,
        snapshot,
        db.clone(),
        db,
        chrono_tz::UTC,
        ttl,
    ));
    let limited = Arc::new(provider(7001, Some(2)));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (service, limited) = (service.clone(), limited.clone());
        tasks.push(tokio::spawn(async move {
            let session = format!("ses{i}");
            let took = service.take_provider_slot(&limited, &session, now).await;
            (session, took)
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        let (session, took) = t.await.unwrap();
        if took {
            won.push(session);
        }
    }
    assert_eq!(won.len(), 2, "winners: {won:?}");
    let later = now + chrono::Duration::seconds(60);
    for session in &won {
        assert!(service.take_provider_slot(&limited, session, later).await);
    }
    assert!(
        !service
            .take_provider_slot(&limited, "newcomer", later)
            .await
    );
    let unlimited = provider(7002, None);
    for i in 0..5 {
        assert!(
            service
                .take_provider_slot(&unlimited, &format!("u{i}"), now)
                .await
        );
    }
    // The holders were last seen at `later`: their slots free SESSION_TTL after it.
    let expired = later + chrono::Duration::from_std(ttl).unwrap();
    assert!(
        service
            .take_provider_slot(&limited, "newcomer", expired)
            .await
    );
}

/// Rough cost of one admission checking 14 windows (printed; `--nocapture` to see it).
async fn check_round_trip_cost(s: Store) {
    let checks: Vec<Check> = (0..7)
        .flat_map(|i| {
            [
                Check {
                    counter: rpm(&format!("bench:rpm{i}")),
                    limit: i64::MAX,
                },
                Check {
                    counter: rolling(&format!("bench:roll{i}"), 18_000_000),
                    limit: i64::MAX,
                },
            ]
        })
        .collect();
    for i in 0..20 {
        check(&s, T0 + i, &format!("w{i}"), "s", &checks).await;
    }
    let n = 200;
    let started = Instant::now();
    for i in 0..n {
        check(&s, T0 + 100 + i, &format!("b{i}"), "s", &checks).await;
    }
    let per = started.elapsed() / u32::try_from(n).unwrap();
    eprintln!("limit check (14 windows, one round trip): {per:?} per admission");
}

/// Rolling spend leaves its window exactly when the shared ring arithmetic says (the Lua and
/// the memory ring agree with `domain::windows::Ring`): never before `t + window`, at most one
/// bucket after.
async fn rolling_lateness_is_at_most_one_bucket(s: Store) {
    for (n, window) in [60_000_i64, 5 * 3_600_000, 24 * 3_600_000]
        .into_iter()
        .enumerate()
    {
        let ring = Ring::for_window(window);
        for (j, t) in [T0, T0 + 1, T0 + 59_999, T0 + 123_457, T0 + 899_999]
            .into_iter()
            .enumerate()
        {
            let r = rolling(&format!("late:{n}:{j}"), window);
            s.record(t, 5, std::slice::from_ref(&r)).await.unwrap();
            let released = ring.released_at(ring.index(t));
            assert!(released > t + window - 1 && released <= t + window + ring.bucket_ms);
            let read = |at: i64| {
                let (s, r) = (s.clone(), r.clone());
                async move { s.read(at, std::slice::from_ref(&r), None).await.unwrap()[0] }
            };
            assert_eq!(read(t + window - 1).await, 5, "never early ({window}, {t})");
            assert_eq!(read(released - 1).await, 5, "({window}, {t})");
            assert_eq!(read(released).await, 0, "({window}, {t})");
            assert_eq!(
                read(t + window + ring.bucket_ms).await,
                0,
                "at most a bucket late"
            );
        }
    }
}

/// A rolling window kept over a long, irregular stretch of traffic (steps of seconds to
/// minutes, half-hour pauses, idle gaps longer than the window) always reads the plain sum of
/// the amounts whose bucket is still live: the running sum the Redis ring keeps never drifts
/// from a recount.
async fn rolling_sums_match_a_plain_recount(s: Store) {
    for window in [60_000_i64, 5 * 3_600_000] {
        let ring = Ring::for_window(window);
        let r = rolling(&format!("recount:{window}"), window);
        let mut added: Vec<(i64, i64)> = Vec::new();
        let (mut t, mut x) = (T0, 7_u64);
        for step in 0..300 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let gap = match (x >> 33) % 10 {
                0 => window + 7_777,
                1 | 2 => window / 10,
                _ => i64::try_from((x >> 40) % (window as u64 / 40)).unwrap() + 1,
            };
            let amount = i64::try_from((x >> 20) % 1_000).unwrap() + 1;
            // Read just before the next amount and right after it (time never goes back).
            for (at, add) in [(t + gap - 1, false), (t + gap, true)] {
                if add {
                    s.record(at, amount, std::slice::from_ref(&r))
                        .await
                        .unwrap();
                    added.push((at, amount));
                }
                let expect: i64 = added
                    .iter()
                    .filter(|(when, _)| ring.released_at(ring.index(*when)) > at)
                    .map(|(_, a)| a)
                    .sum();
                let got = s.read(at, std::slice::from_ref(&r), None).await.unwrap()[0];
                assert_eq!(got, expect, "window {window}, step {step}, at +{}", at - T0);
            }
            t += gap;
        }
    }
}

/// Two instances (two stores on one backend) interleaving: RPM and a budget hold exactly.
async fn two_instances_are_exact(a: Store, b: Store) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let c = [Check {
                counter: rpm("two:rpm"),
                limit: 50,
            }];
            check(&s, T0 + i * 10, "r", &format!("s{i}"), &c).await
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() == CheckOutcome::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 50);
    // A budget of 10 000 with 3 000 per request, alternating instances: 4 pass (0, 3 000,
    // 6 000, 9 000 < 10 000), then both refuse; for a rolling and a total budget alike.
    for counter in [rolling("two:5h", 5 * 3_600_000), total("two:total")] {
        let c = [Check {
            counter: counter.clone(),
            limit: 10_000,
        }];
        let mut passed = 0;
        for i in 0..8 {
            let s = if i % 2 == 0 { &a } else { &b };
            if check(s, T0 + i, "r", "s", &c).await == CheckOutcome::Admitted {
                passed += 1;
                s.record(T0 + i, 3_000, std::slice::from_ref(&counter))
                    .await
                    .unwrap();
            }
        }
        assert_eq!(passed, 4, "{counter:?}");
        for s in [&a, &b] {
            assert_eq!(
                s.read(T0 + 9, std::slice::from_ref(&counter), None)
                    .await
                    .unwrap(),
                [12_000]
            );
        }
    }
}

async fn two_instances_on_one_store_are_exact(s: Store) {
    two_instances_are_exact(s.clone(), s).await;
}

/// Unlimited session counters (display only) keep at most `SESSION_MEMBERS_CAP` members;
/// limited ones never exceed their limit.
async fn session_counters_are_capped(s: Store) {
    let ttl = 300_000;
    let unlimited = [Check {
        counter: sessions("cap:u", ttl),
        limit: i64::MAX,
    }];
    for i in 0..(SESSION_MEMBERS_CAP + 50) {
        let outcome = check(&s, T0 + i, "r", &format!("s{i}"), &unlimited).await;
        assert_eq!(outcome, CheckOutcome::Admitted);
    }
    let read = s
        .read(T0 + 1_000, &[sessions("cap:u", ttl)], None)
        .await
        .unwrap();
    assert_eq!(read, [SESSION_MEMBERS_CAP]);
    // The most recent sessions are the ones kept.
    let newest = format!("s{}", SESSION_MEMBERS_CAP + 49);
    let read = s
        .read(T0 + 1_000, &[sessions("cap:u", ttl)], Some(&newest))
        .await
        .unwrap();
    assert_eq!(read, [SESSION_MEMBERS_CAP - 1]);
}

/// An ended session's slot is free at once, in every session counter given; other members and
/// other counters are untouched.
async fn released_sessions_free_their_slot(s: Store) {
    let ttl = 300_000;
    let c = [
        Check {
            counter: sessions("rel:u", ttl),
            limit: 2,
        },
        Check {
            counter: sessions("rel:k", ttl),
            limit: 5,
        },
    ];
    assert_eq!(check(&s, T0, "r1", "A", &c).await, CheckOutcome::Admitted);
    assert_eq!(
        check(&s, T0 + 1, "r2", "B", &c).await,
        CheckOutcome::Admitted
    );
    assert!(matches!(
        check(&s, T0 + 2, "r3", "C", &c).await,
        CheckOutcome::Rejected { index: 0, .. }
    ));
    s.release_session(
        &[sessions("rel:u", ttl), sessions("rel:k", ttl), rpm("rel:r")],
        "A",
    )
    .await
    .unwrap();
    let read = s
        .read(
            T0 + 3,
            &[sessions("rel:u", ttl), sessions("rel:k", ttl)],
            None,
        )
        .await
        .unwrap();
    assert_eq!(read, [1, 1]);
    assert_eq!(
        check(&s, T0 + 4, "r4", "C", &c).await,
        CheckOutcome::Admitted
    );
    // Releasing an unknown member or counter is harmless.
    s.release_session(&[sessions("rel:none", ttl)], "Z")
        .await
        .unwrap();
}

/// A held slot's refresh: a holder's last-seen time moves on (its slot outlives the TTL counted
/// from its first request), while a session that holds nothing, was released, or idled out is
/// refused and takes nothing; other kinds of counter are refused.
async fn refresh_keeps_only_a_held_slot(s: Store) {
    let ttl = 300_000;
    let c = [Check {
        counter: sessions("ref:p", ttl),
        limit: 2,
    }];
    assert_eq!(check(&s, T0, "r1", "A", &c).await, CheckOutcome::Admitted);
    assert_eq!(
        check(&s, T0 + 1, "r2", "B", &c).await,
        CheckOutcome::Admitted
    );
    let refresh = |at: i64, member: &'static str| {
        let s = s.clone();
        async move {
            s.refresh_session(at, &sessions("ref:p", ttl), member)
                .await
                .unwrap()
        }
    };
    let held = |at: i64| {
        let s = s.clone();
        async move { s.read(at, &[sessions("ref:p", ttl)], None).await.unwrap() }
    };
    // A stranger is not given a slot by a refresh, even with none free.
    assert!(!refresh(T0 + 2, "C").await);
    assert_eq!(held(T0 + 2).await, [2]);
    // A's refresh late in its TTL keeps it past its first request's TTL; B idles out.
    assert!(refresh(T0 + ttl - 1, "A").await);
    let after_b = T0 + 1 + ttl;
    assert_eq!(held(after_b).await, [1]);
    assert!(
        !refresh(after_b, "B").await,
        "an idle session is not revived"
    );
    assert_eq!(held(after_b).await, [1]);
    // A released session is refused too.
    s.release_session(&[sessions("ref:p", ttl)], "A")
        .await
        .unwrap();
    assert!(!refresh(after_b + 1, "A").await);
    assert_eq!(held(after_b + 1).await, [0]);
    // Only session counters hold slots.
    assert!(!s.refresh_session(T0, &rpm("ref:r"), "A").await.unwrap());
    assert!(
        !s.refresh_session(T0, &sessions("ref:none", ttl), "A")
            .await
            .unwrap()
    );
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store = std::sync::Arc::new(super::MemoryLimits::new());
                    assert_eq!(store.mode(), super::CounterMode::Local);
                    super::$case(store).await;
                }
            )*
            use super::LimitStore as _;
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(r) = super::support::redis::test_redis(stringify!($case)).await else {
                        return;
                    };
                    let store = super::RedisLimits::connect(&r.url, &r.prefix).await.unwrap();
                    assert_eq!(store.mode(), super::CounterMode::Shared);
                    super::$case(std::sync::Arc::new(store)).await;
                    r.cleanup().await;
                }
            )*
            use super::LimitStore as _;
        }
        mod fail_open_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(r) = super::support::redis::test_redis(stringify!($case)).await else {
                        return;
                    };
                    let redis = super::RedisLimits::connect(&r.url, &r.prefix).await.unwrap();
                    let store = std::sync::Arc::new(
                        super::FailOpenLimits::start(
                            std::sync::Arc::new(redis),
                            std::sync::Arc::new(super::MemoryLimits::new()),
                            super::FailOpenConfig::default(),
                        )
                        .await,
                    );
                    super::$case(store.clone()).await;
                    let status = store.status();
                    assert_eq!(status.mode, super::CounterMode::Shared);
                    assert_eq!((status.outages, status.fallback_calls), (0, 0));
                    r.cleanup().await;
                }
            )*
        }
    };
}

contract!(
    refresh_keeps_only_a_held_slot,
    rpm_window_slides_exactly_at_the_edge,
    rejection_counts_nothing_and_reports_the_first_failing_check,
    rolling_spend_sums_and_expires_entries,
    period_and_total_counters_add_up,
    sessions_take_one_slot_each_and_expire_after_ttl,
    idle_sessions_neither_count_nor_name_the_oldest,
    replace_rebuilds_counters,
    replace_keeps_what_was_recorded_during_the_rebuild,
    markers_are_set_once,
    parallel_checks_admit_exactly_the_limit,
    parallel_session_takes_admit_exactly_the_limit,
    provider_slots_are_taken_atomically,
    check_round_trip_cost,
    rolling_lateness_is_at_most_one_bucket,
    rolling_sums_match_a_plain_recount,
    two_instances_on_one_store_are_exact,
    session_counters_are_capped,
    released_sessions_free_their_slot,
);
