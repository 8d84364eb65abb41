//! System settings editable at run time and stored in the database (key → JSON value).

use serde::{Deserialize, Serialize};

/// One stored setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemSetting {
    /// Setting name, e.g. `log_retention_days`.
    pub key: String,
    /// Its value as JSON.
    pub value: serde_json::Value,
}
