//! Error rule storage on SQLite and PostgreSQL: the migration seeds exactly the built-in
//! presets, and rules round-trip (every match kind, optional fields, order by priority).

mod support;

use claude_code_hub::adapters::postgres::PostgresStore;
use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::domain::failure::{
    ErrorClass, ErrorRule, MatchKind, PRESET_PRIORITY, StoredErrorRule, active_rules,
    builtin_error_rules,
};
use claude_code_hub::ports::store::{ConfigStore, StoreError};

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("t.db").display());
                    let store = super::SqliteStore::connect(&url).await.unwrap();
                    store.migrate().await.unwrap();
                    super::$case(&store).await;
                    store.pool().close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let name = concat!("error_rules::", stringify!($case));
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

both_backends!(presets_are_seeded, rules_round_trip);

async fn presets_are_seeded(s: &dyn ConfigStore) {
    let stored = s.list_error_rules().await.unwrap();
    assert!(stored.iter().all(|r| r.is_preset && r.enabled));
    assert!(stored.iter().all(|r| r.priority == PRESET_PRIORITY));
    assert_eq!(active_rules(&stored), builtin_error_rules());
}

async fn rules_round_trip(s: &dyn ConfigStore) {
    let new = StoredErrorRule {
        id: 0,
        rule: ErrorRule {
            pattern: r"quota \d+".into(),
            match_kind: MatchKind::Regex,
            status: Some(429),
            class: ErrorClass::NonRetryableClientError,
            override_status: Some(402),
            override_message: Some("plan used up".into()),
        },
        description: "mine".into(),
        enabled: true,
        is_preset: false,
        priority: 0,
    };
    let saved = s.insert_error_rule(&new).await.unwrap();
    assert!(saved.id > 0);
    assert_eq!(
        StoredErrorRule {
            id: 0,
            ..saved.clone()
        },
        new
    );
    let first = s.list_error_rules().await.unwrap().remove(0);
    assert_eq!(first, saved, "priority 0 comes before the presets");
    let changed = StoredErrorRule {
        rule: ErrorRule {
            match_kind: MatchKind::Exact,
            status: None,
            class: ErrorClass::ProviderError,
            override_status: None,
            override_message: None,
            ..saved.rule.clone()
        },
        enabled: false,
        ..saved.clone()
    };
    assert_eq!(s.update_error_rule(&changed).await.unwrap(), changed);
    s.delete_error_rule(saved.id).await.unwrap();
    assert!(matches!(
        s.delete_error_rule(saved.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.update_error_rule(&changed).await,
        Err(StoreError::NotFound)
    ));
}
