//! Notifications end to end: a fake receiver per platform checks the exact body and signature
//! of a test message; a failing receiver shows retries with backoff (manual clock) and the
//! final failure in the delivery log; a breaker opening reaches WeCom once with the provider
//! key masked; the outbox survives a restart; cost alerts fire once per window and threshold
//! with two instances on one Redis.

mod support;

use std::sync::{Arc, Mutex};

use base64::Engine;
use chrono::{DateTime, Utc};
use claude_code_hub::app::wiring;
use claude_code_hub::domain::notify::{EventKind, Level, Localized, Notice};
use claude_code_hub::ports::clock::Clock;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::app::{TestApp, test_settings};
use support::fake_upstream::{FakeUpstream, Reply};
use support::fake_webhook::{Answer, FakeWebhook};

struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn at(t: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(t)))
    }
    fn advance(&self, d: chrono::Duration) {
        *self.0.lock().unwrap() += d;
    }
}

async fn start(dir: tempfile::TempDir, extra: &[(&str, &str)], clock: Arc<dyn Clock>) -> TestApp {
    support::init_crypto();
    let mut vars = vec![
        ("NOTIFY_POLL_INTERVAL_MS", "20"),
        ("COST_ALERT_CHECK_INTERVAL_S", "0"),
    ];
    vars.extend_from_slice(extra);
    let settings = test_settings(dir.path(), &vars);
    let app = wiring::start_with_clock(settings, clock)
        .await
        .expect("app starts");
    let base = format!("http://{}", app.addr);
    TestApp {
        app,
        base,
        http: reqwest::Client::new(),
        dir,
    }
}

async fn add_target(t: &TestApp, body: Value) -> i64 {
    let (status, v) = t.post("/api/v1/notifications/targets", body).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_i64().unwrap()
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

fn notice(key: &str) -> Notice {
    Notice {
        event: EventKind::ProviderDown,
        level: Level::Critical,
        title: Localized::new("Provider down: p", "供应商不可用：p"),
        text: Localized::new("still failing", "仍然失败"),
        fields: vec![],
        at: Utc::now(),
        coalesce_key: key.into(),
    }
}

async fn deliveries(t: &TestApp) -> Vec<Value> {
    let (status, v) = t.get("/api/v1/notifications/deliveries?limit=100").await;
    assert_eq!(status, 200, "{v}");
    let mut rows = v.as_array().unwrap().clone();
    rows.reverse();
    rows
}

#[tokio::test]
async fn a_test_message_of_each_type_has_the_platforms_exact_shape_and_signature() {
    let clock = ManualClock::at(Utc::now());
    let t = start(tempfile::tempdir().unwrap(), &[], clock.clone()).await;
    let wecom = FakeWebhook::start(Answer::new(200, r#"{"errcode":0,"errmsg":"ok"}"#)).await;
    let feishu =
        FakeWebhook::start(Answer::new(200, r#"{"code":0,"msg":"success","data":{}}"#)).await;
    let ding = FakeWebhook::start(Answer::new(200, r#"{"errcode":0,"errmsg":"ok"}"#)).await;
    let tg = FakeWebhook::start(Answer::new(200, r#"{"ok":true,"result":{"message_id":1}}"#)).await;
    let slack = FakeWebhook::start(Answer::new(200, "ok")).await;
    let discord = FakeWebhook::start(Answer::new(204, "")).await;
    let custom = FakeWebhook::start(Answer::new(202, "accepted")).await;

    let ids = [
        add_target(&t, json!({"name": "wecom", "kind": "wecom", "url": wecom.url("/cgi-bin/webhook/send?key=WECOMKEY")})).await,
        add_target(&t, json!({"name": "feishu", "kind": "feishu", "url": feishu.url("/open-apis/bot/v2/hook/abc"), "secret": "FEISHU_SECRET", "lang": "zh"})).await,
        add_target(&t, json!({"name": "dingtalk", "kind": "dingtalk", "url": ding.url("/robot/send?access_token=DTOKEN"), "secret": "SECdingsecret"})).await,
        add_target(&t, json!({"name": "telegram", "kind": "telegram", "url": tg.base, "secret": "123456:TGTOKEN", "chat_id": "-100200300"})).await,
        add_target(&t, json!({"name": "slack", "kind": "slack", "url": slack.url("/services/T0/B0/XYZ")})).await,
        add_target(&t, json!({"name": "discord", "kind": "discord", "url": discord.url("/api/webhooks/1/TOKEN")})).await,
        add_target(&t, json!({"name": "custom", "kind": "custom", "url": custom.url("/hook"),
            "headers": {"X-Auth": "hdr-secret"},
            "template": r#"{"kind":"{{event}}","msg":"{{title}} — {{text}}","data":"{{fields}}","at":"{{time}}"}"#})).await,
    ];
    for id in ids {
        let (status, a) = t
            .post(
                &format!("/api/v1/notifications/targets/{id}/test"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{a}");
        assert_eq!(a["delivered"], true, "target {id}: {a}");
    }

    let w = &wecom.received()[0];
    eprintln!("wecom {} {}", w.path, w.body);
    assert_eq!(w.path, "/cgi-bin/webhook/send?key=WECOMKEY");
    assert_eq!(w.body["msgtype"], "markdown");
    assert_eq!(w.body.as_object().unwrap().len(), 2);
    let content = w.body["markdown"]["content"].as_str().unwrap();
    assert!(
        content.contains("cch test message") && content.contains("wecom"),
        "{content}"
    );

    let f = &feishu.received()[0];
    eprintln!("feishu {}", f.body);
    assert_eq!(f.body["msg_type"], "interactive");
    assert_eq!(f.body["card"]["header"]["title"]["content"], "cch 测试消息");
    let ts: i64 = f.body["timestamp"].as_str().unwrap().parse().unwrap();
    assert!((ts - clock.now().timestamp()).abs() <= 1);
    let expect = hmac_b64(format!("{ts}\nFEISHU_SECRET").as_bytes(), b"");
    assert_eq!(f.body["sign"], expect.as_str());

    let d = &ding.received()[0];
    eprintln!("dingtalk {} {}", d.path, d.body);
    assert_eq!(d.query("access_token").as_deref(), Some("DTOKEN"));
    let ts = d.query("timestamp").unwrap();
    let expect = hmac_b64(b"SECdingsecret", format!("{ts}\nSECdingsecret").as_bytes());
    assert_eq!(d.query("sign"), Some(expect));
    assert_eq!(d.body["msgtype"], "markdown");
    assert_eq!(d.body["markdown"]["title"], "cch test message");

    let g = &tg.received()[0];
    eprintln!("telegram {} {}", g.path, g.body);
    assert_eq!(g.path, "/bot123456:TGTOKEN/sendMessage");
    assert_eq!(g.body["chat_id"], "-100200300");
    assert_eq!(g.body["parse_mode"], "MarkdownV2");
    assert!(
        g.body["text"]
            .as_str()
            .unwrap()
            .starts_with("🟢 *cch test message*")
    );

    let s = &slack.received()[0];
    eprintln!("slack {}", s.body);
    assert!(
        s.body["text"]
            .as_str()
            .unwrap()
            .contains("cch test message")
    );
    assert_eq!(s.body["blocks"][0]["type"], "header");
    assert_eq!(s.body["blocks"][1]["text"]["type"], "mrkdwn");

    let c = &discord.received()[0];
    eprintln!("discord {}", c.body);
    assert_eq!(c.body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(c.body["embeds"][0]["title"], "cch test message");
    assert_eq!(c.body["embeds"][0]["fields"][0]["name"], "Target");

    let x = &custom.received()[0];
    eprintln!("custom {}", x.body);
    assert_eq!(x.header("x-auth"), Some("hdr-secret"));
    assert_eq!(x.body["kind"], "test");
    assert_eq!(
        x.body["msg"],
        "cch test message — Target custom is set up correctly."
    );
    assert_eq!(x.body["data"], json!({"Target": "custom"}));
    assert!(
        x.body["at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .is_ok()
    );

    // Secrets never come back.
    let (_, list) = t.get("/api/v1/notifications/targets").await;
    let text = list.to_string();
    for secret in [
        "WECOMKEY",
        "FEISHU_SECRET",
        "SECdingsecret",
        "TGTOKEN",
        "DTOKEN",
        "XYZ",
        "hdr-secret",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let log = deliveries(&t).await;
    assert_eq!(log.len(), 7);
    assert!(
        log.iter()
            .all(|d| d["outcome"] == "delivered" && d["event"] == "test")
    );
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn platform_errors_are_failures_even_with_http_200() {
    let t = start(
        tempfile::tempdir().unwrap(),
        &[],
        ManualClock::at(Utc::now()),
    )
    .await;
    let wecom = FakeWebhook::start(Answer::new(
        200,
        r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
    ))
    .await;
    let id = add_target(
        &t,
        json!({"name": "w", "kind": "wecom", "url": wecom.url("/send?key=x")}),
    )
    .await;
    let (_, a) = t
        .post(
            &format!("/api/v1/notifications/targets/{id}/test"),
            json!({}),
        )
        .await;
    assert_eq!(a["delivered"], false, "{a}");
    assert_eq!(a["status"], 200);
    assert!(a["answer"].as_str().unwrap().contains("93000"));
    let (status, e) = t
        .post(
            "/api/v1/notifications/targets",
            json!({"name": "tg", "kind": "telegram", "secret": "x"}),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(e.to_string().contains("chat_id"), "{e}");
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_and_retry_after_then_fails_for_good() {
    let t0 = Utc::now();
    let clock = ManualClock::at(t0);
    let t = start(tempfile::tempdir().unwrap(), &[], clock.clone()).await;
    let hook = FakeWebhook::start(Answer::new(500, "boom")).await;
    hook.script(vec![
        Answer::new(429, "slow down").header("retry-after", "20"),
    ]);
    add_target(
        &t,
        json!({"name": "c", "kind": "custom", "url": hook.url("/h")}),
    )
    .await;
    assert_eq!(
        t.app
            .ctx
            .notifications
            .enqueue(&notice("k1"))
            .await
            .unwrap(),
        1
    );

    // Attempt 1 answers 429 with retry-after 20 s: the next try waits 20 s, not 1 s.
    hook.wait_for(1).await;
    let expected_waits = [20, 5, 30, 120, 600];
    for (i, wait) in expected_waits.iter().enumerate() {
        let attempt = i + 1;
        let log = wait_log(&t, attempt).await;
        let last = &log[attempt - 1];
        assert_eq!(last["outcome"], "retry", "{last}");
        let at: DateTime<Utc> = last["at"].as_str().unwrap().parse().unwrap();
        let next: DateTime<Utc> = last["next_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            (next - at).num_seconds(),
            *wait,
            "attempt {attempt}: {last}"
        );
        // Not due yet: nothing more is sent.
        clock.advance(chrono::Duration::seconds(wait - 1));
        t.app.ctx.notifications.wake();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(hook.received().len(), attempt);
        clock.advance(chrono::Duration::seconds(1));
        t.app.ctx.notifications.wake();
        hook.wait_for(attempt + 1).await;
    }
    let log = wait_log(&t, 6).await;
    assert_eq!(log[5]["outcome"], "failed", "{:?}", log[5]);
    assert_eq!(log[5]["attempt"], 6);
    assert_eq!(log[5]["status"], 500);
    assert_eq!(log[5]["answer"], "boom");
    clock.advance(chrono::Duration::hours(2));
    t.app.ctx.notifications.wake();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        hook.received().len(),
        6,
        "no attempt after the final failure"
    );
    t.app.shutdown().await.unwrap();
}

async fn wait_log(t: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let log = deliveries(t).await;
        if log.len() >= n {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "delivery log never reached {n} rows: {:?}",
        deliveries(t).await
    );
}

#[tokio::test]
async fn repeats_within_the_window_become_one_message_that_says_how_many() {
    let clock = ManualClock::at(Utc::now());
    let t = start(tempfile::tempdir().unwrap(), &[], clock.clone()).await;
    let hook = FakeWebhook::start(Answer::new(200, "ok")).await;
    add_target(
        &t,
        json!({"name": "c", "kind": "custom", "url": hook.url("/h"),
        "template": r#"{"title":"{{title}}","count":"{{count}}"}"#}),
    )
    .await;
    let n = &t.app.ctx.notifications;
    n.enqueue(&notice("flap")).await.unwrap();
    hook.wait_for(1).await;
    for _ in 0..4 {
        n.enqueue(&notice("flap")).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        hook.received().len(),
        1,
        "held back inside the 300 s window"
    );
    clock.advance(chrono::Duration::seconds(301));
    n.wake();
    let got = hook.wait_for(2).await;
    assert_eq!(got[1].body["count"], "4", "{}", got[1].body);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(hook.received().len(), 2);
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_breaker_opening_sends_one_wecom_message_with_the_provider_and_masked_error() {
    let clock = ManualClock::at(Utc::now());
    let t = start(tempfile::tempdir().unwrap(), &[], clock.clone()).await;
    let wecom = FakeWebhook::start(Answer::new(200, r#"{"errcode":0,"errmsg":"ok"}"#)).await;
    add_target(
        &t,
        json!({"name": "ops", "kind": "wecom", "url": wecom.url("/send?key=k"),
        "events": ["breaker_opened"]}),
    )
    .await;
    let bad = FakeUpstream::start().await;
    let secret = "sk-ant-api03-SECRETSECRET0123";
    bad.set_default(Reply::error(
        500,
        "api_error",
        &format!("upstream exploded; key {secret} rejected"),
    ));
    let (status, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "anthropic-main", "provider_type": "claude",
            "base_url": bad.url(), "api_key": secret, "max_retry_attempts": 1}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let (_, u) = t.post("/api/v1/users", json!({"name": "alice"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    let key = k["key"].as_str().unwrap().to_string();
    for _ in 0..5 {
        let r = t
            .http
            .post(t.url("/v1/messages"))
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_server_error());
    }
    let got = wecom.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(wecom.received().len(), 1, "exactly one message");
    let content = got[0].body["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    eprintln!("breaker-open message:\n{content}");
    assert!(
        content.contains("Circuit breaker opened: anthropic\\-main")
            || content.contains("Circuit breaker opened: anthropic-main"),
        "{content}"
    );
    assert!(content.contains("upstream exploded"), "{content}");
    assert!(!content.contains("SECRETSECRET"), "{content}");
    assert!(
        content.contains("key \\[redacted\\] rejected") || content.contains("key **** rejected"),
        "{content}"
    );
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_outbox_survives_a_restart_between_enqueue_and_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let t0 = Utc::now();
    let clock = ManualClock::at(t0);
    // A port that drops every connection (held, so no other test can take it): the first
    // attempt fails, the retry is due in 1 s.
    let refuser = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = refuser.local_addr().unwrap();
    let refusing = tokio::spawn(async move {
        while let Ok((conn, _)) = refuser.accept().await {
            drop(conn);
        }
    });
    let t = start(dir, &[], clock.clone()).await;
    add_target(
        &t,
        json!({"name": "c", "kind": "custom", "url": format!("http://{addr}/h")}),
    )
    .await;
    t.app.ctx.notifications.enqueue(&notice("r")).await.unwrap();
    let log = wait_log(&t, 1).await;
    assert_eq!(log[0]["outcome"], "retry", "{:?}", log[0]);
    let TestApp { app, dir, .. } = t;
    app.shutdown().await.unwrap();
    assert_eq!(dir.path(), path);
    refusing.abort();
    let _ = refusing.await;

    let hook = FakeWebhook::start_on(addr, Answer::new(200, "ok")).await;
    let clock2 = ManualClock::at(t0 + chrono::Duration::seconds(2));
    let t = start(dir, &[], clock2).await;
    let got = hook.wait_for(1).await;
    assert_eq!(got[0].body["event"], "provider_down");
    let log = wait_log(&t, 2).await;
    assert_eq!(log[1]["outcome"], "delivered");
    assert_eq!(log[1]["attempt"], 2);
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cost_alert_fires_once_per_window_and_threshold_across_two_instances() {
    let Some(db) = support::postgres::TestDatabase::create("cost_alert_two_instances").await else {
        return;
    };
    let Some(redis) = support::redis::test_redis("cost_alert_two_instances").await else {
        return;
    };
    let clock = ManualClock::at(Utc::now());
    let extra = [
        ("DSN", db.url.as_str()),
        ("REDIS_URL", redis.url.as_str()),
        ("REDIS_KEY_PREFIX", redis.prefix.as_str()),
    ];
    let a = start(tempfile::tempdir().unwrap(), &extra, clock.clone()).await;
    let b = start(tempfile::tempdir().unwrap(), &extra, clock.clone()).await;
    let hook = FakeWebhook::start(Answer::new(200, "ok")).await;
    add_target(
        &a,
        json!({"name": "c", "kind": "custom", "url": hook.url("/h"), "events": ["cost_alert"],
        "template": r#"{"title":"{{title}}","f":"{{fields}}"}"#}),
    )
    .await;
    let (_, u) = a
        .post(
            "/api/v1/users",
            json!({"name": "bob", "limit_daily_usd": "1"}),
        )
        .await;
    let uid = u["id"].as_i64().unwrap();
    b.app.ctx.snapshot.reload(clock.now()).await.unwrap();

    let spend = |cost: &str, id: &str| {
        let mut row = support::log_rows::minimal(id);
        row.user_id = Some(uid);
        row.created_at = clock.now();
        row.cost_usd = cost.parse().unwrap();
        row
    };
    a.app
        .ctx
        .log_store
        .insert_logs(&[spend("0.85", "r1")])
        .await
        .unwrap();
    let (s, v) = a
        .post(&format!("/api/v1/users/{uid}/usage/recompute"), json!({}))
        .await;
    assert!(s < 300, "{v}");

    let check = || async {
        let (x, y) = tokio::join!(
            a.app.ctx.cost_alerts.as_ref().unwrap().check(),
            b.app.ctx.cost_alerts.as_ref().unwrap().check()
        );
        x + y
    };
    assert_eq!(check().await, 1, "80 % fires once across both instances");
    assert_eq!(check().await, 0, "and not again in this window");
    let got = hook.wait_for(1).await;
    eprintln!("cost alert: {}", got[0].body);
    assert!(
        got[0].body["title"].as_str().unwrap().contains("80%"),
        "{}",
        got[0].body
    );

    a.app
        .ctx
        .log_store
        .insert_logs(&[spend("0.10", "r2")])
        .await
        .unwrap();
    a.post(&format!("/api/v1/users/{uid}/usage/recompute"), json!({}))
        .await;
    assert_eq!(check().await, 1, "90 % is a new threshold");
    let got = hook.wait_for(2).await;
    assert!(
        got[1].body["title"].as_str().unwrap().contains("90%"),
        "{}",
        got[1].body
    );
    assert_eq!(check().await, 0);

    a.app.shutdown().await.unwrap();
    b.app.shutdown().await.unwrap();
    redis.cleanup().await;
    db.drop_db().await;
}

#[tokio::test]
async fn the_daily_leaderboard_goes_out_at_nine_shanghai_time_with_yesterdays_top_users() {
    use claude_code_hub::app::scheduler::TickOutcome;
    // 08:59 on 2026-03-10 in Shanghai (UTC+8).
    let t0: DateTime<Utc> = "2026-03-10T00:59:00Z".parse().unwrap();
    let clock = ManualClock::at(t0);
    let t = start(
        tempfile::tempdir().unwrap(),
        &[
            ("TZ", "Asia/Shanghai"),
            ("NOTIFY_LEADERBOARD_TIME", "09:00"),
            ("NOTIFY_LEADERBOARD_TOP_N", "2"),
        ],
        clock.clone(),
    )
    .await;
    let hook = FakeWebhook::start(Answer::new(200, r#"{"errcode":0,"errmsg":"ok"}"#)).await;
    add_target(
        &t,
        json!({"name": "team", "kind": "wecom", "url": hook.url("/send?key=K"),
               "events": ["daily_leaderboard"], "lang": "zh"}),
    )
    .await;
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (_, u) = t.post("/api/v1/users", json!({ "name": name })).await;
        users.push(u["id"].as_i64().unwrap());
    }
    // Yesterday (local): alice $3 in 2 requests (one at 00:00, one at 23:59), bob $2, carol
    // $1; plus a row at 00:00 today, which must not count.
    let row = |id: &str, at: &str, user: i64, cost: &str| {
        let mut r = support::log_rows::minimal(id);
        r.created_at = at.parse().unwrap();
        r.user_id = Some(user);
        r.cost_usd = cost.parse().unwrap();
        r.input_tokens = 1000;
        r.output_tokens = 500;
        r
    };
    let rows = vec![
        row("a1", "2026-03-08T16:00:00Z", users[0], "1.25"),
        row("a2", "2026-03-09T15:59:00Z", users[0], "1.75"),
        row("b1", "2026-03-09T03:00:00Z", users[1], "2"),
        row("c1", "2026-03-09T05:00:00Z", users[2], "1"),
        row("today", "2026-03-09T16:00:00Z", users[2], "50"),
    ];
    t.app.ctx.log_store.insert_logs(&rows).await.unwrap();

    let ran = |o: &[TickOutcome]| {
        o.iter()
            .filter(|x| matches!(x, TickOutcome::Ran { job, .. } if job == "daily-leaderboard"))
            .count()
    };
    // Started after yesterday's 09:00 run was due: that run is caught up at once, but its day
    // (03-08) had no requests, so nothing is sent.
    t.app.ctx.scheduler.tick().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(hook.received().is_empty());
    // Nothing more until 09:00.
    assert_eq!(ran(&t.app.ctx.scheduler.tick().await), 0);
    clock.advance(chrono::Duration::minutes(1));
    let outcomes = t.app.ctx.scheduler.tick().await;
    assert_eq!(ran(&outcomes), 1, "{outcomes:?}");
    let got = hook.wait_for(1).await;
    let text = got[0].body["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    eprintln!("daily leaderboard message:\n{text}");
    assert!(text.contains("2026-03-09 用量排行榜"), "{text}");
    assert!(text.contains("1. alice — $3，2 次请求"), "{text}");
    assert!(text.contains("2. bob — $2，1 次请求"), "{text}");
    assert!(!text.contains("carol"), "top 2 only: {text}");
    assert!(text.contains("$6"), "the day's total: {text}");
    // Once a day.
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(ran(&t.app.ctx.scheduler.tick().await), 0);
}
