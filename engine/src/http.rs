//! What the request head says before the body arrives: whether to inspect at all, and the
//! refusals that need no body (content type, encoding, declared size, repeated headers).

use crate::subslice::offset_in;
use crate::words::le_word;
use std::borrow::Cow;

/// Request headers as the host gives them: lower-case names, raw values, in order.
pub type HeaderList<'a> = [(&'a [u8], &'a [u8])];

/// Whether `a` and `b` (of one length) hold the same bytes, compared eight at a time: Envoy
/// hands header names over in lower case, so most matches are exact, and a slice compare
/// would be a call to a byte-at-a-time `memcmp` in the module.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    wa.by_ref()
        .zip(wb.by_ref())
        .all(|(x, y)| le_word(x) == le_word(y))
        && wa
            .remainder()
            .iter()
            .zip(wb.remainder())
            .all(|(x, y)| x == y)
}

/// Whether header names `a` and `b` are one name as the most lenient server reads names:
/// ASCII case aside, and `_` as `-`. CGI and WSGI servers turn both `Mcp-Name` and
/// `Mcp_Name` into `HTTP_MCP_NAME`, and Envoy passes names with underscores by default.
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && (same_bytes(a, b) || a.iter().zip(b).all(|(&x, &y)| fold(x) == fold(y)))
}

/// Every value of header `name` (lower case).
pub fn values<'a>(
    headers: &'a HeaderList<'a>,
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |(k, _)| same_name(k, name.as_bytes()))
        .map(|(_, v)| *v)
}

/// Whether a byte can be part of a credential: only visible ASCII. Servers split and trim
/// credentials on more than ASCII spaces (Node's `\s` over a Latin-1 value takes 0xA0,
/// Python's `str.split` takes 0x1C-0x1F and 0x85, Go's `strings.Fields` takes U+3000), so
/// every other byte separates words.
fn in_word(b: &u8) -> bool {
    b.is_ascii_graphic()
}

/// A grant header's credential as servers compare credentials, so one credential spelled
/// several ways, or sent in another grant header, counts as one grant (empty: none).
///
/// For `Authorization` and its kin (`scheme`): the first word after the scheme, whatever
/// the scheme (`Bearer tok`, `bearer tok` and `Basic tok` are all `tok`; the TypeScript
/// SDK's bearer check reads `Bearer tok x` as `tok`), or the one word of a bare token, as
/// servers that take a bare token read it: as an `X-Api-Key: tok` is. Other grant headers:
/// the value without separators around it. Spellings a server would not accept may share
/// a grant with the one it accepts; that only counts more calls against it.
///
/// Trailing `=` are dropped: base64 padding that verifiers accept or not at will (PyJWT
/// takes a JWT with `=` after its signature as the same token). A word of base64 text (each
/// `.`-separated part of a JWT) has the bits its last character carries beyond its bytes
/// cleared and `+` `/` read as `-` `_`: `atob`, and so JavaScript's `jose`, decodes every
/// such spelling to the same bytes.
///
/// `Err` when readings differ past counting: after the scheme's word, more words joined by
/// anything but spaces (the TypeScript SDK takes all of `tok\tx` after `Bearer `, and
/// `atob` drops the tab: `tokx`, while the first word is `tok`); a JWT with characters
/// outside base64 (see [`canonical_base64`]).
pub fn credential(value: &[u8], scheme: bool) -> Result<Cow<'_, [u8]>, &'static str> {
    let word = if scheme {
        let mut words = value.split(|b| !in_word(b)).filter(|w| !w.is_empty());
        let first = words.next().unwrap_or_default();
        let word = words.next().unwrap_or(first);
        if let Some(after) = offset_in(value, word).map(|o| o + word.len()) {
            let rest = value.get(after..).unwrap_or_default();
            let end = rest.iter().rposition(in_word).map_or(0, |e| e + 1);
            let between = rest.get(..end).unwrap_or_default();
            if between.iter().any(|b| !in_word(b) && *b != b' ') {
                return Err("a credential with words joined by other than spaces; send one word");
            }
        }
        if first.eq_ignore_ascii_case(b"basic") && word != first {
            // Python joins the words after the scheme, Node's `split(' ')[1]` takes the
            // first: each a reading of its own, so more than one is refused.
            if words.next().is_some() {
                return Err("a Basic credential of more than one word; send one word");
            }
            return basic_credential(word);
        }
        word
    } else {
        let start = value.iter().position(in_word).unwrap_or(value.len());
        let end = value.iter().rposition(in_word).map_or(start, |e| e + 1);
        value.get(start..end).unwrap_or_default()
    };
    let end = word.iter().rposition(|b| *b != b'=').map_or(0, |e| e + 1);
    canonical_base64(word.get(..end).unwrap_or_default())
}

/// Where `word` (a slice of `value`) ends in `value`.
/// The value of a base64 digit, either alphabet.
fn base64_digit(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// A `Basic` credential as its decoders read it: without padding, without a lone last
/// digit, and without the bits its last character carries beyond its bytes (Go's
/// `BasicAuth` and Python ignore them).
/// Anything but the standard alphabet is refused: Python skips other characters, so
/// `dXNl.cjpw` would be another spelling of `dXNlcjpw` to it.
fn basic_credential(text: &[u8]) -> Result<Cow<'_, [u8]>, &'static str> {
    const REFUSED: &str =
        "a Basic credential that is not standard base64 (A-Z a-z 0-9 + /, = only at its end)";
    let end = text.iter().rposition(|b| *b != b'=').map_or(0, |e| e + 1);
    let mut digits = text.get(..end).unwrap_or_default();
    // A lone last digit holds no byte: Node's decoder drops it.
    if digits.len() % 4 == 1 {
        digits = digits.get(..digits.len() - 1).unwrap_or_default();
    }
    if !digits
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Err(REFUSED);
    }
    let mut out = Vec::with_capacity(digits.len());
    push_without_spare_bits(digits, &mut out);
    Ok(Cow::Owned(out))
}

/// Appends base64 `part` in the URL alphabet, with the bits its last character carries
/// beyond its bytes cleared.
fn push_without_spare_bits(part: &[u8], out: &mut Vec<u8>) {
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let spare = match part.len() % 4 {
        2 => 0b1111,
        3 => 0b11,
        _ => 0,
    };
    let last = part.len().saturating_sub(1);
    for (i, &b) in part.iter().enumerate() {
        let mut d = base64_digit(b).unwrap_or(0);
        if i == last {
            d &= !spare;
        }
        out.push(*URL.get(usize::from(d)).unwrap_or(&b'A'));
    }
}

/// One spelling of a JWT (a JWS or a JWE in compact form): the URL alphabet, and no bits
/// beyond the bytes in each part. Other text is left as it is. `Err` for a JWT with
/// anything else in it: Python's verifiers and decrypters (PyJWT before 2.11, Authlib,
/// python-jose, jwcrypto) decode with `urlsafe_b64decode`, which skips other characters
/// and stops at padding, so `sig=junk` and `si~g` would each be another spelling of one
/// signature, and so another grant. Likewise for a part with a lone last digit, which
/// holds no byte (Node's `Buffer` drops it) and which no encoder writes.
fn canonical_base64(word: &[u8]) -> Result<Cow<'_, [u8]>, &'static str> {
    // Only a JWT (three parts, or five for a JWE, a JSON header first, `{"`, `{ ` or `{`
    // and a line end): short keys people choose, like `team-1` and `team-2`, differ in
    // just those bits.
    let dots = word.iter().filter(|&&b| b == b'.').count();
    let jwt = (word.starts_with(b"ey") || word.starts_with(b"ew")) && (dots == 2 || dots == 4);
    if !jwt {
        return Ok(Cow::Borrowed(word));
    }
    const REFUSED: &str = "a JWT with characters outside the base64url alphabet, = before its end, or a part of the wrong length; send it as issued";
    if !word.iter().all(|&b| b == b'.' || base64_digit(b).is_some()) {
        return Err(REFUSED);
    }
    let mut out = Vec::with_capacity(word.len());
    for (n, part) in word.split(|&b| b == b'.').enumerate() {
        if part.len() % 4 == 1 {
            return Err(REFUSED);
        }
        if n > 0 {
            out.push(b'.');
        }
        push_without_spare_bits(part, &mut out);
    }
    Ok(if out == word {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(out)
    })
}

/// A header that must appear at most once appeared several times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeated;

/// What one pass over a head found of one header name.
#[derive(Clone, Copy, Default)]
struct Seen<'a> {
    first: Option<&'a [u8]>,
    count: u32,
}

/// The headers a decision reads, found in one pass over the head: looking each name up
/// on its own would scan a dozen headers a dozen times.
pub struct HeadIndex<'a> {
    seen: Vec<Seen<'a>>,
}

impl<'a> HeadIndex<'a> {
    /// Indexes `headers` by `names` (lower case; position `i` answers for `names[i]`).
    pub fn new(headers: &'a HeaderList<'a>, names: &[String]) -> HeadIndex<'a> {
        let mut seen = vec![Seen::default(); names.len()];
        for (k, v) in headers {
            for (s, n) in seen.iter_mut().zip(names) {
                // The length first, here: most pairs differ in it, and no call is made.
                if k.len() == n.len() && same_name(k, n.as_bytes()) {
                    s.first = s.first.or(Some(v));
                    s.count += 1;
                }
            }
        }
        HeadIndex { seen }
    }

    /// The first value of name `i`.
    pub fn first(&self, i: usize) -> Option<&'a [u8]> {
        self.seen.get(i).and_then(|s| s.first)
    }

    /// Whether name `i` appears more than once.
    pub fn repeated(&self, i: usize) -> bool {
        self.seen.get(i).is_some_and(|s| s.count > 1)
    }

    /// The single value of name `i`: `Ok(None)` if absent, `Err(Repeated)` if repeated.
    pub fn single(&self, i: usize) -> Result<Option<&'a [u8]>, Repeated> {
        if self.repeated(i) {
            Err(Repeated)
        } else {
            Ok(self.first(i))
        }
    }
}

/// The value of a pseudo-header (`:method`, `:path`), empty when absent. Their names are
/// lower case on every HTTP version Envoy speaks, so they are matched exactly.
pub fn pseudo_header<'a>(headers: &HeaderList<'a>, name: &str) -> &'a [u8] {
    headers
        .iter()
        .find(|(k, _)| *k == name.as_bytes())
        .map_or(&[], |(_, v)| *v)
}

/// Methods that carry no JSON-RPC when they have no body.
fn is_passive_method(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"DELETE" | b"OPTIONS")
}

/// Whether a request must be inspected: everything but a body-less GET, HEAD, DELETE or
/// OPTIONS (a lenient server may read JSON-RPC from any method, or from a GET's body).
pub fn must_inspect(method: &[u8], has_body: bool) -> bool {
    has_body || !is_passive_method(method)
}

pub fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or(&[])
}

/// Whether a Content-Type is JSON in UTF-8: `application/json`, optionally with
/// `charset=utf-8` or its alias `utf8` (case-insensitive, optionally quoted) and nothing
/// else.
pub fn is_json_content_type(v: &[u8]) -> bool {
    let mut parts = v.split(|&c| c == b';');
    let Some(mime) = parts.next() else {
        return false;
    };
    if !trim(mime).eq_ignore_ascii_case(b"application/json") {
        return false;
    }
    parts.all(|p| {
        let p = trim(p);
        if p.is_empty() {
            return true;
        }
        let Some(eq) = p.iter().position(|&c| c == b'=') else {
            return false;
        };
        let (name, value) = (
            trim(p.get(..eq).unwrap_or(&[])),
            trim(p.get(eq + 1..).unwrap_or(&[])),
        );
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        name.eq_ignore_ascii_case(b"charset")
            && (value.eq_ignore_ascii_case(b"utf-8") || value.eq_ignore_ascii_case(b"utf8"))
    })
}

/// Whether every coding listed is one of `allowed`.
pub fn only_codings(v: &[u8], allowed: &[&[u8]]) -> bool {
    v.split(|&c| c == b',')
        .map(trim)
        .all(|t| t.is_empty() || allowed.iter().any(|a| t.eq_ignore_ascii_case(a)))
}

/// A declared Content-Length, if present and well formed.
pub fn content_length(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(trim(v)).ok()?.parse().ok()
}

/// The client IP of an Envoy `source.address` (`ip:port`, `[v6]:port`, or a bare address).
pub fn address_without_port(addr: &[u8]) -> &[u8] {
    if let Some(rest) = addr.strip_prefix(b"[") {
        if let Some(end) = rest.iter().position(|&c| c == b']') {
            return rest.get(..end).unwrap_or(rest);
        }
        return addr;
    }
    let colons = addr.iter().filter(|&&c| c == b':').count();
    if colons == 1 {
        if let Some(i) = addr.iter().position(|&c| c == b':') {
            return addr.get(..i).unwrap_or(addr);
        }
    }
    addr
}

/// A header value printable in a log line: ASCII graphic characters, at most 64.
pub fn loggable(v: &[u8]) -> Cow<'_, str> {
    // Request ids arrive on every request and are nearly always printable: borrowed.
    let head = v.get(..64).unwrap_or(v);
    if head.iter().all(u8::is_ascii_graphic) {
        if let Ok(s) = std::str::from_utf8(head) {
            return Cow::Borrowed(s);
        }
    }
    head.iter()
        .map(|&c| {
            if c.is_ascii_graphic() {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_match_as_a_lenient_server_reads_them() {
        // Shorter than a word, one word and a remainder, two words exactly.
        for (a, b) in [
            ("upgrade", "upgrade"),
            ("Upgrade", "upgrade"),
            ("content-encoding", "content-encoding"),
            ("Content_Encoding", "content-encoding"),
            ("mcp-session-id", "MCP_SESSION_ID"),
            ("x-request-id", "x_request_id"),
        ] {
            assert!(same_name(a.as_bytes(), b.as_bytes()), "{a} {b}");
        }
        for (a, b) in [
            ("upgradx", "upgrade"),
            ("content-encodinx", "content-encoding"),
            ("xontent-encoding", "content-encoding"),
            ("mcp-session-ix", "mcp-session-id"),
            ("content-type", "content-typ"),
            ("content.type", "content-type"),
        ] {
            assert!(!same_name(a.as_bytes(), b.as_bytes()), "{a} {b}");
        }
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; charset=utf8",
            " application/json ; ",
        ] {
            assert!(is_json_content_type(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/json-rpc",
            "application/jsonx",
            "application/x-www-form-urlencoded",
            "application/json; charset=utf-16",
            "application/json; charset=latin1",
            "application/json; boundary=x",
            "application/json, text/plain",
            "multipart/form-data",
        ] {
            assert!(!is_json_content_type(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn codings_lengths_addresses() {
        assert!(only_codings(b"identity", &[b"identity"]));
        assert!(!only_codings(b"gzip", &[b"identity"]));
        assert!(!only_codings(b"identity, br", &[b"identity"]));
        assert!(only_codings(b"chunked", &[b"chunked", b"identity"]));
        assert_eq!(content_length(b" 42 "), Some(42));
        assert_eq!(content_length(b"4x"), None);
        assert_eq!(address_without_port(b"10.1.2.3:5555"), b"10.1.2.3");
        assert_eq!(address_without_port(b"[::1]:443"), b"::1");
        assert_eq!(address_without_port(b"::1"), b"::1");
        assert!(must_inspect(b"POST", false));
        assert!(must_inspect(b"post", false));
        assert!(must_inspect(b"GET", true));
        assert!(!must_inspect(b"GET", false));
        assert!(!must_inspect(b"DELETE", false));
        assert_eq!(loggable(b"abc\n\x01d"), "abc??d");
    }
}
