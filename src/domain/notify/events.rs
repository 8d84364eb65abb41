//! The notices cch sends, built from domain events: texts in English and 中文, and the key
//! under which repeats are merged.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{EventKind, Field, Level, Localized, Notice};
use crate::domain::breaker::{BreakerEvent, BreakerEventKind};

/// Longest error text put into a message.
const MAX_ERROR_CHARS: usize = 500;

/// Hides credentials in a text: every `known` secret (4+ characters) and anything that looks
/// like an API key (`sk-…`, `cch_…`, `AIza…`, `Bearer …`) keeps at most 4 characters.
pub fn mask_secrets(text: &str, known: &[&str]) -> String {
    let mut out = text.to_string();
    for s in known.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "****");
    }
    let mut masked = String::with_capacity(out.len());
    let mut bearer_next = false;
    for (i, word) in out.split(' ').enumerate() {
        if i > 0 {
            masked.push(' ');
        }
        let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
        let looks_like_key = core.len() >= 12
            && (core.starts_with("sk-")
                || core.starts_with("cch_")
                || core.starts_with("AIza")
                || bearer_next);
        bearer_next = word.eq_ignore_ascii_case("bearer");
        if looks_like_key {
            let keep: String = core.chars().take(4).collect();
            masked.push_str(&word.replace(core, &format!("{keep}****")));
        } else {
            masked.push_str(word);
        }
    }
    if masked.chars().count() > MAX_ERROR_CHARS {
        masked = masked.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    masked
}

fn field(en: &str, zh: &str, value: impl Into<String>) -> Field {
    Field {
        name: Localized::new(en, zh),
        value: value.into(),
    }
}

/// A breaker transition as a notice; `secrets` (the provider's key) are masked in the error.
pub fn breaker(e: &BreakerEvent, secrets: &[&str]) -> Notice {
    let name = &e.provider_name;
    let (event, level, title, text) = match e.kind {
        BreakerEventKind::Opened => (
            EventKind::BreakerOpened,
            Level::Critical,
            Localized::new(
                format!("Circuit breaker opened: {name}"),
                format!("熔断器已打开：{name}"),
            ),
            Localized::new(
                format!(
                    "Provider {name} failed {} times in a row and is skipped until it recovers.",
                    e.failure_count
                ),
                format!(
                    "供应商 {name} 连续失败 {} 次，恢复前将不再被选用。",
                    e.failure_count
                ),
            ),
        ),
        BreakerEventKind::HalfOpened => (
            EventKind::BreakerHalfOpen,
            Level::Warning,
            Localized::new(
                format!("Circuit breaker half-open: {name}"),
                format!("熔断器半开：{name}"),
            ),
            Localized::new(
                format!("Provider {name} gets trial requests again."),
                format!("供应商 {name} 开始接收试探请求。"),
            ),
        ),
        BreakerEventKind::Closed => (
            EventKind::BreakerClosed,
            Level::Info,
            Localized::new(
                format!("Circuit breaker closed: {name}"),
                format!("熔断器已关闭：{name}"),
            ),
            Localized::new(
                format!("Provider {name} is back in service."),
                format!("供应商 {name} 已恢复服务。"),
            ),
        ),
    };
    let mut fields = vec![
        field("Provider", "供应商", format!("{name} (#{})", e.provider_id)),
        field("Failures", "失败次数", e.failure_count.to_string()),
    ];
    if e.kind == BreakerEventKind::Opened {
        if let Some(err) = &e.last_error {
            fields.push(field("Last error", "最后错误", mask_secrets(err, secrets)));
        }
        if let Some(t) = e.expected_recovery {
            fields.push(field(
                "Retry at",
                "重试时间",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
        }
    }
    Notice {
        event,
        level,
        title,
        text,
        fields,
        at: e.at,
        coalesce_key: format!("{}:{}", event.as_str(), e.provider_id),
    }
}

/// Smart probing's verdict on an open provider: still down, or answering again.
pub fn probe(
    provider_id: i64,
    provider_name: &str,
    recovered: bool,
    detail: Option<&str>,
    secrets: &[&str],
    at: DateTime<Utc>,
) -> Notice {
    let name = provider_name;
    let (event, level, title, text) = if recovered {
        (
            EventKind::ProviderRecovered,
            Level::Info,
            Localized::new(
                format!("Provider recovered: {name}"),
                format!("供应商已恢复：{name}"),
            ),
            Localized::new(
                format!("The probe of {name} succeeded; it gets trial requests now."),
                format!("对 {name} 的探测成功，现在开始接收试探请求。"),
            ),
        )
    } else {
        (
            EventKind::ProviderDown,
            Level::Critical,
            Localized::new(
                format!("Provider down: {name}"),
                format!("供应商不可用：{name}"),
            ),
            Localized::new(
                format!("The probe of {name} failed; it stays out of rotation."),
                format!("对 {name} 的探测失败，继续停用。"),
            ),
        )
    };
    let mut fields = vec![field(
        "Provider",
        "供应商",
        format!("{name} (#{provider_id})"),
    )];
    if let Some(d) = detail {
        fields.push(field("Probe result", "探测结果", mask_secrets(d, secrets)));
    }
    Notice {
        event,
        level,
        title,
        text,
        fields,
        at,
        coalesce_key: format!("{}:{provider_id}", event.as_str()),
    }
}

/// Whose spending a cost alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spender {
    /// A user.
    User,
    /// An API key.
    Key,
    /// A provider.
    Provider,
}

impl Spender {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Key => "key",
            Self::Provider => "provider",
        }
    }

    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::User => ("User", "用户"),
            Self::Key => ("Key", "密钥"),
            Self::Provider => ("Provider", "供应商"),
        }
    }
}

/// A spend limit crossing a share.
#[derive(Debug, Clone)]
pub struct CostCrossing {
    /// Whose.
    pub spender: Spender,
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The window (`5h`, `daily`, `weekly`, `monthly`, `total`).
    pub window: String,
    /// Spent in the current window.
    pub spent: Decimal,
    /// The limit.
    pub limit: Decimal,
    /// The crossed share in percent (80, 90, 100).
    pub threshold_pct: u32,
    /// Identifies the current window (its start), for once-per-window delivery.
    pub window_start: DateTime<Utc>,
}

/// A cost alert notice.
pub fn cost_alert(c: &CostCrossing, at: DateTime<Utc>) -> Notice {
    let (en, zh) = c.spender.names();
    let pct = c.threshold_pct;
    let level = if pct >= 100 {
        Level::Critical
    } else if pct >= 90 {
        Level::Warning
    } else {
        Level::Info
    };
    let share = if c.limit > Decimal::ZERO {
        (c.spent * Decimal::from(100) / c.limit).round_dp(1)
    } else {
        Decimal::ZERO
    };
    let name = &c.name;
    let w = &c.window;
    Notice {
        event: EventKind::CostAlert,
        level,
        title: Localized::new(
            format!("Cost alert: {en} {name} reached {pct}% of its {w} limit"),
            format!("费用告警：{zh} {name} 已达到{w}限额的 {pct}%"),
        ),
        text: Localized::new(
            format!(
                "{en} {name} spent ${} of ${} ({share}%) in the current {w} window.",
                c.spent.round_dp(4),
                c.limit
            ),
            format!(
                "{zh} {name} 在当前{w}窗口已花费 ${}，限额 ${}（{share}%）。",
                c.spent.round_dp(4),
                c.limit
            ),
        ),
        fields: vec![
            field(en, zh, format!("{name} (#{})", c.id)),
            field("Window", "窗口", w.clone()),
            field("Spent", "已花费", format!("${}", c.spent.round_dp(4))),
            field("Limit", "限额", format!("${}", c.limit)),
            field("Threshold", "阈值", format!("{pct}%")),
        ],
        at,
        coalesce_key: format!(
            "cost_alert:{}:{}:{w}:{pct}:{}",
            c.spender.as_str(),
            c.id,
            c.window_start.timestamp()
        ),
    }
}

/// The message of `POST …/targets/{id}/test`.
pub fn test_message(target_name: &str, at: DateTime<Utc>) -> Notice {
    Notice {
        event: EventKind::Test,
        level: Level::Info,
        title: Localized::new("cch test message", "cch 测试消息"),
        text: Localized::new(
            format!("Target {target_name} is set up correctly."),
            format!("通知目标 {target_name} 配置正确。"),
        ),
        fields: vec![field("Target", "目标", target_name)],
        at,
        coalesce_key: format!("test:{}", at.timestamp_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_and_key_shaped_secrets() {
        let s = mask_secrets(
            "401 invalid x-api-key sk-ant-api03-abcdefghijkl for upstream; Bearer abcdefghijklmnop; mine=supersecret",
            &["supersecret"],
        );
        assert!(!s.contains("abcdefghijkl"), "{s}");
        assert!(!s.contains("supersecret"), "{s}");
        assert!(s.contains("sk-a****"), "{s}");
        assert!(s.contains("Bearer abcd****"), "{s}");
    }

    #[test]
    fn breaker_opened_names_provider_and_error() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let e = BreakerEvent {
            provider_id: 7,
            provider_name: "anthropic-main".into(),
            kind: BreakerEventKind::Opened,
            failure_count: 5,
            expected_recovery: Some(at),
            last_error: Some("upstream said: bad key sk-live-0123456789".into()),
            at,
        };
        let n = breaker(&e, &["sk-live-0123456789"]);
        assert_eq!(n.event, EventKind::BreakerOpened);
        assert!(n.title.en.contains("anthropic-main"));
        assert!(n.title.zh.contains("熔断器已打开"));
        let err = &n.fields[2].value;
        assert!(
            err.contains("bad key ****") && !err.contains("0123456789"),
            "{err}"
        );
        assert_eq!(n.coalesce_key, "breaker_opened:7");
    }
}

/// One user's line of a daily leaderboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderLine {
    /// The user's name (or `#id` when the user is gone).
    pub name: String,
    /// Cost in USD.
    pub cost: Decimal,
    /// Requests.
    pub requests: i64,
    /// Tokens of every kind.
    pub tokens: i64,
}

/// A day's usage: the top users by cost and the totals of everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardDay {
    /// The local date reported.
    pub date: chrono::NaiveDate,
    /// Top users, highest cost first.
    pub top: Vec<LeaderLine>,
    /// Cost of all requests that day.
    pub total_cost: Decimal,
    /// All requests that day.
    pub total_requests: i64,
    /// All tokens that day.
    pub total_tokens: i64,
}

/// Tokens as a short figure (`1.2M`, `34.5K`).
fn short_count(n: i64) -> String {
    let f = n as f64;
    if n >= 1_000_000 {
        format!("{:.1}M", f / 1e6)
    } else if n >= 10_000 {
        format!("{:.1}K", f / 1e3)
    } else {
        n.to_string()
    }
}

/// The daily leaderboard notice (one per day: the date is the coalescing key).
pub fn daily_leaderboard(d: &LeaderboardDay, at: DateTime<Utc>) -> Notice {
    let date = d.date.format("%Y-%m-%d").to_string();
    let mut en = Vec::new();
    let mut zh = Vec::new();
    for (i, l) in d.top.iter().enumerate() {
        let cost = l.cost.round_dp(2);
        let tokens = short_count(l.tokens);
        en.push(format!(
            "{}. {} — ${cost}, {} requests, {tokens} tokens",
            i + 1,
            l.name,
            l.requests
        ));
        zh.push(format!(
            "{}. {} — ${cost}，{} 次请求，{tokens} tokens",
            i + 1,
            l.name,
            l.requests
        ));
    }
    if d.top.is_empty() {
        en.push("No requests that day.".into());
        zh.push("当天没有请求。".into());
    }
    let total_cost = format!("${}", d.total_cost.round_dp(2));
    Notice {
        event: EventKind::DailyLeaderboard,
        level: Level::Info,
        title: Localized::new(
            format!("Daily leaderboard for {date}"),
            format!("{date} 用量排行榜"),
        ),
        text: Localized::new(en.join("\n"), zh.join("\n")),
        fields: vec![
            field("Total cost", "总费用", total_cost),
            field("Requests", "请求数", d.total_requests.to_string()),
            field("Tokens", "Tokens", short_count(d.total_tokens)),
        ],
        at,
        coalesce_key: format!("daily_leaderboard:{date}"),
    }
}

#[cfg(test)]
mod leaderboard_tests {
    use super::*;

    #[test]
    fn the_leaderboard_lists_users_in_order_with_totals_in_both_languages() {
        let d = LeaderboardDay {
            date: chrono::NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(),
            top: vec![
                LeaderLine {
                    name: "alice".into(),
                    cost: Decimal::new(123_456, 4),
                    requests: 40,
                    tokens: 1_234_567,
                },
                LeaderLine {
                    name: "bob".into(),
                    cost: Decimal::new(5, 1),
                    requests: 3,
                    tokens: 900,
                },
            ],
            total_cost: Decimal::new(128_456, 4),
            total_requests: 43,
            total_tokens: 1_235_467,
        };
        let at = DateTime::from_timestamp(1_773_104_400, 0).unwrap_or_default();
        let n = daily_leaderboard(&d, at);
        assert_eq!(n.title.en, "Daily leaderboard for 2026-03-09");
        assert_eq!(
            n.text.en,
            "1. alice — $12.35, 40 requests, 1.2M tokens\n2. bob — $0.5, 3 requests, 900 tokens"
        );
        assert!(n.text.zh.starts_with("1. alice — $12.35，40 次请求"));
        assert_eq!(n.fields[0].value, "$12.85");
        assert_eq!(n.coalesce_key, "daily_leaderboard:2026-03-09");
    }
}
