//! Control-character checks for admin text fields. A NUL is refused by PostgreSQL's `text` but
//! kept by SQLite, and a CR or LF in a secret or URL breaks every upstream request later, so
//! both backends refuse them up front with a 400 naming the field.

use super::error::ValidationError;

/// Refuses any control character (C0, DEL, C1): for one-line fields such as names, tags,
/// secrets and URLs.
pub fn single_line(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters (such as NUL, CR or LF)",
        ));
    }
    Ok(())
}

/// Refuses control characters other than line feed, carriage return and tab: for free text
/// such as descriptions and notes.
pub fn multi_line(field: &str, value: &str) -> Result<(), ValidationError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ValidationError::new(
            field,
            "must not contain control characters (such as NUL)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_refuses_nul_cr_lf_and_names_the_field() {
        for bad in ["a\0b", "key\r\nx-evil: 1", "tab\there", "del\u{7f}"] {
            let err = single_line("api_key", bad).unwrap_err();
            assert_eq!(err.field, "api_key");
        }
        assert!(single_line("name", "ok name – ünïcode").is_ok());
    }

    #[test]
    fn multi_line_allows_newlines_but_not_nul() {
        assert!(multi_line("note", "line 1\nline 2\r\n\tend").is_ok());
        assert!(multi_line("note", "bad\0").is_err());
    }
}
