//! Contract tests of the security tables on SQLite and PostgreSQL alike: sensitive-word rules
//! (round trip, duplicates, not found) and the audit log (round trip, filters, paging, prune).

mod support;

use chrono::{DateTime, Utc};
use claude_code_hub::adapters::postgres::PostgresStore;
use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::domain::audit::{AuditEntry, AuditFilter, FieldChange};
use claude_code_hub::domain::sensitive_words::{SensitiveWord, WordMatch};
use claude_code_hub::ports::audit::AuditStore;
use claude_code_hub::ports::sensitive_words::SensitiveWordStore;
use claude_code_hub::ports::store::StoreError;
use serde_json::json;

trait Backend: SensitiveWordStore + AuditStore {}
impl Backend for SqliteStore {}
impl Backend for PostgresStore {}

macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}/cch.db", dir.path().display());
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
                    let name = concat!("postgres::", stringify!($case));
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
    sensitive_word_round_trip,
    sensitive_word_duplicates_conflict,
    audit_round_trip_filters_and_pages,
    audit_prune_before_cutoff,
);

fn word(w: &str, m: WordMatch) -> SensitiveWord {
    SensitiveWord {
        id: 0,
        word: w.into(),
        match_type: m,
        enabled: true,
        note: "why".into(),
    }
}

async fn sensitive_word_round_trip(s: &dyn Backend) {
    let a = s
        .insert_sensitive_word(&word("机密", WordMatch::Contains))
        .await
        .unwrap();
    let b = s
        .insert_sensitive_word(&word(r"sk-\w+", WordMatch::Regex))
        .await
        .unwrap();
    assert!(a.id > 0 && b.id > a.id);
    assert_eq!(a.word, "机密");
    let mut changed = b.clone();
    changed.enabled = false;
    changed.note = "off".into();
    changed.match_type = WordMatch::Exact;
    assert_eq!(s.update_sensitive_word(&changed).await.unwrap(), changed);
    assert_eq!(
        s.list_sensitive_words().await.unwrap(),
        vec![a.clone(), changed]
    );
    s.delete_sensitive_word(a.id).await.unwrap();
    assert!(matches!(
        s.delete_sensitive_word(a.id).await,
        Err(StoreError::NotFound)
    ));
    let mut ghost = a.clone();
    ghost.id = 999_999;
    assert!(matches!(
        s.update_sensitive_word(&ghost).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.list_sensitive_words().await.unwrap().len(), 1);
}

async fn sensitive_word_duplicates_conflict(s: &dyn Backend) {
    s.insert_sensitive_word(&word("x", WordMatch::Contains))
        .await
        .unwrap();
    assert!(matches!(
        s.insert_sensitive_word(&word("x", WordMatch::Contains))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // The same text under another match type is another rule.
    s.insert_sensitive_word(&word("x", WordMatch::Exact))
        .await
        .unwrap();
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn entry(ms: i64, actor: &str, action: &str, target: &str) -> AuditEntry {
    AuditEntry {
        id: 0,
        at: at(ms),
        actor: actor.into(),
        ip: Some("127.0.0.1".into()),
        action: action.into(),
        route: "PATCH /providers/{id}".into(),
        target: target.into(),
        status: 200,
        changes: vec![FieldChange {
            field: "name".into(),
            old: Some(json!("a")),
            new: Some(json!("b")),
        }],
    }
}

async fn audit_round_trip_filters_and_pages(s: &dyn Backend) {
    let base = 1_764_000_000_000;
    let mut ids = Vec::new();
    for (i, (actor, action, target)) in [
        ("admin", "create", "providers"),
        ("admin", "update", "providers/1"),
        ("user:2/key:3", "update", "providers/12"),
        ("anonymous", "login_failed", "auth/login"),
        ("admin", "delete", "providers_x/1"),
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(
            s.insert_audit(&entry(base + i as i64 * 1000, actor, action, target))
                .await
                .unwrap(),
        );
    }
    let all = s
        .list_audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].id, ids[4], "newest first");
    let mut expected = entry(base + 4000, "admin", "delete", "providers_x/1");
    expected.id = ids[4];
    assert_eq!(all[0], expected);

    let f = |f: AuditFilter| async move {
        s.list_audit(&AuditFilter { limit: 100, ..f })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        f(AuditFilter {
            actor: Some("admin".into()),
            ..Default::default()
        })
        .await,
        vec![ids[4], ids[1], ids[0]]
    );
    assert_eq!(
        f(AuditFilter {
            action: Some("update".into()),
            ..Default::default()
        })
        .await,
        vec![ids[2], ids[1]]
    );
    // A target prefix matches the resource and what is under it, not a longer name
    // (`providers_x`: `_` is not a wildcard).
    assert_eq!(
        f(AuditFilter {
            target_prefix: Some("providers".into()),
            ..Default::default()
        })
        .await,
        vec![ids[2], ids[1], ids[0]]
    );
    assert_eq!(
        f(AuditFilter {
            from: Some(at(base + 1000)),
            to: Some(at(base + 3000)),
            ..Default::default()
        })
        .await,
        vec![ids[2], ids[1]]
    );
    let page = s
        .list_audit(&AuditFilter {
            limit: 2,
            before_id: Some(ids[3]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );
}

async fn audit_prune_before_cutoff(s: &dyn Backend) {
    for ms in [1_000, 2_000, 3_000] {
        s.insert_audit(&entry(ms, "admin", "update", "users/1"))
            .await
            .unwrap();
    }
    assert_eq!(s.delete_audit_before(at(2_500)).await.unwrap(), 2);
    let left = s
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].at, at(3_000));
}
