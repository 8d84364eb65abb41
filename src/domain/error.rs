//! Errors raised by domain rules (validation of admin input and of entities).

/// A value that breaks a domain rule; `field` names the offending input so the HTTP front can
/// report it to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The input field (snake_case, as in the admin API) that is wrong.
    pub field: String,
    /// What is wrong with it, in words a user can act on.
    pub message: String,
}

impl ValidationError {
    /// Builds a validation error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
