//! The thinking-signature rectifier, between an attempt and the answer: when an error rule of
//! class `rectify_thinking_signature` matched a provider's refusal (e.g. 400 "Invalid
//! `signature` in `thinking` block" after a conversation moved from another provider), the
//! request's thinking blocks are stripped and the same provider is tried once more. Without
//! anything to strip (or after one rectified try) the refusal goes to the client as it is.

use bytes::Bytes;
use serde_json::Value;

use crate::domain::format::ClientFormat;
use crate::domain::thinking_rectifier::{Rectified, strip_thinking_blocks};

use super::attempt::AttemptOk;
use super::convert_io::Prepared;

/// The chain's name for a refusal the rectifier acted on.
pub(super) const DETECTION: &str = "thinking_signature";

/// What to do with a successful (or client-error) attempt.
pub(super) enum AfterAttempt {
    /// Pass it on.
    Answer(AttemptOk),
    /// Try the same provider again with this request.
    Retry {
        /// The request without thinking blocks.
        fixed: Prepared,
        /// The refusal's status and message, for the chain.
        status: u16,
        message: String,
        /// What was changed.
        rectified: Rectified,
    },
}

/// Decides whether `ok` is a refusal the rectifier can cure. `already` is true once this
/// request was rectified (one rectified try per provider).
pub(super) fn after_attempt(ok: AttemptOk, current: &Prepared, already: bool) -> AfterAttempt {
    let AttemptOk::ClientError {
        status,
        message,
        rectifiable: true,
        ..
    } = &ok
    else {
        return AfterAttempt::Answer(ok);
    };
    if already || current.provider_format != ClientFormat::Claude {
        return AfterAttempt::Answer(ok);
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&current.body) else {
        return AfterAttempt::Answer(ok);
    };
    let rectified = strip_thinking_blocks(&mut body);
    if !rectified.changed() {
        return AfterAttempt::Answer(ok);
    }
    let (status, message) = (*status, message.clone());
    AfterAttempt::Retry {
        fixed: Prepared {
            path: current.path.clone(),
            query: current.query.clone(),
            body: Bytes::from(body.to_string()),
            provider_format: current.provider_format,
            converted: current.converted,
        },
        status,
        message,
        rectified,
    }
}
