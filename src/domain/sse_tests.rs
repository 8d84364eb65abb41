use super::*;

fn ev(event: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        event: event.map(str::to_string),
        data: data.to_string(),
        id: None,
        retry: None,
    }
}

fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.push(c).unwrap());
    }
    out.extend(p.finish().unwrap());
    out
}

/// A stream using every feature: BOM, CRLF/CR/LF, comments, multi-line data, ids, retry,
/// a field without colon, no space after the colon, non-ASCII text.
const STREAM: &str = "\u{feff}: hello comment\r\n\
event: message_start\r\n\
data: {\"type\":\"message_start\"}\r\n\
\r\n\
event:ping\rdata:{}\r\r\
data: line one\n\
data:  two spaces\n\
data\n\
id: 42\n\
retry: 3000\n\
unknown: field\n\
\n\
data: héllo wörld ✓ 😀\r\n\r\n\
event: only-event-no-data\n\n\
data: last\n\n";

fn expected() -> Vec<SseEvent> {
    vec![
        ev(Some("message_start"), "{\"type\":\"message_start\"}"),
        ev(Some("ping"), "{}"),
        SseEvent {
            event: None,
            data: "line one\n two spaces\n".into(),
            id: Some("42".into()),
            retry: Some(3000),
        },
        ev(None, "héllo wörld ✓ 😀"),
        ev(None, "last"),
    ]
}

#[test]
fn parses_whole_stream() {
    assert_eq!(parse_chunks(&[STREAM.as_bytes()]), expected());
}

#[test]
fn every_single_split_point_gives_the_same_events() {
    let bytes = STREAM.as_bytes();
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        assert_eq!(parse_chunks(&[a, b]), expected(), "split at {i}");
    }
}

#[test]
fn byte_by_byte_gives_the_same_events() {
    let chunks: Vec<&[u8]> = STREAM.as_bytes().chunks(1).collect();
    assert_eq!(parse_chunks(&chunks), expected());
}

#[test]
fn random_multi_splits_give_the_same_events() {
    let bytes = STREAM.as_bytes();
    let mut state = 0x1234_5678_u64;
    for _ in 0..2_000 {
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = ((state >> 33) as usize % 9).min(rest.len());
            let (a, b) = rest.split_at(n);
            chunks.push(a);
            rest = b;
        }
        assert_eq!(parse_chunks(&chunks), expected());
    }
}

#[test]
fn cr_then_lf_in_next_chunk_is_one_line_break() {
    assert_eq!(
        parse_chunks(&[b"data: a\r", b"\n\r", b"\n"]),
        vec![ev(None, "a")]
    );
    // A lone CR followed later by a line is two line breaks, not one.
    assert_eq!(parse_chunks(&[b"data: a\r", b"\r"]), vec![ev(None, "a")]);
    assert_eq!(
        parse_chunks(&[b"data: a\r", b"", b"\ndata: b\n\n"]),
        vec![ev(None, "a\nb")]
    );
}

#[test]
fn bom_only_stripped_at_stream_start() {
    assert_eq!(
        parse_chunks(&[b"\xEF\xBB", b"\xBFdata: x\n\n"]),
        vec![ev(None, "x")]
    );
    // A BOM later is part of the field name, so the line is an unknown field.
    assert_eq!(
        parse_chunks(&[b"data: x\n\n\xEF\xBB\xBFdata: y\n\n"]),
        vec![ev(None, "x")]
    );
}

#[test]
fn colon_space_stripped_once_and_empty_data_dispatches() {
    assert_eq!(parse_chunks(&[b"data:   x\n\n"]), vec![ev(None, "  x")]);
    assert_eq!(parse_chunks(&[b"data:\n\n"]), vec![ev(None, "")]);
    assert_eq!(parse_chunks(&[b"data\ndata\n\n"]), vec![ev(None, "\n")]);
    assert_eq!(parse_chunks(&[b"event: x\n\n: only comment\n\n"]), vec![]);
}

#[test]
fn bad_id_and_retry_are_ignored() {
    let out = parse_chunks(&[b"id: a\0b\nretry: 12a\ndata: x\n\n"]);
    assert_eq!(out, vec![ev(None, "x")]);
}

#[test]
fn unterminated_last_event_is_flushed_on_finish() {
    assert_eq!(
        parse_chunks(&[b"data: a\n\ndata: b"]),
        vec![ev(None, "a"), ev(None, "b")]
    );
    assert_eq!(
        parse_chunks(&[b"data: a\n\nevent: x\ndata: b\n"]),
        vec![ev(None, "a"), ev(Some("x"), "b")]
    );
    assert_eq!(parse_chunks(&[b""]), vec![]);
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    assert_eq!(
        parse_chunks(&[b"data: a\xFFb\n\n"]),
        vec![ev(None, "a\u{FFFD}b")]
    );
}

#[test]
fn oversized_event_is_an_error() {
    let mut p = SseParser::with_max_event_bytes(16);
    assert_eq!(
        p.push(b"data: 0123456789\n\n").unwrap(),
        vec![ev(None, "0123456789")]
    );
    let err = p.push(b"data: 0123456789\ndata: 0123456789\n").unwrap_err();
    assert_eq!(err, SseError::EventTooLarge { limit: 16 });
    assert_eq!(p.push(b"\n"), Err(err.clone()), "stays failed");
    assert_eq!(p.finish(), Err(err));
    // A long line without any terminator is caught too.
    let mut p = SseParser::with_max_event_bytes(16);
    assert!(p.push(&[b'a'; 10]).is_ok());
    assert!(p.push(&[b'a'; 10]).is_err());
}
