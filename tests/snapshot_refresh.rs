//! The periodic configuration refresh reads one row when nothing changed, and reloads after a
//! write made through any instance (here: straight to the store, as another instance would).

use std::sync::Arc;

use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::app::snapshot::{Changed, SnapshotHolder};
use claude_code_hub::domain::api_key::ApiKey;
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
        .insert_user(&user("written-elsewhere", now))
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

fn user(name: &str, now: chrono::DateTime<chrono::Utc>) -> User {
    User {
        id: 0,
        name: name.into(),
        role: Role::User,
        provider_group: String::new(),
        limits: Limits::default(),
        enabled: true,
        expires_at: None,
        note: String::new(),
        created_at: now,
        updated_at: now,
    }
}

fn key(user_id: i64, hash: &str, now: chrono::DateTime<chrono::Utc>) -> ApiKey {
    ApiKey {
        id: 0,
        user_id,
        name: "k".into(),
        key_hash: hash.into(),
        key_last4: "abcd".into(),
        enabled: true,
        expires_at: None,
        limits: Limits::default(),
        created_at: now,
        updated_at: now,
    }
}

/// An admin write applied to the snapshot is served at once, and when it was the only change
/// the snapshot's version follows, so no full reload is needed afterwards; a write that moved
/// the version more than once (a user deleted with keys: one bump per row) leaves the reload
/// to the next refresh.
#[tokio::test]
async fn a_written_entity_is_applied_without_a_full_reload() {
    let db = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    db.migrate().await.unwrap();
    let now = chrono::Utc::now();
    let holder = SnapshotHolder::load(db.clone(), now).await.unwrap();

    let u = db.insert_user(&user("alice", now)).await.unwrap();
    holder.apply(Changed::User(u.id)).await.unwrap();
    assert_eq!(holder.get().users[&u.id].name, "alice");
    assert!(
        !holder.refresh(now, false).await.unwrap(),
        "nothing left to reload"
    );

    let k = db.insert_key(&key(u.id, "hash-a", now)).await.unwrap();
    holder.apply(Changed::Key(k.id)).await.unwrap();
    let snap = holder.get();
    assert_eq!(snap.keys_by_hash["hash-a"].id, k.id);
    assert_eq!(snap.keys_by_id[&k.id].user_id, u.id);
    assert!(!holder.refresh(now, false).await.unwrap());

    let mut renamed = db.get_user(u.id).await.unwrap();
    renamed.name = "alice2".into();
    db.update_user(&renamed).await.unwrap();
    holder.apply(Changed::User(u.id)).await.unwrap();
    assert_eq!(holder.get().users[&u.id].name, "alice2");

    db.delete_key(k.id).await.unwrap();
    holder.apply(Changed::Key(k.id)).await.unwrap();
    let snap = holder.get();
    assert!(snap.keys_by_id.is_empty() && snap.keys_by_hash.is_empty());
    assert!(!holder.refresh(now, false).await.unwrap());

    // Another instance wrote meanwhile: applying ours does not claim its version.
    let k2 = db.insert_key(&key(u.id, "hash-b", now)).await.unwrap();
    let other = db.insert_user(&user("bob", now)).await.unwrap();
    holder.apply(Changed::Key(k2.id)).await.unwrap();
    assert!(holder.get().keys_by_id.contains_key(&k2.id));
    assert!(!holder.get().users.contains_key(&other.id));
    assert!(
        holder.refresh(now, false).await.unwrap(),
        "the other write is reloaded"
    );
    assert!(holder.get().users.contains_key(&other.id));

    // Deleted with its keys: gone from every map at once.
    db.delete_user(u.id).await.unwrap();
    holder.apply(Changed::User(u.id)).await.unwrap();
    let snap = holder.get();
    assert!(!snap.users.contains_key(&u.id));
    assert!(!snap.keys_by_id.contains_key(&k2.id) && !snap.keys_by_hash.contains_key("hash-b"));
}
