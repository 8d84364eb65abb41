use super::*;
use crate::domain::notify::target::TargetOptions;
use crate::domain::notify::{EventKind, Field, Localized};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

fn notice(name: &str) -> Notice {
    Notice {
        event: EventKind::BreakerOpened,
        level: Level::Critical,
        title: Localized::new(format!("Opened: {name}"), format!("已打开：{name}")),
        text: Localized::new("t", "文"),
        fields: vec![Field {
            name: Localized::new("Provider", "供应商"),
            value: name.to_string(),
        }],
        at: at(),
        coalesce_key: "k".into(),
    }
}

fn target(kind: TargetKind, secret: Option<&str>) -> Target {
    Target {
        id: 1,
        name: "t".into(),
        kind,
        url: "http://127.0.0.1:9/hook?key=k".into(),
        secret: secret.map(str::to_string),
        enabled: true,
        events: vec![],
        lang: Lang::En,
        options: TargetOptions {
            chat_id: Some("-100".into()),
            ..TargetOptions::default()
        },
    }
}

fn body(c: &OutboundCall) -> Value {
    serde_json::from_str(&c.body).unwrap_or_default()
}

#[test]
fn dingtalk_signs_the_url_and_keeps_existing_query() {
    let c = render(
        &target(TargetKind::Dingtalk, Some("SEC1")),
        &notice("p"),
        1,
        at(),
        Tz::UTC,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let u = url::Url::parse(&c.url).unwrap_or_else(|e| panic!("{e}"));
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    assert_eq!(q.get("key").map(String::as_str), Some("k"));
    assert_eq!(
        q.get("timestamp").map(String::as_str),
        Some("1700000000000")
    );
    assert_eq!(
        q.get("sign"),
        Some(&sign::dingtalk(1_700_000_000_000, "SEC1"))
    );
    assert_eq!(body(&c)["msgtype"], "markdown");
}

#[test]
fn telegram_escapes_hostile_names_and_hides_nothing_in_the_url_but_the_token() {
    let c = render(
        &target(TargetKind::Telegram, Some("123:TOKEN")),
        &notice("evil*_[x](http://e.vil)!"),
        3,
        at(),
        Tz::UTC,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.url,
        "http://127.0.0.1:9/hook?key=k/bot123:TOKEN/sendMessage"
    );
    let text = body(&c)["text"].as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("evil\\*\\_\\[x\\]\\(http://e\\.vil\\)\\!"),
        "{text}"
    );
    assert!(text.contains("3 times"), "{text}");
    assert_eq!(body(&c)["parse_mode"], "MarkdownV2");
}

#[test]
fn chinese_targets_get_chinese_text() {
    let mut t = target(TargetKind::Wecom, None);
    t.lang = Lang::Zh;
    let c = render(&t, &notice("p"), 1, at(), chrono_tz::Asia::Shanghai)
        .unwrap_or_else(|e| panic!("{e}"));
    let content = body(&c)["markdown"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        content.contains("已打开：p") && content.contains("供应商"),
        "{content}"
    );
    assert!(content.contains("2023-11-15 06:13:20 +08:00"), "{content}");
}

#[test]
fn judges_by_the_platforms_own_answer() {
    use TargetKind::*;
    assert_eq!(
        judge(Wecom, 200, r#"{"errcode":0,"errmsg":"ok"}"#),
        Verdict::Delivered
    );
    assert_eq!(judge(Wecom, 200, r#"{"errcode":93000}"#), Verdict::Failed);
    assert!(matches!(
        judge(Wecom, 200, r#"{"errcode":45009}"#),
        Verdict::Retry { .. }
    ));
    assert_eq!(
        judge(Feishu, 200, r#"{"code":0,"msg":"success"}"#),
        Verdict::Delivered
    );
    assert_eq!(
        judge(Feishu, 200, r#"{"code":19021,"msg":"sign match fail"}"#),
        Verdict::Failed
    );
    assert_eq!(
        judge(Dingtalk, 200, r#"{"errcode":310000}"#),
        Verdict::Failed
    );
    assert_eq!(
        judge(Telegram, 200, r#"{"ok":true,"result":{}}"#),
        Verdict::Delivered
    );
    assert_eq!(
        judge(
            Telegram,
            429,
            r#"{"ok":false,"parameters":{"retry_after":7}}"#
        ),
        Verdict::Retry {
            retry_after_secs: Some(7)
        }
    );
    assert_eq!(judge(Slack, 200, "ok"), Verdict::Delivered);
    assert_eq!(judge(Slack, 200, "invalid_payload"), Verdict::Failed);
    assert_eq!(judge(Discord, 204, ""), Verdict::Delivered);
    assert_eq!(judge(Discord, 200, "{}"), Verdict::Failed);
    assert_eq!(judge(Custom, 201, ""), Verdict::Delivered);
    assert_eq!(judge(Custom, 404, ""), Verdict::Failed);
    assert!(matches!(judge(Custom, 503, ""), Verdict::Retry { .. }));
}
