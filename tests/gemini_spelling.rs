//! Gemini requests in snake_case (issue 12 item 1): the official `google-genai` SDK 3.x sends
//! `functionDeclarations[].parameters_json_schema` and `thinkingConfig.include_thoughts` /
//! `thinking_budget` in snake_case (captured on the wire from SDK 3.6.1). Through every
//! converting provider type, JSON and stream, the tool must reach the upstream with its schema
//! and the thinking options must not be lost. Skipped (with a SKIP line) without `.venv`.

mod support;

use serde_json::{Value, json};
use support::app::spawn_app;
use support::fake_upstream::{FakeUpstream, Reply};

async fn run(provider_type: &str) -> Vec<Value> {
    let py = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[]).await;
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "p", "provider_type": provider_type, "base_url": up.url(),
                   "api_key": "sk-p", "extra_client_formats": ["gemini"]}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    let args = json!({"city_name": "Paris"});
    up.push(Reply::tool_use("get_weather", args.clone()));
    up.push(Reply::tool_use_stream("get_weather", args));
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/gemini_snake_case.py");
    let out = tokio::process::Command::new(py)
        .arg(script)
        .env("CCH_BASE_URL", &t.base)
        .env("CCH_KEY", k["key"].as_str().unwrap())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{provider_type}: stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("gemini snake_case: ok"));
    let bodies: Vec<Value> = up
        .requests()
        .into_iter()
        .map(|r| r.json.expect("JSON request"))
        .collect();
    assert_eq!(bodies.len(), 2, "{provider_type}");
    t.app.shutdown().await.unwrap();
    bodies
}

fn have_venv(test: &str) -> bool {
    let ok = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin/python")
        .exists();
    if !ok {
        eprintln!("SKIP {test}: no .venv with google-genai (run .ci/run)");
    }
    ok
}

fn city_schema() -> Value {
    json!({"type": "string"})
}

#[tokio::test]
async fn snake_case_tools_and_thinking_reach_a_claude_provider() {
    if !have_venv("snake_case_tools_and_thinking_reach_a_claude_provider") {
        return;
    }
    for b in run("claude").await {
        assert_eq!(b["tools"][0]["name"], "get_weather", "{b}");
        assert_eq!(
            b["tools"][0]["input_schema"]["properties"]["city_name"],
            city_schema(),
            "{b}"
        );
        assert_eq!(
            b["tools"][0]["input_schema"]["required"],
            json!(["city_name"])
        );
        assert_eq!(b["thinking"]["budget_tokens"], 2048, "{b}");
    }
}

#[tokio::test]
async fn snake_case_tools_reach_an_openai_compatible_provider() {
    if !have_venv("snake_case_tools_reach_an_openai_compatible_provider") {
        return;
    }
    for b in run("openai-compatible").await {
        let f = &b["tools"][0]["function"];
        assert_eq!(f["name"], "get_weather", "{b}");
        assert_eq!(
            f["parameters"]["properties"]["city_name"],
            city_schema(),
            "{b}"
        );
        assert!(b.get("reasoning_effort").is_some(), "thinking kept: {b}");
    }
}

#[tokio::test]
async fn snake_case_tools_reach_a_codex_provider() {
    if !have_venv("snake_case_tools_reach_a_codex_provider") {
        return;
    }
    for b in run("codex").await {
        let f = &b["tools"][0];
        assert_eq!(f["name"], "get_weather", "{b}");
        assert_eq!(
            f["parameters"]["properties"]["city_name"],
            city_schema(),
            "{b}"
        );
        assert!(b.get("reasoning").is_some(), "thinking kept: {b}");
    }
}
