//! One contract for every `CounterStore`: the same cases run against the in-memory store, Redis,
//! and Redis behind the fail-open wrapper, so the backends cannot drift apart.

mod support;

use std::sync::Arc;
use std::time::Duration;

use claude_code_hub::adapters::memory::MemoryCounters;
use claude_code_hub::adapters::redis::RedisCounters;
use claude_code_hub::app::fail_open::{FailOpenConfig, FailOpenCounters};
use claude_code_hub::ports::counters::{
    CounterMode, CounterStore, SessionBind, SessionFilter, SessionTouch, SlotOutcome,
    session_binding_key,
};

type Store = Arc<dyn CounterStore>;

const MIN: Duration = Duration::from_secs(60);
/// A TTL short enough to wait out, long enough to read the key back first on a busy machine.
const SHORT: Duration = Duration::from_millis(300);
/// A wait after which `SHORT` keys are gone.
const PAST_SHORT: u64 = 450;
/// An arbitrary epoch for explicit `now_ms` values.
const T0: i64 = 1_700_000_000_000;

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

async fn incr_and_get_with_ttl_expiry(s: Store) {
    assert_eq!(s.get_counter("c").await.unwrap(), 0);
    assert_eq!(s.incr("c", 3, SHORT).await.unwrap(), 3);
    assert_eq!(s.incr("c", 4, SHORT).await.unwrap(), 7);
    assert_eq!(s.incr("c", -2, SHORT).await.unwrap(), 5);
    assert_eq!(s.get_counter("c").await.unwrap(), 5);
    assert_eq!(s.get("c").await.unwrap().as_deref(), Some("5"));
    // The TTL is set when the counter is created, not pushed back by later increments.
    sleep_ms(PAST_SHORT).await;
    assert_eq!(s.get_counter("c").await.unwrap(), 0);
    assert_eq!(s.incr("c", 1, MIN).await.unwrap(), 1);
}

async fn rolling_window_drops_entries_exactly_at_the_edge(s: Store) {
    let w = 60_000;
    assert_eq!(s.rolling_sum("r", T0, w).await.unwrap(), 0);
    assert_eq!(s.rolling_add("r", T0, "m1", 5, w).await.unwrap(), 5);
    assert_eq!(
        s.rolling_add("r", T0 + 30_000, "m2", 7, w).await.unwrap(),
        12
    );
    assert_eq!(s.rolling_sum("r", T0 + 59_999, w).await.unwrap(), 12);
    assert_eq!(s.rolling_sum("r", T0 + 60_000, w).await.unwrap(), 7);
    assert_eq!(
        s.rolling_add("r", T0 + 60_000, "m3", 1, w).await.unwrap(),
        8
    );
    // Re-adding the same member (same amount) moves it instead of counting it twice.
    assert_eq!(
        s.rolling_add("r", T0 + 60_001, "m3", 1, w).await.unwrap(),
        8
    );
    assert_eq!(s.rolling_sum("r", T0 + 89_999, w).await.unwrap(), 8);
    assert_eq!(s.rolling_sum("r", T0 + 90_000, w).await.unwrap(), 1);
    assert_eq!(
        s.rolling_add("r", T0 + 200_000, "m4", 2, w).await.unwrap(),
        2
    );
    // Windows of different keys are independent.
    assert_eq!(s.rolling_sum("other", T0 + 200_000, w).await.unwrap(), 0);
}

async fn set_get_and_ttl_expiry(s: Store) {
    assert_eq!(s.get("k").await.unwrap(), None);
    s.set("k", "v1", None).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("v1"));
    s.set("k", "v2", None).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("v2"));
    s.set("t", "short", Some(SHORT)).await.unwrap();
    assert_eq!(s.get("t").await.unwrap().as_deref(), Some("short"));
    sleep_ms(PAST_SHORT).await;
    assert_eq!(s.get("t").await.unwrap(), None);
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("v2"));
}

async fn set_if_absent_only_sets_once(s: Store) {
    let ttl = SHORT;
    assert!(s.set_if_absent("n", "first", ttl).await.unwrap());
    assert!(!s.set_if_absent("n", "second", ttl).await.unwrap());
    assert_eq!(s.get("n").await.unwrap().as_deref(), Some("first"));
    sleep_ms(PAST_SHORT).await;
    assert!(s.set_if_absent("n", "third", MIN).await.unwrap());
    assert_eq!(s.get("n").await.unwrap().as_deref(), Some("third"));
}

async fn compare_and_swap_cases(s: Store) {
    // absent -> value
    assert!(s.compare_and_swap("x", None, "a", Some(MIN)).await.unwrap());
    assert!(!s.compare_and_swap("x", None, "z", Some(MIN)).await.unwrap());
    // value -> value
    assert!(s.compare_and_swap("x", Some("a"), "b", None).await.unwrap());
    assert_eq!(s.get("x").await.unwrap().as_deref(), Some("b"));
    // mismatch
    assert!(!s.compare_and_swap("x", Some("a"), "c", None).await.unwrap());
    assert!(
        !s.compare_and_swap("missing", Some("a"), "c", None)
            .await
            .unwrap()
    );
    assert_eq!(s.get("x").await.unwrap().as_deref(), Some("b"));
    assert_eq!(s.get("missing").await.unwrap(), None);
    // the new TTL applies
    let short = Some(SHORT);
    assert!(
        s.compare_and_swap("x", Some("b"), "d", short)
            .await
            .unwrap()
    );
    sleep_ms(PAST_SHORT).await;
    assert_eq!(s.get("x").await.unwrap(), None);
}

async fn expire_resets_ttl(s: Store) {
    assert!(!s.expire("e", MIN).await.unwrap());
    s.set("e", "v", None).await.unwrap();
    assert!(s.expire("e", SHORT).await.unwrap());
    s.incr("ec", 1, SHORT).await.unwrap();
    assert!(s.expire("ec", MIN).await.unwrap());
    sleep_ms(PAST_SHORT).await;
    assert_eq!(s.get("e").await.unwrap(), None);
    assert!(!s.expire("e", MIN).await.unwrap());
    assert_eq!(s.get_counter("ec").await.unwrap(), 1);
}

async fn delete_removes_any_kind(s: Store) {
    s.set("d1", "v", None).await.unwrap();
    s.incr("d2", 5, MIN).await.unwrap();
    s.rolling_add("d3", T0, "m", 5, 60_000).await.unwrap();
    s.acquire_slot("d4", "m", T0, 60_000, None).await.unwrap();
    for k in ["d1", "d2", "d3", "d4", "never-set"] {
        s.delete(k).await.unwrap();
    }
    assert_eq!(s.get("d1").await.unwrap(), None);
    assert_eq!(s.get_counter("d2").await.unwrap(), 0);
    assert_eq!(s.rolling_sum("d3", T0, 60_000).await.unwrap(), 0);
    assert_eq!(s.count_slots("d4", T0, 60_000).await.unwrap(), 0);
}

async fn slots_limit_refresh_idle_and_release(s: Store) {
    let ttl = 10_000;
    let lim = Some(2);
    let got = |acquired, active| SlotOutcome { acquired, active };
    assert_eq!(
        s.acquire_slot("s", "a", T0, ttl, lim).await.unwrap(),
        got(true, 1)
    );
    assert_eq!(
        s.acquire_slot("s", "b", T0 + 1_000, ttl, lim)
            .await
            .unwrap(),
        got(true, 2)
    );
    assert_eq!(
        s.acquire_slot("s", "c", T0 + 2_000, ttl, lim)
            .await
            .unwrap(),
        got(false, 2)
    );
    // a holder re-acquires without taking a new slot, even when full
    assert_eq!(
        s.acquire_slot("s", "a", T0 + 3_000, ttl, lim)
            .await
            .unwrap(),
        got(true, 2)
    );
    assert_eq!(s.count_slots("s", T0 + 3_000, ttl).await.unwrap(), 2);
    // b (last seen T0+1000) is idle for ttl at T0+11000; a (refreshed at T0+3000) is not
    assert_eq!(s.count_slots("s", T0 + 10_999, ttl).await.unwrap(), 2);
    assert_eq!(s.count_slots("s", T0 + 11_000, ttl).await.unwrap(), 1);
    assert_eq!(
        s.acquire_slot("s", "c", T0 + 11_000, ttl, lim)
            .await
            .unwrap(),
        got(true, 2)
    );
    s.release_slot("s", "a").await.unwrap();
    s.release_slot("s", "nobody").await.unwrap();
    assert_eq!(s.count_slots("s", T0 + 11_000, ttl).await.unwrap(), 1);
    // no limit
    for (i, m) in ["p", "q", "r"].into_iter().enumerate() {
        let out = s.acquire_slot("u", m, T0, ttl, None).await.unwrap();
        assert_eq!(out, got(true, i as i64 + 1));
    }
}

async fn parallel_acquires_take_exactly_the_limit(s: Store) {
    let limit = 7;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.acquire_slot("par", &format!("m{i}"), T0, 60_000, Some(limit))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut acquired = 0;
    for t in tasks {
        let out = t.await.unwrap();
        assert!(out.active <= limit);
        acquired += i64::from(out.acquired);
    }
    assert_eq!(acquired, limit);
    assert_eq!(s.count_slots("par", T0, 60_000).await.unwrap(), limit);
}

async fn parallel_increments_are_not_lost(s: Store) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.incr("pc", 2, MIN).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.get_counter("pc").await.unwrap(), 100);
}

async fn ping_answers(s: Store) {
    s.ping().await.unwrap();
}

fn touch(
    id: &str,
    user: i64,
    key: i64,
    provider: i64,
    now_ms: i64,
    bind: SessionBind,
) -> SessionTouch {
    SessionTouch {
        id: id.into(),
        user_id: Some(user),
        key_id: Some(key),
        provider_id: provider,
        model: "claude-sonnet-4-5".into(),
        client_format: "claude".into(),
        now_ms,
        ttl: MIN,
        bind,
    }
}

fn all(limit: usize) -> SessionFilter {
    SessionFilter {
        limit,
        ..SessionFilter::default()
    }
}

/// Sessions are listed newest first with their counts, bindings follow the bind mode, filters
/// and the limit apply, and idle sessions are not listed.
async fn sessions_are_listed_newest_first_and_filtered(s: Store) {
    let ttl_ms = 60_000;
    s.touch_session(&touch("a", 1, 10, 100, T0, SessionBind::IfAbsent))
        .await
        .unwrap();
    s.touch_session(&touch("b", 1, 11, 200, T0 + 10, SessionBind::IfAbsent))
        .await
        .unwrap();
    s.touch_session(&touch("c", 2, 20, 100, T0 + 20, SessionBind::IfAbsent))
        .await
        .unwrap();
    // A second request of "a": a first selection never moves an existing binding, a refresh
    // keeps it, the counts and last activity move on.
    s.touch_session(&touch("a", 1, 10, 300, T0 + 30, SessionBind::IfAbsent))
        .await
        .unwrap();
    s.touch_session(&touch("a", 1, 10, 300, T0 + 40, SessionBind::Refresh))
        .await
        .unwrap();
    let listed = s.list_sessions(T0 + 50, ttl_ms, &all(100)).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, ["a", "c", "b"]);
    let a = &listed[0];
    assert_eq!((a.started_ms, a.last_ms, a.requests), (T0, T0 + 40, 3));
    assert_eq!(
        (a.user_id, a.key_id, a.provider_id),
        (Some(1), Some(10), Some(100))
    );
    assert_eq!(
        (a.model.as_str(), a.client_format.as_str()),
        ("claude-sonnet-4-5", "claude")
    );
    assert_eq!(a.in_flight, None);
    assert_eq!(
        s.get(&session_binding_key("a")).await.unwrap().as_deref(),
        Some("100")
    );
    // A failover replaces the binding.
    s.touch_session(&touch("a", 1, 10, 300, T0 + 60, SessionBind::Replace))
        .await
        .unwrap();
    assert_eq!(
        s.get(&session_binding_key("a")).await.unwrap().as_deref(),
        Some("300")
    );
    // Filters and the limit.
    let by = |user_id, key_id, provider_id| SessionFilter {
        user_id,
        key_id,
        provider_id,
        limit: 100,
    };
    let ids = |v: Vec<claude_code_hub::ports::counters::ActiveSession>| -> Vec<String> {
        v.into_iter().map(|x| x.id).collect()
    };
    let now = T0 + 70;
    assert_eq!(
        ids(s
            .list_sessions(now, ttl_ms, &by(Some(1), None, None))
            .await
            .unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        ids(s
            .list_sessions(now, ttl_ms, &by(None, Some(20), None))
            .await
            .unwrap()),
        ["c"]
    );
    assert_eq!(
        ids(s
            .list_sessions(now, ttl_ms, &by(None, None, Some(100)).clone())
            .await
            .unwrap()),
        ["c"]
    );
    assert_eq!(
        ids(s
            .list_sessions(now, ttl_ms, &by(None, None, Some(300)))
            .await
            .unwrap()),
        ["a"]
    );
    assert_eq!(
        ids(s.list_sessions(now, ttl_ms, &all(2)).await.unwrap()),
        ["a", "c"]
    );
    // "b" (last seen T0+10) is idle SESSION_TTL later; "a" (T0+60) is not.
    assert_eq!(
        ids(s
            .list_sessions(T0 + 10 + ttl_ms, ttl_ms, &all(100))
            .await
            .unwrap()),
        ["a", "c"]
    );
    assert!(
        s.list_sessions(T0 + 60 + ttl_ms, ttl_ms, &all(100))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Ending a session forgets its binding and listing entry; sessions also expire with their TTL.
async fn ended_and_expired_sessions_are_gone(s: Store) {
    let ttl_ms = 60_000;
    s.touch_session(&touch("x", 1, 10, 100, T0, SessionBind::IfAbsent))
        .await
        .unwrap();
    s.touch_session(&touch("y", 2, 20, 200, T0 + 1, SessionBind::IfAbsent))
        .await
        .unwrap();
    let ended = s.end_session("x").await.unwrap().expect("x was active");
    assert_eq!(
        (ended.user_id, ended.key_id, ended.provider_id),
        (Some(1), Some(10), Some(100))
    );
    assert_eq!(s.get(&session_binding_key("x")).await.unwrap(), None);
    let left = s.list_sessions(T0 + 2, ttl_ms, &all(100)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "y");
    assert_eq!(s.end_session("x").await.unwrap(), None);
    assert_eq!(s.end_session("never").await.unwrap(), None);
    // A short TTL: binding and entry are gone once it passes.
    let mut short = touch("z", 3, 30, 300, T0 + 3, SessionBind::IfAbsent);
    short.ttl = SHORT;
    s.touch_session(&short).await.unwrap();
    assert_eq!(
        s.list_sessions(T0 + 4, ttl_ms, &all(100))
            .await
            .unwrap()
            .len(),
        2
    );
    sleep_ms(PAST_SHORT).await;
    let left = s.list_sessions(T0 + 4, ttl_ms, &all(100)).await.unwrap();
    assert_eq!(
        left.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        ["y"]
    );
    assert_eq!(s.get(&session_binding_key("z")).await.unwrap(), None);
}

/// Runs each case against every backend: `memory::case`, `redis::case`, `fail_open_redis::case`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store = std::sync::Arc::new(super::MemoryCounters::new());
                    assert_eq!(store.mode(), super::CounterMode::Local);
                    super::$case(store).await;
                }
            )*
            use super::CounterStore as _;
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(r) = super::support::redis::test_redis(stringify!($case)).await else {
                        return;
                    };
                    let store = super::RedisCounters::connect(&r.url, &r.prefix).await.unwrap();
                    assert_eq!(store.mode(), super::CounterMode::Shared);
                    super::$case(std::sync::Arc::new(store)).await;
                    r.cleanup().await;
                }
            )*
            use super::CounterStore as _;
        }
        mod fail_open_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(r) = super::support::redis::test_redis(stringify!($case)).await else {
                        return;
                    };
                    let redis = super::RedisCounters::connect(&r.url, &r.prefix).await.unwrap();
                    let config = super::FailOpenConfig {
                        probe_interval: std::time::Duration::from_millis(100),
                        ..Default::default()
                    };
                    let store = std::sync::Arc::new(
                        super::FailOpenCounters::start(
                            std::sync::Arc::new(redis),
                            std::sync::Arc::new(super::MemoryCounters::new()),
                            config,
                        )
                        .await,
                    );
                    super::$case(store.clone()).await;
                    // Everything was answered by Redis, none by the fallback.
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
    incr_and_get_with_ttl_expiry,
    rolling_window_drops_entries_exactly_at_the_edge,
    set_get_and_ttl_expiry,
    set_if_absent_only_sets_once,
    compare_and_swap_cases,
    expire_resets_ttl,
    delete_removes_any_kind,
    slots_limit_refresh_idle_and_release,
    parallel_acquires_take_exactly_the_limit,
    parallel_increments_are_not_lost,
    ping_answers,
    sessions_are_listed_newest_first_and_filtered,
    ended_and_expired_sessions_are_gone,
);
