//! A notification target: where messages go, in which platform's format, and which events it
//! wants. Validation of what an admin may store lives here.

use serde::{Deserialize, Serialize};

use super::{EventKind, Lang};

/// The platforms cch speaks natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// WeCom (企业微信) group robot.
    Wecom,
    /// Feishu / Lark custom bot.
    Feishu,
    /// DingTalk custom robot.
    Dingtalk,
    /// Telegram Bot API `sendMessage`.
    Telegram,
    /// Slack incoming webhook.
    Slack,
    /// Discord webhook.
    Discord,
    /// Any URL with a JSON body from a template.
    Custom,
}

impl TargetKind {
    /// Every kind.
    pub const ALL: [TargetKind; 7] = [
        Self::Wecom,
        Self::Feishu,
        Self::Dingtalk,
        Self::Telegram,
        Self::Slack,
        Self::Discord,
        Self::Custom,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wecom => "wecom",
            Self::Feishu => "feishu",
            Self::Dingtalk => "dingtalk",
            Self::Telegram => "telegram",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Custom => "custom",
        }
    }

    /// Parses a wire name (`wechat`, the original's name for WeCom, is accepted too).
    pub fn parse(s: &str) -> Option<Self> {
        if s == "wechat" {
            return Some(Self::Wecom);
        }
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Platform-specific settings of a target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetOptions {
    /// Telegram: the chat to post to (`-100…` or `@channel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// Custom: the JSON body template with `{{event}}`, `{{title}}`, `{{text}}`, `{{fields}}`,
    /// `{{time}}`, `{{level}}` placeholders (see [`super::template`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Custom: extra request headers (values may be secrets: masked in answers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

/// A stored target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Row id.
    pub id: i64,
    /// Admin-chosen name.
    pub name: String,
    /// Platform.
    pub kind: TargetKind,
    /// Webhook URL (Telegram: the Bot API base, default `https://api.telegram.org`).
    pub url: String,
    /// Signing secret (Feishu, DingTalk) or bot token (Telegram).
    pub secret: Option<String>,
    /// Disabled targets receive nothing.
    pub enabled: bool,
    /// Subscribed events; empty means all.
    pub events: Vec<EventKind>,
    /// Message language.
    pub lang: Lang,
    /// Platform-specific settings.
    pub options: TargetOptions,
}

impl Target {
    /// Whether this target wants `event` (test messages always go through).
    pub fn wants(&self, event: EventKind) -> bool {
        event == EventKind::Test || self.events.is_empty() || self.events.contains(&event)
    }

    /// Checks what an admin submitted; the message says which field is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err("name: 1 to 200 characters".into());
        }
        let url = url::Url::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("url: must start with http:// or https://".into());
        }
        if self.url.len() > 2048 {
            return Err("url: at most 2048 characters".into());
        }
        if self.secret.as_ref().is_some_and(|s| s.len() > 1024) {
            return Err("secret: at most 1024 characters".into());
        }
        match self.kind {
            TargetKind::Telegram => {
                if self.secret.as_deref().is_none_or(str::is_empty) {
                    return Err("secret: the Telegram bot token is required".into());
                }
                if self.options.chat_id.as_deref().is_none_or(str::is_empty) {
                    return Err("options.chat_id: required for Telegram".into());
                }
            }
            TargetKind::Custom => {
                if let Some(t) = &self.options.template {
                    super::template::check(t).map_err(|e| format!("options.template: {e}"))?;
                }
                for (k, _) in &self.options.headers {
                    let ok = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if !ok {
                        return Err(format!("options.headers: invalid header name {k:?}"));
                    }
                }
            }
            _ => {}
        }
        if self.options.headers.len() > 32 {
            return Err("options.headers: at most 32".into());
        }
        Ok(())
    }
}

/// Masks a webhook URL for answers and logs: many platforms put the credential in the URL
/// (WeCom `?key=`, Slack and Discord path tokens), so only scheme, host and the first path
/// segment stay readable.
pub fn mask_url(raw: &str) -> String {
    let Ok(u) = url::Url::parse(raw) else {
        return "****".into();
    };
    let host = u.host_str().unwrap_or("");
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let mut segs = u
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty());
    let first = segs.next();
    let more = segs.next().is_some();
    let mut out = format!("{}://{host}{port}", u.scheme());
    if let Some(f) = first {
        out.push('/');
        out.push_str(f);
    }
    if more {
        out.push_str("/****");
    }
    if u.query().is_some() {
        out.push_str("?****");
    }
    out
}

/// The fixed mask shown instead of a secret.
pub const SECRET_MASK: &str = "****";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_url_credentials() {
        assert_eq!(
            mask_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc-123"),
            "https://qyapi.weixin.qq.com/cgi-bin/****?****"
        );
        assert_eq!(
            mask_url("https://discord.com/api/webhooks/1/tok"),
            "https://discord.com/api/****"
        );
        assert_eq!(
            mask_url("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080/x"
        );
        assert_eq!(mask_url("not a url"), "****");
    }

    #[test]
    fn telegram_needs_token_and_chat() {
        let mut t = Target {
            id: 0,
            name: "tg".into(),
            kind: TargetKind::Telegram,
            url: "https://api.telegram.org".into(),
            secret: None,
            enabled: true,
            events: vec![],
            lang: Lang::En,
            options: TargetOptions::default(),
        };
        assert!(t.validate().unwrap_err().contains("token"));
        t.secret = Some("123:abc".into());
        assert!(t.validate().unwrap_err().contains("chat_id"));
        t.options.chat_id = Some("-1001".into());
        assert!(t.validate().is_ok());
        t.url = "ftp://x".into();
        assert!(t.validate().is_err());
    }
}
