//! Memory per entity stays constant whatever the traffic: 100 000 requests through the memory
//! store, and a long run against Redis (keys, hash fields, sorted-set members and `MEMORY
//! USAGE` counted); two Redis-backed instances stay exact on RPM and budgets.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use claude_code_hub::adapters::memory::MemoryLimits;
use claude_code_hub::adapters::redis::RedisLimits;
use claude_code_hub::app::limits::{Scope, counter_for, spend_counters};
use claude_code_hub::domain::limits::{DailyResetMode, Limits};
use claude_code_hub::domain::windows::LimitKind;
use claude_code_hub::ports::limits::{Check, CheckOutcome, CheckRequest, Counter, LimitStore};
use rust_decimal::Decimal;

const T0: i64 = 1_700_000_000_000;
const SESSION_TTL_MS: i64 = 300_000;

/// Every kind of limit, high enough that nothing is refused.
fn every_limit(daily: DailyResetMode) -> Limits {
    let usd = Some(Decimal::from(1_000_000));
    Limits {
        rpm: Some(1_000_000),
        limit_5h_usd: usd,
        limit_daily_usd: usd,
        daily_reset_mode: daily,
        limit_weekly_usd: usd,
        limit_monthly_usd: usd,
        limit_total_usd: usd,
        limit_concurrent_sessions: Some(1_000),
        ..Default::default()
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// The entities of one request: a key (rolling daily), a user (fixed daily) and a provider.
fn entities() -> [(Scope, i64, Limits); 3] {
    [
        (Scope::Key, 1, every_limit(DailyResetMode::Rolling)),
        (Scope::User, 2, every_limit(DailyResetMode::Fixed)),
        (Scope::Provider, 3, every_limit(DailyResetMode::Rolling)),
    ]
}

/// One request as the app makes it: admit every window, then record the spend.
async fn one_request(s: &dyn LimitStore, now_ms: i64, session: &str) {
    let now = at(now_ms);
    let mut checks = Vec::new();
    let mut spend: Vec<Counter> = Vec::new();
    for (scope, id, limits) in entities() {
        for kind in LimitKind::ALL {
            let limit = claude_code_hub::domain::windows::limit_value(&limits, kind).unwrap();
            let counter = counter_for(
                scope,
                id,
                kind,
                &limits,
                now,
                chrono_tz::UTC,
                SESSION_TTL_MS,
            );
            checks.push(Check { counter, limit });
        }
        spend.extend(spend_counters(scope, id, &limits, now, chrono_tz::UTC));
    }
    let outcome = s
        .check(CheckRequest {
            now_ms,
            session_id: session,
            checks: &checks,
        })
        .await
        .unwrap();
    assert_eq!(outcome, CheckOutcome::Admitted);
    s.record(now_ms, 1_234, &spend).await.unwrap();
}

/// 100 000 requests, one every 1.7 s (47 hours: every rolling window wraps many times, daily
/// periods roll over), 5 000 distinct sessions: the stored entries stay bounded by the rings'
/// size, never by the request count.
#[tokio::test]
async fn memory_store_stays_bounded_over_100k_requests() {
    let store = MemoryLimits::new();
    // Per entity: RPM ring ≤ 61, 5 h ring ≤ 101, rolling-daily ring ≤ 97 (key, provider), at
    // most 2 live values per calendar window (the current period and the one just ended, until
    // the sweep), 1 total, sessions ≤ 300 s / 1.7 s ≈ 177 active but capped by the TTL.
    let bound = 3 * (61 + 101 + 97 + 3 * 2 + 1 + 177);
    let mut peak = 0;
    for i in 0..100_000_i64 {
        let now = T0 + i * 1_700;
        one_request(&store, now, &format!("s{}", i % 5_000)).await;
        if i % 1_000 == 999 {
            peak = peak.max(store.entries());
        }
    }
    eprintln!(
        "memory store after 100k requests: {} entries in {} keys (peak {peak})",
        store.entries(),
        store.keys()
    );
    assert!(peak <= bound, "peak {peak} > {bound}");
    // Not trivially small either: the rings really are full.
    assert!(store.entries() > 500, "{}", store.entries());
    assert!(store.keys() <= 3 * 9, "{}", store.keys());
}

/// An entity without limits has no window at all (only its display-only session counter).
#[tokio::test]
async fn unlimited_entities_keep_no_windows() {
    let store = MemoryLimits::new();
    let limits = Limits::default();
    for i in 0..10_000_i64 {
        let now = at(T0 + i * 100);
        let spend = spend_counters(Scope::User, 9, &limits, now, chrono_tz::UTC);
        assert!(spend.is_empty());
        let sessions = counter_for(
            Scope::User,
            9,
            LimitKind::Concurrency,
            &limits,
            now,
            chrono_tz::UTC,
            SESSION_TTL_MS,
        );
        let checks = [Check {
            counter: sessions,
            limit: i64::MAX,
        }];
        let req = CheckRequest {
            now_ms: T0 + i * 100,
            session_id: &format!("s{i}"),
            checks: &checks,
        };
        store.check(req).await.unwrap();
    }
    assert_eq!(store.keys(), 1);
    assert_eq!(
        store.entries(),
        claude_code_hub::domain::windows::SESSION_MEMBERS_CAP as usize
    );
}

async fn redis_stores(
    test: &str,
) -> Option<(
    support::redis::TestRedis,
    Arc<RedisLimits>,
    Arc<RedisLimits>,
)> {
    let r = support::redis::test_redis(test).await?;
    let a = Arc::new(RedisLimits::connect(&r.url, &r.prefix).await.unwrap());
    let b = Arc::new(RedisLimits::connect(&r.url, &r.prefix).await.unwrap());
    Some((r, a, b))
}

/// A user, key and provider with every limit after 12 000 requests spread over 30 hours
/// (every ring full and wrapped): a bounded number of keys, hash fields within the ring size,
/// sorted sets within the cap, and a few KB of `MEMORY USAGE` per entity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_per_entity_is_bounded() {
    let Some((r, a, b)) = redis_stores("redis_memory_per_entity_is_bounded").await else {
        return;
    };
    let mut conn = r.direct().await;
    let mut samples = Vec::new();
    for i in 0..12_000_i64 {
        let store: &dyn LimitStore = if i % 2 == 0 { a.as_ref() } else { b.as_ref() };
        one_request(store, T0 + i * 9_000, &format!("s{}", i % 5_000)).await;
        if i % 3_000 == 2_999 {
            samples.push(measure(&mut conn, &r.prefix).await);
        }
    }
    let (keys, fields, members, bytes) = *samples.last().unwrap();
    eprintln!("redis every 3k requests: {samples:?} (keys, hash fields, zset members, bytes)");
    // Per entity: rpm, 5h and rolling-daily rings (2 for the fixed-daily user), weekly, monthly,
    // total, sessions, plus at most a just-ended period each.
    assert!(keys <= 3 * 10, "{keys} keys");
    assert!(
        fields <= 3 * (61 + 101 + 97 + 3 * 2),
        "{fields} hash fields"
    );
    assert!(members <= 3 * (300_000 / 9_000 + 1), "{members} members");
    // Nearly flat from 22.5 h on (the 24 h rings fill up to 97 of their buckets).
    let (_, _, _, earlier) = samples[2];
    assert!(
        bytes <= earlier + earlier / 5,
        "memory grew from {earlier} to {bytes} bytes"
    );
    assert!(bytes / 3 <= 24 * 1024, "{} bytes per entity", bytes / 3);
    r.cleanup().await;
}

/// (keys, hash fields, zset members, MEMORY USAGE bytes) under `prefix`.
async fn measure(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> (usize, usize, usize, usize) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}lim:*"))
        .query_async(conn)
        .await
        .unwrap();
    let (mut fields, mut members, mut bytes) = (0, 0, 0);
    for k in &keys {
        let kind: String = redis::cmd("TYPE").arg(k).query_async(conn).await.unwrap();
        match kind.as_str() {
            "hash" => {
                let n: usize = redis::cmd("HLEN").arg(k).query_async(conn).await.unwrap();
                // At most 101 buckets, plus the ring's running sum and low mark.
                assert!(n <= 101 + 2, "{k}: {n} fields");
                fields += n;
            }
            "zset" => {
                let n: usize = redis::cmd("ZCARD").arg(k).query_async(conn).await.unwrap();
                members += n;
            }
            _ => {}
        }
        let b: Option<usize> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(k)
            .query_async(conn)
            .await
            .unwrap();
        bytes += b.unwrap_or(0);
    }
    (keys.len(), fields, members, bytes)
}

/// Two Redis-backed stores (two instances): 50 of 200 concurrent requests pass an RPM of 50,
/// and alternating spend closes a budget at the same request on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_redis_instances_are_exact_on_rpm_and_budget() {
    let Some((r, a, b)) = redis_stores("two_redis_instances_exact").await else {
        return;
    };
    let rpm = Counter::Requests {
        key: "two:rpm".into(),
        window_ms: 60_000,
    };
    let mut tasks = Vec::new();
    for i in 0..200_i64 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let rpm = rpm.clone();
        tasks.push(tokio::spawn(async move {
            let checks = [Check {
                counter: rpm,
                limit: 50,
            }];
            let session = format!("s{i}");
            s.check(CheckRequest {
                now_ms: T0 + i * 10,
                session_id: &session,
                checks: &checks,
            })
            .await
            .unwrap()
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() == CheckOutcome::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 50);
    let budget = Counter::RollingSpend {
        key: "two:daily".into(),
        window_ms: 86_400_000,
    };
    let checks = [Check {
        counter: budget.clone(),
        limit: 10_000,
    }];
    let mut passed = 0;
    for i in 0..8_i64 {
        let s: &RedisLimits = if i % 2 == 0 { &a } else { &b };
        let req = CheckRequest {
            now_ms: T0 + i,
            session_id: "s",
            checks: &checks,
        };
        if s.check(req).await.unwrap() == CheckOutcome::Admitted {
            passed += 1;
            s.record(T0 + i, 3_000, std::slice::from_ref(&budget))
                .await
                .unwrap();
        }
    }
    assert_eq!(passed, 4);
    r.cleanup().await;
}

/// Every command Redis runs on keys under `prefix`, Lua-internal calls included, as a
/// `MONITOR` client sees them (test-only; the list lives as long as the test).
async fn monitor_all(host_port: &str, prefix: String) -> Arc<std::sync::Mutex<Vec<String>>> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut conn = tokio::net::TcpStream::connect(host_port).await.unwrap();
    conn.write_all(b"MONITOR\r\n").await.unwrap();
    let mut lines = BufReader::new(conn).lines();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "+OK");
    let out = seen.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(&prefix) {
                let cmd = line.split("] ").nth(1).unwrap_or_default().to_string();
                out.lock().unwrap().push(cmd);
            }
        }
    });
    seen
}

/// Admitting against full rings costs a constant few commands: the ring keeps its running sum,
/// so a check reads two fields per window instead of every bucket (a 5 h ring holds ~100), and
/// never `HGETALL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_on_full_rings_reads_no_buckets() {
    let Some((r, a, _)) = redis_stores("a_check_on_full_rings_reads_no_buckets").await else {
        return;
    };
    let five_h = Counter::RollingSpend {
        key: "full:5h".into(),
        window_ms: 5 * 3_600_000,
    };
    let rpm = Counter::Requests {
        key: "full:rpm".into(),
        window_ms: 60_000,
    };
    // One amount every 3 minutes for 5 h fills the 5 h ring's 101 buckets.
    let mut expect = 0;
    for i in 0..101 {
        a.record(T0 + i * 180_000, 7, std::slice::from_ref(&five_h))
            .await
            .unwrap();
        expect += 7;
    }
    let now = T0 + 100 * 180_000;
    let seen = monitor_all(&r.host_port(), r.prefix.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let checks = [
        Check {
            counter: five_h.clone(),
            limit: 1_000_000,
        },
        Check {
            counter: rpm,
            limit: 1_000,
        },
    ];
    let out = a
        .check(CheckRequest {
            now_ms: now,
            session_id: "s",
            checks: &checks,
        })
        .await
        .unwrap();
    assert_eq!(out, CheckOutcome::Admitted);
    let live = a
        .read(now, std::slice::from_ref(&five_h), None)
        .await
        .unwrap()[0];
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let cmds = seen.lock().unwrap().clone();
    assert!(
        live > 0 && live <= expect,
        "{live} of {expect} still in the window"
    );
    let lua: Vec<&String> = cmds
        .iter()
        .filter(|c| !c.starts_with("\"EVALSHA\""))
        .collect();
    assert!(
        !lua.iter()
            .any(|c| c.starts_with("\"HGETALL\"") && c.contains("full:5h")),
        "{lua:#?}"
    );
    // The full ring: its meta read (+ at most one stale bucket dropped and the sum rewritten)
    // in the check, one meta read in the read.
    let on_full = lua.iter().filter(|c| c.contains("full:5h")).count();
    assert!(on_full <= 5, "{on_full} commands: {lua:#?}");
    r.cleanup().await;
}

/// A ring hash written before rings kept their running sum (bucket fields only) still reads
/// right: it is recounted once, then carries the sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rings_written_without_a_running_sum_are_recounted() {
    let Some((r, a, _)) = redis_stores("rings_written_without_a_running_sum_are_recounted").await
    else {
        return;
    };
    let ring = claude_code_hub::domain::windows::Ring::for_window(5 * 3_600_000);
    let key = format!("{}full:old", r.prefix);
    let mut conn = r.direct().await;
    let stale = ring.index(T0 - 6 * 3_600_000);
    let live = [ring.index(T0 - 3_600_000), ring.index(T0)];
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg(stale)
        .arg(100)
        .arg(live[0])
        .arg(20)
        .arg(live[1])
        .arg(3)
        .query_async(&mut conn)
        .await
        .unwrap();
    let counter = Counter::RollingSpend {
        key: "full:old".into(),
        window_ms: 5 * 3_600_000,
    };
    let read = a
        .read(T0, std::slice::from_ref(&counter), None)
        .await
        .unwrap();
    assert_eq!(read, [23]);
    let sum: Option<i64> = redis::cmd("HGET")
        .arg(&key)
        .arg("t")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(sum, Some(23));
    let stale_left: bool = redis::cmd("HEXISTS")
        .arg(&key)
        .arg(stale)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!stale_left);
    a.record(T0, 5, std::slice::from_ref(&counter))
        .await
        .unwrap();
    let read = a
        .read(T0, std::slice::from_ref(&counter), None)
        .await
        .unwrap();
    assert_eq!(read, [28]);
    r.cleanup().await;
}

/// A ring that is only ever added to (a spend window nothing checks or reads) stays within its
/// ring size: adds to a live bucket skip the pruning, a new bucket does it. Its sum stays
/// exact, also for a hash written before the running sum, first added to in a bucket it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rings_only_added_to_stay_bounded_and_exact() {
    let Some((r, a, _)) = redis_stores("rings_only_added_to_stay_bounded_and_exact").await else {
        return;
    };
    let window = 5 * 3_600_000;
    let ring = claude_code_hub::domain::windows::Ring::for_window(window);
    let counter = Counter::RollingSpend {
        key: "added".into(),
        window_ms: window,
    };
    let key = format!("{}added", r.prefix);
    let mut conn = r.direct().await;
    let mut added = Vec::new();
    // Three windows of traffic, three adds per bucket.
    let step = ring.bucket_ms / 3;
    for i in 0..(3 * window / step) {
        let at = T0 + i * step;
        a.record(at, 7, std::slice::from_ref(&counter))
            .await
            .unwrap();
        added.push(at);
        let n: usize = redis::cmd("HLEN")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(n <= 101 + 2, "{n} fields after {i} adds");
    }
    let now = *added.last().unwrap();
    let live = added
        .iter()
        .filter(|at| ring.released_at(ring.index(**at)) > now)
        .count();
    let read = a
        .read(now, std::slice::from_ref(&counter), None)
        .await
        .unwrap();
    assert_eq!(read, [7 * i64::try_from(live).unwrap()]);

    // An old-style hash (bucket fields only), first added to in a bucket it already has.
    let old = format!("{}added:old", r.prefix);
    let _: () = redis::cmd("HSET")
        .arg(&old)
        .arg(ring.index(T0 - 3_600_000))
        .arg(20)
        .arg(ring.index(T0))
        .arg(3)
        .query_async(&mut conn)
        .await
        .unwrap();
    let counter = Counter::RollingSpend {
        key: "added:old".into(),
        window_ms: window,
    };
    a.record(T0, 5, std::slice::from_ref(&counter))
        .await
        .unwrap();
    let read = a
        .read(T0, std::slice::from_ref(&counter), None)
        .await
        .unwrap();
    assert_eq!(read, [28]);
    r.cleanup().await;
}

/// Every limit key but the totals expires when idle, though the scripts set a ring's expiry
/// only when it gains a bucket and a period counter's only when it is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_key_but_totals_expires() {
    let Some((r, a, _)) = redis_stores("every_limit_key_but_totals_expires").await else {
        return;
    };
    for i in 0..50_i64 {
        one_request(a.as_ref(), T0 + i * 700, &format!("s{}", i % 7)).await;
    }
    let mut conn = r.direct().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}lim:*", r.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 3 * 7, "{keys:?}");
    for k in &keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        if k.ends_with(":total") {
            assert_eq!(ttl, -1, "{k}");
        } else {
            // At most a month and its hour of grace (periods), a day and a bucket (rings).
            assert!(ttl > 0 && ttl <= (32 * 24 + 1) * 3_600_000, "{k}: {ttl} ms");
        }
    }
    r.cleanup().await;
}
