//! Users: the people (or services) that hold API keys and carry budgets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::ValidationError;
use super::limits::Limits;

/// What a user may do in the admin surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Full access to the admin surface.
    Admin,
    /// Uses the proxy and sees their own usage only.
    #[default]
    User,
}

impl Role {
    /// The stored/wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    /// Parses the stored/wire name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            _ => Err(ValidationError::new("role", "must be one of: admin, user")),
        }
    }
}

/// A user of the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Database id (0 before insertion).
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Admin or plain user.
    pub role: Role,
    /// Comma-separated provider group tags; empty means every provider.
    pub provider_group: String,
    /// Limits of every window.
    pub limits: Limits,
    /// Disabled users are rejected with 403.
    pub enabled: bool,
    /// After this instant the user is rejected with 403.
    pub expires_at: Option<DateTime<Utc>>,
    /// Free text for admins.
    pub note: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// Checks every field against the rules admins must follow.
    pub fn validate(&self) -> Result<(), ValidationError> {
        super::text::single_line("name", &self.name)?;
        super::text::single_line("provider_group", &self.provider_group)?;
        super::text::multi_line("note", &self.note)?;
        if self.name.trim().is_empty() || self.name.chars().count() > 64 {
            return Err(ValidationError::new("name", "must be 1 to 64 characters"));
        }
        if self.provider_group.chars().count() > 255 {
            return Err(ValidationError::new(
                "provider_group",
                "must be at most 255 characters",
            ));
        }
        if self.note.chars().count() > 1000 {
            return Err(ValidationError::new(
                "note",
                "must be at most 1000 characters",
            ));
        }
        self.limits.validate()
    }

    /// Whether the user may make requests at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.enabled && self.expires_at.is_none_or(|t| t > now)
    }
}
