//! MCP names. Tool names are 1 to 128 characters of `A-Z a-z 0-9 _ . -`; methods also use
//! `/`. Anything else is refused outright rather than guessed at: a name that equals a
//! policy name only after NFKC normalisation, or with control characters or whitespace
//! removed, necessarily has a character outside these sets. The one exception is a name of
//! other visible ASCII (`git/commit`, `github:create_issue`: servers register them, the SDKs
//! only warn) that the policy lists exactly: the operator named it.

use crate::join::push_joined;
use std::borrow::Cow;

/// The longest tool or method name.
pub const MAX_NAME_LEN: usize = 128;

#[inline(always)]
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// `s` ASCII-lower-cased, borrowed when it has no upper-case letter (the usual case on the
/// request path): how names that match case-insensitively are compared.
pub fn ascii_lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Whether `s` is a valid MCP tool name.
pub fn is_tool_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len()) && s.bytes().all(is_name_byte)
}

/// Whether `s` is a name a policy may list exactly although it is not a valid tool name:
/// 1 to 128 characters of visible ASCII other than `*`.
pub fn is_listable_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic() && c != b'*')
}

/// Whether `s` is a plausible JSON-RPC method name for MCP.
pub fn is_method_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len()) && s.bytes().all(|c| is_name_byte(c) || c == b'/')
}

/// A valid name, lower-cased on the stack: the key policy lookups use (names match
/// ASCII-case-insensitively).
#[derive(Clone, Copy)]
pub struct NameKey {
    buf: [u8; MAX_NAME_LEN],
    len: usize,
}

impl NameKey {
    /// The lookup key of a valid tool or method name, `None` for anything else.
    pub fn new(name: &str) -> Option<NameKey> {
        if !is_method_name(name) {
            return None;
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        for (dst, src) in buf.iter_mut().zip(name.bytes()) {
            *dst = src.to_ascii_lowercase();
        }
        Some(NameKey {
            buf,
            len: name.len(),
        })
    }

    /// The letters and digits of `name` alone, ASCII lower-cased: `Tools.Call` and
    /// `tools/call` are `toolscall`, `cache-cas` and `cacheCas` are `cachecas` (what a
    /// router or registry ignoring separators looks a name up by). `None` for a name over
    /// [`MAX_NAME_LEN`] bytes.
    pub fn letters(name: &str) -> Option<NameKey> {
        if name.len() > MAX_NAME_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        let mut len = 0;
        for c in name.bytes().filter(u8::is_ascii_alphanumeric) {
            *buf.get_mut(len)? = c.to_ascii_lowercase();
            len += 1;
        }
        Some(NameKey { buf, len })
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The lower-cased name.
    pub fn as_str(&self) -> &str {
        // Lower-cased ASCII is UTF-8.
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

/// The methods Toolgate judges or filters, each with its letters alone.
const JUDGED_METHODS: [(&str, &[u8]); 11] = [
    ("tools/call", b"toolscall"),
    ("tools/list", b"toolslist"),
    ("resources/read", b"resourcesread"),
    ("resources/list", b"resourceslist"),
    ("resources/templates/list", b"resourcestemplateslist"),
    ("prompts/get", b"promptsget"),
    ("prompts/list", b"promptslist"),
    ("completion/complete", b"completioncomplete"),
    ("resources/subscribe", b"resourcessubscribe"),
    ("resources/unsubscribe", b"resourcesunsubscribe"),
    ("subscriptions/listen", b"subscriptionslisten"),
];

/// The method a lenient router could take `method` for. A method Toolgate judges is
/// recognised in any ASCII case with any separators between its words, or none:
/// `tools_call`, `Tools.Call` and `toolsCall` reach `tools/call` in a router that maps
/// methods onto handler names. Any other method is ASCII lower-cased with slashes at either
/// end trimmed and runs of slashes collapsed (`/Tools//Call/` is `tools/call`). `None` for
/// a name that is not a valid method name.
pub fn canonical_method(method: &str) -> Option<Cow<'_, str>> {
    // Nearly every method is one of these, written canonically.
    if let Some((judged, _)) = JUDGED_METHODS.iter().find(|(m, _)| *m == method) {
        return Some(Cow::Borrowed(judged));
    }
    if !is_method_name(method) {
        return None;
    }
    let letters = NameKey::letters(method)?;
    if let Some((judged, _)) = JUDGED_METHODS
        .iter()
        .find(|(_, l)| *l == letters.as_bytes())
    {
        return Some(Cow::Borrowed(judged));
    }
    let b = method.as_bytes();
    // Nearly every other method is written canonically already.
    let canonical = !b.iter().any(u8::is_ascii_uppercase)
        && b.first() != Some(&b'/')
        && b.last() != Some(&b'/')
        && !b.windows(2).any(|w| w == b"//");
    if canonical {
        return Some(Cow::Borrowed(method));
    }
    let key = NameKey::new(method)?;
    let mut out = String::with_capacity(method.len());
    push_joined(
        &mut out,
        &mut key.as_str().split('/').filter(|p| !p.is_empty()),
        "/",
    );
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names() {
        assert!(is_tool_name("cache_cas"));
        assert!(is_tool_name("a.b-c_D9"));
        assert!(!is_tool_name(""));
        assert!(!is_tool_name(&"a".repeat(129)));
        assert!(is_tool_name(&"a".repeat(128)));
        for bad in [
            "cache cas",
            " cache_cas",
            "cache_cas\u{0}",
            "ｃache_cas",
            "cache/cas",
            "cache_cas\u{200b}",
            "cache:cas",
        ] {
            assert!(!is_tool_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn methods_in_canonical_form() {
        for (method, canonical) in [
            ("tools/call", "tools/call"),
            ("/Tools//CALL/", "tools/call"),
            ("notifications/initialized", "notifications/initialized"),
            ("logging/setLevel", "logging/setlevel"),
            // Separators a router mapping methods onto handler names would drop.
            ("tools_call", "tools/call"),
            ("Tools.Call", "tools/call"),
            ("toolsCall", "tools/call"),
            ("tools-call", "tools/call"),
            ("TOOLSCALL", "tools/call"),
            ("tools/_call", "tools/call"),
            ("resources_templates_list", "resources/templates/list"),
        ] {
            assert_eq!(
                canonical_method(method).as_deref(),
                Some(canonical),
                "{method}"
            );
        }
        assert_eq!(canonical_method("tools/call "), None);
    }

    #[test]
    fn keys_fold_ascii_case() {
        assert_eq!(
            NameKey::new("Tools/CALL").map(|k| k.as_str().to_string()),
            Some("tools/call".into())
        );
        assert!(NameKey::new("tools/call ").is_none());
        assert!(is_method_name("notifications/initialized"));
        assert!(!is_method_name("tools/call\t"));
    }
}
