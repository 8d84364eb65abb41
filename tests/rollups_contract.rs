//! Usage-ledger contract, on SQLite and PostgreSQL: roll-ups sum exactly what the log holds, a
//! replayed batch counts once, statistics and recompute sums survive deleting every log row,
//! and rows logged before roll-ups existed are backfilled.

mod support;

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use claude_code_hub::adapters::postgres::PostgresStore;
use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::domain::periods::{BucketPlan, BucketWidth, Range};
use claude_code_hub::domain::request_log::RequestLog;
use claude_code_hub::domain::usage_tiers::ALL_TIME_FROM;
use claude_code_hub::ports::stats::{Dimension, Metric, RankQuery, SeriesQuery, StatsStore};
use claude_code_hub::ports::store::{CostQuery, CostScope, RequestLogStore};
use rust_decimal::Decimal;

/// The ports plus raw SQL, to delete logs as cleanup would.
#[async_trait]
trait Backend: RequestLogStore + StatsStore {
    async fn exec(&self, sql: &str);
    /// The single integer `sql` answers.
    async fn count(&self, sql: &str) -> i64;
    /// Moves the ledger's delta rows into `usage_rollups` now.
    async fn merge(&self);
    /// The directory of this database's migrations.
    fn migrations(&self) -> &'static str;
}

#[async_trait]
impl Backend for SqliteStore {
    fn migrations(&self) -> &'static str {
        "sqlite"
    }
    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
    async fn merge(&self) {
        self.merge_ledger().await.unwrap();
    }
    async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(self.pool())
            .await
            .unwrap();
    }
}

#[async_trait]
impl Backend for PostgresStore {
    fn migrations(&self) -> &'static str {
        "postgres"
    }
    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
    /// Postgres updates `usage_rollups` in the batch's transaction: nothing to merge.
    async fn merge(&self) {}
    async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(self.pool())
            .await
            .unwrap();
    }
}

async fn sqlite_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cch.db", dir.path().display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$case(&store).await;
                    store.pool().close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let name = concat!("rollups::", stringify!($case));
                    let Some(db) = crate::support::postgres::TestDatabase::create(name).await
                    else {
                        return;
                    };
                    let store = super::PostgresStore::connect(&db.url).await.unwrap();
                    store.migrate().await.unwrap();
                    super::$case(&store).await;
                    store.pool().close().await;
                    db.drop_db().await;
                }
            )*
        }
    };
}

contract_tests!(
    rollups_sum_exactly_what_the_log_holds,
    a_replayed_batch_counts_once,
    statistics_and_recompute_survive_deleting_every_log_row,
    rows_logged_before_rollups_are_backfilled_once,
    day_buckets_follow_the_zone_across_a_dst_change,
    period_tiers_answer_as_the_ledger_does,
    period_tiers_rebuild_when_the_zone_changes,
    the_upgrade_fills_user_and_key_hours_as_the_fold_does,
    the_upgrade_fills_totals_as_the_fold_does,
);

/// Start of the test data: two days ago, on the hour, so no row falls in the current hour.
fn base() -> DateTime<Utc> {
    let now = Utc::now() - Duration::days(2);
    Utc.timestamp_opt(now.timestamp() / 3600 * 3600, 0).unwrap()
}

/// `n` varied rows over 30 hours: 4 users, 6 keys, 3 providers, 3 models, mixed statuses,
/// some without a time to first byte, odd costs with 12 decimals.
fn rows(prefix: &str, n: usize) -> Vec<RequestLog> {
    let start = base() - Duration::hours(30);
    (0..n)
        .map(|i| {
            let mut r = support::log_rows::minimal(&format!("{prefix}-{i}"));
            r.created_at = start + Duration::seconds((i as i64 * 397) % (30 * 3600));
            r.user_id = Some(1 + (i % 4) as i64);
            r.key_id = Some(10 + (i % 6) as i64);
            r.provider_id = if i % 11 == 0 {
                None
            } else {
                Some(100 + (i % 3) as i64)
            };
            r.forwarded_model = Some(["m-a", "m-b", "m-c"][i % 3].to_string());
            r.client_format = ["claude", "openai"][i % 2].to_string();
            r.status_code = [200, 200, 200, 429, 503, 499, 400][i % 7];
            r.input_tokens = 100 + i as i64;
            r.output_tokens = 7 * i as i64;
            r.cache_read_tokens = (i % 5) as i64 * 50;
            r.cache_creation_5m_tokens = (i % 3) as i64;
            r.cache_creation_1h_tokens = (i % 2) as i64;
            r.cost_usd = Decimal::from_str(&format!("0.{:012}", 1_234_567 * (i + 1))).unwrap();
            r.duration_ms = 1000 + i as i64;
            r.ttfb_ms = (i % 4 != 0).then_some(50 * i as i64);
            r.provider_chain = serde_json::json!([{ "converted": i % 2 == 1 }]);
            r.session_id = Some(format!("s{}", i % 9));
            r
        })
        .collect()
}

/// The whole test range (every row's hour).
fn range() -> Range {
    Range {
        from: base() - Duration::hours(31),
        to: base() + Duration::hours(1),
    }
}

#[derive(Debug, Default, PartialEq)]
struct Expect {
    requests: i64,
    errors: i64,
    tokens: i64,
    cost: Decimal,
    ttfb: i64,
    ttfb_n: i64,
    converted: i64,
}

fn expect<'a>(logs: impl IntoIterator<Item = &'a RequestLog>) -> Expect {
    let mut e = Expect::default();
    for r in logs {
        e.requests += 1;
        e.errors += i64::from(r.status_code >= 400);
        e.tokens += r.input_tokens
            + r.output_tokens
            + r.cache_read_tokens
            + r.cache_creation_5m_tokens
            + r.cache_creation_1h_tokens;
        e.cost += r.cost_usd;
        if let Some(t) = r.ttfb_ms {
            e.ttfb += t;
            e.ttfb_n += 1;
        }
        e.converted += i64::from(r.provider_chain[0]["converted"] == true);
    }
    e.cost = e.cost.normalize();
    e
}

async fn observed(store: &dyn Backend) -> Expect {
    let t = store.totals(range().hours()).await.unwrap();
    Expect {
        requests: t.requests,
        errors: t.errors,
        tokens: t.input_tokens
            + t.output_tokens
            + t.cache_read_tokens
            + t.cache_write_5m_tokens
            + t.cache_write_1h_tokens,
        cost: t.cost_usd,
        ttfb: t.ttfb_ms,
        ttfb_n: t.ttfb_count,
        converted: t.converted,
    }
}

/// Everything the statistics and recompute answer, to compare before and after cleanup.
async fn answers(store: &dyn Backend) -> String {
    let hours = range().hours();
    let mut out = format!("{:?}\n", store.totals(hours).await.unwrap());
    for dim in [
        Dimension::User,
        Dimension::Key,
        Dimension::Provider,
        Dimension::Model,
    ] {
        let ranked = store
            .rank(&RankQuery {
                hours,
                zone: chrono_tz::Asia::Shanghai,
                dimension: dim,
                order: Metric::Cost,
                limit: 100,
            })
            .await
            .unwrap();
        out += &format!("{ranked:?}\n");
    }
    let plan = BucketPlan::new(range(), BucketWidth::Day, chrono_tz::Asia::Shanghai).unwrap();
    let mut series = store
        .series(&SeriesQuery {
            plan,
            zone: chrono_tz::Asia::Shanghai,
            metric: Metric::Cost,
            group: Some((Dimension::Provider, vec!["100".into()])),
        })
        .await
        .unwrap();
    series.sort_by(|a, b| (a.bucket, &a.group).cmp(&(b.bucket, &b.group)));
    out += &format!("{series:?}\n");
    for scope in [CostScope::User, CostScope::Key, CostScope::Provider] {
        let since = base() - Duration::hours(40);
        let costs = store
            .cost_buckets(&CostQuery {
                scope,
                id: None,
                since,
                until: Utc::now(),
                bucket_ms: i64::MAX,
            })
            .await
            .unwrap();
        out += &format!("{costs:?}\n");
    }
    out
}

async fn rollups_sum_exactly_what_the_log_holds(store: &dyn Backend) {
    let logs = rows("sum", 700);
    for batch in logs.chunks(97) {
        store.insert_logs(batch).await.unwrap();
    }
    assert_eq!(observed(store).await, expect(&logs));

    // Per user, ranked by cost, each equal to its own rows.
    let ranked = store
        .rank(&RankQuery {
            hours: range().hours(),
            zone: chrono_tz::UTC,
            dimension: Dimension::User,
            order: Metric::Cost,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(ranked.len(), 4);
    for w in ranked.windows(2) {
        assert!(w[0].1.cost_usd >= w[1].1.cost_usd);
    }
    for (user, sums) in &ranked {
        let mine = expect(
            logs.iter()
                .filter(|r| r.user_id.unwrap().to_string() == *user),
        );
        assert_eq!((sums.requests, sums.cost_usd), (mine.requests, mine.cost));
    }
    // Rows without a provider are not ranked as a provider.
    let providers = store
        .rank(&RankQuery {
            hours: range().hours(),
            zone: chrono_tz::UTC,
            dimension: Dimension::Provider,
            order: Metric::Requests,
            limit: 10,
        })
        .await
        .unwrap();
    let ranked_requests: i64 = providers.iter().map(|p| p.1.requests).sum();
    assert_eq!(
        ranked_requests,
        logs.iter().filter(|r| r.provider_id.is_some()).count() as i64
    );

    // Daily cost per provider (top 1 + other) adds up to the whole, each day to its rows.
    let plan = BucketPlan::new(range(), BucketWidth::Day, chrono_tz::UTC).unwrap();
    let series = store
        .series(&SeriesQuery {
            plan: plan.clone(),
            zone: chrono_tz::UTC,
            metric: Metric::Cost,
            group: Some((Dimension::Provider, vec!["101".into()])),
        })
        .await
        .unwrap();
    let mut by_day: BTreeMap<i64, Decimal> = BTreeMap::new();
    for r in &logs {
        let hour = r.created_at.timestamp() / 3600 * 3600;
        *by_day.entry(plan.bucket_of(hour)).or_default() += r.cost_usd;
    }
    let mut got: BTreeMap<i64, Decimal> = BTreeMap::new();
    for p in &series {
        assert!(p.group.is_none() || p.group.as_deref() == Some("101"));
        *got.entry(p.bucket).or_default() += p.value;
    }
    let norm = |m: BTreeMap<i64, Decimal>| -> BTreeMap<i64, Decimal> {
        m.into_iter().map(|(k, v)| (k, v.normalize())).collect()
    };
    assert_eq!(norm(got), norm(by_day));
}

async fn a_replayed_batch_counts_once(store: &dyn Backend) {
    let logs = rows("replay", 300);
    store.insert_logs(&logs[..200]).await.unwrap();
    // The spool replays a batch the database had in fact stored, with newer rows after it,
    // and a batch may even carry the same row twice.
    let mut replay = logs.clone();
    replay.push(logs[250].clone());
    assert_eq!(store.insert_logs(&replay).await.unwrap(), 100);
    assert_eq!(store.insert_logs(&replay).await.unwrap(), 0);
    assert_eq!(observed(store).await, expect(&logs));
}

/// Rows in the ledger's two tables.
async fn ledger_rows(store: &dyn Backend) -> (i64, i64) {
    (
        store.count("SELECT COUNT(*) FROM usage_rollups").await,
        store
            .count("SELECT COUNT(*) FROM usage_rollup_deltas")
            .await,
    )
}

/// SQLite's ledger deltas (Postgres has none) count once whether merged or not.
#[tokio::test]
async fn sqlite_delta_rows_count_once_before_and_after_a_merge() {
    let (store, _dir) = sqlite_store().await;
    delta_rows_count_once_before_and_after_a_merge(&store).await;
    store.pool().close().await;
}

async fn delta_rows_count_once_before_and_after_a_merge(store: &dyn Backend) {
    let logs = rows("delta", 600);
    // Batches well inside the merge pace (2 s, 16,384 rows): their roll-ups wait as deltas.
    for batch in logs[..300].chunks(50) {
        store.insert_logs(batch).await.unwrap();
    }
    let (merged, deltas) = ledger_rows(store).await;
    assert_eq!(merged, 0);
    assert!(deltas > 0);
    let before = answers(store).await;
    assert_eq!(observed(store).await, expect(&logs[..300]));

    store.merge().await;
    let (merged, deltas) = ledger_rows(store).await;
    assert_eq!(deltas, 0);
    assert!(merged > 0);
    assert_eq!(answers(store).await, before);
    assert_eq!(observed(store).await, expect(&logs[..300]));

    // The same keys again: added to the merged rows, no new row per key.
    let again: Vec<RequestLog> = logs[..300]
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.request_id = format!("{}-again", r.request_id);
            r
        })
        .collect();
    store.insert_logs(&again).await.unwrap();
    store.merge().await;
    assert_eq!(ledger_rows(store).await, (merged, 0));
    // New keys beside unmerged ones: the view reads both tables.
    store.insert_logs(&logs[300..]).await.unwrap();
    let all: Vec<&RequestLog> = logs.iter().chain(&again).collect();
    assert_eq!(observed(store).await, expect(all.iter().copied()));
    let unmerged = answers(store).await;
    store.merge().await;
    let (after, deltas) = ledger_rows(store).await;
    assert_eq!(deltas, 0);
    assert!(after > merged, "{after} rows after {merged}");
    assert_eq!(answers(store).await, unmerged);
    assert_eq!(observed(store).await, expect(all.iter().copied()));
    // Merging nothing changes nothing.
    store.merge().await;
    assert_eq!(ledger_rows(store).await, (after, 0));
    assert_eq!(answers(store).await, unmerged);
}

async fn statistics_and_recompute_survive_deleting_every_log_row(store: &dyn Backend) {
    let logs = rows("cleanup", 500);
    store.insert_logs(&logs).await.unwrap();
    let before = answers(store).await;
    assert!(before.contains("cost_usd"), "{before}");
    store.exec("DELETE FROM request_logs").await;
    assert_eq!(answers(store).await, before);
    assert_eq!(observed(store).await, expect(&logs));
}

async fn rows_logged_before_rollups_are_backfilled_once(store: &dyn Backend) {
    let logs = rows("old", 5000);
    store.insert_logs(&logs).await.unwrap();
    // As if these rows predated the roll-ups: the migration recorded their id range.
    store.exec("DELETE FROM usage_rollups").await;
    if store.migrations() == "sqlite" {
        store.exec("DELETE FROM usage_rollup_deltas").await;
    }
    store.exec("DELETE FROM usage_hourly_totals").await;
    store
        .exec(
            "UPDATE usage_rollup_backfill SET pending_from = (SELECT MIN(id) FROM request_logs), \
             pending_to = (SELECT MAX(id) + 1 FROM request_logs)",
        )
        .await;
    let mut steps = 0;
    while store.backfill_step().await.unwrap() > 0 {
        steps += 1;
        assert!(steps < 10);
    }
    assert_eq!(store.backfill_step().await.unwrap(), 0);
    assert_eq!(observed(store).await, expect(&logs));
}

async fn day_buckets_follow_the_zone_across_a_dst_change(store: &dyn Backend) {
    // One request every hour around New York's spring change (2026-03-08 02:00 local).
    let start = Utc.with_ymd_and_hms(2026, 3, 6, 0, 0, 0).unwrap();
    let logs: Vec<RequestLog> = (0..24 * 5)
        .map(|h| {
            let mut r = support::log_rows::minimal(&format!("dst-{h}"));
            r.created_at = start + Duration::hours(h) + Duration::minutes(17);
            r
        })
        .collect();
    store.insert_logs(&logs).await.unwrap();
    let ny = chrono_tz::America::New_York;
    let range = Range {
        from: Utc.with_ymd_and_hms(2026, 3, 6, 5, 0, 0).unwrap(),
        to: Utc.with_ymd_and_hms(2026, 3, 10, 4, 0, 0).unwrap(),
    };
    let plan = BucketPlan::new(range, BucketWidth::Day, ny).unwrap();
    assert_eq!(plan.segments.len(), 2);
    let series = store
        .series(&SeriesQuery {
            plan: plan.clone(),
            zone: ny,
            metric: Metric::Requests,
            group: None,
        })
        .await
        .unwrap();
    let got: BTreeMap<i64, Decimal> = series.iter().map(|p| (p.bucket, p.value)).collect();
    // Local days: the 6th, 7th and 9th have 24 hours, the 8th 23.
    let want: BTreeMap<i64, Decimal> = [(0, 24), (1, 24), (2, 23), (3, 24)]
        .into_iter()
        .map(|(b, n)| (b, Decimal::from(n)))
        .collect();
    assert_eq!(got, want);
}

/// `n` rows spread over the `days` days before `base()`.
fn spread_rows(prefix: &str, n: usize, days: i64) -> Vec<RequestLog> {
    let span = days * 24 * 3600;
    rows(prefix, n)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.created_at =
                base() - Duration::seconds(span) + Duration::seconds((i as i64 * 7919) % span);
            r
        })
        .collect()
}

/// Each entity's cost over several spans, asked one entity at a time (read from the tiers when
/// they hold the span, the ledger having no per-entity index), as text, checked against the
/// same figure asked for every entity at once (read from the ledger's hours).
async fn entity_costs(store: &dyn Backend) -> String {
    let now = base();
    let spans = [
        (
            now - Duration::days(12) + Duration::minutes(90),
            now + Duration::hours(3),
        ),
        (now - Duration::hours(40), Utc::now()),
        (
            now - Duration::days(25) - Duration::minutes(7),
            now - Duration::days(3),
        ),
        (DateTime::<Utc>::UNIX_EPOCH, Utc::now()),
    ];
    let mut out = String::new();
    for (since, until) in spans {
        for scope in [CostScope::User, CostScope::Key, CostScope::Provider] {
            let ask = |id| CostQuery {
                scope,
                id,
                since,
                until,
                bucket_ms: i64::MAX,
            };
            let all = store.cost_buckets(&ask(None)).await.unwrap();
            for id in [1, 3, 11, 14, 100, 102, 999] {
                let one = store.cost_buckets(&ask(Some(id))).await.unwrap();
                let expected: Vec<_> = all.iter().filter(|b| b.entity_id == id).cloned().collect();
                assert_eq!(one, expected, "{scope:?} {id} {since} {until}");
                out += &format!("{scope:?} {id} {since} {one:?}\n");
            }
        }
    }
    out
}

/// Every statistic over several spans of the last `days` days, asked in `zone`, as text:
/// with `zone` the tiers' zone they are read from the tiers (and edge hours from the ledger);
/// with another zone from the ledger alone. The cuts are the same either way (`cut_in`).
async fn tiered_answers(store: &dyn Backend, cut_in: chrono_tz::Tz, zone: chrono_tz::Tz) -> String {
    use claude_code_hub::domain::periods::{Period, period_range};
    let now = base();
    let mut spans = vec![Range {
        from: now - Duration::days(12) + Duration::minutes(90),
        to: now + Duration::hours(3),
    }];
    for p in [
        Period::Today,
        Period::Yesterday,
        Period::Week,
        Period::Month,
    ] {
        spans.push(period_range(p, now - Duration::days(1), cut_in).unwrap());
        spans.push(period_range(p, now - Duration::days(8), cut_in).unwrap());
    }
    let mut out = String::new();
    for range in spans {
        for dim in [
            Dimension::User,
            Dimension::Key,
            Dimension::Provider,
            Dimension::Model,
        ] {
            for order in [Metric::Cost, Metric::Requests, Metric::Tokens] {
                let ranked = store
                    .rank(&RankQuery {
                        hours: range.hours(),
                        zone,
                        dimension: dim,
                        order,
                        limit: 3,
                    })
                    .await
                    .unwrap();
                out += &format!("{range:?} {dim:?} {order:?} {ranked:?}\n");
            }
        }
        for width in [BucketWidth::Day, BucketWidth::Hour] {
            let plan = BucketPlan::new(range, width, cut_in).unwrap();
            for group in [
                None,
                Some((
                    Dimension::Provider,
                    vec!["100".to_string(), "102".to_string()],
                )),
                Some((Dimension::Model, vec!["m-b".to_string()])),
                Some((Dimension::User, vec!["3".to_string()])),
            ] {
                for metric in [Metric::Cost, Metric::Errors, Metric::Tokens] {
                    let mut series = store
                        .series(&SeriesQuery {
                            plan: plan.clone(),
                            zone,
                            metric,
                            group: group.clone(),
                        })
                        .await
                        .unwrap();
                    series.sort_by(|a, b| (a.bucket, &a.group).cmp(&(b.bucket, &b.group)));
                    for p in &mut series {
                        p.value = p.value.normalize();
                    }
                    // A bucket's zero and its absence read the same (the tiers compute
                    // "other" as the whole less the kept groups: an explicit zero).
                    series.retain(|p| !p.value.is_zero());
                    out += &format!("{range:?} {width:?} {group:?} {metric:?} {series:?}\n");
                }
            }
        }
    }
    // All-time rankings (and a span from before it): the tiers' totals less the ledger
    // hours outside the span, plus the tail. Ranks only: a series of decades is refused.
    let all_time = DateTime::<Utc>::from_timestamp(ALL_TIME_FROM, 0).unwrap();
    for from in [all_time, all_time - Duration::days(400)] {
        let range = Range {
            from,
            to: now + Duration::hours(1),
        };
        for dim in [Dimension::User, Dimension::Key, Dimension::Model] {
            for order in [Metric::Cost, Metric::Tokens] {
                let ranked = store
                    .rank(&RankQuery {
                        hours: range.hours(),
                        zone,
                        dimension: dim,
                        order,
                        limit: 5,
                    })
                    .await
                    .unwrap();
                out += &format!("all time from {from} {dim:?} {order:?} {ranked:?}\n");
            }
        }
    }
    out
}

/// Sums every ledger hour before `before` into the tiers.
async fn fold_until(store: &dyn Backend, zone: chrono_tz::Tz, before: i64) -> usize {
    let mut steps = 0;
    while store.tier_step(zone, 50, before).await.unwrap() {
        steps += 1;
        assert!(steps < 2_000, "a rebuild ends");
    }
    steps
}

/// Sums every ledger hour into the tiers.
async fn build_tiers(store: &dyn Backend, zone: chrono_tz::Tz) -> usize {
    fold_until(store, zone, i64::MAX).await
}

async fn period_tiers_answer_as_the_ledger_does(store: &dyn Backend) {
    let sh = chrono_tz::Asia::Shanghai;
    let mut logs = spread_rows("tier", 1500, 40);
    // A row from before the console's "all time" starts: the totals hold it, so an all-time
    // answer must subtract it (the ledger-only answer never counts it).
    let mut old = logs[3].clone();
    old.request_id = "tier-1999".into();
    old.created_at = Utc.with_ymd_and_hms(1999, 6, 1, 10, 0, 0).unwrap();
    logs.insert(0, old);
    store.insert_logs(&logs[..700]).await.unwrap();
    // The tiers trail the clock: hours up to 20 days ago summed, in steps; then more rows
    // arrive, some for hours already summed (the log insert adds them to the tiers), some
    // for later hours (read from the ledger until summed).
    let mid = (base() - Duration::days(20)).timestamp() / 3600 * 3600;
    assert!(store.tier_step(sh, 50, mid).await.unwrap());
    for _ in 0..3 {
        store.tier_step(sh, 50, mid).await.unwrap();
    }
    store.insert_logs(&logs[700..1200]).await.unwrap();
    fold_until(store, sh, mid).await;
    assert!(!store.tier_step(sh, 50, mid).await.unwrap());
    let ledger = tiered_answers(store, sh, chrono_tz::UTC).await;
    assert!(ledger.contains("cost_usd"), "{ledger}");
    assert_eq!(tiered_answers(store, sh, sh).await, ledger);
    assert!(entity_costs(store).await.contains("cost_usd"));

    // Everything summed; later rows and a replay go through the log insert.
    build_tiers(store, sh).await;
    store.insert_logs(&logs[1200..]).await.unwrap();
    store.insert_logs(&logs[1100..1300]).await.unwrap();
    assert_eq!(build_tiers(store, sh).await, 0);
    let ledger = tiered_answers(store, sh, chrono_tz::UTC).await;
    let tiered = tiered_answers(store, sh, sh).await;
    assert_eq!(tiered, ledger);
    let costs = entity_costs(store).await;

    // The whole-period answers really come from the tiers: they survive losing the ledger.
    let month = claude_code_hub::domain::periods::period_range(
        claude_code_hub::domain::periods::Period::Month,
        base() - Duration::days(1),
        sh,
    )
    .unwrap();
    let rank = |zone| RankQuery {
        hours: month.hours(),
        zone,
        dimension: Dimension::User,
        order: Metric::Cost,
        limit: 10,
    };
    let before = store.rank(&rank(sh)).await.unwrap();
    assert!(!before.is_empty());
    store.exec("DELETE FROM usage_rollups").await;
    if store.migrations() == "sqlite" {
        store.exec("DELETE FROM usage_rollup_deltas").await;
    }
    assert_eq!(store.rank(&rank(sh)).await.unwrap(), before);
    // So do one entity's costs (the partial edge hours come from the log, which is kept).
    let one = |id| CostQuery {
        scope: CostScope::User,
        id: Some(id),
        since: DateTime::<Utc>::UNIX_EPOCH,
        until: Utc::now(),
        bucket_ms: i64::MAX,
    };
    for id in [1, 3] {
        let got = store.cost_buckets(&one(id)).await.unwrap();
        assert!(!got.is_empty());
        assert!(
            costs.contains(&format!("User {id} 1970-01-01 00:00:00 UTC {got:?}")),
            "{got:?}"
        );
    }
    assert!(store.rank(&rank(chrono_tz::UTC)).await.unwrap().is_empty());
}

async fn period_tiers_rebuild_when_the_zone_changes(store: &dyn Backend) {
    let logs = spread_rows("zone", 600, 20);
    store.insert_logs(&logs).await.unwrap();
    let sh = chrono_tz::Asia::Shanghai;
    let ny = chrono_tz::America::New_York;
    let kolkata = chrono_tz::Asia::Kolkata;
    assert!(build_tiers(store, sh).await > 0);
    for zone in [ny, kolkata] {
        // The first step empties the tiers; until the rebuild passes a span, it is read from
        // the ledger, so answers are right all along.
        assert!(store.tier_step(zone, 50, i64::MAX).await.unwrap());
        let ledger = tiered_answers(store, zone, chrono_tz::UTC).await;
        assert_eq!(tiered_answers(store, zone, zone).await, ledger);
        build_tiers(store, zone).await;
        assert_eq!(tiered_answers(store, zone, zone).await, ledger, "{zone}");
    }
}

/// An installation as it is upgraded: 30 days of rows, folded in `zone` up to 10 days ago.
async fn installed_and_folded_until_10_days_ago(
    store: &dyn Backend,
    prefix: &str,
    zone: chrono_tz::Tz,
) {
    store
        .insert_logs(&spread_rows(prefix, 900, 30))
        .await
        .unwrap();
    fold_until(
        store,
        zone,
        (base() - Duration::days(10)).timestamp() / 3600 * 3600,
    )
    .await;
}

/// Migration 0080 (an upgrade: user and key hours were not kept before it) fills the hours
/// already folded from the ledger; one entity's costs then read them, so they must equal what
/// the fold writes.
async fn the_upgrade_fills_user_and_key_hours_as_the_fold_does(store: &dyn Backend) {
    let sh = chrono_tz::Asia::Shanghai;
    installed_and_folded_until_10_days_ago(store, "upgrade", sh).await;
    let folded = entity_costs(store).await;
    // As before the upgrade: no user or key hours.
    store
        .exec("DELETE FROM usage_tiers WHERE kind = 'h' AND dim IN ('user', 'key')")
        .await;
    let migration = std::fs::read_to_string(format!(
        "{}/migrations/{}/0080_ledger_without_entity_indexes.sql",
        env!("CARGO_MANIFEST_DIR"),
        store.migrations()
    ))
    .unwrap();
    // Its statements after the index changes (done already by the migrations run).
    let fill = &migration[migration.find("DELETE FROM usage_tiers").unwrap()..];
    store.exec(fill).await;
    // `entity_costs` also checks each figure against the ledger's.
    assert_eq!(entity_costs(store).await, folded);
    build_tiers(store, sh).await;
    entity_costs(store).await;
}

/// Migration 0082 (an upgrade: the tiers had no all-time totals before it) sums the hours
/// already folded; all-time answers then read them, so they must equal what the fold writes.
async fn the_upgrade_fills_totals_as_the_fold_does(store: &dyn Backend) {
    let sh = chrono_tz::Asia::Shanghai;
    installed_and_folded_until_10_days_ago(store, "totals", sh).await;
    let folded = (
        entity_costs(store).await,
        tiered_answers(store, sh, sh).await,
    );
    assert!(folded.1.contains("all time"), "{}", folded.1);
    // As before the upgrade: no totals.
    store.exec("DELETE FROM usage_tiers WHERE kind = 't'").await;
    let migration = std::fs::read_to_string(format!(
        "{}/migrations/{}/0082_usage_tier_totals.sql",
        env!("CARGO_MANIFEST_DIR"),
        store.migrations()
    ))
    .unwrap();
    store.exec(&migration).await;
    let filled = (
        entity_costs(store).await,
        tiered_answers(store, sh, sh).await,
    );
    assert_eq!(filled, folded);
    // The fold goes on from there.
    build_tiers(store, sh).await;
    assert_eq!(
        tiered_answers(store, sh, sh).await,
        tiered_answers(store, sh, chrono_tz::UTC).await
    );
}

/// A rebuild of the period tiers on PostgreSQL ends with `ANALYZE`: until autovacuum gets to
/// it, the planner takes the freshly filled tiers for empty and reads a series split by user
/// through every user's rows instead of the group index.
#[tokio::test]
async fn postgres_tier_rebuild_refreshes_planner_statistics() {
    let Some(db) = support::postgres::TestDatabase::create("rollups::tier_rebuild_analyzes").await
    else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store
        .insert_logs(&spread_rows("analyze", 1500, 40))
        .await
        .unwrap();
    let steps = build_tiers(&store, chrono_tz::UTC).await;
    assert!(steps >= 12, "{steps} fold steps");
    let analyzed: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'usage_tiers'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(analyzed.is_some(), "usage_tiers analyzed after the rebuild");
    store.pool().close().await;
    db.drop_db().await;
}

/// Inserts `rows` in batches of 10, merging the ledger's deltas after each.
async fn write_and_merge(store: &dyn Backend, rows: &[RequestLog]) {
    for batch in rows.chunks(10) {
        store.insert_logs(batch).await.unwrap();
        store.merge().await;
    }
}

/// Two writers (two pools: SQLite's write lock is all that orders them) on one database, each
/// appending batches over the same keys and merging after every batch, and a third merging
/// without pause meanwhile: every row counts once (a merge whose sum and delete were not one
/// transaction counted rows twice when two ran at once).
async fn two_writers_merging_at_once_count_every_row_once(a: &dyn Backend, b: &dyn Backend) {
    let logs = rows("pair", 800);
    let (left, right) = logs.split_at(400);
    let done = std::sync::atomic::AtomicBool::new(false);
    let merging = async {
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            b.merge().await;
        }
    };
    let writing = async {
        tokio::join!(write_and_merge(a, left), write_and_merge(b, right));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    tokio::join!(writing, merging);
    // Per user from the ledger (the overview's hourly totals are a table of their own).
    let per_user = |logs: &[RequestLog]| {
        let mut m: BTreeMap<String, (i64, Decimal)> = BTreeMap::new();
        for r in logs {
            let e = m.entry(r.user_id.unwrap_or(0).to_string()).or_default();
            e.0 += 1;
            e.1 += r.cost_usd;
        }
        m.into_iter()
            .map(|(k, (n, c))| (k, (n, c.normalize())))
            .collect::<BTreeMap<_, _>>()
    };
    for store in [a, b] {
        let got: BTreeMap<String, (i64, Decimal)> = store
            .rank(&RankQuery {
                hours: range().hours(),
                zone: chrono_tz::UTC,
                dimension: Dimension::User,
                order: Metric::Cost,
                limit: 100,
            })
            .await
            .unwrap()
            .into_iter()
            .map(|(u, s)| (u, (s.requests, s.cost_usd.normalize())))
            .collect();
        assert_eq!(got, per_user(&logs));
        assert_eq!(observed(store).await, expect(&logs));
    }
    a.merge().await;
    assert_eq!(ledger_rows(a).await.1, 0);
}

#[tokio::test]
async fn sqlite_two_writers_merging_at_once_count_every_row_once() {
    let (a, dir) = sqlite_store().await;
    let url = format!("sqlite://{}/cch.db", dir.path().display());
    let b = SqliteStore::connect(&url).await.unwrap();
    two_writers_merging_at_once_count_every_row_once(&a, &b).await;
    a.pool().close().await;
    b.pool().close().await;
}
