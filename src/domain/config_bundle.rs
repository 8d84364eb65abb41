//! The portable form of cch's own configuration (`cch export` / `cch import FILE`): providers,
//! users with their keys (SHA-256 hashes only), model prices, error rules and settings, keyed
//! by name rather than database id so a bundle moves between SQLite and PostgreSQL.

use serde::{Deserialize, Serialize};

use super::api_key::ApiKey;
use super::failure::StoredErrorRule;
use super::price::ModelPrice;
use super::provider::Provider;
use super::settings::SystemSetting;
use super::user::User;

/// The `format` field of every bundle.
pub const BUNDLE_FORMAT: &str = "cch-config";
/// The bundle version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// A whole configuration. Ids inside are those of the source database and are ignored on
/// import: providers and users match by name, keys by hash, prices by model, error rules by
/// pattern, match kind and status, settings by key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigBundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Always [`BUNDLE_VERSION`] for this build.
    pub version: u32,
    /// Upstream providers, with their secrets.
    pub providers: Vec<Provider>,
    /// Users, each with their keys.
    pub users: Vec<BundleUser>,
    /// Admin price overrides.
    pub prices: Vec<ModelPrice>,
    /// Error rules, presets included.
    pub error_rules: Vec<StoredErrorRule>,
    /// Configuration settings (run-time state such as limit markers is left out).
    pub settings: Vec<SystemSetting>,
    /// Sensitive-word rules (absent in files from versions without the filter).
    #[serde(default)]
    pub sensitive_words: Vec<super::sensitive_words::SensitiveWord>,
}

/// A user and the keys they own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleUser {
    /// The user.
    pub user: User,
    /// Their keys (hashes and last four characters; never plaintext).
    pub keys: Vec<ApiKey>,
}

impl ConfigBundle {
    /// An empty bundle of the current version.
    pub fn empty() -> Self {
        Self {
            format: BUNDLE_FORMAT.to_string(),
            version: BUNDLE_VERSION,
            providers: Vec::new(),
            users: Vec::new(),
            prices: Vec::new(),
            error_rules: Vec::new(),
            settings: Vec::new(),
            sensitive_words: Vec::new(),
        }
    }

    /// Refuses a document that is not a bundle this build understands.
    pub fn check_version(&self) -> Result<(), String> {
        if self.format != BUNDLE_FORMAT {
            return Err(format!(
                "not a cch configuration file (format '{}', expected '{BUNDLE_FORMAT}')",
                self.format
            ));
        }
        if self.version != BUNDLE_VERSION {
            return Err(format!(
                "configuration file version {} is not supported (this build reads version {BUNDLE_VERSION})",
                self.version
            ));
        }
        Ok(())
    }
}

/// Whether a stored setting is configuration (exported) rather than run-time state tied to this
/// database's ids or counters (limit warm-up markers, total-reset instants).
pub fn is_portable_setting(key: &str) -> bool {
    !(key.starts_with("lim:") || key.starts_with("limits."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_format_are_checked() {
        let mut b = ConfigBundle::empty();
        assert!(b.check_version().is_ok());
        b.version = 2;
        assert!(b.check_version().unwrap_err().contains("version 2"));
        b.version = BUNDLE_VERSION;
        b.format = "other".into();
        assert!(b.check_version().unwrap_err().contains("not a cch"));
    }

    #[test]
    fn run_time_markers_are_not_portable() {
        assert!(is_portable_setting("site_title"));
        assert!(!is_portable_setting("lim:warm:rings"));
        assert!(!is_portable_setting("limits.total_reset_at.u.3"));
    }
}
