//! The periodic configuration refresh reads one row when nothing changed, and reloads after a
//! write made through any instance (here: straight to the store, as another instance would).

use std::sync::Arc;

use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::app::snapshot::SnapshotHolder;
use claude_code_hub::domain::limits::Limits;
use claude_code_hub::domain::user::{Role, User};
use claude_code_hub::ports::store::ConfigStore;

#[tokio::test]
async fn a_refresh_reloads_only_when_the_configuration_changed() {
    let db = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    db.migrate().await.unwrap();
    let now = chrono::Utc::now();
    let holder = SnapshotHolder::load(db.clone(), now).await.unwrap();
    assert!(holder.get().version.is_some());
    assert!(
        !holder.refresh(now, false).await.unwrap(),
        "nothing changed"
    );
    let first = holder.get();

    let u = db
        .insert_user(&User {
            id: 0,
            name: "written-elsewhere".into(),
            role: Role::User,
            provider_group: String::new(),
            limits: Limits::default(),
            enabled: true,
            expires_at: None,
            note: String::new(),
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    assert!(
        holder.refresh(now, false).await.unwrap(),
        "a user was added"
    );
    assert!(holder.get().users.contains_key(&u.id));
    assert!(!holder.refresh(now, false).await.unwrap());
    assert!(!Arc::ptr_eq(&first, &holder.get()));

    // Forced: reloads whatever the version says.
    let before = holder.get();
    assert!(holder.refresh(now, true).await.unwrap());
    assert!(!Arc::ptr_eq(&before, &holder.get()));
}
