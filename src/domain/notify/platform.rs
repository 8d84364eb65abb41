//! Each platform's wire format: the request a notice becomes ([`render`]) and what the
//! platform's answer means ([`judge`]). Success is the platform's own success answer, not just
//! HTTP 200.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::escape;
use super::sign;
use super::target::{Target, TargetKind};
use super::template::{self, DEFAULT_TEMPLATE, Values};
use super::{Lang, Level, Notice};

/// The HTTP request to send for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundCall {
    /// Full URL (may carry credentials: never log it).
    pub url: String,
    /// Headers besides `content-type: application/json`.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
}

/// What a platform's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The platform accepted the message.
    Delivered,
    /// A temporary failure: try again (after at least `retry_after_secs` when given).
    Retry {
        /// The platform's own wait hint from the body (Telegram `parameters.retry_after`).
        retry_after_secs: Option<i64>,
    },
    /// The platform refused the message for good (bad token, bad chat, bad body).
    Failed,
}

/// The Telegram Bot API base used when a target leaves its URL empty.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// The parts of a notice in one language, with values already as text.
struct Parts {
    title: String,
    text: String,
    fields: Vec<(String, String)>,
    repeat: Option<String>,
    time: String,
    time_label: &'static str,
}

fn parts(n: &Notice, lang: Lang, repeats: u32, tz: Tz) -> Parts {
    Parts {
        title: n.title.get(lang).to_string(),
        text: n.text.get(lang).to_string(),
        fields: n
            .fields
            .iter()
            .map(|f| (f.name.get(lang).to_string(), f.value.clone()))
            .collect(),
        repeat: Notice::repeat_line(repeats, lang),
        time: n
            .at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        time_label: match lang {
            Lang::En => "Time",
            Lang::Zh => "时间",
        },
    }
}

fn level_icon(l: Level) -> &'static str {
    match l {
        Level::Info => "🟢",
        Level::Warning => "🟡",
        Level::Critical => "🔴",
    }
}

/// Markdown shared by WeCom, DingTalk and Feishu (`lark_md`): bold title, quoted text, fields.
fn markdown_body(p: &Parts, with_title: bool, icon: &str) -> String {
    let mut out = String::new();
    if with_title {
        out.push_str(&format!("## {icon} {}\n\n", escape::markdown(&p.title)));
    }
    for line in p.text.lines() {
        out.push_str(&format!("> {}\n", escape::markdown(line)));
    }
    out.push('\n');
    for (k, v) in &p.fields {
        out.push_str(&format!(
            "**{}**: {}\n",
            escape::markdown(k),
            escape::markdown(v)
        ));
    }
    out.push_str(&format!("**{}**: {}\n", p.time_label, p.time));
    if let Some(r) = &p.repeat {
        out.push_str(&format!("\n{}\n", escape::markdown(r)));
    }
    out
}

fn telegram_body(p: &Parts, icon: &str) -> String {
    let e = escape::telegram_markdown_v2;
    let mut out = format!("{icon} *{}*\n", e(&p.title));
    for line in p.text.lines() {
        out.push_str(&format!("{}\n", e(line)));
    }
    out.push('\n');
    for (k, v) in &p.fields {
        out.push_str(&format!("*{}*: {}\n", e(k), e(v)));
    }
    out.push_str(&format!("*{}*: {}", e(p.time_label), e(&p.time)));
    if let Some(r) = &p.repeat {
        out.push_str(&format!("\n\n_{}_", e(r)));
    }
    out
}

fn slack_body(p: &Parts, icon: &str) -> Value {
    let e = escape::slack;
    let mut fields: Vec<String> = p
        .fields
        .iter()
        .map(|(k, v)| format!("*{}*: {}", e(k), e(v)))
        .collect();
    fields.push(format!("*{}*: {}", p.time_label, p.time));
    let mut section = e(&p.text);
    if let Some(r) = &p.repeat {
        section.push_str(&format!("\n_{}_", e(r)));
    }
    json!({
        "text": format!("{icon} {}", e(&p.title)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": format!("{icon} {}", p.title)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "section", "text": {"type": "mrkdwn", "text": fields.join("\n")}}
        ]
    })
}

fn discord_body(p: &Parts, n: &Notice, icon: &str) -> Value {
    let colour = match n.level {
        Level::Info => 0x2e_cc_71,
        Level::Warning => 0xf1_c4_0f,
        Level::Critical => 0xe7_4c_3c,
    };
    let mut description = escape::markdown(&p.text);
    if let Some(r) = &p.repeat {
        description.push_str(&format!("\n\n*{}*", escape::markdown(r)));
    }
    let fields: Vec<Value> = p
        .fields
        .iter()
        .take(25)
        .map(|(k, v)| json!({"name": truncate(k, 256), "value": truncate(&escape::markdown(v), 1024), "inline": true}))
        .collect();
    json!({
        "content": truncate(&format!("{icon} {}", escape::markdown(&p.title)), 2000),
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": truncate(&p.title, 256),
            "description": truncate(&description, 4096),
            "color": colour,
            "fields": fields,
            "timestamp": n.at.to_rfc3339(),
        }]
    })
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// The request for `notice` to `target` (`repeats` events merged into it), signed at `now`,
/// times shown in `tz`.
pub fn render(
    target: &Target,
    notice: &Notice,
    repeats: u32,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<OutboundCall, String> {
    let p = parts(notice, target.lang, repeats, tz);
    let icon = level_icon(notice.level);
    let secret = target.secret.as_deref().filter(|s| !s.is_empty());
    let mut url = target.url.clone();
    let mut headers = Vec::new();
    let body = match target.kind {
        TargetKind::Wecom => json!({
            "msgtype": "markdown",
            "markdown": {"content": markdown_body(&p, true, icon)}
        }),
        TargetKind::Dingtalk => {
            if let Some(s) = secret {
                let ts = now.timestamp_millis();
                let mut u = url::Url::parse(&url).map_err(|e| format!("url: {e}"))?;
                u.query_pairs_mut()
                    .append_pair("timestamp", &ts.to_string())
                    .append_pair("sign", &sign::dingtalk(ts, s));
                url = u.to_string();
            }
            json!({
                "msgtype": "markdown",
                "markdown": {"title": p.title, "text": markdown_body(&p, true, icon)}
            })
        }
        TargetKind::Feishu => {
            let template = match notice.level {
                Level::Info => "green",
                Level::Warning => "yellow",
                Level::Critical => "red",
            };
            let mut body = json!({
                "msg_type": "interactive",
                "card": {
                    "config": {"wide_screen_mode": true},
                    "header": {"title": {"tag": "plain_text", "content": p.title}, "template": template},
                    "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": markdown_body(&p, false, icon)}}]
                }
            });
            if let (Some(s), Some(obj)) = (secret, body.as_object_mut()) {
                let ts = now.timestamp();
                obj.insert("timestamp".into(), Value::String(ts.to_string()));
                obj.insert("sign".into(), Value::String(sign::feishu(ts, s)));
            }
            body
        }
        TargetKind::Telegram => {
            let token = secret.ok_or("the Telegram bot token is missing")?;
            let chat = target
                .options
                .chat_id
                .as_deref()
                .ok_or("the Telegram chat_id is missing")?;
            let base = if url.trim().is_empty() {
                TELEGRAM_API
            } else {
                url.trim_end_matches('/')
            };
            url = format!("{base}/bot{token}/sendMessage");
            json!({
                "chat_id": chat,
                "text": truncate(&telegram_body(&p, icon), 4096),
                "parse_mode": "MarkdownV2",
                "disable_web_page_preview": true
            })
        }
        TargetKind::Slack => slack_body(&p, icon),
        TargetKind::Discord => discord_body(&p, notice, icon),
        TargetKind::Custom => {
            headers.extend(target.options.headers.iter().cloned());
            let tpl = target
                .options
                .template
                .as_deref()
                .unwrap_or(DEFAULT_TEMPLATE);
            template::render(
                tpl,
                &Values {
                    event: notice.event.as_str(),
                    level: match notice.level {
                        Level::Info => "info",
                        Level::Warning => "warning",
                        Level::Critical => "critical",
                    },
                    title: &p.title,
                    text: &p.text,
                    fields: &p.fields,
                    time: &notice.at.to_rfc3339(),
                    count: repeats.max(1),
                },
            )?
        }
    };
    Ok(OutboundCall {
        url,
        headers,
        body: body.to_string(),
    })
}

/// Platform error codes that mean "too many messages, slow down" (worth retrying).
fn rate_limited_code(kind: TargetKind, code: i64) -> bool {
    match kind {
        TargetKind::Wecom => code == 45009,
        TargetKind::Dingtalk => code == 130101 || code == 660026,
        TargetKind::Feishu => code == 9499 || code == 11232 || code == 11233,
        _ => false,
    }
}

/// What HTTP `status` with `body` from a `kind` platform means.
pub fn judge(kind: TargetKind, status: u16, body: &str) -> Verdict {
    let retry = Verdict::Retry {
        retry_after_secs: None,
    };
    if status == 429 || status == 408 || status >= 500 {
        let hint = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.pointer("/parameters/retry_after").and_then(Value::as_i64))
            .or_else(|| {
                // Discord answers 429 with `retry_after` in (fractional) seconds.
                serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v.get("retry_after").and_then(Value::as_f64))
                    .map(|f| f.ceil() as i64)
            });
        return Verdict::Retry {
            retry_after_secs: hint,
        };
    }
    if !(200..300).contains(&status) {
        return Verdict::Failed;
    }
    let json = serde_json::from_str::<Value>(body).ok();
    let code_is = |keys: &[&str]| -> Option<i64> {
        let v = json.as_ref()?;
        keys.iter().find_map(|k| v.get(*k).and_then(Value::as_i64))
    };
    let by_code = |code: Option<i64>| match code {
        Some(0) => Verdict::Delivered,
        Some(c) if rate_limited_code(kind, c) => retry.clone(),
        _ => Verdict::Failed,
    };
    match kind {
        TargetKind::Wecom | TargetKind::Dingtalk => by_code(code_is(&["errcode"])),
        TargetKind::Feishu => by_code(code_is(&["code", "StatusCode"])),
        TargetKind::Telegram => {
            if json
                .as_ref()
                .and_then(|v| v.get("ok"))
                .and_then(Value::as_bool)
                == Some(true)
            {
                Verdict::Delivered
            } else {
                Verdict::Failed
            }
        }
        TargetKind::Slack => {
            if body.trim() == "ok" {
                Verdict::Delivered
            } else {
                Verdict::Failed
            }
        }
        TargetKind::Discord => {
            // 204 without `?wait=true`; 200 with the created message when waiting.
            if status == 204 || json.as_ref().is_some_and(|v| v.get("id").is_some()) {
                Verdict::Delivered
            } else {
                Verdict::Failed
            }
        }
        TargetKind::Custom => Verdict::Delivered,
    }
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;
