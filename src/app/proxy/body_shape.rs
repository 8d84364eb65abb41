//! The checks every client body passes before anything reads it: UTF-8 throughout (JSON text
//! is UTF-8, and the routing parse skips string contents without validating them) and a bound
//! on nesting (the routing parse skips unread fields iteratively, so a body nested 100,000
//! levels deep inside `messages` would otherwise reach the provider). One scan, fast on the
//! long string contents of a Claude Code body: it jumps from quote to quote with `memchr`.

/// Deepest nesting of arrays and objects accepted in a client body.
pub const MAX_DEPTH: usize = 128;

/// Why a body was refused (the client-facing message).
pub fn check(raw: &[u8]) -> Result<(), String> {
    if let Err(e) = std::str::from_utf8(raw) {
        return Err(format!(
            "request body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ));
    }
    check_depth(raw, MAX_DEPTH)
}

/// Scans structural characters outside strings; a malformed body is left to the JSON parser.
fn check_depth(raw: &[u8], max: usize) -> Result<(), String> {
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < raw.len() {
        match raw[i] {
            b'"' => {
                // Skip the string: to the next quote not escaped by a backslash.
                let mut j = i + 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &raw[j..]) {
                        None => return Ok(()),
                        Some(k) if raw[j + k] == b'\\' => j += k + 2,
                        Some(k) => {
                            j += k;
                            break;
                        }
                    }
                    if j >= raw.len() {
                        return Ok(());
                    }
                }
                i = j;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(format!("request body is nested deeper than {max} levels"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize, inside: &str) -> String {
        format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":{}{}}}]}}"#,
            "[".repeat(levels),
            "]".repeat(levels) + inside
        )
    }

    #[test]
    fn depth_counts_structure_outside_strings_only() {
        assert!(check(nested(120, "").as_bytes()).is_ok());
        let deep = check(nested(100_000, "").as_bytes()).unwrap_err();
        assert!(deep.contains("nested deeper than 128"), "{deep}");
        // Brackets inside strings, escaped quotes and backslashes do not count.
        let s = format!(
            r#"{{"a":"{}\"{}\\","b":[1]}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(check(s.as_bytes()).is_ok());
    }

    #[test]
    fn invalid_utf8_anywhere_is_refused() {
        let mut b = br#"{"model":"m","messages":[{"role":"user","content":"ok "#.to_vec();
        b.extend_from_slice(&[0xff, 0xfe]);
        b.extend_from_slice(br#""}]}"#);
        let e = check(&b).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        assert!(check("{\"a\":\"héllo ✓\"}".as_bytes()).is_ok());
    }
}
