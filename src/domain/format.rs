//! Client wire formats and which providers can serve them.
//!
//! Routing needs to know, for an incoming request, which providers speak its format natively and
//! which could serve it only through conversion.

use serde::{Deserialize, Serialize};

use super::provider::{Provider, ProviderType};

/// The wire format a client used for its request (decided by the route it called).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientFormat {
    /// Anthropic Messages (`/v1/messages`).
    #[serde(rename = "claude")]
    Claude,
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    #[serde(rename = "openai")]
    OpenAi,
    /// OpenAI Responses (`/v1/responses`), what Codex speaks.
    #[serde(rename = "response")]
    Response,
    /// Google Gemini (`generateContent` / `streamGenerateContent`).
    #[serde(rename = "gemini")]
    Gemini,
}

impl ClientFormat {
    /// Every format, in display order.
    pub const ALL: [ClientFormat; 4] = [Self::Claude, Self::OpenAi, Self::Response, Self::Gemini];

    /// The stored/wire name, as used in `Provider::extra_client_formats` and request logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::OpenAi => "openai",
            Self::Response => "response",
            Self::Gemini => "gemini",
        }
    }

    /// Parses the stored/wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl std::fmt::Display for ClientFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderType {
    /// The client format this provider type speaks without conversion.
    pub fn native_format(self) -> ClientFormat {
        match self {
            Self::Claude | Self::ClaudeAuth => ClientFormat::Claude,
            Self::Codex => ClientFormat::Response,
            Self::OpenAiCompatible => ClientFormat::OpenAi,
            Self::Gemini | Self::GeminiCli => ClientFormat::Gemini,
        }
    }
}

/// Whether `p` can serve a client of format `f`: natively, or through conversion when the admin
/// listed `f` in `extra_client_formats` (the original's "join the Claude pool").
pub fn provider_serves(p: &Provider, f: ClientFormat) -> bool {
    p.provider_type.native_format() == f || p.extra_client_formats.iter().any(|x| x == f.as_str())
}

/// Whether serving a client of format `f` with `p` needs a request/response conversion.
pub fn needs_conversion(p: &Provider, f: ClientFormat) -> bool {
    p.provider_type.native_format() != f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::provider::tests::sample;

    #[test]
    fn names_round_trip() {
        for f in ClientFormat::ALL {
            assert_eq!(ClientFormat::parse(f.as_str()), Some(f));
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::json!(f.as_str())
            );
            assert_eq!(f.to_string(), f.as_str());
        }
        assert_eq!(ClientFormat::parse("Claude"), None);
        assert_eq!(ClientFormat::parse(""), None);
    }

    #[test]
    fn native_formats() {
        use ProviderType::*;
        assert_eq!(Claude.native_format(), ClientFormat::Claude);
        assert_eq!(ClaudeAuth.native_format(), ClientFormat::Claude);
        assert_eq!(Codex.native_format(), ClientFormat::Response);
        assert_eq!(OpenAiCompatible.native_format(), ClientFormat::OpenAi);
        assert_eq!(Gemini.native_format(), ClientFormat::Gemini);
        assert_eq!(GeminiCli.native_format(), ClientFormat::Gemini);
    }

    #[test]
    fn serves_native_and_extra_formats() {
        let mut p = sample();
        p.provider_type = ProviderType::OpenAiCompatible;
        assert!(provider_serves(&p, ClientFormat::OpenAi));
        assert!(!provider_serves(&p, ClientFormat::Claude));
        assert!(!needs_conversion(&p, ClientFormat::OpenAi));
        p.extra_client_formats = vec!["claude".into()];
        assert!(provider_serves(&p, ClientFormat::Claude));
        assert!(needs_conversion(&p, ClientFormat::Claude));
        assert!(!provider_serves(&p, ClientFormat::Gemini));
    }
}
