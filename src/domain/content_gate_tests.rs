use super::*;
use crate::domain::convert::dispatch;
use crate::domain::format::ClientFormat;

fn kind(ct: Option<&str>, body: &str) -> Option<&'static str> {
    inspect_full_body(ct, body.as_bytes()).map(|f| f.kind.name())
}

#[test]
fn full_bodies_that_are_not_answers_are_named() {
    assert_eq!(
        kind(Some("application/json"), "  \n"),
        Some("fake_200_empty_body")
    );
    assert_eq!(
        kind(Some("text/html; charset=utf-8"), "Bad gateway"),
        Some("fake_200_html")
    );
    assert_eq!(
        kind(None, "<!DOCTYPE html><html>502</html>"),
        Some("fake_200_html")
    );
    assert_eq!(
        kind(Some("text/plain"), "upstream connect error"),
        Some("fake_200_not_json")
    );
    assert_eq!(
        kind(
            None,
            r#"{"error":{"message":"quota exhausted","type":"relay_error"}}"#
        ),
        Some("fake_200_json_error")
    );
    assert_eq!(
        kind(None, r#"{"error":"no channel available"}"#),
        Some("fake_200_json_error")
    );
    assert_eq!(
        kind(
            None,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        ),
        Some("fake_200_json_error")
    );
    assert_eq!(
        kind(
            None,
            r#"{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"boom"}}"#
        ),
        Some("fake_200_response_failed")
    );
}

#[test]
fn real_answers_pass_whatever_their_text_says() {
    // Model text that talks about errors or HTML is never read.
    let claude = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"{\"error\": \"<html>\"}"}],"usage":{"input_tokens":1,"output_tokens":1}}"#;
    assert_eq!(kind(Some("application/json"), claude), None);
    let responses =
        r#"{"id":"resp_1","object":"response","status":"completed","error":null,"output":[]}"#;
    assert_eq!(kind(None, responses), None);
    let chat = r#"{"id":"c1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"error"}}]}"#;
    assert_eq!(kind(None, chat), None);
    let gemini_array = r#"[{"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}]"#;
    assert_eq!(kind(None, gemini_array), None);
    assert_eq!(kind(None, r#"{"error":null,"error2":1}"#), None);
    assert_eq!(kind(None, r#"{"error":{}}"#), None);
}

#[test]
fn details_quote_the_upstream_error_and_are_capped() {
    let f = inspect_full_body(
        None,
        br#"{"error":{"message":"quota exhausted","type":"relay_error"}}"#,
    )
    .unwrap();
    assert_eq!(f.detail, "relay_error: quota exhausted");
    let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(5000));
    let f = inspect_full_body(None, long.as_bytes()).unwrap();
    assert!(f.detail.chars().count() <= MAX_DETAIL_CHARS + 1);
}

fn gate_for(format: ClientFormat) -> StreamGate {
    StreamGate::new(
        dispatch::stream_to_claude(format),
        format == ClientFormat::Claude,
    )
}

const MESSAGE_START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"x\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n";

#[test]
fn claude_stream_is_held_until_the_first_delta() {
    let mut g = gate_for(ClientFormat::Claude);
    assert_eq!(g.push(MESSAGE_START.as_bytes()), GateVerdict::Hold);
    assert_eq!(
        g.push(b"event: ping\ndata: {\"type\":\"ping\"}\n\n"),
        GateVerdict::Hold
    );
    assert_eq!(
        g.push(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
        GateVerdict::Hold
    );
    assert_eq!(
        g.push(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"),
        GateVerdict::Release
    );
}

#[test]
fn a_tool_call_opening_is_content() {
    let mut g = gate_for(ClientFormat::Claude);
    let v = g.push(format!("{MESSAGE_START}event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{{}}}}}}\n\n").as_bytes());
    assert_eq!(v, GateVerdict::Release);
}

#[test]
fn an_error_first_fails_in_every_provider_format() {
    let cases: [(ClientFormat, &str); 4] = [
        (
            ClientFormat::Claude,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        ),
        (
            ClientFormat::OpenAi,
            "data: {\"error\":{\"message\":\"no channel\",\"type\":\"relay_error\"}}\n\n",
        ),
        (
            ClientFormat::Gemini,
            "data: {\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}\n\n",
        ),
        (
            ClientFormat::Response,
            "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\",\"sequence_number\":1}\n\n",
        ),
    ];
    for (format, body) in cases {
        let mut g = gate_for(format);
        match g.push(body.as_bytes()) {
            GateVerdict::Fail(f) => assert_eq!(f.kind, Fake200Kind::StreamError, "{format:?}"),
            other => panic!("{format:?}: {other:?}"),
        }
    }
}

#[test]
fn a_failed_responses_stream_is_named() {
    let mut g = gate_for(ClientFormat::Response);
    let created = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"r\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[]}}\n\n";
    assert_eq!(g.push(created.as_bytes()), GateVerdict::Hold);
    let failed = "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"id\":\"r\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n";
    match g.push(failed.as_bytes()) {
        GateVerdict::Fail(f) => {
            assert_eq!(f.kind.name(), "fake_200_response_failed");
            assert_eq!(f.detail, "server_error: boom");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stream_that_ends_before_content_is_empty() {
    let mut g = gate_for(ClientFormat::Claude);
    assert_eq!(g.push(MESSAGE_START.as_bytes()), GateVerdict::Hold);
    match g.ended() {
        GateVerdict::Fail(f) => assert_eq!(f.kind.name(), "empty_stream"),
        other => panic!("{other:?}"),
    }
    let mut g = gate_for(ClientFormat::OpenAi);
    assert_eq!(
        g.push(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"),
        GateVerdict::Hold
    );
    assert!(matches!(g.ended(), GateVerdict::Fail(_)));
}

#[test]
fn converted_streams_release_on_their_first_text() {
    let mut g = gate_for(ClientFormat::OpenAi);
    assert_eq!(
        g.push(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n"),
        GateVerdict::Release
    );
    let mut g = gate_for(ClientFormat::Gemini);
    assert_eq!(
        g.push(b"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hi\"}]},\"index\":0}]}\n\n"),
        GateVerdict::Release
    );
}

#[test]
fn the_prebuffer_is_bounded() {
    let mut g = gate_for(ClientFormat::Claude);
    assert_eq!(g.push(MESSAGE_START.as_bytes()), GateVerdict::Hold);
    let mut last = GateVerdict::Hold;
    for _ in 0..MAX_HELD_EVENTS {
        last = g.push(b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
        if last != GateVerdict::Hold {
            break;
        }
    }
    assert_eq!(last, GateVerdict::Release);
    let mut g = gate_for(ClientFormat::Claude);
    let comment = format!(": {}\n", "k".repeat(MAX_HELD_BYTES));
    assert_eq!(g.push(comment.as_bytes()), GateVerdict::Release);
}

#[test]
fn unreadable_streams_fail_when_converting_and_pass_when_passing_through() {
    let mut strict = gate_for(ClientFormat::OpenAi);
    assert!(matches!(
        strict.push(b"data: {not json\n\n"),
        GateVerdict::Fail(f) if f.kind == Fake200Kind::MalformedStream
    ));
    let mut lenient = StreamGate::new(dispatch::stream_to_claude(ClientFormat::OpenAi), true);
    assert_eq!(lenient.push(b"data: {not json\n\n"), GateVerdict::Release);
}
