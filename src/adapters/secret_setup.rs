//! Secrets at rest, put together: which key seals (`secret_key_file`), checking and sealing
//! what the database holds at startup, wrapping the stores (`sealed_store`), and the key
//! rotation of `cch rotate-secret-key`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::sealed_store::{
    SealReport, SealedConfigStore, SealedNotificationStore, reseal_all, verify_and_seal_plaintext,
};
use super::secret_box::{Keyring, decode_key, generate_key};
use super::secret_key_file::{self, KeyOrigin, ResolvedKeys};
use crate::app::config::Settings;
use crate::ports::notifications::NotificationStore;
use crate::ports::store::ConfigStore;

/// The settings the keys come from.
pub struct KeySettings {
    /// `CCH_SECRET_KEY`.
    pub key: Option<String>,
    /// `CCH_SECRET_KEY_OLD`.
    pub old: Vec<String>,
    /// `DATA_DIR`.
    pub data_dir: PathBuf,
}

impl KeySettings {
    /// From the startup settings.
    pub fn of(s: &Settings) -> Self {
        Self {
            key: s.secret_key.clone(),
            old: s.secret_key_old.clone(),
            data_dir: s.data_dir.clone(),
        }
    }
}

fn resolve(s: &KeySettings) -> anyhow::Result<ResolvedKeys> {
    let keys = secret_key_file::resolve(s.key.as_deref(), &s.old, &s.data_dir)?;
    match &keys.origin {
        KeyOrigin::Environment => tracing::info!("secret key taken from CCH_SECRET_KEY"),
        KeyOrigin::Loaded(path) => {
            tracing::info!(path = %path.display(), "secret key loaded from the data folder")
        }
        KeyOrigin::Generated(path) => println!(
            "\n  CCH_SECRET_KEY was not set, so a key encrypting provider and webhook secrets was\n  generated and saved in {} (mode 0600). Back it up with the database:\n  without it the stored secrets cannot be read. Instances sharing a database\n  need the same key (set CCH_SECRET_KEY on each).\n",
            path.display()
        ),
    }
    Ok(keys)
}

/// Resolves the key, stops (writing nothing) when the stored secrets were sealed with another
/// key, seals the secrets still stored in plaintext, and returns the stores wrapped so that
/// everything written from now on is sealed and everything read is opened.
pub async fn seal_stores(
    config: Arc<dyn ConfigStore>,
    notifications: Arc<dyn NotificationStore>,
    settings: &KeySettings,
) -> anyhow::Result<(Arc<dyn ConfigStore>, Arc<dyn NotificationStore>)> {
    let ring = Arc::new(resolve(settings)?.keyring());
    let sealed = verify_and_seal_plaintext(
        config.as_ref(),
        notifications.as_ref(),
        &ring,
        chrono::Utc::now(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if sealed != SealReport::default() {
        tracing::info!(
            providers = sealed.providers,
            targets = sealed.targets,
            "secrets stored in plaintext are now encrypted"
        );
    }
    Ok((
        Arc::new(SealedConfigStore::new(config, ring.clone())),
        Arc::new(SealedNotificationStore::new(notifications, ring)),
    ))
}

/// Seals every stored secret with a new key, on the raw stores. With the key in the data
/// folder, the new key is written to `secret_key.next` first, every value is re-sealed (each
/// stays readable throughout: the keyring holds both keys), then the file replaces
/// `secret_key`; an interrupted rotation resumes when run again. With `CCH_SECRET_KEY`, the new
/// key is returned in the report: it must be set (and the instances restarted) by the operator.
pub async fn rotate(
    config: &dyn ConfigStore,
    notifications: &dyn NotificationStore,
    settings: &KeySettings,
) -> anyhow::Result<String> {
    let current = resolve(settings)?;
    let next_path = settings.data_dir.join(secret_key_file::NEXT_KEY_FILE);
    let file_based = current.origin != KeyOrigin::Environment;
    let new_b64 = match std::fs::read_to_string(&next_path) {
        Ok(text) if file_based => text.trim().to_string(),
        _ => {
            let k = generate_key();
            if file_based {
                secret_key_file::write_key_file(&next_path, &k)?;
            }
            k
        }
    };
    let new_raw = decode_key(&new_b64).map_err(|e| anyhow::anyhow!(e))?;
    let mut others = vec![current.primary];
    others.extend(current.others.iter().copied());
    let ring = Keyring::new(&new_raw, &others);
    let report = reseal_all(config, notifications, &ring, chrono::Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = format!(
        "re-encrypted {} provider(s) and {} notification target(s) with key {}\n",
        report.providers,
        report.targets,
        ring.primary_id()
    );
    if file_based {
        let key_path = settings.data_dir.join(secret_key_file::KEY_FILE);
        std::fs::rename(&next_path, &key_path)
            .with_context(|| format!("cannot move {} into place", next_path.display()))?;
        out.push_str(&format!("the new key replaced {}", key_path.display()));
    } else {
        out.push_str(&format!(
            "set CCH_SECRET_KEY={new_b64} on every instance and restart them; until then they keep serving their last configuration"
        ));
    }
    Ok(out)
}
