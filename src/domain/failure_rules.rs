//! The preset error rules: upstream errors caused by the request itself, which another provider
//! would reject too, so they go back to the client instead of failing over.

use super::{ErrorClass, ErrorRule, MatchKind};

fn rule(pattern: &str, status: Option<u16>) -> ErrorRule {
    ErrorRule {
        pattern: pattern.to_string(),
        match_kind: MatchKind::Contains,
        status,
        class: ErrorClass::NonRetryableClientError,
        override_status: None,
        override_message: None,
    }
}

/// The built-in rules (all "contains", case-insensitive; non-retryable client errors except the
/// thinking-signature rules, which the rectifier acts on), in the order the migrations store
/// them. Wording that could also describe a provider-side problem is limited to status 400.
pub fn builtin_error_rules() -> Vec<ErrorRule> {
    let any: &[&str] = &[
        // Context size.
        "prompt is too long",
        "input is too long",
        "context_length_exceeded",
        "maximum context length",
        "exceeds the context window",
        "exceeds the maximum number of tokens",
        // Content filters and policy.
        "content filtering policy",
        "content_policy_violation",
        "content management policy",
        "safety system",
        // PDF, image and media limits.
        "pdf pages",
        "pdf has too many pages",
        "image exceeds",
        "image dimensions exceed",
        "too many images",
        "could not process image",
        "media type",
        // Tool use ids.
        "`tool_use` ids",
        "tool_use_id",
        "tool_use` blocks",
        "tool call id",
        // Unknown model.
        "model not found",
        "model_not_found",
        "unknown model",
        "does not exist or you do not have access",
        "is not found for api version",
        "invalid model",
    ];
    let bad_request_only: &[&str] = &[
        "is required",
        "missing required parameter",
        "extra inputs are not permitted",
        "input should be",
        "invalid parameter",
        "unrecognized request argument",
        "unknown parameter",
    ];
    // Refused thinking blocks that stripping them cures (migration 0030): matched before the
    // thinking presets and "field required" below, which share words with them.
    let rectifiable: &[&str] = &[
        "invalid `signature` in `thinking` block",
        "in `redacted_thinking` block",
        "signature: field required",
        "blocks in the latest assistant message cannot be modified",
        "must start with a thinking block",
    ];
    // Thinking blocks the rectifier cannot cure.
    let thinking: &[&str] = &[
        "expected `thinking`",
        "`thinking` block",
        "thinking blocks",
        "redacted_thinking",
    ];
    any.iter()
        .map(|p| rule(p, None))
        .chain(bad_request_only.iter().map(|p| rule(p, Some(400))))
        .chain(rectifiable.iter().map(|p| ErrorRule {
            class: ErrorClass::RectifyThinkingSignature,
            ..rule(p, Some(400))
        }))
        .chain(thinking.iter().map(|p| rule(p, None)))
        .chain(std::iter::once(rule("field required", Some(400))))
        .collect()
}
