//! Errors the gateway itself returns to clients, in the client's own wire format.

use serde_json::{Value, json};

use super::format::ClientFormat;

/// What kind of failure the gateway reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayErrorKind {
    /// Malformed or unusable request (400).
    InvalidRequest,
    /// Unknown or missing key (401).
    Authentication,
    /// Disabled or expired user/key (403).
    Permission,
    /// Unknown route or model (404).
    NotFound,
    /// Body over the size limit (413).
    RequestTooLarge,
    /// A body in an encoding cch cannot read (415).
    UnsupportedMediaType,
    /// A limit was hit (429).
    RateLimit,
    /// An upstream failed after retries (502).
    UpstreamFailed,
    /// No provider can serve the request (503).
    NoProvider,
    /// An upstream timed out (504).
    Timeout,
    /// A bug or an unexpected state (500).
    Internal,
}

impl GatewayErrorKind {
    /// The HTTP status for this kind.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Authentication => 401,
            Self::Permission => 403,
            Self::NotFound => 404,
            Self::RequestTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RateLimit => 429,
            Self::UpstreamFailed => 502,
            Self::NoProvider => 503,
            Self::Timeout => 504,
            Self::Internal => 500,
        }
    }

    /// Anthropic's `error.type` for this kind.
    pub fn claude_type(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::UnsupportedMediaType => "invalid_request_error",
            Self::RateLimit => "rate_limit_error",
            Self::UpstreamFailed | Self::Internal => "api_error",
            Self::NoProvider => "overloaded_error",
            Self::Timeout => "timeout_error",
        }
    }

    /// Anthropic's `error.type` for an arbitrary upstream status.
    pub fn claude_type_for_status(status: u16) -> &'static str {
        match status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 | 503 => "overloaded_error",
            504 => "timeout_error",
            _ => "api_error",
        }
    }
}

/// The JSON error body for `format` (Claude's shape; other formats join with conversion).
pub fn error_body(format: ClientFormat, status: u16, error_type: &str, message: &str) -> Value {
    match format {
        ClientFormat::Claude => {
            json!({"type": "error", "error": {"type": error_type, "message": message}})
        }
        ClientFormat::OpenAi | ClientFormat::Response => {
            // OpenAI's `code` is a string or null; clients such as Codex branch on it.
            let code = match status {
                401 => Value::from("invalid_api_key"),
                403 => Value::from("permission_denied"),
                404 => Value::from("model_not_found"),
                413 => Value::from("request_too_large"),
                429 => Value::from("rate_limit_exceeded"),
                503 => Value::from("service_unavailable"),
                _ => Value::Null,
            };
            json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
        }
        ClientFormat::Gemini => {
            json!({"error": {"code": status, "message": message, "status": gemini_status(status)}})
        }
    }
}

fn gemini_status(status: u16) -> &'static str {
    match status {
        400 | 413 | 415 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// A Claude SSE `error` event, sent when a stream breaks after its first byte.
pub fn claude_stream_error_event(error_type: &str, message: &str) -> String {
    let data = json!({"type": "error", "error": {"type": error_type, "message": message}});
    format!("event: error\ndata: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_shape_and_statuses() {
        let b = error_body(
            ClientFormat::Claude,
            401,
            GatewayErrorKind::Authentication.claude_type(),
            "bad key",
        );
        assert_eq!(
            b,
            json!({"type":"error","error":{"type":"authentication_error","message":"bad key"}})
        );
        assert_eq!(GatewayErrorKind::NoProvider.status(), 503);
        let ev = claude_stream_error_event("api_error", "broken");
        assert!(ev.starts_with("event: error\ndata: {") && ev.ends_with("\n\n"));
    }

    #[test]
    fn rate_limit_bodies_in_every_shape() {
        let kind = GatewayErrorKind::RateLimit;
        let msg = "user alice: requests per minute limit reached (50 of 50)";
        assert_eq!(
            error_body(ClientFormat::Claude, kind.status(), kind.claude_type(), msg),
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": msg}})
        );
        for f in [ClientFormat::OpenAi, ClientFormat::Response] {
            assert_eq!(
                error_body(f, 429, kind.claude_type(), msg),
                json!({"error": {"message": msg, "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded"}})
            );
        }
        assert_eq!(
            error_body(ClientFormat::Gemini, 429, kind.claude_type(), msg),
            json!({"error": {"code": 429, "message": msg, "status": "RESOURCE_EXHAUSTED"}})
        );
    }
}
