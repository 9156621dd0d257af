//! Decoding the content of a validated JSON string (the bytes between its quotes).

use std::borrow::Cow;

/// The raw content of a JSON string that the validator accepted: escapes are well formed
/// and surrogates paired, so decoding cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a str,
}

impl<'a> JsonStr<'a> {
    /// Wraps validated string content. Only the validator and navigation create these.
    pub(crate) fn new(raw: &'a str) -> Self {
        JsonStr { raw }
    }

    /// The content as written, escapes included.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the content has no escape sequences (the raw text is the value).
    pub fn is_plain(&self) -> bool {
        !self.raw.as_bytes().contains(&b'\\')
    }

    /// The decoded characters.
    pub fn chars(&self) -> Chars<'a> {
        Chars { rest: self.raw }
    }

    /// The decoded string, borrowed when there is nothing to unescape.
    pub fn decode(&self) -> Cow<'a, str> {
        if self.is_plain() {
            Cow::Borrowed(self.raw)
        } else {
            Cow::Owned(self.chars().collect())
        }
    }

    /// Whether the decoded string equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        // Decoding never lengthens: the lengths decide most comparisons without a scan.
        match self.raw.len().cmp(&s.len()) {
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.raw == s && self.is_plain(),
            std::cmp::Ordering::Greater => !self.is_plain() && self.chars().eq(s.chars()),
        }
    }
}

/// Decoded characters of a validated JSON string.
#[derive(Clone)]
pub struct Chars<'a> {
    rest: &'a str,
}

fn hex4(s: &str) -> Option<u32> {
    let digits = s.as_bytes().get(..4)?;
    digits
        .iter()
        .try_fold(0, |v, &d| Some((v << 4) | char::from(d).to_digit(16)?))
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let mut it = self.rest.chars();
        let c = it.next()?;
        if c != '\\' {
            self.rest = it.as_str();
            return Some(c);
        }
        let esc = it.next();
        let after = it.as_str();
        let (decoded, rest) = match esc {
            Some('"') => ('"', after),
            Some('\\') => ('\\', after),
            Some('/') => ('/', after),
            Some('b') => ('\u{8}', after),
            Some('f') => ('\u{c}', after),
            Some('n') => ('\n', after),
            Some('r') => ('\r', after),
            Some('t') => ('\t', after),
            Some('u') => decode_unicode_escape(after),
            // Unreachable on validated input; never silently drop the rest.
            _ => (char::REPLACEMENT_CHARACTER, after),
        };
        self.rest = rest;
        Some(decoded)
    }
}

/// Decodes the `XXXX` after `\u` (and a following low surrogate escape).
fn decode_unicode_escape(s: &str) -> (char, &str) {
    let Some(hi) = hex4(s) else {
        return (char::REPLACEMENT_CHARACTER, s);
    };
    let after = s.get(4..).unwrap_or("");
    if (0xD800..0xDC00).contains(&hi) {
        if let Some(lo) = after.strip_prefix("\\u").and_then(hex4) {
            if (0xDC00..0xE000).contains(&lo) {
                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                let rest = after.get(6..).unwrap_or("");
                return (
                    char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER),
                    rest,
                );
            }
        }
        return (char::REPLACEMENT_CHARACTER, after);
    }
    (
        char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER),
        after,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes() {
        let s = JsonStr::new(r#"cache\u005fcas \"q\" \\ \/ \n\t \ud83d\ude00"#);
        assert_eq!(s.decode(), "cache_cas \"q\" \\ / \n\t \u{1f600}");
        assert!(s.chars().count() > 0);
        assert!(!s.is_plain());
    }

    #[test]
    fn plain_is_borrowed() {
        let s = JsonStr::new("tools/call");
        assert!(matches!(s.decode(), Cow::Borrowed("tools/call")));
        assert!(s.eq_str("tools/call"));
        assert!(JsonStr::new(r"tools\/call").eq_str("tools/call"));
    }

    #[test]
    fn comparison_is_by_decoded_text() {
        let cases = [
            (r"a\\b", "a\\b", true),
            (r"a\\b", r"a\\b", false),
            (r"a\b", "a\u{8}", true),
            (r"\u0061", "a", true),
            (r"\u0061", r"\u0061", false),
            ("abc", "ab", false),
            ("ab", "abc", false),
            (r"\ud83d\ude00", "\u{1f600}", true),
            ("", "", true),
        ];
        for (raw, other, equal) in cases {
            let s = JsonStr::new(raw);
            assert_eq!(s.eq_str(other), equal, "{raw:?} vs {other:?}");
            assert_eq!(s.decode() == other, equal, "{raw:?} vs {other:?}");
        }
    }
}
