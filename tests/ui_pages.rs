//! The admin console over HTTP: redirects for visitors, headings for the admin, 403 for key
//! holders on admin pages and the admin API, escaping of hostile names, cross-site write
//! refusal, login throttling, languages, assets and sessions shared across instances.

mod support;

use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::app::{TEST_ADMIN_TOKEN, TestApp, spawn_app};

/// Every console page reachable by the admin, with its English heading.
const ADMIN_PAGES: [(&str, &str); 16] = [
    ("/dashboard", "Dashboard"),
    ("/leaderboard", "Leaderboard"),
    ("/providers", "Providers"),
    ("/providers/new", "Add provider"),
    ("/users", "Users and keys"),
    ("/prices", "Prices"),
    ("/error-rules", "Error rules"),
    ("/notifications", "Notifications"),
    ("/sensitive-words", "Sensitive words"),
    ("/audit-logs", "Audit log"),
    ("/logs", "Logs"),
    ("/sessions", "Sessions"),
    ("/settings", "Settings"),
    ("/client-setup", "Client setup"),
    ("/my-usage", "My usage"),
    ("/dashboard?x=1", "Dashboard"),
];

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with `token` and returns the `cch_session=…` cookie pair.
async fn login(t: &TestApp, token: &str) -> (StatusCode, Option<String>, serde_json::Value) {
    let r = no_redirects()
        .post(t.url("/api/v1/auth/login"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let cookie = r
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    let body = r.json().await.unwrap_or_default();
    (status, cookie, body)
}

async fn admin_cookie(t: &TestApp) -> String {
    let (s, c, _) = login(t, TEST_ADMIN_TOKEN).await;
    assert_eq!(s, 200);
    c.unwrap()
}

async fn get_page(t: &TestApp, path: &str, cookie: &str) -> (StatusCode, String, String) {
    let r = no_redirects()
        .get(t.url(path))
        .header(COOKIE, cookie)
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let loc = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, loc, r.text().await.unwrap())
}

/// Creates a user (with `role`) and a key; returns the key's plaintext.
async fn user_key(t: &TestApp, name: &str, role: &str) -> String {
    let (s, u) = t
        .post("/api/v1/users", json!({"name": name, "role": role}))
        .await;
    assert_eq!(s, 201, "{u}");
    let (s, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": format!("{name}-key")}),
        )
        .await;
    assert_eq!(s, 201, "{k}");
    k["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn visitors_are_sent_to_login_and_clients_still_get_json() {
    let t = spawn_app(&[]).await;
    for (path, _) in ADMIN_PAGES {
        let (s, loc, _) = get_page(&t, path, "").await;
        assert_eq!(s, 303, "{path}");
        assert_eq!(loc, "/login", "{path}");
    }
    let (s, loc, _) = get_page(&t, "/", "").await;
    assert_eq!((s.as_u16(), loc.as_str()), (303, "/login"));
    // A forged or stale cookie is no session.
    let (s, _, _) = get_page(&t, "/providers", "cch_session=1.a.9999999999.00").await;
    assert_eq!(s, 303);
    let r = t.http.get(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["service"], "cch");
    let r = t.http.head(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, _, body) = get_page(&t, "/login", "").await;
    assert_eq!(s, 200);
    assert!(body.contains("<h1>Sign in to cch</h1>"));
}

#[tokio::test]
async fn admin_sees_every_page_with_its_heading() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let (s, loc, _) = get_page(&t, "/", &cookie).await;
    assert_eq!((s.as_u16(), loc.as_str()), (303, "/dashboard"));
    let (_, p) = t
        .post("/api/v1/providers", json!({"name": "p1", "provider_type": "claude", "base_url": "http://127.0.0.1:9", "api_key": "sk-123456789"}))
        .await;
    let (_, u) = t.post("/api/v1/users", json!({"name": "alice"})).await;
    let detail_pages = [
        (
            format!("/providers/{}", p["id"]),
            "Edit provider: p1".to_string(),
        ),
        (format!("/users/{}", u["id"]), "User: alice".to_string()),
    ];
    let pages = ADMIN_PAGES
        .iter()
        .map(|(p, h)| (p.to_string(), h.to_string()))
        .chain(detail_pages);
    for (path, heading) in pages {
        let (s, _, body) = get_page(&t, &path, &cookie).await;
        assert_eq!(s, 200, "{path}: {body}");
        assert!(
            body.contains(&format!("<h1>{heading}")),
            "{path} lacks heading {heading}"
        );
        assert!(
            !body.contains(TEST_ADMIN_TOKEN),
            "{path} shows the admin token"
        );
    }
    let (s, _, _) = get_page(&t, "/providers/999", &cookie).await;
    assert_eq!(s, 404);
    let (s, _, _) = get_page(&t, "/logs/999", &cookie).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn key_holders_see_only_their_usage() {
    let t = spawn_app(&[]).await;
    let key = user_key(&t, "bob", "user").await;
    let (s, cookie, body) = login(&t, &key).await;
    assert_eq!(s, 200);
    assert_eq!(body["redirect"], "/my-usage");
    let cookie = cookie.unwrap();
    assert!(
        !cookie.contains(&key),
        "the key itself must not be the cookie"
    );
    let (s, loc, _) = get_page(&t, "/", &cookie).await;
    assert_eq!((s.as_u16(), loc.as_str()), (303, "/my-usage"));
    let (s, _, body) = get_page(&t, "/my-usage", &cookie).await;
    assert_eq!(s, 200);
    assert!(body.contains("<h1>My usage"));
    assert!(body.contains("bob"));
    assert!(!body.contains(&key));
    for (path, _) in ADMIN_PAGES
        .iter()
        .filter(|(p, _)| *p != "/my-usage" && *p != "/client-setup")
    {
        let (s, _, _) = get_page(&t, path, &cookie).await;
        assert_eq!(s, 403, "{path}");
    }
    for (method, path) in [
        (Method::GET, "/api/v1/providers"),
        (Method::GET, "/api/v1/users"),
        (Method::GET, "/api/v1/logs"),
        (Method::GET, "/api/v1/sessions"),
        (Method::DELETE, "/api/v1/sessions/s1"),
        (Method::POST, "/api/v1/users"),
    ] {
        let r = t
            .http
            .request(method, t.url(path))
            .header(COOKIE, &cookie)
            .json(&json!({"name": "mallory", "role": "admin"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    // No cookie at all is 401, not 403.
    let r = t.http.get(t.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Disabling the key ends its session.
    let (_, keys) = t.get("/api/v1/users").await;
    let uid = keys[0]["id"].clone();
    let (_, ks) = t.get(&format!("/api/v1/users/{uid}/keys")).await;
    let (s, _) = t
        .patch(
            &format!("/api/v1/keys/{}", ks[0]["id"]),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, loc, _) = get_page(&t, "/my-usage", &cookie).await;
    assert_eq!((s.as_u16(), loc.as_str()), (303, "/login"));
}

#[tokio::test]
async fn admin_role_keys_open_the_console_and_the_api() {
    let t = spawn_app(&[]).await;
    let key = user_key(&t, "root", "admin").await;
    let (s, cookie, body) = login(&t, &key).await;
    assert_eq!(s, 200);
    assert_eq!(body["redirect"], "/dashboard");
    let cookie = cookie.unwrap();
    let (s, _, _) = get_page(&t, "/providers", &cookie).await;
    assert_eq!(s, 200);
    let r = t
        .http
        .get(t.url("/api/v1/users"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn hostile_names_are_shown_as_text() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let evil = "<img src=x onerror=alert(1)>";
    let (s, _) = t
        .post("/api/v1/providers", json!({"name": evil, "provider_type": "claude", "base_url": "http://127.0.0.1:9", "api_key": "sk-123456789", "group_tag": "\"'><script>x</script>"}))
        .await;
    assert_eq!(s, 201);
    let (s, u) = t.post("/api/v1/users", json!({"name": evil})).await;
    assert_eq!(s, 201);
    for path in [
        "/providers",
        "/users",
        "/logs",
        &format!("/users/{}", u["id"]),
    ] {
        let (_, _, body) = get_page(&t, path, &cookie).await;
        assert!(!body.contains(evil), "{path} shows raw markup");
        assert!(!body.contains("<script>x"), "{path} shows raw markup");
        assert!(
            body.contains("&lt;img src=x onerror=alert(1)&gt;")
                || body.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{path} lacks the escaped name"
        );
    }
}

#[tokio::test]
async fn cross_site_cookie_writes_are_refused() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let host = t.base.trim_start_matches("http://").to_string();
    let body = json!({"name": "x1", "provider_type": "claude", "base_url": "http://127.0.0.1:9", "api_key": "sk-123456789"});
    let send = |headers: Vec<(&'static str, String)>, body: serde_json::Value| {
        let mut rb = t
            .http
            .post(t.url("/api/v1/providers"))
            .header(COOKIE, &cookie)
            .json(&body);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    let r = send(
        vec![("origin", "https://evil.example".into())],
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = send(vec![("sec-fetch-site", "cross-site".into())], body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = send(
        vec![
            ("origin", format!("http://{host}")),
            ("sec-fetch-site", "same-origin".into()),
        ],
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    // The bearer token is not a cookie: no origin check applies.
    let r = t
        .admin(Method::POST, "/api/v1/providers")
        .header("origin", "https://evil.example")
        .json(&json!({"name": "x2", "provider_type": "claude", "base_url": "http://127.0.0.1:9", "api_key": "sk-123456789"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Nothing was created by the refused requests.
    let (_, list) = t.get("/api/v1/providers").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    // Logout from another site is refused too.
    let r = t
        .http
        .post(t.url("/api/v1/auth/logout"))
        .header(COOKIE, &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_ip() {
    let t = spawn_app(&[]).await;
    for i in 0..9 {
        let (s, c, _) = login(&t, &format!("wrong-{i}")).await;
        assert_eq!(s, 401);
        assert!(c.is_none());
    }
    let r = t
        .http
        .post(t.url("/api/v1/auth/login"))
        .json(&json!({"token": "wrong-10"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry), "{retry}");
    // Locked out: even the right token is refused now.
    let (s, c, _) = login(&t, TEST_ADMIN_TOKEN).await;
    assert_eq!(s, 429);
    assert!(c.is_none());
}

#[tokio::test]
async fn login_cookie_flags_logout_and_form_login() {
    let t = spawn_app(&[]).await;
    let r = no_redirects()
        .post(t.url("/api/v1/auth/login"))
        .json(&json!({"token": TEST_ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set.contains(flag), "{set} lacks {flag}");
    }
    // Without script the login page posts a form and is redirected.
    let r = no_redirects()
        .post(t.url("/api/v1/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TEST_ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/dashboard");
    let r = no_redirects()
        .post(t.url("/api/v1/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/login?error=1");
    let r = no_redirects()
        .post(t.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn sessions_survive_restart_and_work_on_other_instances() {
    let a = spawn_app(&[]).await;
    let cookie = admin_cookie(&a).await;
    // Another instance (its own process state, same ADMIN_TOKEN) accepts the same cookie.
    let b = spawn_app(&[]).await;
    let (s, _, _) = get_page(&b, "/providers", &cookie).await;
    assert_eq!(s, 200);
    // An instance with another admin token does not.
    let c = spawn_app(&[("ADMIN_TOKEN", "another-admin-token-987654321")]).await;
    let (s, _, _) = get_page(&c, "/providers", &cookie).await;
    assert_eq!(s, 303);
}

#[tokio::test]
async fn languages_follow_the_browser_and_the_picker() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let page = |lang: &'static str, extra_cookie: &'static str| {
        no_redirects()
            .get(t.url("/providers"))
            .header(COOKIE, format!("{cookie}{extra_cookie}"))
            .header(ACCEPT_LANGUAGE, lang)
            .send()
    };
    for (accept, heading, html_lang) in [
        ("zh-CN,zh;q=0.9", "<h1>供应商", "zh-CN"),
        ("zh-TW", "<h1>供應商", "zh-TW"),
        ("ja", "<h1>プロバイダー", "ja"),
        ("ru-RU", "<h1>Провайдеры", "ru"),
        ("de-DE", "<h1>Providers", "en"),
    ] {
        let body = page(accept, "").await.unwrap().text().await.unwrap();
        assert!(body.contains(heading), "{accept}");
        assert!(
            body.contains(&format!("<html lang=\"{html_lang}\"")),
            "{accept}"
        );
    }
    // The picker's cookie wins over the browser's language.
    let r = no_redirects()
        .get(t.url("/lang?l=ja&next=/providers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/providers");
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("cch_lang=ja")
    );
    let body = page("ru", "; cch_lang=ja")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("<h1>プロバイダー"));
    // An open redirect is not possible through the picker.
    let r = no_redirects()
        .get(t.url("/lang?l=ja&next=//evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/");
}

#[tokio::test]
async fn assets_are_embedded_with_etags_and_long_lived_fingerprints() {
    let t = spawn_app(&[]).await;
    let (_, _, login_page) = get_page(&t, "/login", "").await;
    let css = login_page
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|u| u.ends_with(".css")))
        .unwrap()
        .to_string();
    assert!(css.starts_with("/assets/app."), "{css}");
    let r = t.http.get(t.url(&css)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = t
        .http
        .get(t.url("/assets/app.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = t.http.get(t.url("/assets/app.css")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-cache");
    for name in ["uplot.js", "uplot.css", "app.js", "favicon.svg"] {
        let r = t
            .http
            .get(t.url(&format!("/assets/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
    }
    let r = t.http.get(t.url("/assets/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn client_setup_uses_app_url_or_the_forwarded_address() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let r = t
        .http
        .get(t.url("/client-setup"))
        .header(COOKIE, &cookie)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "cch.example.com")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("export ANTHROPIC_BASE_URL=https://cch.example.com\n"));
    assert!(body.contains("base_url = \"https://cch.example.com/v1\""));
    let t = spawn_app(&[("APP_URL", "https://gw.example.org/")]).await;
    let cookie = admin_cookie(&t).await;
    let (_, _, body) = get_page(&t, "/client-setup", &cookie).await;
    assert!(body.contains("export ANTHROPIC_BASE_URL=https://gw.example.org\n"));
}

#[tokio::test]
async fn security_headers_on_every_answer_and_no_cors() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let get = |path: &'static str, accept: &'static str| {
        no_redirects()
            .get(t.url(path))
            .header(COOKIE, cookie.clone())
            .header(ACCEPT, accept)
            .header("origin", "https://evil.example")
            .send()
    };
    let page = get("/providers", "text/html").await.unwrap();
    let api = get("/api/v1/users", "application/json").await.unwrap();
    let docs = get("/docs", "text/html").await.unwrap();
    let css = get("/login", "text/html").await.unwrap();
    for r in [&page, &api, &docs, &css] {
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", r.url());
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "{}",
            r.url()
        );
        assert!(h.get("access-control-allow-credentials").is_none());
    }
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(api.headers().get("content-security-policy").is_none());
    // The console pages really have no inline script, style or handler the policy would block.
    let html = page.text().await.unwrap();
    for bad in ["<style", " style=", "onclick=", "onsubmit=", "javascript:"] {
        assert!(!html.contains(bad), "inline {bad} in /providers");
    }
    assert!(
        html.split("<script")
            .skip(1)
            .all(|s| s.trim_start().starts_with("src=") || s.contains(" src=")),
        "an inline <script> in /providers"
    );
    // A cross-site preflight for the admin API is not granted.
    let pre = no_redirects()
        .request(Method::OPTIONS, t.url("/api/v1/users"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(pre.headers().get("access-control-allow-origin").is_none());
    assert!(pre.headers().get("access-control-allow-methods").is_none());
}

#[tokio::test]
async fn security_pages_list_rules_and_audit_entries() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let (s, _) = t
        .post(
            "/api/v1/sensitive-words",
            json!({"word": "机密<b>", "match_type": "contains", "note": "leaks"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _, body) = get_page(&t, "/sensitive-words", &cookie).await;
    assert_eq!(s, 200);
    assert!(
        body.contains("机密&#60;b&#62;") || body.contains("机密&lt;b&gt;"),
        "escaped word listed"
    );
    assert!(!body.contains("机密<b>"));
    assert!(body.contains("leaks"));
    let (s, _, body) = get_page(&t, "/audit-logs?action=create", &cookie).await;
    assert_eq!(s, 200);
    assert!(body.contains("POST /sensitive-words"), "{body}");
    assert!(body.contains("<code>admin</code>"));
    let (_, _, body) = get_page(&t, "/audit-logs?action=delete", &cookie).await;
    assert!(!body.contains("POST /sensitive-words"));
}

#[tokio::test]
async fn the_notifications_page_lists_targets_masked_and_deliveries() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let (s, v) = t
        .post(
            "/api/v1/notifications/targets",
            json!({"name": "ops-room", "kind": "wecom",
                   "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY123",
                   "events": ["breaker_opened", "daily_leaderboard"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, _, body) = get_page(&t, "/notifications", &cookie).await;
    assert_eq!(s, 200);
    assert!(body.contains("ops-room"));
    assert!(body.contains("breaker_opened, daily_leaderboard"));
    assert!(!body.contains("SECRETKEY123"), "the URL's key is masked");
    assert!(body.contains("id=\"deliveries\""));
}

#[tokio::test]
async fn the_leaderboard_ranks_users_and_models_from_the_rollups() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let mut ids = Vec::new();
    for name in ["<b>alice</b>", "bob"] {
        let (_, u) = t.post("/api/v1/users", json!({ "name": name })).await;
        ids.push(u["id"].as_i64().unwrap());
    }
    let mut rows = Vec::new();
    for (i, (user, cost, model)) in [
        (ids[0], "0.5", "m-small"),
        (ids[1], "2.25", "m-big"),
        (ids[1], "1", "m-big"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = support::log_rows::minimal(&format!("lb{i}"));
        r.user_id = Some(user);
        r.cost_usd = cost.parse().unwrap();
        r.forwarded_model = Some(model.into());
        r.requested_model = Some(model.into());
        r.input_tokens = 100;
        rows.push(r);
    }
    t.app.ctx.log_store.insert_logs(&rows).await.unwrap();
    let (s, _, body) = get_page(&t, "/leaderboard?dim=user&order=cost&period=today", &cookie).await;
    assert_eq!(s, 200);
    let bob = body.find(">bob<").expect("bob listed");
    let alice = body
        .find("&#60;b&#62;alice")
        .or_else(|| body.find("&lt;b&gt;alice"))
        .expect("alice listed, escaped");
    assert!(bob < alice, "bob ($3.25) ranks above alice ($0.50)");
    assert!(body.contains("$3.25"), "{body}");
    let (_, _, body) = get_page(
        &t,
        "/leaderboard?dim=model&order=requests&period=all",
        &cookie,
    )
    .await;
    assert!(body.find("m-big").unwrap() < body.find("m-small").unwrap());
    let (s, _, body) = get_page(
        &t,
        "/leaderboard?period=custom&from=2026-13-01&to=x",
        &cookie,
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("custom needs both dates"));
}

#[tokio::test]
async fn the_dashboard_shows_todays_figures_and_chart_data_by_provider() {
    let t = spawn_app(&[]).await;
    let cookie = admin_cookie(&t).await;
    let (_, p) = t
        .post("/api/v1/providers", json!({"name": "relay-<x>", "provider_type": "claude", "base_url": "http://127.0.0.1:9", "api_key": "sk-123456789"}))
        .await;
    let mut r = support::log_rows::minimal("d1");
    r.provider_id = p["id"].as_i64();
    r.cost_usd = "1.5".parse().unwrap();
    r.ttfb_ms = Some(120);
    t.app.ctx.log_store.insert_logs(&[r]).await.unwrap();
    let (s, _, body) = get_page(&t, "/dashboard?metric=cost&split=provider", &cookie).await;
    assert_eq!(s, 200);
    assert!(body.contains("$1.50"), "today's cost card");
    assert!(body.contains("120 ms"), "time to first byte card");
    assert!(body.contains("id=\"chart-hourly\""));
    // The chart data is an attribute (no inline script under the CSP), escaped.
    assert!(
        body.contains("relay-&#60;x&#62;") || body.contains("relay-&lt;x&gt;"),
        "{body}"
    );
    assert!(body.contains("uplot"), "the chart library is loaded");
    // The providers page shows the provider's day from the same roll-ups.
    let (_, _, body) = get_page(&t, "/providers", &cookie).await;
    assert!(
        body.contains("$1.50"),
        "today's spend on the providers page"
    );
}

/// The users list shows 100 users a page, with links to the next and previous pages, and a
/// search by part of the name (any case) or by id.
#[tokio::test]
async fn the_users_list_is_paged_and_searchable() {
    let t = spawn_app(&[]).await;
    for i in 1..=205 {
        let name = if i == 150 {
            "Needle-Person".to_string()
        } else {
            format!("member-{i:03}")
        };
        let (s, u) = t.post("/api/v1/users", json!({"name": name})).await;
        assert_eq!(s, 201, "{u}");
    }
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
    let cookie = admin_cookie(&t).await;
    let rows = |html: &str| html.matches("<td><a href=\"/users/").count();

    let (s, _, first) = get_page(&t, "/users", &cookie).await;
    assert_eq!(s, 200);
    assert_eq!(rows(&first), 100);
    assert!(first.contains("1–100 / 205"), "{first}");
    assert!(first.contains("member-001") && !first.contains("member-101"));
    assert!(first.contains("page=2") && !first.contains("page=0"));

    let (_, _, last) = get_page(&t, "/users?page=3", &cookie).await;
    assert_eq!(rows(&last), 5);
    assert!(last.contains("201–205 / 205"), "{last}");
    assert!(last.contains("page=2") && !last.contains("page=4"));
    // Past the end: the last page.
    let (_, _, past) = get_page(&t, "/users?page=99", &cookie).await;
    assert!(past.contains("201–205 / 205"));

    let (_, _, found) = get_page(&t, "/users?q=needle", &cookie).await;
    assert_eq!(rows(&found), 1);
    assert!(found.contains("Needle-Person") && found.contains("1–1 / 1"));
    let (_, _, by_id) = get_page(&t, "/users?q=7", &cookie).await;
    assert!(by_id.contains("member-007"), "an id matches exactly");
    let (_, _, none) = get_page(&t, "/users?q=nobody", &cookie).await;
    assert_eq!(rows(&none), 0);
    assert!(none.contains("0–0 / 0"));
    let (s, _, _) = get_page(&t, "/users?page=x", &cookie).await;
    assert_eq!(s, 400);
}

/// The users list shows each user's limited windows as bars from the live counters; a user
/// without limits shows none.
#[tokio::test]
async fn the_users_list_shows_usage_bars_of_limited_windows() {
    let t = spawn_app(&[]).await;
    let (s, capped) = t
        .post(
            "/api/v1/users",
            json!({"name": "capped", "limit_daily_usd": "10", "rpm_limit": 60}),
        )
        .await;
    assert_eq!(s, 201, "{capped}");
    let (s, free) = t.post("/api/v1/users", json!({"name": "free"})).await;
    assert_eq!(s, 201, "{free}");
    let id = capped["id"].as_i64().unwrap();
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
    let mut r = support::log_rows::minimal("bar1");
    r.user_id = Some(id);
    r.cost_usd = "2.5".parse().unwrap();
    t.app.ctx.log_store.insert_logs(&[r]).await.unwrap();
    let limits = t.app.ctx.limits.as_ref().expect("rate limiting on");
    limits
        .recompute(
            claude_code_hub::app::limits::Scope::User,
            id,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let cookie = admin_cookie(&t).await;
    let (s, _, body) = get_page(&t, "/users", &cookie).await;
    assert_eq!(s, 200);
    let row = |name: &str| {
        let at = body.find(&format!(">{name}</a>")).expect("row");
        body[at..at + body[at..].find("</tr>").unwrap()].to_string()
    };
    let capped_row = row("capped");
    assert!(
        capped_row.contains("value=\"25\"") && capped_row.contains("$2.50 / $10.00"),
        "{capped_row}"
    );
    assert!(capped_row.contains("Requests per minute"), "{capped_row}");
    assert!(
        !capped_row.contains("This month"),
        "unlimited windows have no bar"
    );
    assert!(!row("free").contains("<meter"));
}

/// The providers list shows 100 providers a page (1,000 providers made a 1 MB page), with a
/// search by part of the name, `#id`, group or type.
#[tokio::test]
async fn the_providers_list_is_paged_and_searchable() {
    let t = spawn_app(&[]).await;
    for i in 1..=130 {
        let (name, group) = if i == 120 {
            ("Needle-Upstream".to_string(), "special")
        } else {
            (format!("upstream-{i:03}"), "main")
        };
        let (s, p) = t
            .post(
                "/api/v1/providers",
                json!({"name": name, "provider_type": "claude", "base_url": "http://127.0.0.1:9",
                       "api_key": "sk-x", "group_tag": group}),
            )
            .await;
        assert_eq!(s, 201, "{p}");
    }
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
    let cookie = admin_cookie(&t).await;
    let rows = |html: &str| html.matches("<td><a href=\"/providers/").count();

    let (s, _, first) = get_page(&t, "/providers", &cookie).await;
    assert_eq!(s, 200);
    assert_eq!(rows(&first), 100);
    assert!(first.contains("1–100 / 130"), "{first}");
    assert!(first.contains("page=2") && !first.contains("page=0"));
    let (_, _, last) = get_page(&t, "/providers?page=2", &cookie).await;
    assert_eq!(rows(&last), 30);
    assert!(last.contains("101–130 / 130"), "{last}");

    let (_, _, found) = get_page(&t, "/providers?q=NEEDLE", &cookie).await;
    assert_eq!(rows(&found), 1);
    assert!(found.contains("Needle-Upstream") && found.contains("1–1 / 1"));
    let (_, _, group) = get_page(&t, "/providers?q=special", &cookie).await;
    assert!(group.contains("Needle-Upstream") && group.contains("1–1 / 1"));
    let (_, _, kind) = get_page(&t, "/providers?q=claude", &cookie).await;
    assert!(
        kind.contains("1–100 / 130"),
        "a type matches every provider of it"
    );
    let (_, _, none) = get_page(&t, "/providers?q=nothing-like-it", &cookie).await;
    assert_eq!(rows(&none), 0);
    assert!(none.contains("0–0 / 0"));
    let (s, _, _) = get_page(&t, "/providers?page=x", &cookie).await;
    assert_eq!(s, 400);
}

/// Logs and Sessions name a user or provider in a text field (the page stays small however
/// many users there are): a typed name or `#id` filters, a link's id shows as the name, an
/// unknown name shows an error and no rows, and small lists come with suggestions.
#[tokio::test]
async fn logs_and_sessions_filter_by_a_typed_name() {
    let t = spawn_app(&[]).await;
    let mut ids = Vec::new();
    for i in 0..=200 {
        let (s, u) = t
            .post("/api/v1/users", json!({"name": format!("member-{i:03}")}))
            .await;
        assert_eq!(s, 201, "{u}");
        ids.push(u["id"].as_i64().unwrap());
    }
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
    let mut rows = Vec::new();
    for (i, user) in [(0, ids[7]), (1, ids[7]), (2, ids[9])] {
        let mut r = support::log_rows::minimal(&format!("nf{i}"));
        r.user_id = Some(user);
        rows.push(r);
    }
    t.app.ctx.log_store.insert_logs(&rows).await.unwrap();
    let cookie = admin_cookie(&t).await;
    let shown = |html: &str| html.matches("href=\"/logs/").count();

    let (s, _, all) = get_page(&t, "/logs", &cookie).await;
    assert_eq!(s, 200);
    assert_eq!(shown(&all), 3);
    assert!(!all.contains("member-150"), "201 users: no list of them");
    assert!(!all.contains("<datalist id=\"q-user-names\""));
    let (_, _, typed) = get_page(&t, "/logs?user=MEMBER-007", &cookie).await;
    assert_eq!(shown(&typed), 2, "a name in any case");
    assert!(
        typed.contains("value=\"MEMBER-007\""),
        "the text stays in the field"
    );
    let (_, _, by_id) = get_page(&t, &format!("/logs?user=%23{}", ids[9]), &cookie).await;
    assert_eq!(shown(&by_id), 1);
    let (_, _, linked) = get_page(&t, &format!("/logs?user_id={}", ids[9]), &cookie).await;
    assert_eq!(shown(&linked), 1);
    assert!(
        linked.contains("value=\"member-009\""),
        "a linked id shows its name"
    );
    let (_, _, unknown) = get_page(&t, "/logs?user=nobody", &cookie).await;
    assert_eq!(shown(&unknown), 0);
    assert!(
        unknown.contains("No user or provider has this name"),
        "{unknown}"
    );
    assert!(unknown.contains("aria-invalid=\"true\""));

    let (s, _, sessions) = get_page(&t, "/sessions?user=nobody", &cookie).await;
    assert_eq!(s, 200);
    assert!(sessions.contains("No user or provider has this name"));
    // One provider: suggested in a datalist.
    let (s, p) = t
        .post("/api/v1/providers", json!({"name": "relay-one", "provider_type": "claude", "base_url": "http://127.0.0.1:9", "api_key": "sk-123456789"}))
        .await;
    assert_eq!(s, 201, "{p}");
    t.app.ctx.snapshot.reload(chrono::Utc::now()).await.unwrap();
    let (_, _, sessions) = get_page(&t, "/sessions", &cookie).await;
    assert!(
        sessions.contains("<datalist id=\"s-provider-names\"><option value=\"relay-one\">"),
        "{sessions}"
    );
}
