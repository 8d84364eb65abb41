use chrono::TimeZone;

use super::*;
use crate::ports::stats::{LiveFigures, MockStatsStore, SeriesPoint};
use crate::ports::store::MockConfigStore;

struct Fixed(DateTime<Utc>);

impl Clock for Fixed {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

async fn service(store: MockStatsStore, now: DateTime<Utc>) -> StatsService {
    let mut config = MockConfigStore::new();
    config
        .expect_list_providers()
        .returning(|| Box::pin(async { Ok(Vec::new()) }));
    config
        .expect_list_users()
        .returning(|| Box::pin(async { Ok(Vec::new()) }));
    config
        .expect_list_keys()
        .returning(|| Box::pin(async { Ok(Vec::new()) }));
    config
        .expect_list_prices()
        .returning(|| Box::pin(async { Ok(Vec::new()) }));
    config
        .expect_config_version()
        .returning(|| Box::pin(async { Ok(0) }));
    config
        .expect_list_settings()
        .returning(|| Box::pin(async { Ok(Vec::new()) }));
    config
        .expect_list_error_rules()
        .returning(|| Box::pin(async { Ok(Vec::new()) }));
    let snapshot = SnapshotHolder::load(Arc::new(config), now).await.unwrap();
    StatsService::new(
        Arc::new(store),
        snapshot,
        Arc::new(Fixed(now)),
        chrono_tz::Asia::Shanghai,
        Duration::from_secs(300),
    )
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 4, 30, 0).unwrap()
}

#[tokio::test]
async fn a_series_has_every_bucket_the_top_groups_then_other() {
    let mut store = MockStatsStore::new();
    store
        .expect_rank()
        .withf(|q| q.limit == 2 && q.dimension == Dimension::Provider && q.order == Metric::Cost)
        .returning(|_| {
            Box::pin(async {
                Ok(vec![
                    ("7".into(), LedgerSums::default()),
                    ("3".into(), LedgerSums::default()),
                ])
            })
        });
    store
        .expect_series()
        .withf(|q| {
            q.group
                .as_ref()
                .is_some_and(|(_, keep)| keep == &["7", "3"])
        })
        .returning(|_| {
            Box::pin(async {
                Ok(vec![
                    SeriesPoint {
                        bucket: 0,
                        group: Some("3".into()),
                        value: Decimal::new(15, 1),
                    },
                    SeriesPoint {
                        bucket: 2,
                        group: None,
                        value: Decimal::ONE,
                    },
                ])
            })
        });
    let s = service(store, now()).await;
    let range = s.default_series_range(BucketWidth::Day).unwrap();
    let series = s
        .timeseries(
            Metric::Cost,
            BucketWidth::Day,
            range,
            Some(Dimension::Provider),
            2,
        )
        .await
        .unwrap();
    assert_eq!(series.buckets.len(), 30);
    // Shanghai midnight.
    assert_eq!(
        series.buckets[29],
        Utc.with_ymd_and_hms(2026, 3, 9, 16, 0, 0).unwrap()
    );
    let keys: Vec<&str> = series.lines.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys, ["7", "3", "other"]);
    assert!(series.lines.iter().all(|l| l.values.len() == 30));
    assert_eq!(series.lines[1].values[0], Decimal::new(15, 1));
    assert_eq!(series.lines[2].values[2], Decimal::ONE);
    assert_eq!(
        series.lines[0].values.iter().sum::<Decimal>(),
        Decimal::ZERO
    );
}

#[tokio::test]
async fn the_overview_reads_the_period_hours_and_the_live_log() {
    let mut store = MockStatsStore::new();
    store
        .expect_totals()
        .withf(|h| {
            h.first
                == Utc
                    .with_ymd_and_hms(2026, 3, 9, 16, 0, 0)
                    .unwrap()
                    .timestamp()
        })
        .returning(|_| {
            Box::pin(async {
                Ok(LedgerSums {
                    requests: 4,
                    errors: 1,
                    ttfb_ms: 900,
                    ttfb_count: 3,
                    ..LedgerSums::default()
                })
            })
        });
    store
        .expect_live()
        .withf(|m, s| {
            *m == now() - chrono::Duration::seconds(60)
                && *s == now() - chrono::Duration::seconds(300)
        })
        .returning(|_, _| {
            Box::pin(async {
                Ok(LiveFigures {
                    requests: 2,
                    sessions: 1,
                })
            })
        });
    let o = service(store, now())
        .await
        .overview(Period::Today)
        .await
        .unwrap();
    assert_eq!(o.error_rate, 0.25);
    assert_eq!(o.avg_ttfb_ms, Some(300.0));
    assert_eq!((o.requests_last_minute, o.active_sessions), (2, 1));
    assert_eq!(o.p50_ttfb_ms, None);
}

#[tokio::test]
async fn out_of_range_limits_are_refused_before_any_query() {
    let s = service(MockStatsStore::new(), now()).await;
    let err = s
        .leaderboard(Dimension::User, Period::Month, Metric::Cost, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, StatsError::Invalid { field: "limit", .. }));
    let range = s.default_series_range(BucketWidth::Hour).unwrap();
    let err = s
        .timeseries(Metric::Requests, BucketWidth::Hour, range, None, 5000)
        .await
        .unwrap_err();
    assert!(matches!(err, StatsError::Invalid { field: "top", .. }));
}

#[test]
fn cache_hit_rate_is_reads_over_all_input() {
    let s = LedgerSums {
        input_tokens: 10,
        cache_read_tokens: 30,
        cache_write_5m_tokens: 5,
        cache_write_1h_tokens: 5,
        ..LedgerSums::default()
    };
    assert_eq!(cache_hit_rate(&s), 0.6);
    assert_eq!(cache_hit_rate(&LedgerSums::default()), 0.0);
}
