//! Maps a database of the original Claude Code Hub (TypeScript, `cch-ts`) onto cch's own
//! configuration: users, keys (plaintext there, SHA-256 here, so every client key keeps
//! working), providers, model prices, error rules and sensitive words. Whatever has no place in cch is listed,
//! one line per row and field, so an operator sees exactly what did not come over.
//!
//! Rows arrive as JSON objects (one per table row, column names as keys), which keeps this
//! mapping pure and tolerant of the original's older schema versions (missing columns read as
//! absent).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::api_key::{ApiKey, hash_key, last4};
use super::config_bundle::{BundleUser, ConfigBundle};
use super::user::{Role, User};

mod catalog;
mod fields;
mod providers;

use catalog::{map_error_rule, map_prices, map_sensitive_word};
use fields::{deleted, flag, instant, int, limits, non_empty, text};
use providers::map_provider;

/// The original's tables, each as a list of row objects. A table the source lacks (an older
/// version) is simply empty.
#[derive(Debug, Clone, Default)]
pub struct LegacyDump {
    /// `users`.
    pub users: Vec<Value>,
    /// `keys`.
    pub keys: Vec<Value>,
    /// `providers`.
    pub providers: Vec<Value>,
    /// `model_prices`.
    pub model_prices: Vec<Value>,
    /// `error_rules`.
    pub error_rules: Vec<Value>,
    /// `sensitive_words`.
    pub sensitive_words: Vec<Value>,
    /// `webhook_targets`.
    pub webhook_targets: Vec<Value>,
    /// `notification_settings`.
    pub notification_settings: Vec<Value>,
    /// `system_settings`.
    pub system_settings: Vec<Value>,
}

/// The mapped configuration and the list of what could not be mapped.
#[derive(Debug, Clone)]
pub struct LegacyMapping {
    /// What cch will hold.
    pub bundle: ConfigBundle,
    /// One line per row or field left behind, with the reason.
    pub unmapped: Vec<String>,
}

/// The original's group list: `*` grants every provider (cch: empty), null is `default`.
fn user_groups(raw: Option<&str>) -> String {
    match raw.map(str::trim) {
        None | Some("") => "default".to_string(),
        Some(g) if g.split(',').any(|t| t.trim() == "*") => String::new(),
        Some(g) => g.to_string(),
    }
}

fn map_user(row: &Value, now: DateTime<Utc>, unmapped: &mut Vec<String>) -> Option<User> {
    let id = int(row, "id").unwrap_or(0);
    let name = text(row, "name").unwrap_or("").trim().to_string();
    let what = format!("user '{name}' (id {id})");
    if deleted(row) {
        unmapped.push(format!(
            "{what}: deleted there; not imported (nor its keys)"
        ));
        return None;
    }
    for col in [
        "tags",
        "allowed_clients",
        "blocked_clients",
        "allowed_models",
    ] {
        if non_empty(row, col) {
            unmapped.push(format!(
                "{what}: {col} not mapped (cch has no such user setting)"
            ));
        }
    }
    let user = User {
        id,
        role: if text(row, "role") == Some("admin") {
            Role::Admin
        } else {
            Role::User
        },
        provider_group: user_groups(text(row, "provider_group")),
        limits: limits(row, "daily_limit_usd", &what, unmapped),
        enabled: flag(row, "is_enabled").unwrap_or(true),
        expires_at: instant(row, "expires_at"),
        note: text(row, "description").unwrap_or("").to_string(),
        created_at: instant(row, "created_at").unwrap_or(now),
        updated_at: now,
        name,
    };
    match user.validate() {
        Ok(()) => Some(user),
        Err(e) => {
            unmapped.push(format!("{what}: not imported ({e})"));
            None
        }
    }
}

fn map_key(
    row: &Value,
    owner: &User,
    now: DateTime<Utc>,
    unmapped: &mut Vec<String>,
) -> Option<ApiKey> {
    let id = int(row, "id").unwrap_or(0);
    let name = text(row, "name").unwrap_or("").trim().to_string();
    let what = format!("key '{name}' (id {id}) of user '{}'", owner.name);
    let Some(plain) = text(row, "key").filter(|k| !k.trim().is_empty()) else {
        unmapped.push(format!("{what}: no key text; not imported"));
        return None;
    };
    if let Some(g) = text(row, "provider_group")
        && user_groups(Some(g)) != owner.provider_group
    {
        unmapped.push(format!(
            "{what}: its own provider group '{g}' not mapped (cch keys use their user's groups)"
        ));
    }
    if flag(row, "can_login_web_ui") == Some(true) {
        unmapped.push(format!("{what}: can_login_web_ui not mapped"));
    }
    if non_empty(row, "cache_ttl_preference") {
        unmapped.push(format!("{what}: cache_ttl_preference not mapped"));
    }
    let key = ApiKey {
        id,
        user_id: owner.id,
        name: name.clone(),
        key_hash: hash_key(plain),
        key_last4: last4(plain),
        enabled: flag(row, "is_enabled").unwrap_or(true),
        expires_at: instant(row, "expires_at"),
        limits: limits(row, "limit_daily_usd", &what, unmapped),
        created_at: instant(row, "created_at").unwrap_or(now),
        updated_at: now,
    };
    match key.validate() {
        Ok(()) => Some(key),
        Err(e) => {
            unmapped.push(format!("{what}: not imported ({e})"));
            None
        }
    }
}

/// Maps the whole dump. `now` stamps `updated_at` (and `created_at` when the source has none).
pub fn map_legacy(dump: &LegacyDump, now: DateTime<Utc>) -> LegacyMapping {
    let mut unmapped = Vec::new();
    let mut bundle = ConfigBundle::empty();
    let mut users: Vec<BundleUser> = Vec::new();
    let mut user_index: HashMap<i64, usize> = HashMap::new();
    let mut names: HashMap<String, i64> = HashMap::new();
    for row in &dump.users {
        if let Some(u) = map_user(row, now, &mut unmapped) {
            if let Some(first) = names.get(&u.name) {
                unmapped.push(format!(
                    "user '{}' (id {}): same name as user id {first}; not imported (cch user names are unique)",
                    u.name, u.id
                ));
                continue;
            }
            names.insert(u.name.clone(), u.id);
            user_index.insert(u.id, users.len());
            users.push(BundleUser {
                user: u,
                keys: Vec::new(),
            });
        }
    }
    let mut seen_keys: HashMap<String, i64> = HashMap::new();
    for row in &dump.keys {
        let id = int(row, "id").unwrap_or(0);
        if deleted(row) {
            unmapped.push(format!("key id {id}: deleted there; not imported"));
            continue;
        }
        let owner = int(row, "user_id").unwrap_or(0);
        let Some(&ix) = user_index.get(&owner) else {
            unmapped.push(format!(
                "key id {id}: its user id {owner} was not imported; key not imported"
            ));
            continue;
        };
        let Some(k) = map_key(row, &users[ix].user, now, &mut unmapped) else {
            continue;
        };
        if let Some(first) = seen_keys.get(&k.key_hash) {
            unmapped.push(format!(
                "key id {id}: the same key text as key id {first}; imported once (cch keys are unique)"
            ));
            continue;
        }
        seen_keys.insert(k.key_hash.clone(), id);
        users[ix].keys.push(k);
    }
    bundle.users = users;
    let mut provider_names: HashMap<String, i64> = HashMap::new();
    for row in &dump.providers {
        if let Some(p) = map_provider(row, now, &mut unmapped) {
            if let Some(first) = provider_names.get(&p.name) {
                unmapped.push(format!(
                    "provider '{}' (id {}): same name as provider id {first}; not imported (cch provider names are unique)",
                    p.name, p.id
                ));
                continue;
            }
            provider_names.insert(p.name.clone(), p.id);
            bundle.providers.push(p);
        }
    }
    bundle.prices = map_prices(&dump.model_prices, &mut unmapped);
    for row in &dump.error_rules {
        if let Some(r) = map_error_rule(row, &mut unmapped) {
            bundle.error_rules.push(r);
        }
    }
    for row in &dump.sensitive_words {
        if let Some(w) = map_sensitive_word(row, &mut unmapped) {
            bundle.sensitive_words.push(w);
        }
    }
    if !dump.webhook_targets.is_empty() {
        unmapped.push(format!(
            "webhook targets: {} not imported (cch has no webhook notifications yet)",
            dump.webhook_targets.len()
        ));
    }
    if dump
        .notification_settings
        .iter()
        .any(|r| flag(r, "enabled") == Some(true))
    {
        unmapped.push(
            "notification settings: enabled there; not imported (cch has no webhook notifications yet)"
                .to_string(),
        );
    }
    if !dump.system_settings.is_empty() {
        unmapped.push(
            "system settings: not imported (cch takes them from its environment: TZ, log retention, …)"
                .to_string(),
        );
    }
    LegacyMapping { bundle, unmapped }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
