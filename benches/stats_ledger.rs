//! Usage-ledger benchmark: generates request logs through the real log insert (so roll-ups are
//! written exactly as in production), times the statistics queries, and measures what roll-ups
//! add to the log writer.
//!
//! ```text
//! cargo bench --bench stats_ledger -- generate <DSN> [rows=5000000] [days=90]
//! cargo bench --bench stats_ledger -- query    <DSN> [runs=20]
//! cargo bench --bench stats_ledger -- writer   <DSN> [rows=100000] [users=10000] [batch=256]
//! ```
//! `DSN` is `sqlite:///path/cch.db` or `postgres://…/db` (an empty database: it is migrated).
//! Data: 10,000 users (a few heavy, most light: user = 10,000·u³), 3 keys each (each key one
//! client format, 70 % Claude), 200 providers in 50 groups of 4 (a user's group is fixed, a
//! session sticks to one provider), 50 models (each user uses two, 70/30), 95 % successes, requests spread over `days` with a daily rhythm, in time order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use claude_code_hub::adapters::postgres::PostgresStore;
use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::app::snapshot::SnapshotHolder;
use claude_code_hub::app::stats::{Period, StatsService};
use claude_code_hub::domain::periods::BucketWidth;
use claude_code_hub::domain::request_log::RequestLog;
use claude_code_hub::ports::clock::Clock;
use claude_code_hub::ports::stats::{Dimension, Metric, StatsStore};
use claude_code_hub::ports::store::{ConfigStore, CostQuery, CostScope, RequestLogStore};
use rust_decimal::Decimal;

/// Users of the generated data; the writer can be run with fewer (a team's traffic, where
/// roll-up keys repeat within the hour).
const USERS: u64 = 10_000;

/// Rows per insert, as the log writer batches them under load (a quieter writer sends
/// smaller batches: `writer … [batch]`).
const BATCH: usize = 256;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct SystemClock;
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

trait Store: RequestLogStore + StatsStore + ConfigStore {}
impl<T: RequestLogStore + StatsStore + ConfigStore> Store for T {}

async fn open(dsn: &str) -> Arc<dyn Store> {
    if dsn.starts_with("postgres") {
        let s = PostgresStore::connect(dsn).await.expect("connect");
        s.migrate().await.expect("migrate");
        Arc::new(s)
    } else {
        let s = SqliteStore::connect(dsn).await.expect("connect");
        s.migrate().await.expect("migrate");
        Arc::new(s)
    }
}

/// Row `i` of `n` spread over `days` up to `end`, from one of `users` users.
fn row(
    rng: &mut Rng,
    (i, n): (u64, u64),
    users: u64,
    days: i64,
    end: DateTime<Utc>,
    tag: &str,
) -> RequestLog {
    let span = days * 86_400;
    // Time order with a daily rhythm: squeeze each day's share toward its working hours.
    let t = (i as f64 + rng.unit()) / n as f64;
    let day = (t * days as f64).floor();
    let within = t * days as f64 - day;
    let shaped = 0.25 + 0.6 * within.powf(1.3);
    let secs = ((day + shaped) * 86_400.0) as i64;
    let created_at = end - chrono::Duration::seconds(span - secs.min(span - 1));
    let user = (users as f64 * rng.unit().powi(3)) as i64 + 1;
    let key = user * 3 - rng.below(3) as i64;
    // A session (about two hours of a user's traffic) sticks to one provider of its group.
    let session = user * 100 + (i / 5_000) as i64 % 100;
    let provider = (user % 50) * 4 + (user + session) % 4 + 1;
    // Each user works with two models (most requests on the first); 50 models in all.
    let model = if rng.below(10) < 7 {
        (user * 7) % 50
    } else {
        (user * 13 + 1) % 50
    } + 1;
    // A key belongs to one client: mostly Claude Code.
    let format = match key % 10 {
        0..7 => "claude",
        7 => "openai",
        8 => "response",
        _ => "gemini",
    };
    let status = match rng.below(1000) {
        0..950 => 200,
        950..970 => 429,
        970..985 => 502,
        985..995 => 499,
        _ => 400,
    };
    let ok = status == 200;
    let input = if ok {
        200 + rng.below(20_000) as i64
    } else {
        0
    };
    let output = if ok { 50 + rng.below(4_000) as i64 } else { 0 };
    let cache_read = if ok { rng.below(100_000) as i64 } else { 0 };
    let cost = Decimal::from(input * 3 + output * 15) / Decimal::from(1_000_000)
        + Decimal::from(cache_read * 3) / Decimal::from(10_000_000);
    RequestLog {
        id: 0,
        request_id: format!("{tag}-{i}"),
        created_at,
        user_id: Some(user),
        key_id: Some(key),
        provider_id: Some(provider),
        requested_model: Some(format!("model-{model}")),
        forwarded_model: Some(format!("model-{model}")),
        endpoint: "/v1/messages".into(),
        client_format: format.into(),
        status_code: status,
        is_stream: true,
        input_tokens: input,
        output_tokens: output,
        cache_creation_5m_tokens: if ok { rng.below(2_000) as i64 } else { 0 },
        cache_creation_1h_tokens: 0,
        cache_read_tokens: cache_read,
        cost_usd: cost,
        cost_known: true,
        duration_ms: 500 + rng.below(60_000) as i64,
        ttfb_ms: ok.then(|| 200 + rng.below(3_000) as i64),
        provider_chain: serde_json::json!([{"provider_id": provider, "converted": false}]),
        session_id: Some(format!("s{session}")),
        user_agent: Some("claude-cli/2.0".into()),
        error_message: None,
    }
}

/// The zone the benchmark cuts periods in (and builds the period tiers in).
const ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// Runs the period tiers' rebuild to its end; prints how long it took when there was work.
async fn build_tiers(store: &Arc<dyn StatsStore>) {
    let t = Instant::now();
    let mut steps = 0u64;
    while store
        .tier_step(
            ZONE,
            claude_code_hub::domain::usage_tiers::REBUILD_STEP_ROWS,
            claude_code_hub::domain::usage_tiers::fold_before(Utc::now().timestamp()),
        )
        .await
        .expect("tier step")
    {
        steps += 1;
    }
    if steps > 1 {
        println!(
            "period tiers rebuilt from the ledger: {steps} steps in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
}

async fn generate(dsn: &str, n: u64, days: i64) {
    let store = open(dsn).await;
    // Tiers in the benchmark's zone, written by the log writer from the first row.
    build_tiers(&(store.clone() as Arc<dyn StatsStore>)).await;
    let end = Utc::now();
    let mut rng = Rng(42);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        batch.push(row(&mut rng, (i, n), USERS, days, end, "gen"));
        if batch.len() == BATCH || i + 1 == n {
            store.insert_logs(&batch).await.expect("insert");
            batch.clear();
        }
        if i % 500_000 == 0 && i > 0 {
            let s = started.elapsed().as_secs_f64();
            eprintln!("{i} rows, {:.0} rows/s", i as f64 / s);
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "generated {n} rows over {days} days in {s:.0} s ({:.0} rows/s)",
        n as f64 / s
    );
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let p = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<44} median {:>7.1} ms   p95 {:>7.1} ms   max {:>7.1} ms",
        p(0.5),
        p(0.95),
        p(1.0)
    );
}

async fn timed<F, Fut>(runs: usize, mut f: F) -> Vec<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..2 {
        f().await;
    }
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

async fn query(dsn: &str, runs: usize) {
    let store = open(dsn).await;
    build_tiers(&(store.clone() as Arc<dyn StatsStore>)).await;
    let snapshot = SnapshotHolder::load(store.clone() as Arc<dyn ConfigStore>, Utc::now())
        .await
        .expect("snapshot");
    let stats = StatsService::new(
        store.clone() as Arc<dyn StatsStore>,
        snapshot,
        Arc::new(SystemClock),
        ZONE,
        Duration::from_secs(300),
    );
    let o = stats.overview(Period::Month).await.expect("overview");
    println!(
        "this month: {} requests, cost {} USD",
        o.sums.requests,
        o.sums.cost_usd.round_dp(2)
    );
    let ms = timed(runs, || async {
        stats.overview(Period::Month).await.expect("overview");
    })
    .await;
    summary("overview (period=month)", ms);
    let range = stats.default_series_range(BucketWidth::Day).expect("range");
    let ms = timed(runs, || async {
        let s = stats
            .timeseries(
                Metric::Cost,
                BucketWidth::Day,
                range,
                Some(Dimension::Provider),
                10,
            )
            .await
            .expect("series");
        assert_eq!(s.buckets.len(), 30);
    })
    .await;
    summary("timeseries (30 days, day, by provider, top 10)", ms);
    let ms = timed(runs, || async {
        stats
            .timeseries(
                Metric::Cost,
                BucketWidth::Day,
                range,
                Some(Dimension::User),
                10,
            )
            .await
            .expect("series");
    })
    .await;
    summary("timeseries (30 days, day, by user, top 10)", ms);
    // One user's spend (the usage of a window without a limit): read from the tiers, the
    // ledger having no per-user index. User 1 is the heaviest, 5,000 a light one.
    let month_start = claude_code_hub::domain::periods::period_range(
        claude_code_hub::domain::periods::Period::Month,
        Utc::now(),
        ZONE,
    )
    .expect("month")
    .from;
    for (name, id, since) in [
        ("one user's cost (heaviest, this month)", 1, month_start),
        ("one user's cost (light, this month)", 5_000, month_start),
        (
            "one user's cost (heaviest, all time)",
            1,
            DateTime::<Utc>::UNIX_EPOCH,
        ),
        (
            "one user's cost (heaviest, last 5 hours)",
            1,
            Utc::now() - chrono::Duration::hours(5),
        ),
    ] {
        let ms = timed(runs, || async {
            store
                .cost_buckets(&CostQuery {
                    scope: CostScope::User,
                    id: Some(id),
                    since,
                    until: Utc::now(),
                    bucket_ms: i64::MAX,
                })
                .await
                .expect("cost");
        })
        .await;
        summary(name, ms);
    }
    let ms = timed(runs, || async {
        stats
            .leaderboard(Dimension::User, Period::Month, Metric::Cost, 50)
            .await
            .expect("leaderboard");
    })
    .await;
    summary("leaderboard (users, month, by cost, 50)", ms);
    for (name, dim, period) in [
        (
            "leaderboard (users, today, by cost, 50)",
            Dimension::User,
            Period::Today,
        ),
        (
            "leaderboard (keys, week, by cost, 50)",
            Dimension::Key,
            Period::Week,
        ),
        (
            "leaderboard (models, month, by cost, 50)",
            Dimension::Model,
            Period::Month,
        ),
    ] {
        let ms = timed(runs, || async {
            stats
                .leaderboard(dim, period, Metric::Cost, 50)
                .await
                .expect("leaderboard");
        })
        .await;
        summary(name, ms);
    }
    let ms = timed(runs, || async {
        stats.overview(Period::Today).await.expect("overview");
    })
    .await;
    summary("overview (period=today)", ms);
    let hours = stats
        .default_series_range(BucketWidth::Hour)
        .expect("range");
    for (name, group) in [
        ("timeseries (24 h, hour, all)", None),
        (
            "timeseries (24 h, hour, by provider, top 10)",
            Some(Dimension::Provider),
        ),
        (
            "timeseries (24 h, hour, by user, top 10)",
            Some(Dimension::User),
        ),
    ] {
        let ms = timed(runs, || async {
            stats
                .timeseries(Metric::Requests, BucketWidth::Hour, hours, group, 10)
                .await
                .expect("series");
        })
        .await;
        summary(name, ms);
    }
}

/// The log insert as it was before roll-ups (same SQL the adapters ran), for comparison.
/// A pool for the plain insert, opened once.
enum PlainPool {
    Pg(sqlx::PgPool),
    Lite(sqlx::SqlitePool),
}

/// The store's own pool settings (WAL, `synchronous=NORMAL`, pool hygiene), so both inserts
/// pay the same commit cost.
async fn plain_pool(dsn: &str) -> PlainPool {
    if dsn.starts_with("postgres") {
        PlainPool::Pg(PostgresStore::connect(dsn).await.unwrap().pool().clone())
    } else {
        PlainPool::Lite(SqliteStore::connect(dsn).await.unwrap().pool().clone())
    }
}

async fn plain_insert(pool: &PlainPool, rows: &[RequestLog]) {
    use sqlx::types::Json;
    const COLS: &str = "request_id, created_at, user_id, key_id, provider_id, requested_model, \
        forwarded_model, endpoint, client_format, status_code, is_stream, input_tokens, \
        output_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, \
        cost_usd, cost_known, duration_ms, ttfb_ms, provider_chain, session_id, user_agent, \
        error_message";
    macro_rules! insert {
        ($db:ty, $pool:expr, $conn:ident, $begin:expr, $ts:expr, $dec:expr) => {{
            let mut $conn = $pool.acquire().await.unwrap();
            let mut tx = $begin;
            for chunk in rows.chunks(500) {
                let mut qb: sqlx::QueryBuilder<$db> =
                    sqlx::QueryBuilder::new(format!("INSERT INTO request_logs ({COLS}) "));
                qb.push_values(chunk, |mut s, r| {
                    s.push_bind(r.request_id.clone())
                        .push_bind($ts(&r.created_at))
                        .push_bind(r.user_id)
                        .push_bind(r.key_id)
                        .push_bind(r.provider_id)
                        .push_bind(r.requested_model.clone())
                        .push_bind(r.forwarded_model.clone())
                        .push_bind(r.endpoint.clone())
                        .push_bind(r.client_format.clone())
                        .push_bind(r.status_code)
                        .push_bind(r.is_stream)
                        .push_bind(r.input_tokens)
                        .push_bind(r.output_tokens)
                        .push_bind(r.cache_creation_5m_tokens)
                        .push_bind(r.cache_creation_1h_tokens)
                        .push_bind(r.cache_read_tokens)
                        .push_bind($dec(&r.cost_usd))
                        .push_bind(r.cost_known)
                        .push_bind(r.duration_ms)
                        .push_bind(r.ttfb_ms)
                        .push_bind(Json(r.provider_chain.clone()))
                        .push_bind(r.session_id.clone())
                        .push_bind(r.user_agent.clone())
                        .push_bind(r.error_message.clone());
                });
                qb.push(" ON CONFLICT (request_id) DO NOTHING");
                // Prepared once and cached, as the store's insert is: parsing a statement of
                // 6,144 parameters again for every batch cost the server about 20 µs per row
                // and made the roll-ups' share look smaller than it is.
                qb.build().persistent(true).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }};
    }
    match pool {
        PlainPool::Pg(pool) => insert!(
            sqlx::Postgres,
            pool,
            conn,
            sqlx::Connection::begin(&mut *conn).await.unwrap(),
            |t: &DateTime<Utc>| *t,
            |d: &Decimal| *d
        ),
        PlainPool::Lite(pool) => insert!(
            sqlx::Sqlite,
            pool,
            conn,
            sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
                .await
                .unwrap(),
            |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            |d: &Decimal| d.round_dp(12).to_string()
        ),
    }
}

/// CPU seconds used so far by this process (every thread).
fn own_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct it is given and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// CPU seconds used so far by the `postgres` processes on this machine: the backends serving
/// database `db` (the statements themselves), and every other one (checkpointer, WAL and
/// background writers: deferred work of all writes, landing in whichever batch runs when they
/// wake). 10 ms ticks, so only sums over many batches mean anything.
fn postgres_cpu(db: &str) -> (f64, f64) {
    let tick = 100.0;
    let (mut backends, mut others) = (0.0, 0.0);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0.0, 0.0);
    };
    let marker = format!(" {db} ");
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        // Fields after the name: state is field 3, utime 14, stime 15 (1-based).
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let secs = (ticks(11) + ticks(12)) / tick;
        // A backend's title: "postgres: <cluster>: <user> <database> <client> <state>".
        let title = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&title).contains(&marker) {
            backends += secs;
        } else {
            others += secs;
        }
    }
    (backends, others)
}

/// Writer cost: the same batches through `insert_logs` (logs + roll-ups) and through the plain
/// log insert, alternating batch by batch so both see the same database state and load. Wall
/// time, and CPU time (this process, plus the database's Postgres backends on a Postgres DSN),
/// which the other work on a shared machine does not inflate.
async fn writer(dsn: &str, n: u64, users: u64, batch: usize) {
    let store = open(dsn).await;
    build_tiers(&(store.clone() as Arc<dyn StatsStore>)).await;
    let plain = plain_pool(dsn).await;
    let end = Utc::now();
    let mut rng = Rng(7);
    // Fresh request ids every run: a repeated id is skipped by the insert (and not summed).
    let run = Utc::now().timestamp_millis();
    let (ta, tb) = (format!("wa{run}-"), format!("wb{run}-"));
    let (mut with, mut without) = (Duration::ZERO, Duration::ZERO);
    let pg = dsn.starts_with("postgres");
    let db = dsn
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .unwrap_or_default()
        .to_string();
    let server = || if pg { postgres_cpu(&db) } else { (0.0, 0.0) };
    // CPU seconds, each with and without roll-ups: this process, the database's backends, and
    // the server's background processes.
    let (mut cpu_with, mut cpu_without) = (0.0f64, 0.0f64);
    let (mut backend_with, mut backend_without) = (0.0f64, 0.0f64);
    let (mut bg_with, mut bg_without) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        // Two batches of the same shape; which goes first alternates.
        // Rows of the last minute, as the live writer sees them (older hours are in the tiers
        // already; a row for one of them is the rare late row).
        let recent = |mut r: RequestLog, rng: &mut Rng| {
            r.created_at = Utc::now() - chrono::Duration::milliseconds(rng.below(60_000) as i64);
            r
        };
        let mut rows_of = |tag: &str| -> Vec<RequestLog> {
            (i..i + batch as u64)
                .map(|j| {
                    let r = row(&mut rng, (j, n), users, 1, end, tag);
                    recent(r, &mut rng)
                })
                .collect()
        };
        let a = rows_of(&ta);
        let b = rows_of(&tb);
        let flip = (i / batch as u64).is_multiple_of(2);
        let (first, second) = if flip { (&a, &b) } else { (&b, &a) };
        let s0 = server();
        let (c, t) = (own_cpu(), Instant::now());
        store.insert_logs(first).await.unwrap();
        with += t.elapsed();
        cpu_with += own_cpu() - c;
        let s1 = server();
        let (c, t) = (own_cpu(), Instant::now());
        plain_insert(&plain, second).await;
        without += t.elapsed();
        cpu_without += own_cpu() - c;
        let s2 = server();
        backend_with += s1.0 - s0.0;
        backend_without += s2.0 - s1.0;
        bg_with += s1.1 - s0.1;
        bg_without += s2.1 - s1.1;
        i += batch as u64;
    }
    // Rows written by each insert: whole batches, so `n` rounded up.
    let n = i;
    let share = |with: f64, without: f64| (with / without - 1.0) * 100.0;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "writer, {n} rows from {users} users in batches of {batch}: with roll-ups {:.1} µs/row, log only {:.1} µs/row ({:+.1} %)",
        per(with),
        per(without),
        share(per(with), per(without))
    );
    let per_cpu = |secs: f64| secs * 1e6 / n as f64;
    let (all_with, all_without) = (cpu_with + backend_with, cpu_without + backend_without);
    println!(
        "writer CPU{}: with roll-ups {:.1} µs/row, log only {:.1} µs/row ({:+.1} %)",
        if pg {
            " (this process + its Postgres backends)"
        } else {
            ""
        },
        per_cpu(all_with),
        per_cpu(all_without),
        share(all_with, all_without)
    );
    if pg {
        println!(
            "  this process {:.1} and {:.1} µs/row, backends {:.1} and {:.1}; \
             Postgres' background processes {:.1} and {:.1} more ({:+.1} % with them)",
            per_cpu(cpu_with),
            per_cpu(cpu_without),
            per_cpu(backend_with),
            per_cpu(backend_without),
            per_cpu(bg_with),
            per_cpu(bg_without),
            share(all_with + bg_with, all_without + bg_without)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let arg = |i: usize| args.get(i).cloned();
    let num = |i: usize, d: u64| arg(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match (arg(0).as_deref(), arg(1)) {
        (Some("generate"), Some(dsn)) => {
            rt.block_on(generate(&dsn, num(2, 5_000_000), num(3, 90) as i64))
        }
        (Some("query"), Some(dsn)) => rt.block_on(query(&dsn, num(2, 20) as usize)),
        (Some("writer"), Some(dsn)) => rt.block_on(writer(
            &dsn,
            num(2, 100_000),
            num(3, USERS).max(1),
            num(4, BATCH as u64).clamp(1, BATCH as u64) as usize,
        )),
        _ => eprintln!(
            "usage: stats_ledger generate <DSN> [rows] [days] | query <DSN> [runs] \
             | writer <DSN> [rows] [users] [batch]"
        ),
    }
}
