use super::*;
use serde_json::json;

#[test]
fn changed_fields_only_nested_flattened_and_secrets_masked() {
    let before = json!({"id": 3, "name": "a", "api_key": "sk-old", "limits": {"daily_usd": "1"}, "key_id": 5});
    let after = json!({"id": 3, "name": "b", "api_key": "sk-new", "limits": {"daily_usd": "2"}, "key_id": 5});
    let c = field_changes(Some(&before), Some(&after));
    let by = |f: &str| c.iter().find(|x| x.field == f).cloned();
    assert_eq!(c.len(), 3, "{c:?}");
    assert_eq!(by("name").unwrap().new, Some(json!("b")));
    let key = by("api_key").unwrap();
    assert_eq!((key.old, key.new), (Some(json!(MASK)), Some(json!(MASK))));
    assert_eq!(by("limits.daily_usd").unwrap().old, Some(json!("1")));
    let text = serde_json::to_string(&c).unwrap();
    assert!(!text.contains("sk-old") && !text.contains("sk-new"));
}

#[test]
fn creation_and_deletion_show_one_side() {
    let v = json!({"name": "x", "secret": "s3"});
    let created = field_changes(None, Some(&v));
    assert!(created.iter().all(|c| c.old.is_none() && c.new.is_some()));
    let deleted = field_changes(Some(&v), None);
    assert!(deleted.iter().all(|c| c.old.is_some() && c.new.is_none()));
    assert!(!serde_json::to_string(&deleted).unwrap().contains("s3"));
}

#[test]
fn long_values_are_cut_and_changes_bounded() {
    let long = "x".repeat(2000);
    let c = field_changes(None, Some(&json!({ "note": long })));
    assert!(c[0].new.as_ref().unwrap().as_str().unwrap().chars().count() <= MAX_VALUE_CHARS + 1);
    let many: serde_json::Map<String, Value> =
        (0..500).map(|i| (format!("f{i}"), json!(i))).collect();
    assert_eq!(
        field_changes(None, Some(&Value::Object(many))).len(),
        MAX_CHANGES
    );
}

#[test]
fn secret_field_names() {
    for s in [
        "api_key",
        "key",
        "secret",
        "token",
        "webhook.secret",
        "password",
        "oauth_credentials",
    ] {
        assert!(is_secret_field(s), "{s}");
    }
    for s in ["key_id", "user_id", "name", "provider_ids"] {
        assert!(!is_secret_field(s), "{s}");
    }
}

#[test]
fn actions_and_routes() {
    assert_eq!(route_template("/providers/12/test"), "/providers/{id}/test");
    assert_eq!(action_of("POST", "/providers", 201), "create");
    assert_eq!(action_of("POST", "/users/{id}/keys", 201), "create");
    assert_eq!(action_of("PATCH", "/providers/{id}", 200), "update");
    assert_eq!(action_of("DELETE", "/providers/{id}", 204), "delete");
    assert_eq!(action_of("POST", "/providers/{id}/test", 200), "test");
    assert_eq!(
        action_of("POST", "/error-rules/presets/restore", 200),
        "restore"
    );
    assert_eq!(action_of("POST", "/auth/login", 200), "login");
    assert_eq!(action_of("POST", "/auth/login", 401), "login_failed");
    assert_eq!(action_of("POST", "/auth/logout", 200), "logout");
}

#[test]
fn secrets_nested_in_lists_are_masked_too() {
    let v = json!({"providers": [{"name": "a", "api_key": "sk-nested-secret"}], "deep": {"a": {"b": {"c": {"token": "t0ps3cret"}}}}});
    let text = serde_json::to_string(&field_changes(None, Some(&v))).unwrap();
    assert!(
        !text.contains("sk-nested-secret") && !text.contains("t0ps3cret"),
        "{text}"
    );
    assert!(text.contains("\"name\":\"a\""), "{text}");
}
