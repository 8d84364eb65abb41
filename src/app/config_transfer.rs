//! Moves whole configurations in and out of a store: `cch export` (the store as a
//! [`ConfigBundle`]), `cch import FILE` and `cch import cch-ts` (a bundle applied to the store).
//!
//! Applying is idempotent: each entity is matched by its natural identity (provider and user by
//! name, key by hash, price by model, error rule by pattern + match kind + status, setting by
//! key); a missing one is created, a different one is updated to the bundle's values (the
//! bundle wins), an equal one is left alone. Running the same import twice changes nothing.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::domain::config_bundle::{BundleUser, ConfigBundle, is_portable_setting};
use crate::domain::failure::StoredErrorRule;
use crate::domain::sensitive_words::SensitiveWord;
use crate::ports::sensitive_words::SensitiveWordStore;
use crate::ports::store::{ConfigStore, StoreError};

/// What applying a bundle did (or, in a dry run, would do) to one kind of entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// New entities.
    pub created: usize,
    /// Existing entities whose fields change.
    pub updated: usize,
    /// Existing entities already equal to the bundle's.
    pub unchanged: usize,
    /// Entities the store refused (each has a line in `Report::failed`).
    pub failed: usize,
}

/// The outcome of applying a bundle.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Counts per entity kind (`providers`, `users`, `keys`, `prices`, `error_rules`,
    /// `settings`).
    pub counts: BTreeMap<&'static str, Counts>,
    /// One line per created or updated entity (what would be written in a dry run).
    pub changes: Vec<String>,
    /// One line per entity the store refused, with its reason.
    pub failed: Vec<String>,
}

impl Report {
    fn note(&mut self, kind: &'static str, outcome: Outcome, what: String) {
        let c = self.counts.entry(kind).or_default();
        match outcome {
            Outcome::Create => {
                c.created += 1;
                self.changes.push(format!("create {what}"));
            }
            Outcome::Update => {
                c.updated += 1;
                self.changes.push(format!("update {what}"));
            }
            Outcome::Same => c.unchanged += 1,
        }
    }

    fn fail(&mut self, kind: &'static str, what: String, e: &StoreError) {
        self.counts.entry(kind).or_default().failed += 1;
        self.failed.push(format!("{what}: {e}"));
    }

    /// A human summary: one line per kind, then the changes and the failures.
    pub fn render(&self, dry_run: bool) -> String {
        let mut out = String::new();
        let verb = if dry_run { "would be" } else { "were" };
        for kind in [
            "providers",
            "users",
            "keys",
            "prices",
            "error_rules",
            "sensitive_words",
            "settings",
        ] {
            let c = self.counts.get(kind).cloned().unwrap_or_default();
            out.push_str(&format!(
                "{kind}: {} created, {} updated, {} unchanged{}\n",
                c.created,
                c.updated,
                c.unchanged,
                if c.failed > 0 {
                    format!(", {} failed", c.failed)
                } else {
                    String::new()
                }
            ));
        }
        if !self.changes.is_empty() {
            out.push_str(&format!("\nchanges that {verb} made:\n"));
            for l in &self.changes {
                out.push_str(&format!("  {l}\n"));
            }
        }
        if !self.failed.is_empty() {
            out.push_str("\nrefused by the database:\n");
            for l in &self.failed {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Create,
    Update,
    Same,
}

/// Reads the whole configuration of `store` as a bundle (keys as hashes; run-time settings
/// such as limit markers left out).
pub async fn export(store: &dyn ConfigStore) -> Result<ConfigBundle, StoreError> {
    let mut bundle = ConfigBundle::empty();
    bundle.providers = store.list_providers().await?;
    let keys = store.list_keys().await?;
    let mut by_user: HashMap<i64, Vec<_>> = HashMap::new();
    for k in keys {
        by_user.entry(k.user_id).or_default().push(k);
    }
    bundle.users = store
        .list_users()
        .await?
        .into_iter()
        .map(|user| BundleUser {
            keys: by_user.remove(&user.id).unwrap_or_default(),
            user,
        })
        .collect();
    bundle.prices = store.list_prices().await?;
    bundle.error_rules = store.list_error_rules().await?;
    bundle.settings = store
        .list_settings()
        .await?
        .into_iter()
        .filter(|s| is_portable_setting(&s.key))
        .collect();
    Ok(bundle)
}

/// Adds the sensitive-word rules to an exported bundle.
pub async fn export_sensitive_words(
    words: &dyn SensitiveWordStore,
    bundle: &mut ConfigBundle,
) -> Result<(), StoreError> {
    bundle.sensitive_words = words.list_sensitive_words().await?;
    Ok(())
}

/// Applies the bundle's sensitive-word rules (matched by word and match type) to `words`,
/// adding to `report` (nothing is written when `dry_run`). Invalid rules are refused.
pub async fn apply_sensitive_words(
    words: &dyn SensitiveWordStore,
    bundle: &ConfigBundle,
    dry_run: bool,
    report: &mut Report,
) -> Result<(), StoreError> {
    let existing: HashMap<(String, &'static str), SensitiveWord> = words
        .list_sensitive_words()
        .await?
        .into_iter()
        .map(|w| ((w.word.clone(), w.match_type.as_str()), w))
        .collect();
    for w in &bundle.sensitive_words {
        let what = format!("sensitive word #{} ({})", w.id, w.match_type.as_str());
        if let Err(e) = w.validate() {
            report.fail("sensitive_words", what, &StoreError::Corrupt(e.to_string()));
            continue;
        }
        let mut want = w.clone();
        let outcome = match existing.get(&(w.word.clone(), w.match_type.as_str())) {
            None => Outcome::Create,
            Some(cur) => {
                want.id = cur.id;
                if &want == cur {
                    Outcome::Same
                } else {
                    Outcome::Update
                }
            }
        };
        if !dry_run && outcome != Outcome::Same {
            let res = match outcome {
                Outcome::Create => words.insert_sensitive_word(&want).await.map(|_| ()),
                _ => words.update_sensitive_word(&want).await.map(|_| ()),
            };
            if let Err(e) = res {
                report.fail("sensitive_words", what, &e);
                continue;
            }
        }
        report.note("sensitive_words", outcome, what);
    }
    Ok(())
}

fn rule_identity(r: &StoredErrorRule) -> (String, &'static str, Option<u16>) {
    (
        r.rule.pattern.clone(),
        r.rule.match_kind.as_str(),
        r.rule.status,
    )
}

/// Applies `bundle` to `store` (nothing is written when `dry_run`). `now` stamps `updated_at`
/// of written entities.
pub async fn apply(
    store: &dyn ConfigStore,
    bundle: &ConfigBundle,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    // Providers, by name.
    let existing: HashMap<String, _> = store
        .list_providers()
        .await?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    for p in &bundle.providers {
        let what = format!("provider '{}'", p.name);
        let mut want = p.clone();
        want.updated_at = now;
        let outcome = match existing.get(&p.name) {
            None => Outcome::Create,
            Some(cur) => {
                want.id = cur.id;
                want.created_at = cur.created_at;
                let mut cmp = want.clone();
                cmp.updated_at = cur.updated_at;
                if &cmp == cur {
                    Outcome::Same
                } else {
                    Outcome::Update
                }
            }
        };
        if !dry_run && outcome != Outcome::Same {
            let r = match outcome {
                Outcome::Create => store.insert_provider(&want).await.map(|_| ()),
                _ => store.update_provider(&want).await.map(|_| ()),
            };
            if let Err(e) = r {
                report.fail("providers", what, &e);
                continue;
            }
        }
        report.note("providers", outcome, what);
    }

    // Users by name, then their keys by hash.
    let users: HashMap<String, _> = store
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.name.clone(), u))
        .collect();
    let keys: HashMap<String, _> = store
        .list_keys()
        .await?
        .into_iter()
        .map(|k| (k.key_hash.clone(), k))
        .collect();
    for bu in &bundle.users {
        let u = &bu.user;
        let what = format!("user '{}'", u.name);
        let mut want = u.clone();
        want.updated_at = now;
        // The user's id in this store, once known (`None` in a dry run of a new user).
        let mut user_id = None;
        let outcome = match users.get(&u.name) {
            None => Outcome::Create,
            Some(cur) => {
                want.id = cur.id;
                want.created_at = cur.created_at;
                user_id = Some(cur.id);
                let mut cmp = want.clone();
                cmp.updated_at = cur.updated_at;
                if &cmp == cur {
                    Outcome::Same
                } else {
                    Outcome::Update
                }
            }
        };
        if !dry_run && outcome != Outcome::Same {
            let r = match outcome {
                Outcome::Create => store.insert_user(&want).await,
                _ => store.update_user(&want).await,
            };
            match r {
                Ok(saved) => user_id = Some(saved.id),
                Err(e) => {
                    report.fail("users", what, &e);
                    continue;
                }
            }
        }
        report.note("users", outcome, what);
        for k in &bu.keys {
            let what = format!("key '{}' (…{}) of user '{}'", k.name, k.key_last4, u.name);
            let mut want = k.clone();
            want.updated_at = now;
            want.user_id = user_id.unwrap_or(0);
            let outcome = match keys.get(&k.key_hash) {
                None => Outcome::Create,
                Some(cur) => {
                    want.id = cur.id;
                    want.created_at = cur.created_at;
                    let mut cmp = want.clone();
                    cmp.updated_at = cur.updated_at;
                    if user_id.is_some_and(|id| id != cur.user_id) {
                        report.fail(
                            "keys",
                            what,
                            &StoreError::Conflict("this key belongs to another user here".into()),
                        );
                        continue;
                    }
                    if &cmp == cur {
                        Outcome::Same
                    } else {
                        Outcome::Update
                    }
                }
            };
            if !dry_run && outcome != Outcome::Same {
                let r = match outcome {
                    Outcome::Create => store.insert_key(&want).await.map(|_| ()),
                    _ => store.update_key(&want).await.map(|_| ()),
                };
                if let Err(e) = r {
                    report.fail("keys", what, &e);
                    continue;
                }
            }
            report.note("keys", outcome, what);
        }
    }

    // Prices by model.
    let prices: HashMap<String, _> = store
        .list_prices()
        .await?
        .into_iter()
        .map(|p| (p.model.clone(), p))
        .collect();
    for p in &bundle.prices {
        let what = format!("price of '{}'", p.model);
        let outcome = match prices.get(&p.model) {
            None => Outcome::Create,
            Some(cur) if cur == p => Outcome::Same,
            Some(_) => Outcome::Update,
        };
        if !dry_run
            && outcome != Outcome::Same
            && let Err(e) = store.upsert_price(p).await
        {
            report.fail("prices", what, &e);
            continue;
        }
        report.note("prices", outcome, what);
    }

    // Error rules by pattern, match kind and status.
    let rules: HashMap<_, _> = store
        .list_error_rules()
        .await?
        .into_iter()
        .map(|r| (rule_identity(&r), r))
        .collect();
    for r in &bundle.error_rules {
        let what = format!("error rule '{}'", r.rule.pattern);
        let mut want = r.clone();
        let outcome = match rules.get(&rule_identity(r)) {
            None => Outcome::Create,
            Some(cur) => {
                want.id = cur.id;
                if &want == cur {
                    Outcome::Same
                } else {
                    Outcome::Update
                }
            }
        };
        if !dry_run && outcome != Outcome::Same {
            let res = match outcome {
                Outcome::Create => store.insert_error_rule(&want).await.map(|_| ()),
                _ => store.update_error_rule(&want).await.map(|_| ()),
            };
            if let Err(e) = res {
                report.fail("error_rules", what, &e);
                continue;
            }
        }
        report.note("error_rules", outcome, what);
    }

    // Settings by key.
    let settings: HashMap<String, _> = store
        .list_settings()
        .await?
        .into_iter()
        .map(|s| (s.key.clone(), s.value))
        .collect();
    for s in bundle
        .settings
        .iter()
        .filter(|s| is_portable_setting(&s.key))
    {
        let what = format!("setting '{}'", s.key);
        let outcome = match settings.get(&s.key) {
            None => Outcome::Create,
            Some(v) if *v == s.value => Outcome::Same,
            Some(_) => Outcome::Update,
        };
        if !dry_run
            && outcome != Outcome::Same
            && let Err(e) = store.put_setting(s).await
        {
            report.fail("settings", what, &e);
            continue;
        }
        report.note("settings", outcome, what);
    }
    Ok(report)
}
