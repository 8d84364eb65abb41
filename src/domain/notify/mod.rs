//! Notifications, the pure part: what an event says (in English and 中文), how each chat
//! platform wants it on the wire (body, signature, URL), what counts as the platform's success,
//! and when a failed delivery is tried again. No I/O: the caller passes the time and sends.

pub mod backoff;
pub mod escape;
pub mod events;
pub mod platform;
pub mod sign;
pub mod target;
pub mod template;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which event a notice reports; targets subscribe to a subset by these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A provider's circuit breaker opened.
    BreakerOpened,
    /// A provider's breaker is half-open (trial requests allowed).
    BreakerHalfOpen,
    /// A provider's breaker closed again.
    BreakerClosed,
    /// Smart probing found an open provider still failing.
    ProviderDown,
    /// Smart probing found an open provider answering again.
    ProviderRecovered,
    /// A user, key or provider crossed a share of a spend limit.
    CostAlert,
    /// Yesterday's top users by cost.
    DailyLeaderboard,
    /// A test message sent from the admin API.
    Test,
}

impl EventKind {
    /// Every kind, for validation messages and the API description.
    pub const ALL: [EventKind; 8] = [
        Self::BreakerOpened,
        Self::BreakerHalfOpen,
        Self::BreakerClosed,
        Self::ProviderDown,
        Self::ProviderRecovered,
        Self::CostAlert,
        Self::DailyLeaderboard,
        Self::Test,
    ];

    /// The wire name (`breaker_opened`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BreakerOpened => "breaker_opened",
            Self::BreakerHalfOpen => "breaker_half_open",
            Self::BreakerClosed => "breaker_closed",
            Self::ProviderDown => "provider_down",
            Self::ProviderRecovered => "provider_recovered",
            Self::CostAlert => "cost_alert",
            Self::DailyLeaderboard => "daily_leaderboard",
            Self::Test => "test",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The language a target receives messages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// The wire name (`en`, `zh`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "en" => Some(Self::En),
            "zh" => Some(Self::Zh),
            _ => None,
        }
    }
}

/// A text in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localized {
    /// English.
    pub en: String,
    /// 中文.
    pub zh: String,
}

impl Localized {
    /// Both texts.
    pub fn new(en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self {
            en: en.into(),
            zh: zh.into(),
        }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::Zh => &self.zh,
        }
    }
}

/// How serious a notice is (decides colours on platforms that have them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Good news or a report.
    Info,
    /// Worth a look.
    Warning,
    /// Something is broken.
    Critical,
}

/// One labelled value of a notice (provider, last error, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The label.
    pub name: Localized,
    /// The value (not translated: names, numbers, error texts).
    pub value: String,
}

/// A platform-neutral message: what the outbox stores and every platform renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The event.
    pub event: EventKind,
    /// How serious.
    pub level: Level,
    /// One-line headline.
    pub title: Localized,
    /// A sentence or a few lines of text.
    pub text: Localized,
    /// Labelled values, in order.
    pub fields: Vec<Field>,
    /// When the event happened.
    pub at: DateTime<Utc>,
    /// Repeats of the same key within the coalescing window merge into one message.
    pub coalesce_key: String,
}

impl Notice {
    /// The line added when `repeats` (> 1) events were merged into this message.
    pub fn repeat_line(repeats: u32, lang: Lang) -> Option<String> {
        (repeats > 1).then(|| match lang {
            Lang::En => format!("This happened {repeats} times since the last message."),
            Lang::Zh => format!("自上条消息以来共发生 {repeats} 次。"),
        })
    }
}
