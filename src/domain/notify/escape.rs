//! Escaping text for each platform's markup, so a hostile provider or user name cannot break
//! the message, inject links or mention everyone.

/// Telegram MarkdownV2: every one of `_*[]()~\`>#+-=|{}.!` and `\` gets a backslash.
pub fn telegram_markdown_v2(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '_' | '*'
                | '['
                | ']'
                | '('
                | ')'
                | '~'
                | '`'
                | '>'
                | '#'
                | '+'
                | '-'
                | '='
                | '|'
                | '{'
                | '}'
                | '.'
                | '!'
                | '\\'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Slack mrkdwn: `&`, `<` and `>` become entities (so `<!channel>` and links cannot be formed).
pub fn slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown for WeCom, DingTalk, Feishu and Discord: markup characters get a backslash and
/// line breaks become spaces, so a value stays one plain line.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '~' | '|' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("@\u{200b}"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_escapes_every_reserved_character() {
        assert_eq!(
            telegram_markdown_v2("a_b*[c](http://x.y)!~`>#+-=|{}.\\"),
            "a\\_b\\*\\[c\\]\\(http://x\\.y\\)\\!\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\\\"
        );
        assert_eq!(telegram_markdown_v2("中文 ok"), "中文 ok");
    }

    #[test]
    fn slack_and_markdown_neutralise_markup() {
        assert_eq!(
            slack("<!channel> & <x|y>"),
            "&lt;!channel&gt; &amp; &lt;x|y&gt;"
        );
        assert_eq!(
            markdown("**a**\n[l](u) @all"),
            "\\*\\*a\\*\\* \\[l\\](u) @\u{200b}all"
        );
    }
}
