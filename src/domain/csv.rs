//! CSV text for exports: RFC 4180 quoting, plus a leading `'` on text that a spreadsheet would
//! read as a formula (`=`, `+`, `-`, `@`, tab, carriage return), since exported fields (model
//! names, user agents, error messages) come from clients.

/// Appends one field, quoted when it holds a comma, quote or line break.
pub fn push_field(out: &mut String, value: &str) {
    let formula = value
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'))
        && value.parse::<f64>().is_err();
    let needs_quotes = formula || value.contains([',', '"', '\n', '\r']);
    if !needs_quotes {
        out.push_str(value);
        return;
    }
    out.push('"');
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends a whole row and its line end (`\r\n`).
pub fn push_row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, f);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[&str]) -> String {
        let mut s = String::new();
        push_row(&mut s, fields.iter().copied());
        s
    }

    #[test]
    fn quoting_and_formulas() {
        assert_eq!(row(&["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(
            row(&["x,y", "say \"hi\"", "l1\nl2"]),
            "\"x,y\",\"say \"\"hi\"\"\",\"l1\nl2\"\r\n"
        );
        assert_eq!(
            row(&["=SUM(A1)", "@cmd", "-1.5", "+2"]),
            "\"'=SUM(A1)\",\"'@cmd\",-1.5,+2\r\n"
        );
    }
}
