use serde_json::json;

use super::*;
use crate::domain::sse::SseParser;

const STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01X","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":87}}

event: message_stop
data: {"type":"message_stop"}

"#;

fn tap(stream: &str) -> ClaudeStreamTap {
    let mut p = SseParser::new();
    let mut t = ClaudeStreamTap::new();
    for ev in p.push(stream.as_bytes()).unwrap() {
        t.on_event(&ev);
    }
    t
}

#[test]
fn documented_stream() {
    let t = tap(STREAM);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 12,
            output_tokens: 87,
            cache_read_tokens: 2048,
            ..Usage::default()
        }
    );
    assert_eq!(t.stop_reason(), Some("tool_use"));
    assert_eq!(t.model(), Some("claude-x"));
    assert!(t.completed() && t.saw_usage() && !t.saw_error());
    assert_eq!(t.usage().total_input_tokens(), 2060);
}

#[test]
fn delta_overrides_placeholders_and_keeps_absent_fields() {
    let mut t = ClaudeStreamTap::new();
    t.on_json(None, &json!({"type":"message_start","message":{"usage":{
        "input_tokens":0,"cache_read_input_tokens":5,"cache_creation_input_tokens":7,"output_tokens":1}}}));
    t.on_json(
        None,
        &json!({"type":"message_delta","delta":{"stop_reason":null},
        "usage":{"output_tokens":10,"input_tokens":100,"cache_read_input_tokens":null}}),
    );
    let u = t.usage();
    assert_eq!(u.input_tokens, 100);
    assert_eq!(u.output_tokens, 10);
    assert_eq!(u.cache_read_tokens, 5, "null does not overwrite");
    assert_eq!(u.cache_creation_5m_tokens, 7);
    assert_eq!(t.stop_reason(), None);
    t.on_json(None, &json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":20}}));
    assert_eq!(t.usage().output_tokens, 20, "cumulative, not added");
    assert_eq!(t.stop_reason(), Some("end_turn"));
    assert!(!t.completed());
}

#[test]
fn ttl_split_from_cache_creation_breakdown() {
    let body = json!({"usage":{"input_tokens":3,"output_tokens":4,"cache_creation_input_tokens":300,
        "cache_read_input_tokens":9,
        "cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200}}});
    assert_eq!(
        usage_from_claude_response(&body),
        Some(Usage {
            input_tokens: 3,
            output_tokens: 4,
            cache_creation_5m_tokens: 100,
            cache_creation_1h_tokens: 200,
            cache_read_tokens: 9
        })
    );
}

#[test]
fn total_counts_as_5m_without_a_useful_breakdown() {
    for cc in [
        json!(null),
        json!({}),
        json!({"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0}),
    ] {
        let body = json!({"usage":{"cache_creation_input_tokens":50,"cache_creation":cc}});
        let u = usage_from_claude_response(&body).unwrap();
        assert_eq!(
            (u.cache_creation_5m_tokens, u.cache_creation_1h_tokens),
            (50, 0)
        );
    }
}

#[test]
fn error_event_is_recorded() {
    let t = tap(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    assert!(t.saw_error());
    assert_eq!(t.error_message(), Some("overloaded_error: Overloaded"));
    assert!(!t.saw_usage());
    assert_eq!(t.usage(), Usage::default());
}

#[test]
fn event_name_used_when_data_has_no_type() {
    let t = tap(
        "event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":5}}\n\n",
    );
    assert_eq!(t.stop_reason(), Some("max_tokens"));
    assert_eq!(t.usage().output_tokens, 5);
}

#[test]
fn garbage_is_ignored() {
    let mut t =
        tap("data: [DONE]\n\ndata: {not json\n\ndata: 5\n\ndata: {\"type\":\"message_start\"}\n\n");
    t.on_json(
        None,
        &json!({"type":"message_delta","usage":{"output_tokens":-3,"input_tokens":"x"}}),
    );
    t.on_json(None, &json!({"type":"message_delta","usage":[1]}));
    assert_eq!(t.usage(), Usage::default());
    assert_eq!(usage_from_claude_response(&json!({"usage": 3})), None);
    assert_eq!(usage_from_claude_response(&json!([])), None);
}

#[test]
fn tap_skips_content_events_but_reads_every_event_that_matters() {
    // Content deltas (even ones mentioning usage in their text) change nothing; the type in
    // the data wins over the event name; without a string type the event name decides.
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m1\",\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\"usage\\\":{\\\"output_tokens\\\":99}\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n",
        "event: message_stop\ndata: {\"type\":5}\n\n",
    );
    let t = tap(stream);
    assert_eq!(t.model(), Some("m1"));
    assert_eq!((t.usage().input_tokens, t.usage().output_tokens), (7, 5));
    assert_eq!(t.stop_reason(), Some("end_turn"));
    assert!(
        t.completed(),
        "a non-string type falls back to the event name"
    );
    let t = tap(
        "event: error\ndata: {\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n",
    );
    assert!(t.saw_error());
    assert_eq!(t.error_message(), Some("overloaded_error: busy"));
}
