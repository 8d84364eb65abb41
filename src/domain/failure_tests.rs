use super::*;

fn c(status: u16, body: &str) -> Classified {
    classify_http(status, body, &builtin_error_rules().into())
}

#[test]
fn extracts_messages_from_every_shape() {
    let claude = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
    assert_eq!(
        extract_error_message(claude),
        "prompt is too long: 210000 tokens > 200000 maximum"
    );
    let openai = r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    assert!(extract_error_message(openai).starts_with("This model's maximum"));
    let gemini = r#"[{"error":{"code":400,"message":"The input token count (1) exceeds the maximum number of tokens allowed (0).","status":"INVALID_ARGUMENT"}}]"#;
    assert!(extract_error_message(gemini).starts_with("The input token count"));
    assert_eq!(extract_error_message(r#"{"error":"plain"}"#), "plain");
    assert_eq!(
        extract_error_message(r#"{"detail":"Not Found"}"#),
        "Not Found"
    );
    // An HTML page is summarised, never passed on (issue 16, item 7).
    assert_eq!(
        extract_error_message("  <html>bad gateway</html> "),
        "upstream answered with an HTML page"
    );
    assert_eq!(
        extract_error_message(r#"{"error":{"code":5}}"#),
        r#"{"error":{"code":5}}"#
    );
    let long = "é".repeat(5000);
    let m = extract_error_message(&long);
    assert_eq!(m.chars().count(), MAX_ERROR_MESSAGE_CHARS + 1);
}

#[test]
fn builtin_rules_recognise_client_errors() {
    let cases = [
        r#"{"error":{"message":"Prompt is too long"}}"#,
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens"}}"#,
        r#"{"error":{"message":"Output blocked by content filtering policy"}}"#,
        r#"{"error":{"message":"A maximum of 100 PDF pages may be provided."}}"#,
        r#"{"error":{"message":"messages.0.content.1.image.source.base64: image exceeds 5 MB maximum"}}"#,
        r#"{"error":{"message":"messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`."}}"#,
        r#"{"error":{"message":"messages.2: `tool_use` ids were found without `tool_result` blocks immediately after"}}"#,
        r#"{"error":{"message":"max_tokens: Field required"}}"#,
        r#"{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it."}}"#,
        r#"{"error":{"message":"models/gemini-x is not found for API version v1beta"}}"#,
    ];
    for body in cases {
        let r = c(400, body);
        assert_eq!(r.class, ErrorClass::NonRetryableClientError, "{body}");
        assert!(r.rule_matched.is_some());
        assert_eq!(r.override_, None);
    }
}

#[test]
fn only_4xx_can_be_client_errors() {
    let body = r#"{"error":{"message":"prompt is too long"}}"#;
    assert_eq!(c(413, body).class, ErrorClass::NonRetryableClientError);
    assert_eq!(c(500, body).class, ErrorClass::ProviderError);
    assert_eq!(c(500, body).rule_matched, None);
    assert_eq!(c(529, body).class, ErrorClass::ProviderError);
}

#[test]
fn parameter_wording_only_on_400() {
    let body = r#"{"error":{"message":"x-api-key header is required"}}"#;
    assert_eq!(c(401, body).class, ErrorClass::ProviderError);
    assert_eq!(c(400, body).class, ErrorClass::NonRetryableClientError);
}

#[test]
fn statuses_without_rules() {
    let other = r#"{"error":{"type":"x","message":"something"}}"#;
    assert_eq!(c(404, other).class, ErrorClass::NotFound);
    for s in [400, 401, 403, 408, 429, 500, 502, 503, 529] {
        assert_eq!(c(s, other).class, ErrorClass::ProviderError, "{s}");
    }
    // A rule wins over the 404 default.
    let model = r#"{"error":{"message":"model not found: claude-x"}}"#;
    assert_eq!(c(404, model).class, ErrorClass::NonRetryableClientError);
}

#[test]
fn custom_rules_with_overrides() {
    let rules = vec![
        ErrorRule {
            pattern: "QUOTA EXHAUSTED".into(),
            match_kind: MatchKind::Exact,
            status: Some(429),
            class: ErrorClass::NonRetryableClientError,
            override_status: Some(402),
            override_message: Some("Your plan is used up".into()),
        },
        ErrorRule {
            pattern: "weird".into(),
            match_kind: MatchKind::Contains,
            status: None,
            class: ErrorClass::ProviderError,
            override_status: Some(200),
            override_message: Some("  ".into()),
        },
    ];
    let r = classify_http(
        429,
        r#"{"error":{"message":" quota exhausted "}}"#,
        &rules.clone().into(),
    );
    assert_eq!(r.class, ErrorClass::NonRetryableClientError);
    assert_eq!(
        r.override_,
        Some(ErrorOverride {
            status: Some(402),
            message: Some("Your plan is used up".into())
        })
    );
    assert_eq!(
        classify_http(429, "quota exhausted now", &rules.clone().into()).rule_matched,
        None,
        "exact"
    );
    assert_eq!(
        classify_http(503, "quota exhausted", &rules.clone().into()).rule_matched,
        None,
        "status"
    );
    let r = classify_http(500, "a Weird thing", &rules.clone().into());
    assert_eq!(r.rule_matched.as_deref(), Some("weird"));
    assert_eq!(
        r.override_, None,
        "invalid status and blank message are ignored"
    );
    let empty = ErrorRule {
        pattern: " ".into(),
        ..rules[1].clone()
    };
    assert!(!empty.matches(500, "anything"));
}

#[test]
fn transport_and_breaker() {
    for k in [
        TransportFailure::Connect,
        TransportFailure::Dns,
        TransportFailure::Timeout,
    ] {
        assert_eq!(classify_transport(k), ErrorClass::SystemError);
    }
    assert!(counts_for_breaker(ErrorClass::ProviderError, false));
    assert!(!counts_for_breaker(ErrorClass::SystemError, false));
    assert!(counts_for_breaker(ErrorClass::SystemError, true));
    for k in [
        ErrorClass::ClientAbort,
        ErrorClass::NonRetryableClientError,
        ErrorClass::NotFound,
    ] {
        assert!(!counts_for_breaker(k, true));
    }
    assert!(ErrorClass::NotFound.is_retryable());
    assert!(!ErrorClass::ClientAbort.is_retryable());
    assert!(!ErrorClass::NonRetryableClientError.is_retryable());
    assert_eq!(
        serde_json::to_value(ErrorClass::NotFound).unwrap(),
        "not_found"
    );
}

#[test]
fn regex_rules_match_case_insensitively_once_compiled() {
    let rule = ErrorRule {
        pattern: r"quota \d+ (exceeded|gone)".into(),
        match_kind: MatchKind::Regex,
        status: None,
        class: ErrorClass::NonRetryableClientError,
        override_status: Some(429),
        override_message: None,
    };
    assert!(rule.validate().is_ok());
    let set = ErrorRuleSet::compile(vec![rule.clone()]);
    let r = classify_http(403, "Quota 12 EXCEEDED today", &set);
    assert_eq!(r.class, ErrorClass::NonRetryableClientError);
    assert_eq!(r.override_.and_then(|o| o.status), Some(429));
    assert_eq!(
        classify_http(403, "quota x exceeded", &set).rule_matched,
        None
    );
    // A bad regex is refused at write time and dropped (reported) when compiling.
    let bad = ErrorRule {
        pattern: "(unclosed".into(),
        ..rule
    };
    assert_eq!(
        bad.validate().map_err(|e| e.field),
        Err("pattern".to_string())
    );
    let (set, dropped) = ErrorRuleSet::compile_reporting(vec![bad]);
    assert!(set.is_empty());
    assert_eq!(dropped, vec!["(unclosed".to_string()]);
}

#[test]
fn rule_validation_names_the_field() {
    let ok = ErrorRule {
        pattern: "x".into(),
        match_kind: MatchKind::Contains,
        status: Some(400),
        class: ErrorClass::ProviderError,
        override_status: None,
        override_message: None,
    };
    let field = |r: ErrorRule| r.validate().err().map(|e| e.field);
    assert_eq!(field(ok.clone()), None);
    assert_eq!(
        field(ErrorRule {
            pattern: " ".into(),
            ..ok.clone()
        })
        .as_deref(),
        Some("pattern")
    );
    assert_eq!(
        field(ErrorRule {
            status: Some(99),
            ..ok.clone()
        })
        .as_deref(),
        Some("status")
    );
    assert_eq!(
        field(ErrorRule {
            class: ErrorClass::NotFound,
            ..ok.clone()
        })
        .as_deref(),
        Some("class")
    );
    assert_eq!(
        field(ErrorRule {
            override_status: Some(302),
            ..ok.clone()
        })
        .as_deref(),
        Some("override_status")
    );
    assert_eq!(MatchKind::parse("regex").ok(), Some(MatchKind::Regex));
    assert!(MatchKind::parse("glob").is_err());
}

#[test]
fn html_error_pages_are_summarised_by_title() {
    let page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway | relay</title></head><body>"
        .to_string()
        + &"<p>lots of markup</p>".repeat(500)
        + "</body></html>";
    let m = extract_error_message(&page);
    assert_eq!(
        m,
        "upstream answered with an HTML page: 502 Bad Gateway | relay"
    );
    assert_eq!(
        extract_error_message("<html><body>oops</body></html>"),
        "upstream answered with an HTML page"
    );
    assert_eq!(
        extract_error_message("plain text error"),
        "plain text error"
    );
}

#[test]
fn oversized_client_requests_are_client_errors_without_a_rule() {
    let rules = ErrorRuleSet::default();
    for status in [413, 431] {
        assert_eq!(
            classify_http(
                status,
                "<html><title>431 Request Header Fields Too Large</title></html>",
                &rules
            )
            .class,
            ErrorClass::NonRetryableClientError,
            "{status}"
        );
    }
    assert_eq!(
        classify_http(500, "boom", &rules).class,
        ErrorClass::ProviderError
    );
}
