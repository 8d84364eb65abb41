use serde_json::json;

use super::*;

const UUID: &str = "0f4c8d5e-1b2a-4c3d-9e8f-123456789abc";

#[test]
fn header_wins() {
    let body = json!({"metadata": {"session_id": "other"}, "messages": []});
    let s = claude_session_id(&body, Some(UUID), 1);
    assert_eq!(
        s,
        SessionId {
            id: UUID.into(),
            source: SessionSource::Header
        }
    );
}

#[test]
fn blank_header_is_ignored() {
    let body = json!({"metadata": {"session_id": "meta"}});
    let s = claude_session_id(&body, Some("  "), 1);
    assert_eq!(s.id, "meta");
    assert_eq!(s.source, SessionSource::MetadataSessionId);
}

#[test]
fn old_user_id_string_form() {
    let uid = format!("user_{}_account__session_{UUID}", "ab".repeat(32));
    let body = json!({"metadata": {"user_id": uid}});
    let s = claude_session_id(&body, None, 1);
    assert_eq!(
        s,
        SessionId {
            id: UUID.into(),
            source: SessionSource::MetadataUserId
        }
    );
}

#[test]
fn new_user_id_json_string_form() {
    let uid = format!(
        r#"{{"device_id": "{}", "account_uuid": "", "session_id": "{UUID}"}}"#,
        "a".repeat(64)
    );
    let body = json!({"metadata": {"user_id": uid, "session_id": "ignored"}});
    let s = claude_session_id(&body, None, 1);
    assert_eq!(
        s,
        SessionId {
            id: UUID.into(),
            source: SessionSource::MetadataUserId
        }
    );
}

#[test]
fn user_id_without_session_falls_back_to_metadata_session_id() {
    for uid in [
        json!("user_abc"),
        json!("{\"device_id\":\"x\"}"),
        json!("{broken"),
        json!(7),
    ] {
        let body = json!({"metadata": {"user_id": uid, "session_id": "s-1"}});
        let s = claude_session_id(&body, None, 1);
        assert_eq!(s.id, "s-1");
        assert_eq!(s.source, SessionSource::MetadataSessionId);
    }
    let body = json!({"metadata": {"user_id": "user_x_account__session_"}});
    assert_eq!(
        claude_session_id(&body, None, 1).source,
        SessionSource::Derived
    );
}

#[test]
fn derived_fallback_is_stable_and_key_scoped() {
    let first = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}]});
    let later = json!({"messages": [
        {"role": "user", "content": [{"text": "hello", "type": "text"}]},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "more"}]});
    let a = claude_session_id(&first, None, 7);
    let b = claude_session_id(&later, None, 7);
    assert_eq!(a, b, "same first message on the same key → same session");
    assert_eq!(a.source, SessionSource::Derived);
    assert!(a.id.starts_with("h_") && a.id.len() == 34, "{}", a.id);
    assert_ne!(
        claude_session_id(&first, None, 8).id,
        a.id,
        "another key → another session"
    );
    let other = json!({"messages": [{"role": "user", "content": "bye"}]});
    assert_ne!(claude_session_id(&other, None, 7).id, a.id);
}

#[test]
fn unsafe_or_long_ids_are_hashed() {
    assert_eq!(
        sanitize_session_id(" abc-DEF_1.2:3 "),
        Some("abc-DEF_1.2:3".into())
    );
    assert_eq!(sanitize_session_id(""), None);
    let long = "a".repeat(MAX_SESSION_ID_LEN + 1);
    let h = sanitize_session_id(&long).unwrap();
    assert!(h.starts_with("x_") && h.len() <= MAX_SESSION_ID_LEN);
    assert_eq!(
        sanitize_session_id(&"a".repeat(MAX_SESSION_ID_LEN))
            .unwrap()
            .len(),
        128
    );
    let weird = sanitize_session_id("a b/../\n{}").unwrap();
    assert!(weird.starts_with("x_"));
    assert_eq!(
        sanitize_session_id("a b/../\n{}"),
        Some(weird),
        "hashing is deterministic"
    );
    let s = claude_session_id(&json!({}), Some("héllo wörld"), 1);
    assert!(s.id.starts_with("x_"));
    assert_eq!(s.source, SessionSource::Header);
}

#[test]
fn weird_json_never_panics() {
    let bodies = [
        json!(null),
        json!([]),
        json!("x"),
        json!({"metadata": null}),
        json!({"metadata": [1, 2]}),
        json!({"metadata": {"user_id": null, "session_id": 5}}),
        json!({"messages": "nope"}),
        json!({"messages": [1, null, {"role": 3}]}),
        json!({"messages": [{"role": "user"}]}),
        json!({"messages": [{"role": "user", "content": 42}]}),
        json!({"input": {"a": 1}}),
        json!({"contents": [{"parts": "x"}]}),
    ];
    for b in bodies {
        let s = claude_session_id(&b, None, 1);
        assert!(s.id.starts_with("h_"));
        let s = openai_session_id(&b, None, 1);
        assert!(s.id.starts_with("h_"));
        let _ = has_history(&b);
    }
}

#[test]
fn openai_sources_in_order() {
    let body = json!({"prompt_cache_key": "pck", "metadata": {"session_id": "meta"},
                      "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]});
    assert_eq!(openai_session_id(&body, Some("hdr"), 1).id, "hdr");
    let s = openai_session_id(&body, None, 1);
    assert_eq!(
        (s.id.as_str(), s.source),
        ("pck", SessionSource::PromptCacheKey)
    );
    let body = json!({"metadata": {"session_id": "meta"}});
    assert_eq!(
        openai_session_id(&body, None, 1).source,
        SessionSource::MetadataSessionId
    );
    let a = openai_session_id(&json!({"input": "hi"}), None, 1);
    let b = openai_session_id(
        &json!({"input": [{"type": "message", "role": "developer", "content": "sys"},
                          {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}),
        None,
        1,
    );
    assert_eq!(a, b);
}

#[test]
fn first_user_text_in_every_format() {
    assert_eq!(
        first_user_text(&json!({"messages": [{"role": "system", "content": "s"},
        {"role": "user", "content": "u"}]})),
        Some("u".into())
    );
    assert_eq!(
        first_user_text(&json!({"contents": [{"role": "user", "parts": [{"text": "g"}]}]})),
        Some("g".into())
    );
    assert_eq!(
        first_user_text(&json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "image", "source": {"data": "x"}}]}]})),
        Some("a\n{\"source\":{\"data\":\"x\"},\"type\":\"image\"}".into())
    );
    assert_eq!(first_user_text(&json!({})), None);
}

#[test]
fn history_means_more_than_one_message() {
    assert!(!has_history(&json!({"messages": []})));
    assert!(!has_history(
        &json!({"messages": [{"role": "user", "content": "x"}]})
    ));
    assert!(has_history(&json!({"messages": [{}, {}]})));
    assert!(has_history(&json!({"input": [{}, {}, {}]})));
    assert!(!has_history(&json!({"input": "just text"})));
    assert_eq!(message_count(&json!({"contents": [{}, {}]})), 2);
}
