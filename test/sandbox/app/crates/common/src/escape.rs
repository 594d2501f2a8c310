//! Escaping for the tiny bits of JSON and HTML the services emit.

use std::fmt::Write;

/// `s` as a quoted JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` with the HTML special characters replaced by entities.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Secrets shorter than this are not redacted: replacing e.g. "x" would mangle every message,
/// and our messages are built not to contain secrets in the first place (this is a backstop).
pub const MIN_REDACT_LEN: usize = 4;

/// Replaces every occurrence of `secret` in `msg` with `***`.
pub fn redact(msg: &str, secret: &str) -> String {
    if secret.len() < MIN_REDACT_LEN { msg.to_string() } else { msg.replace(secret, "***") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_specials() {
        assert_eq!(json_str("v1"), "\"v1\"");
        assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(json_str("é"), "\"é\"");
    }

    #[test]
    fn html_escapes_specials() {
        assert_eq!(html("<b>&\"'</b>"), "&lt;b&gt;&amp;&quot;&#39;&lt;/b&gt;");
    }

    #[test]
    fn redact_hides_secret() {
        assert_eq!(redact("auth failed for s3cret!", "s3cret"), "auth failed for ***!");
        assert_eq!(redact("nothing", ""), "nothing");
        assert_eq!(redact("user fixture", "x"), "user fixture");
    }
}
