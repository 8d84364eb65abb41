//! Fail-open in practice: Redis behind a breakable TCP proxy. Requests keep succeeding while
//! Redis is cut, black-holed or absent at startup, with one warning per outage, and shared
//! counting comes back by itself when Redis does.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use claude_code_hub::adapters::memory::MemoryCounters;
use claude_code_hub::adapters::redis::RedisCounters;
use claude_code_hub::app::fail_open::{FailOpenConfig, FailOpenCounters};
use claude_code_hub::ports::counters::{CounterMode, CounterStore};
use support::redis::TestRedis;
use support::tcp_proxy::TcpProxy;
use tracing::Level;

const PROBE: Duration = Duration::from_millis(100);
const MIN: Duration = Duration::from_secs(60);
const WARNING: &str = "counting in memory";
const RECOVERED: &str = "back to shared counting";

async fn fail_open_through(r: &TestRedis, proxy: &TcpProxy) -> FailOpenCounters {
    fail_open_with_timeout(r, proxy, Duration::from_millis(500)).await
}

async fn fail_open_with_timeout(
    r: &TestRedis,
    proxy: &TcpProxy,
    call_timeout: Duration,
) -> FailOpenCounters {
    let redis = RedisCounters::connect(&r.url_via(proxy.addr()), &r.prefix)
        .await
        .unwrap();
    let config = FailOpenConfig {
        probe_interval: PROBE,
        call_timeout,
    };
    FailOpenCounters::start(Arc::new(redis), Arc::new(MemoryCounters::new()), config).await
}

/// What Redis itself holds under `key` (read without the proxy).
async fn redis_value(r: &TestRedis, key: &str) -> Option<String> {
    let mut conn = r.direct().await;
    ::redis::cmd("GET")
        .arg(format!("{}{key}", r.prefix))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Polls until the wrapper is back to `Shared`; returns how long it took.
async fn wait_for_shared(store: &FailOpenCounters, max: Duration) -> Duration {
    let started = Instant::now();
    while store.mode() != CounterMode::Shared {
        assert!(started.elapsed() < max, "still degraded after {max:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// A mix of calls that must all succeed whatever state Redis is in.
async fn exercise(store: &FailOpenCounters, round: i64) {
    store.incr("mix:c", 1, MIN).await.unwrap();
    store.get_counter("mix:c").await.unwrap();
    store
        .rolling_add("mix:r", 1_000 + round, &format!("m{round}"), 1, 60_000)
        .await
        .unwrap();
    store
        .rolling_sum("mix:r", 1_000 + round, 60_000)
        .await
        .unwrap();
    store.set("mix:s", "v", Some(MIN)).await.unwrap();
    store.get("mix:s").await.unwrap();
    store.set_if_absent("mix:n", "v", MIN).await.unwrap();
    store
        .compare_and_swap("mix:x", None, "v", Some(MIN))
        .await
        .unwrap();
    store.expire("mix:s", MIN).await.unwrap();
    let slot = store
        .acquire_slot("mix:slots", "m", 1_000 + round, 60_000, Some(3))
        .await
        .unwrap();
    assert!(slot.acquired);
    store
        .count_slots("mix:slots", 1_000 + round, 60_000)
        .await
        .unwrap();
    store.release_slot("mix:slots", "m").await.unwrap();
    store.delete("mix:n").await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn cut_redis_falls_back_to_memory_then_recovers() {
    let (logs, _guard) = support::logs::capture();
    let Some(r) = support::redis::test_redis("cut_redis_falls_back_to_memory_then_recovers").await
    else {
        return;
    };
    let proxy = TcpProxy::start(r.host_port()).await.unwrap();
    let store = fail_open_through(&r, &proxy).await;

    // Healthy: answers come from Redis.
    assert_eq!(store.mode(), CounterMode::Shared);
    assert_eq!(store.incr("c", 5, MIN).await.unwrap(), 5);
    assert_eq!(redis_value(&r, "c").await.as_deref(), Some("5"));
    exercise(&store, 0).await;
    assert_eq!(store.status().fallback_calls, 0);

    // Cut: the first call decides to fall back, later ones go straight to memory.
    proxy.cut();
    let started = Instant::now();
    assert_eq!(
        store.incr("c", 1, MIN).await.unwrap(),
        1,
        "answered from memory"
    );
    let decision = started.elapsed();
    assert_eq!(store.mode(), CounterMode::Degraded);
    let started = Instant::now();
    for round in 1..=20 {
        exercise(&store, round).await;
    }
    let degraded_call = started.elapsed() / (20 * 15);
    eprintln!("fallback decision took {decision:?}; degraded calls average {degraded_call:?}");
    assert!(
        decision < Duration::from_millis(600),
        "decision took {decision:?}"
    );
    assert!(
        degraded_call < Duration::from_millis(5),
        "degraded call {degraded_call:?}"
    );
    // Stay down for several probe intervals: still exactly one warning, one outage.
    tokio::time::sleep(PROBE * 5).await;
    assert_eq!(store.mode(), CounterMode::Degraded);
    assert_eq!(
        logs.count(Level::WARN, WARNING),
        1,
        "{:?}",
        logs.at(Level::WARN)
    );
    let status = store.status();
    assert_eq!(status.outages, 1);
    assert!(status.degraded_since.is_some());
    assert!(status.degraded_for.unwrap() >= PROBE * 5);

    // Restore: the probe notices within a few intervals, writes reach Redis again.
    proxy.restore();
    let took = wait_for_shared(&store, PROBE * 20).await;
    eprintln!("recovered {took:?} after restore");
    assert_eq!(logs.count(Level::INFO, RECOVERED), 1);
    assert_eq!(store.incr("after", 7, MIN).await.unwrap(), 7);
    assert_eq!(redis_value(&r, "after").await.as_deref(), Some("7"));
    assert_eq!(
        store.incr("c", 1, MIN).await.unwrap(),
        6,
        "Redis kept its count"
    );
    let status = store.status();
    assert_eq!((status.mode, status.outages), (CounterMode::Shared, 1));
    assert_eq!(status.degraded_since, None);

    // A second outage is warned about again, once.
    proxy.cut();
    exercise(&store, 30).await;
    exercise(&store, 31).await;
    assert_eq!(logs.count(Level::WARN, WARNING), 2);
    assert_eq!(store.status().outages, 2);
    proxy.restore();
    wait_for_shared(&store, PROBE * 20).await;
    r.cleanup().await;
}

#[tokio::test]
async fn hanging_redis_does_not_hang_requests() {
    let (logs, _guard) = support::logs::capture();
    let Some(r) = support::redis::test_redis("hanging_redis_does_not_hang_requests").await else {
        return;
    };
    let proxy = TcpProxy::start(r.host_port()).await.unwrap();
    // Shorter than Redis' own response timeout: the wrapper gives up first, so the adapter must
    // notice the abandoned calls and replace the dead connection by itself.
    let store = fail_open_with_timeout(&r, &proxy, Duration::from_millis(300)).await;
    assert_eq!(store.incr("h", 1, MIN).await.unwrap(), 1);

    proxy.black_hole();
    let started = Instant::now();
    assert_eq!(
        store.incr("h", 1, MIN).await.unwrap(),
        1,
        "answered from memory"
    );
    let decision = started.elapsed();
    eprintln!("fallback decision on a hanging Redis took {decision:?}");
    assert!(decision < Duration::from_millis(600), "took {decision:?}");
    assert_eq!(store.mode(), CounterMode::Degraded);
    let started = Instant::now();
    exercise(&store, 1).await;
    assert!(started.elapsed() < Duration::from_millis(50));
    tokio::time::sleep(PROBE * 5).await;
    assert_eq!(logs.count(Level::WARN, WARNING), 1);

    proxy.restore();
    let took = wait_for_shared(&store, Duration::from_secs(5)).await;
    eprintln!("recovered {took:?} after the black hole ended");
    assert_eq!(store.incr("h", 1, MIN).await.unwrap(), 2);
    assert_eq!(redis_value(&r, "h").await.as_deref(), Some("2"));
    r.cleanup().await;
}

#[tokio::test]
async fn redis_down_at_startup_starts_degraded_and_recovers() {
    let (logs, _guard) = support::logs::capture();
    let Some(r) =
        support::redis::test_redis("redis_down_at_startup_starts_degraded_and_recovers").await
    else {
        return;
    };
    let proxy = TcpProxy::start(r.host_port()).await.unwrap();
    proxy.cut();

    let started = Instant::now();
    let store = fail_open_through(&r, &proxy).await;
    let startup = started.elapsed();
    eprintln!("startup with Redis down took {startup:?}");
    assert!(startup < Duration::from_secs(3), "startup took {startup:?}");
    assert_eq!(store.mode(), CounterMode::Degraded);
    assert_eq!(store.incr("boot", 2, MIN).await.unwrap(), 2);
    exercise(&store, 0).await;
    tokio::time::sleep(PROBE * 3).await;
    assert_eq!(logs.count(Level::WARN, WARNING), 1);
    assert_eq!(store.status().outages, 1);

    proxy.restore();
    let took = wait_for_shared(&store, PROBE * 20).await;
    eprintln!("recovered {took:?} after Redis came up");
    assert_eq!(store.incr("boot", 3, MIN).await.unwrap(), 3);
    assert_eq!(redis_value(&r, "boot").await.as_deref(), Some("3"));
    r.cleanup().await;
}
