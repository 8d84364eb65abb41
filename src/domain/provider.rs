//! Upstream providers: what they are, how to reach them, and the rules for valid settings.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::error::ValidationError;
use super::limits::Limits;

/// The wire protocol and authentication an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderType {
    /// Official Anthropic API: Messages format, `x-api-key`.
    #[serde(rename = "claude")]
    Claude,
    /// Anthropic-compatible relay: Messages format, `Authorization: Bearer`.
    #[serde(rename = "claude-auth")]
    ClaudeAuth,
    /// OpenAI Responses API (what Codex uses), Bearer.
    #[serde(rename = "codex")]
    Codex,
    /// OpenAI Chat Completions compatible, Bearer.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
    /// Google Gemini API with an API key.
    #[serde(rename = "gemini")]
    Gemini,
    /// Gemini CLI's upstream with an OAuth bearer token.
    #[serde(rename = "gemini-cli")]
    GeminiCli,
}

impl ProviderType {
    /// Every provider type, in display order.
    pub const ALL: [ProviderType; 6] = [
        Self::Claude,
        Self::ClaudeAuth,
        Self::Codex,
        Self::OpenAiCompatible,
        Self::Gemini,
        Self::GeminiCli,
    ];

    /// The stored/wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claude => "claude",
            Self::ClaudeAuth => "claude-auth",
            Self::Codex => "codex",
            Self::OpenAiCompatible => "openai-compatible",
            Self::Gemini => "gemini",
            Self::GeminiCli => "gemini-cli",
        }
    }

    /// Parses the stored/wire name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            ValidationError::new(
                "provider_type",
                "must be one of: claude, claude-auth, codex, openai-compatible, gemini, gemini-cli",
            )
        })
    }
}

/// Per-provider timeouts in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Time allowed until the first byte of a streaming answer.
    pub first_byte_timeout_ms: i64,
    /// Longest gap allowed between two chunks of a stream.
    pub idle_timeout_ms: i64,
    /// Whole-request budget for non-streaming calls.
    pub request_timeout_ms: i64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            first_byte_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            request_timeout_ms: 120_000,
        }
    }
}

/// Circuit breaker settings of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker (1–100).
    pub failure_threshold: i32,
    /// How long the breaker stays open, in ms (1 min – 24 h).
    pub open_duration_ms: i64,
    /// Consecutive half-open successes that close it again (1–10).
    pub half_open_success_threshold: i32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_duration_ms: 30 * 60 * 1000,
            half_open_success_threshold: 2,
        }
    }
}

/// An upstream provider as configured by an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Database id (0 before insertion).
    pub id: i64,
    /// Unique display name.
    pub name: String,
    /// Free text for admins.
    pub description: String,
    /// Protocol and authentication style.
    pub provider_type: ProviderType,
    /// Base URL, e.g. `https://api.anthropic.com` (a path prefix is allowed).
    pub base_url: String,
    /// The upstream secret; never logged, masked in every view.
    pub api_key: String,
    /// Disabled providers are never selected.
    pub enabled: bool,
    /// Lower wins; only the best tier with an eligible provider is used.
    pub priority: i32,
    /// Relative share within a tier (0–100).
    pub weight: i32,
    /// Multiplies the computed cost of every request this provider serves.
    pub cost_multiplier: Decimal,
    /// Comma-separated group tags matched against a user's provider groups.
    pub group_tag: String,
    /// Models this provider may serve; empty means all.
    pub allowed_models: Vec<String>,
    /// Requested model name → name forwarded upstream.
    pub model_redirects: BTreeMap<String, String>,
    /// Client formats beyond its own family this provider may serve through conversion.
    pub extra_client_formats: Vec<String>,
    /// Outbound proxy (`http://`, `https://`, `socks5://`, `socks5h://`, `socks4://`).
    pub proxy_url: Option<String>,
    /// Retry the provider directly when its proxy fails.
    pub proxy_fallback_to_direct: bool,
    /// Spend and concurrency caps of the provider (rpm unused).
    pub limits: Limits,
    /// Timeouts for calls to this provider.
    pub timeouts: Timeouts,
    /// Circuit breaker settings.
    pub breaker: BreakerSettings,
    /// Tries on this provider before failing over; `None` uses the global default.
    pub max_retry_attempts: Option<i32>,
    /// Extra headers and the `anthropic-beta` policy for its upstream requests.
    #[serde(default)]
    pub shaping: super::request_shaping::RequestShaping,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
}

/// Longest accepted provider name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks that `raw` is an absolute http(s) URL.
pub fn validate_http_url(field: &str, raw: &str) -> Result<(), ValidationError> {
    let url = url::Url::parse(raw)
        .map_err(|e| ValidationError::new(field, format!("is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ValidationError::new(
            field,
            "must be an http:// or https:// URL with a host",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ValidationError::new(
            field,
            "must not contain a query or fragment",
        ));
    }
    Ok(())
}

/// Checks that `raw` is a supported outbound proxy URL.
pub fn validate_proxy_url(raw: &str) -> Result<(), ValidationError> {
    let url = url::Url::parse(raw).map_err(|e| {
        ValidationError::new(
            "proxy_url",
            format!("is not a valid URL ({e}); include the scheme"),
        )
    })?;
    if !matches!(
        url.scheme(),
        "http" | "https" | "socks5" | "socks5h" | "socks4" | "socks4a"
    ) {
        return Err(ValidationError::new(
            "proxy_url",
            "scheme must be one of: http, https, socks5, socks5h, socks4, socks4a",
        ));
    }
    if url.host_str().is_none() || url.port_or_known_default().is_none() {
        return Err(ValidationError::new(
            "proxy_url",
            "must name a host and a port",
        ));
    }
    Ok(())
}

impl Provider {
    /// Checks every field against the rules admins must follow.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_text()?;
        self.shaping.validate()?;
        let name = self.name.trim();
        if name.is_empty() || self.name.chars().count() > MAX_NAME_LEN {
            return Err(ValidationError::new(
                "name",
                format!("must be 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        if self.description.chars().count() > 500 {
            return Err(ValidationError::new(
                "description",
                "must be at most 500 characters",
            ));
        }
        if self.base_url.len() > 255 {
            return Err(ValidationError::new(
                "base_url",
                "must be at most 255 characters",
            ));
        }
        validate_http_url("base_url", &self.base_url)?;
        let credential = super::oauth_credential::validate_key(&self.api_key)
            .map_err(|e| ValidationError::new("api_key", e.to_string()))?;
        if !credential && (self.api_key.is_empty() || self.api_key.len() > 1024) {
            return Err(ValidationError::new(
                "api_key",
                "must be 1 to 1024 characters (or an OAuth credential JSON object)",
            ));
        }
        if self.priority < 0 || self.priority > 1_000_000 {
            return Err(ValidationError::new(
                "priority",
                "must be between 0 and 1000000",
            ));
        }
        if !(0..=100).contains(&self.weight) {
            return Err(ValidationError::new("weight", "must be between 0 and 100"));
        }
        if self.cost_multiplier.is_sign_negative() || self.cost_multiplier > Decimal::from(1000) {
            return Err(ValidationError::new(
                "cost_multiplier",
                "must be between 0 and 1000",
            ));
        }
        if self.group_tag.chars().count() > 255 {
            return Err(ValidationError::new(
                "group_tag",
                "must be at most 255 characters",
            ));
        }
        if self
            .allowed_models
            .iter()
            .any(|m| m.trim().is_empty() || m.len() > 200)
        {
            return Err(ValidationError::new(
                "allowed_models",
                "entries must be 1 to 200 characters",
            ));
        }
        if self.model_redirects.iter().any(|(k, v)| {
            k.trim().is_empty() || v.trim().is_empty() || k.len() > 200 || v.len() > 200
        }) {
            return Err(ValidationError::new(
                "model_redirects",
                "names must be 1 to 200 characters",
            ));
        }
        for f in &self.extra_client_formats {
            if !matches!(f.as_str(), "claude" | "openai" | "response" | "gemini") {
                return Err(ValidationError::new(
                    "extra_client_formats",
                    "entries must be one of: claude, openai, response, gemini",
                ));
            }
        }
        if let Some(p) = &self.proxy_url {
            validate_proxy_url(p)?;
        }
        self.limits.validate()?;
        let t = &self.timeouts;
        for (field, v) in [
            ("first_byte_timeout_ms", t.first_byte_timeout_ms),
            ("idle_timeout_ms", t.idle_timeout_ms),
            ("request_timeout_ms", t.request_timeout_ms),
        ] {
            if !(1_000..=3_600_000).contains(&v) {
                return Err(ValidationError::new(
                    field,
                    "must be between 1000 and 3600000 ms",
                ));
            }
        }
        let b = &self.breaker;
        if !(1..=100).contains(&b.failure_threshold) {
            return Err(ValidationError::new(
                "failure_threshold",
                "must be between 1 and 100",
            ));
        }
        if !(60_000..=86_400_000).contains(&b.open_duration_ms) {
            return Err(ValidationError::new(
                "open_duration_ms",
                "must be between 60000 (1 min) and 86400000 (24 h)",
            ));
        }
        if !(1..=10).contains(&b.half_open_success_threshold) {
            return Err(ValidationError::new(
                "half_open_success_threshold",
                "must be between 1 and 10",
            ));
        }
        if let Some(r) = self.max_retry_attempts
            && !(1..=10).contains(&r)
        {
            return Err(ValidationError::new(
                "max_retry_attempts",
                "must be between 1 and 10",
            ));
        }
        Ok(())
    }

    /// Refuses control characters in every text field (a CR/LF in `api_key` or `base_url`
    /// would break every upstream request; a NUL is refused by PostgreSQL only).
    fn validate_text(&self) -> Result<(), ValidationError> {
        use super::text::{multi_line, single_line};
        single_line("name", &self.name)?;
        multi_line("description", &self.description)?;
        single_line("base_url", &self.base_url)?;
        if self.api_key.trim_start().starts_with('{') {
            // An OAuth credential is JSON (pretty-printed ones have line breaks); it never goes
            // into a header as it is.
            multi_line("api_key", &self.api_key)?;
        } else {
            single_line("api_key", &self.api_key)?;
        }
        single_line("group_tag", &self.group_tag)?;
        if let Some(p) = &self.proxy_url {
            single_line("proxy_url", p)?;
        }
        for m in &self.allowed_models {
            single_line("allowed_models", m)?;
        }
        for (k, v) in &self.model_redirects {
            single_line("model_redirects", k)?;
            single_line("model_redirects", v)?;
        }
        Ok(())
    }

    /// The provider's group tags, trimmed, without empties.
    pub fn group_tags(&self) -> impl Iterator<Item = &str> {
        split_tags(&self.group_tag)
    }
}

/// Splits a comma-separated tag list into trimmed, non-empty tags.
pub fn split_tags(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// Masks a secret for display: only its last four characters stay visible.
pub fn mask_secret(secret: &str) -> String {
    if secret.trim_start().starts_with('{') {
        return "**** (OAuth credential)".to_string();
    }
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "****".to_string();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("****{tail}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid provider for tests to modify.
    pub fn sample() -> Provider {
        Provider {
            id: 0,
            name: "anthropic".into(),
            description: String::new(),
            provider_type: ProviderType::Claude,
            base_url: "https://api.anthropic.com".into(),
            api_key: "sk-ant-123456789".into(),
            enabled: true,
            priority: 0,
            weight: 1,
            cost_multiplier: Decimal::ONE,
            group_tag: String::new(),
            allowed_models: vec![],
            model_redirects: BTreeMap::new(),
            extra_client_formats: vec![],
            proxy_url: None,
            proxy_fallback_to_direct: false,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            breaker: BreakerSettings::default(),
            max_retry_attempts: None,
            shaping: Default::default(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn sample_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn rejects_bad_fields_by_name() {
        type Mutation = Box<dyn Fn(&mut Provider)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("name", Box::new(|p| p.name = " ".into())),
            ("name", Box::new(|p| p.name = "x".repeat(65))),
            ("base_url", Box::new(|p| p.base_url = "ftp://x".into())),
            ("base_url", Box::new(|p| p.base_url = "not a url".into())),
            ("weight", Box::new(|p| p.weight = 101)),
            ("priority", Box::new(|p| p.priority = -1)),
            (
                "proxy_url",
                Box::new(|p| p.proxy_url = Some("gopher://x:1".into())),
            ),
            (
                "proxy_url",
                Box::new(|p| p.proxy_url = Some("127.0.0.1:1080".into())),
            ),
            (
                "failure_threshold",
                Box::new(|p| p.breaker.failure_threshold = 0),
            ),
            (
                "open_duration_ms",
                Box::new(|p| p.breaker.open_duration_ms = 1),
            ),
            (
                "max_retry_attempts",
                Box::new(|p| p.max_retry_attempts = Some(11)),
            ),
            (
                "cost_multiplier",
                Box::new(|p| p.cost_multiplier = Decimal::NEGATIVE_ONE),
            ),
        ];
        for (field, mutate) in cases {
            let mut p = sample();
            mutate(&mut p);
            assert_eq!(p.validate().map_err(|e| e.field), Err(field.to_string()));
        }
    }

    #[test]
    fn accepts_socks5_with_credentials() {
        assert_eq!(
            validate_proxy_url("socks5://user:pass@127.0.0.1:1080"),
            Ok(())
        );
    }

    #[test]
    fn masks_all_but_last_four() {
        assert_eq!(mask_secret("sk-ant-abcdefgh1234"), "****1234");
        assert_eq!(mask_secret("short"), "****");
    }

    #[test]
    fn parses_types() {
        for t in ProviderType::ALL {
            assert_eq!(ProviderType::parse(t.as_str()), Ok(t));
        }
        assert!(ProviderType::parse("openai").is_err());
    }
}
