//! Resource URIs as lenient servers might read them: percent-escapes decoded, the scheme
//! lower-cased, `.` and `..` segments resolved and repeated slashes collapsed (and a path's
//! trailing slash dropped, as a server opening the path reads it); then as a
//! WHATWG URL parser serialises that (JavaScript's `new URL`, which the TypeScript SDK looks
//! resources up by); and each without its query and fragment (the Python SDK matches a
//! template with a query expansion whatever follows the path). Resource rules are checked
//! against every reading.

use crate::digits::push_decimal;
use crate::join::push_joined;

/// Whether a URI may be judged at all: no whitespace, control characters or backslashes
/// (which servers read in too many ways), at most 2048 bytes.
pub fn is_acceptable(uri: &str) -> bool {
    (1..=2048).contains(&uri.len())
        && !uri
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

/// Whether servers' readings of a URI are beyond this module's, so it is refused: a host of
/// a special scheme with anything outside ASCII (URL parsers map Unicode in hosts to ASCII
/// and drop some of it: `int\u{ad}ernal` is `internal`) or an IPv6 literal (spelled many
/// ways), or a `file:` URI with a Windows drive letter written other than as
/// `file:///C:/path` without dot segments (`file://C:/`, `C|`, and `..` never remove it).
pub fn is_unreadable(uri: &str) -> bool {
    let d = percent_decode(uri);
    // Decoded, a backslash is as ambiguous as one sent (`url2pathname` on Windows decodes
    // `..%5Csecret` into a path step).
    if d.as_bytes().contains(&b'\\') {
        return true;
    }
    let (scheme, rest) = split_any(&d, b":");
    let rest = rest.get(1..).unwrap_or("");
    let after = rest
        .get(rest.bytes().take_while(|b| *b == b'/').count()..)
        .unwrap_or("");
    let (first, tail) = split_any(after, b"/?#");
    if scheme.eq_ignore_ascii_case("file") {
        let f = first.as_bytes();
        let drive = f.len() == 2
            && f.first().is_some_and(u8::is_ascii_alphabetic)
            && matches!(f.get(1), Some(b':' | b'|'));
        let dots = tail
            .as_bytes()
            .split(|b| matches!(b, b'/' | b'?' | b'#'))
            .any(|s| s == b"." || s == b"..");
        drive && (f.get(1) == Some(&b'|') || !rest.starts_with("///") || dots)
    } else {
        special(&scheme.to_ascii_lowercase()) && first.bytes().any(|b| b >= 0x80 || b == b'[')
    }
}

/// Whether `b` may be in a URI scheme (RFC 3986: letters, digits, `+`, `-`, `.`).
fn scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+-.".contains(&b)
}

/// Whether a scheme is one of the WHATWG URL standard's special ones (not `file`).
fn special(scheme: &str) -> bool {
    matches!(scheme, "http" | "https" | "ws" | "wss" | "ftp")
}

pub(crate) fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes every `%XX` and `%uXXXX` (repeatedly, so `%2570` is `p` too); invalid escapes stay
/// as written.
pub(crate) fn percent_decode(s: &str) -> String {
    let mut cur = s.as_bytes().to_vec();
    for _ in 0..4 {
        let mut out = Vec::with_capacity(cur.len());
        let mut i = 0;
        let mut changed = false;
        while let Some(&c) = cur.get(i) {
            if c == b'%' {
                if let (Some(h), Some(l)) = (
                    cur.get(i + 1).and_then(|&b| hex(b)),
                    cur.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    out.push(h * 16 + l);
                    i += 3;
                    changed = true;
                    continue;
                }
                // `%u006D`: IIS and .NET Framework's `UrlDecode` read a UTF-16 unit.
                let unit = cur
                    .get(i + 1..i + 6)
                    .filter(|u| u.first().is_some_and(|b| b.eq_ignore_ascii_case(&b'u')))
                    .and_then(|u| u.get(1..))
                    .and_then(|digits| {
                        digits
                            .iter()
                            .try_fold(0u32, |v, &b| Some(v * 16 + u32::from(hex(b)?)))
                    })
                    .and_then(char::from_u32);
                if let Some(ch) = unit {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    i += 6;
                    changed = true;
                    continue;
                }
            }
            out.push(c);
            i += 1;
        }
        cur = out;
        if !changed {
            break;
        }
    }
    crate::lossy::lossy(&cur).into_owned()
}

/// `path` with `.` and `..` resolved and repeated slashes collapsed, after a `/` when
/// `rooted`; a directory's trailing slash kept when `dir`.
fn resolve_path(path: &str, dir: bool, rooted: bool) -> String {
    let mut out: Vec<&str> = Vec::new();
    // A `..` past the start of a relative path climbs from the working directory, and the
    // kernel stops it at `/`: `../../../../etc/passwd` is `/etc/passwd` from most.
    let mut climbed = false;
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => climbed |= out.pop().is_none(),
            s => out.push(s),
        }
    }
    let mut p = String::from(if rooted || climbed { "/" } else { "" });
    push_joined(&mut p, &mut out.iter().copied(), "/");
    // `a/.` and `a/b/..` are the directory `a/`, as URL parsers read them.
    let is_dir = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if dir && is_dir && !out.is_empty() {
        p.push('/');
    }
    p
}

/// A path as a server opening a file or routing a request reads it (`pathlib`,
/// `os.path.normpath`, Go's `filepath.Clean`, Node's `path.resolve`, Express's non-strict
/// routes): `.` and `..` resolved, repeated and trailing slashes dropped. `None` for text
/// without a `/`, which names no path.
pub(crate) fn path_reading(path: &str) -> Option<String> {
    // Python's `.strip()` first, as the folded readings allow for.
    let path = path.trim();
    path.contains('/')
        .then(|| resolve_path(path, false, path.starts_with('/')))
}

/// A URL in an argument as the clients fetching it read it (see [`read`]): as written
/// (httpx, Go's `net/http`), and as a WHATWG parser (`fetch`) cleans it first: C0 controls
/// and spaces around it and tabs and newlines in it dropped, `\` a `/`, `%2e` and
/// ideographic full stops dots. `http://user@127.1/`, `HTTP://0x7f.0.0.1:80/x/../` and
/// `http:\\127。0。0。1` are `http://127.0.0.1/`. With `decoded`, percent-escapes are then
/// decoded too, as a server behind it may read them (after the userinfo is cut off:
/// `http://x%2F@127.0.0.1/` fetches 127.0.0.1). A URL has a special scheme (`http`,
/// `https`, `ws`, `wss`, `ftp`) or `//` after its scheme; without `decoded` (the readings a
/// `require` must hold of too), both, so that `postgres://user@db/` and `ws:chat` are read
/// as written. None for other text.
pub(crate) fn url_readings(text: &str, decoded: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Bytes up to space, as a WHATWG parser trims (Rust's `trim` keeps most C0 controls).
    let start = text.bytes().position(|b| b > b' ').unwrap_or(text.len());
    // Most text tested is no URL: it does not open with a scheme of at most 32 characters
    // (tabs and newlines in it dropped) and a `:`, so it is not copied.
    let breaks = b"\t\n\r";
    let scheme_end = text
        .bytes()
        .skip(start)
        .position(|b| !(scheme_byte(b) || breaks.contains(&b)));
    if !scheme_end.is_some_and(|n| {
        n > 0
            && text.as_bytes().get(start + n) == Some(&b':')
            && text
                .bytes()
                .skip(start)
                .take(n)
                .filter(|b| !breaks.contains(b))
                .count()
                <= 32
    }) {
        return out;
    }
    let end = text
        .bytes()
        .rposition(|b| b > b' ')
        .map_or(start, |e| e + 1);
    let trimmed = text.get(start..end).unwrap_or_default();
    let mut cleaned = String::with_capacity(trimmed.len());
    let mut chars = trimmed.char_indices();
    // A query or fragment keeps its `\\` and `%2e`.
    let mut path = true;
    while let Some((i, c)) = chars.next() {
        path &= !matches!(c, '?' | '#');
        match c {
            '\t' | '\n' | '\r' => {}
            '\\' if path => cleaned.push('/'),
            '\u{3002}' | '\u{ff61}' => cleaned.push('.'),
            '%' if path
                && trimmed
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.eq_ignore_ascii_case("2e")) =>
            {
                cleaned.push('.');
                chars.nth(1);
            }
            c => cleaned.push(c),
        }
    }
    for (t, whatwg) in [(text.trim(), false), (cleaned.as_str(), true)] {
        let Some((scheme, rest)) = t.split_once(':') else {
            continue;
        };
        let scheme = scheme.to_ascii_lowercase();
        let named = !scheme.is_empty() && scheme.bytes().all(scheme_byte);
        // WHATWG parsers clean only special URLs so (`D:\\share\x` is no URL).
        let url = match decoded {
            true => special(&scheme) || !whatwg && rest.starts_with("//"),
            false => special(&scheme) && rest.starts_with("//"),
        };
        if named && url {
            let r = read(t);
            let r = if decoded { normalize(&r) } else { r };
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// `uri` without the slashes that end its path, when more than its scheme and the slashes
/// after it are left: the same file to a server that opens the path, the same route to a
/// non-strict router (see [`path_reading`]).
fn without_trailing_slash(uri: &str) -> Option<String> {
    let (path, tail) = split_any(uri, b"?#");
    let b = path.as_bytes();
    let end = b.len() - b.iter().rev().take_while(|&&c| c == b'/').count();
    let colon = b.iter().position(|&c| c == b':').map_or(0, |i| i + 1);
    let start = colon + b.iter().skip(colon).take_while(|&&c| c == b'/').count();
    (end < b.len() && end > start).then(|| format!("{}{tail}", path.get(..end).unwrap_or("")))
}

/// The lenient reading of a URI: how servers read it (see the module's comment). Policy
/// URIs must be written this way, so that rules and requests meet in one form.
pub fn normalize(uri: &str) -> String {
    read(&percent_decode(uri))
}

/// Every reading of `uri` a resource rule is checked against: as sent, as servers read it,
/// and that without its query and fragment, each also with its segments read as a server
/// coerces a template variable ([`coerced`]) (without repeats).
pub fn readings(uri: &str) -> Vec<String> {
    readings_of(uri, true)
}

/// The readings of `uri` that name the very resource it names to some server: those of
/// [`readings`] that keep its query and fragment. Two policy URIs sharing one are one
/// resource written twice.
pub fn same_resource(uri: &str) -> Vec<String> {
    readings_of(uri, false)
}

fn readings_of(uri: &str, without_query: bool) -> Vec<String> {
    let lenient = normalize(uri);
    let mut out = vec![uri.to_string()];
    // Python's `urlparse(…).path`, Node's `URL.pathname` and Go's `url.Parse(…).Path` drop
    // a file URI's host, whatever it is: `file://evil/etc/passwd` is `/etc/passwd` to them.
    // The host ends at the first `/`, `?` or `#`: in the lenient reading, and as sent,
    // before any escape is decoded (to `urlparse`, `file://x%2Fsafe/etc/passwd` has host
    // `x%2Fsafe` and path `/etc/passwd`).
    let without_host = |u: &str| {
        u.get(..7)
            .filter(|s| s.eq_ignore_ascii_case("file://"))
            .and_then(|_| u.get(7..))
            .filter(|rest| !rest.starts_with('/'))
            .map(|rest| {
                [
                    "file:///",
                    split_any(rest, b"/?#").1.trim_start_matches('/'),
                ]
                .concat()
            })
    };
    let hostless = without_host(&lenient);
    let raw_hostless = without_host(uri).map(|h| normalize(&h));
    // A web URI without its segments' `;` parameters, which `urlparse(…).path` and Java
    // servlet containers drop: `https://h/admin;x` is `https://h/admin` to them.
    let unparameterised = special(split_any(&lenient, b":").0).then(|| {
        let (path, tail) = split_any(&lenient, b"?#");
        let mut out = String::with_capacity(lenient.len());
        for (i, segment) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(split_any(segment, b";").0);
        }
        // `..;` is a `..` once the parameter is gone: resolved again.
        normalize(&(out + tail))
    });
    for whole in std::iter::once(&lenient)
        .chain(hostless.as_ref())
        .chain(raw_hostless.as_ref())
        .chain(unparameterised.as_ref())
    {
        let cut = split_any(whole, b"?#").0;
        for r in [cut, whole.as_str()] {
            if !without_query && r.len() != whole.len() {
                continue;
            }
            // `file://docs/secret.txt/` (and `/.`, `%2F`) opens `secret.txt` to `pathlib`.
            let file = without_trailing_slash(r).unwrap_or_default();
            for r in [r.to_string(), coerced(r), file] {
                if !r.is_empty() && !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// `uri` with each `/`-separated segment after the scheme that a server coerces when a
/// template variable captures it read as the value it coerces to: pydantic (FastMCP runs a
/// template's function through `validate_call`) reads `007`, `+7` and `0_7` as the integer
/// 7, and any spelling of a UUID (upper case, no hyphens, braces, `urn:uuid:`) as one.
fn coerced(uri: &str) -> String {
    let mut out = Vec::with_capacity(uri.len());
    for (i, segment) in uri.as_bytes().split(|&c| c == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        let digits = segment.strip_prefix(b"+").unwrap_or(segment);
        let t = segment.strip_prefix(b"urn:uuid:").unwrap_or(segment);
        let t = t
            .strip_prefix(b"{")
            .and_then(|t| t.strip_suffix(b"}"))
            .unwrap_or(t);
        let hex = t.iter().filter(|&&c| c != b'-');
        if i == 0 {
            out.extend_from_slice(segment);
        } else if !digits.is_empty() && digits.iter().all(|c| c.is_ascii_digit() || *c == b'_') {
            let start = out.len();
            out.extend(
                digits
                    .iter()
                    .filter(|&&c| c != b'_')
                    .skip_while(|&&c| c == b'0'),
            );
            if out.len() == start {
                out.push(b'0');
            }
        } else if hex.clone().count() == 32 && hex.clone().all(u8::is_ascii_hexdigit) {
            for (n, c) in hex.enumerate() {
                if matches!(n, 8 | 12 | 16 | 20) {
                    out.push(b'-');
                }
                out.push(c.to_ascii_lowercase());
            }
        } else {
            out.extend_from_slice(segment);
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// For a URI template (RFC 6570), the readings of a URI it expands to; none for a URI
/// without expressions. `file:///secret{/name}` names `file:///secret/x`, which a `hide`
/// glob `file:///secret/*` matches although the template's text does not: hiding meets a
/// template under these as well as under its own readings (rules keep to the text, so
/// an allow rule naming a template still allows it under `default: deny`).
pub fn template_readings(uri: &str) -> Vec<String> {
    template_sample(uri).map_or_else(Vec::new, |sample| readings(&sample))
}

/// What a URI template expands to with each variable `x`, as its operator writes it
/// (`{/a}` is `/x`, `{?a,b}` `?a=x`, `{a}` and `{+a}` `x`). `None` when `uri` has no
/// complete expression.
fn template_sample(uri: &str) -> Option<String> {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    let mut expanded = false;
    while let Some((before, after)) = rest.split_once('{') {
        let Some((expression, tail)) = after.split_once('}') else {
            break;
        };
        out.push_str(before);
        let mut chars = expression.chars();
        let operator = chars.next();
        let first_name = || {
            let names = chars.as_str();
            let end = names.find([',', ':', '*']).unwrap_or(names.len());
            names.get(..end).unwrap_or("")
        };
        match operator {
            Some(c @ ('/' | '.' | '#')) => {
                out.push(c);
                out.push('x');
            }
            Some(c @ (';' | '?' | '&')) => {
                out.push(c);
                out.push_str(first_name());
                out.push_str("=x");
            }
            _ => out.push('x'),
        }
        rest = tail;
        expanded = true;
    }
    out.push_str(rest);
    expanded.then_some(out)
}

/// `s` split before its first byte in `set` (ASCII, so always at a character boundary).
fn split_any<'a>(s: &'a str, set: &[u8]) -> (&'a str, &'a str) {
    let at = s.bytes().position(|b| set.contains(&b)).unwrap_or(s.len());
    s.split_at_checked(at).unwrap_or((s, ""))
}

/// Digits in `radix` (none: 0), if they fit in 32 bits.
fn number(digits: &[u8], radix: u32) -> Option<u32> {
    digits.iter().try_fold(0u32, |v, &d| {
        v.checked_mul(radix)?
            .checked_add(char::from(d).to_digit(radix)?)
    })
}

/// A percent-decoded URI read leniently: the scheme and authority lower-cased, `.` and
/// `..` segments resolved, repeated slashes collapsed; and as a WHATWG URL parser
/// serialises it: for special schemes any number of slashes after the scheme,
/// `file:` paths without a host, `localhost` as no host, IPv4 addresses in hex, octal and
/// short forms, an empty path as `/`; for every scheme with an authority, userinfo dropped
/// (empty userinfo is dropped by the parser, other userinfo by servers that ignore it), an
/// empty or default port dropped, and a host's trailing dot (which DNS ignores).
fn read(decoded: &str) -> String {
    let (scheme, rest) = match split_any(decoded, b":") {
        (s, r) if !s.is_empty() && !r.is_empty() && s.bytes().all(scheme_byte) => {
            (Some(s.to_ascii_lowercase()), r.get(1..).unwrap_or(""))
        }
        _ => (None, decoded),
    };
    // 0: no default port.
    let (special, default_port) = match scheme.as_deref() {
        Some("http" | "ws") => (true, 80),
        Some("https" | "wss") => (true, 443),
        Some("ftp") => (true, 21),
        Some("file") => (true, 0),
        _ => (false, 0),
    };
    let file = special && default_port == 0;
    let slashes = rest.bytes().take_while(|b| *b == b'/').count();
    let (authority, tail) = if special && !file {
        let (a, t) = split_any(rest.get(slashes..).unwrap_or(""), b"/?#");
        (Some(a), t)
    } else if slashes >= 2 {
        let (a, t) = split_any(rest.get(2..).unwrap_or(""), b"/?#");
        (Some(a), t)
    } else if file {
        (Some(""), rest)
    } else {
        (None, rest)
    };
    let (path, query) = split_any(tail, b"?#");
    let mut out = String::with_capacity(decoded.len() + 8);
    if let Some(s) = &scheme {
        out.push_str(s);
        out.push(':');
    }
    if let Some(authority) = authority {
        out.push_str("//");
        let authority = authority.to_ascii_lowercase();
        push_url_host(&mut out, &authority, special, file, default_port);
    }
    if special || path.starts_with('/') {
        let mut resolved = resolve_path(path, true, true);
        // Python's `url2pathname` upper-cases a Windows drive letter (`/c:/x` is `C:\x`).
        if file && resolved.as_bytes().get(2) == Some(&b':') {
            if let Some(drive) = resolved.get_mut(1..2) {
                drive.make_ascii_uppercase();
            }
        }
        out.push_str(&resolved);
    } else {
        out.push_str(path);
    }
    out.push_str(query);
    out
}

/// An authority as the WHATWG parser serialises it (see [`read`]).
fn push_url_host(out: &mut String, authority: &str, special: bool, file: bool, default_port: u32) {
    let host_port = authority
        .as_bytes()
        .iter()
        .rposition(|b| *b == b'@')
        .and_then(|i| authority.get(i + 1..))
        .unwrap_or(authority);
    let hp = host_port.as_bytes();
    let (mut host, mut port, mut odd_port) = (host_port, None, "");
    if let Some(i) = hp.iter().rposition(|b| *b == b':') {
        let digits = hp.get(i + 1..).unwrap_or_default();
        let head = host_port.get(..i).unwrap_or(host_port);
        if let Some(p) = number(digits, 10) {
            host = head;
            port = (!digits.is_empty() && p != default_port).then_some(p);
        } else if head.ends_with(']') || ipv4(head).is_some() {
            // A port only Python's `int()` reads (`+80`, `8_0`, ` 80`, `٨٠`), which httpx
            // takes: the host is still read, the port kept as written.
            host = head;
            odd_port = host_port.get(i..).unwrap_or_default();
        }
    }
    // Go's `net/url` before 1.24.8 takes `[127.0.0.1]` and `[localhost]` as hosts.
    let mut literal = None;
    if let Some(h) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if !h.contains(':') {
            host = h;
        } else if let Some(pieces) = ipv6(h.split('%').next().unwrap_or(h)) {
            // A zone (`%25lo`, and curl's `%lo`) only picks an interface: Go, curl and
            // httpx connect `[::1%25lo]` to ::1, `[::ffff:127.0.0.1%25eth0]` to 127.0.0.1.
            host = "";
            match pieces {
                // An IPv4-mapped address reaches the IPv4 host.
                [0, 0, 0, 0, 0, 0xffff, hi, lo] => {
                    literal = Some(((u32::from(hi) << 16) | u32::from(lo)).to_be_bytes());
                }
                _ => push_ipv6(out, &pieces),
            }
        }
    }
    if host.len() > 1 && host.as_bytes().last() == Some(&b'.') {
        host = host.get(..host.len() - 1).unwrap_or(host);
    }
    match literal.or_else(|| ipv4(host).filter(|_| special)) {
        Some(v) => {
            for (i, byte) in v.iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u64::from(*byte));
            }
        }
        None if file && host == "localhost" => {}
        None => out.push_str(host),
    }
    if let Some(p) = port {
        out.push(':');
        push_decimal(out, u64::from(p));
    }
    out.push_str(odd_port);
}

/// An IPv6 literal's eight pieces: hex pieces of at most 16 bits (leading zeros aside),
/// `::` once for a run of zero pieces, the last two pieces perhaps written as an IPv4
/// address.
fn ipv6(h: &str) -> Option<[u16; 8]> {
    let (mut pieces, mut n, mut gap) = ([0u16; 8], 0, None);
    for part in h.split(':') {
        if part.is_empty() {
            // The empty parts of one `::` (two of them at either end).
            if *gap.get_or_insert(n) != n {
                return None;
            }
            continue;
        }
        let dotted = part.contains('.');
        let v = match dotted {
            true => u32::from_be_bytes(ipv4(part)?),
            // Any number of leading zeros: Go's `net.ParseIP` (1.19) reads `00001` as 1.
            false => u32::from(u16::try_from(number(part.as_bytes(), 16)?).ok()?),
        };
        if dotted {
            *pieces.get_mut(n)? = (v >> 16) as u16;
            n += 1;
        }
        *pieces.get_mut(n)? = v as u16;
        n += 1;
    }
    // `::` stands for one zero piece or more: the pieces after it move to the end.
    let g = match gap {
        Some(g) if n < 8 => g,
        None if n == 8 => n,
        _ => return None,
    };
    let mut out = [0u16; 8];
    for (i, p) in pieces.iter().enumerate().take(n) {
        *out.get_mut(if i < g { i } else { i + 8 - n })? = *p;
    }
    Some(out)
}

/// An IPv6 address as the WHATWG parser serialises it: `[`, pieces in lower-case hex
/// without leading zeros, the first longest run of two or more zero pieces as `::`, `]`.
fn push_ipv6(out: &mut String, pieces: &[u16; 8]) {
    let (mut best, mut best_len, mut run) = (8, 1, 0);
    for (i, p) in pieces.iter().enumerate() {
        run = if *p == 0 { run + 1 } else { 0 };
        if run > best_len {
            (best, best_len) = (i + 1 - run, run);
        }
    }
    out.push('[');
    for (i, p) in pieces.iter().enumerate() {
        if (best..best + best_len).contains(&i) {
            if i == best {
                out.push_str(if i == 0 { "::" } else { ":" });
            }
            continue;
        }
        let mut shift = 12;
        while shift > 0 && p >> shift == 0 {
            shift -= 4;
        }
        loop {
            out.push(char::from_digit(u32::from((p >> shift) & 15), 16).unwrap_or('0'));
            if shift == 0 {
                break;
            }
            shift -= 4;
        }
        if i < 7 {
            out.push(':');
        }
    }
    out.push(']');
}

/// An IPv4 host as the WHATWG parser reads it (`0x7f.1`, `0177.0.0.1`, `2130706433`);
/// `None` if it is not one.
fn ipv4(host: &str) -> Option<[u8; 4]> {
    // Every part but the last is a byte; the last fills the bytes left.
    let (mut front, mut count, mut last) = (0u64, 0u32, None::<u32>);
    for p in host.as_bytes().split(|b| *b == b'.') {
        if let Some(l) = last {
            front = (front << 8) | u64::from(u8::try_from(l).ok()?);
        }
        count += 1;
        let (digits, radix) = match p {
            [] => return None,
            [b'0', b'x' | b'X', hex @ ..] => (hex, 16),
            [b'0', octal @ ..] if !octal.is_empty() => (octal, 8),
            _ => (p, 10),
        };
        last = Some(number(digits, radix)?);
    }
    let room = 8 * 4u32.checked_sub(count.checked_sub(1)?)?;
    let last = u64::from(last?);
    if last >> room != 0 {
        return None;
    }
    u32::try_from((front << room) | last)
        .ok()
        .map(u32::to_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_read_as_a_uri_they_expand_to() {
        for (template, sample) in [
            ("file:///secret{/name}", "file:///secret/x"),
            ("file:///secret/{name}", "file:///secret/x"),
            ("file:///{+path}", "file:///x"),
            ("notes://{id}{?v,w}", "notes://x?v=x"),
            ("a://b{;p*}{&q:3}{#f}{.ext}", "a://b;p=x&q=x#x.x"),
        ] {
            assert_eq!(template_sample(template).as_deref(), Some(sample));
            assert!(template_readings(template).contains(&sample.to_string()));
        }
        for plain in ["file:///a", "file:///a{b", "file:///a}b{"] {
            assert_eq!(template_sample(plain), None, "{plain}");
            assert!(template_readings(plain).is_empty());
        }
    }

    #[test]
    fn lenient_readings() {
        assert_eq!(normalize("file:///srv/a.txt"), "file:///srv/a.txt");
        assert_eq!(normalize("FILE:///srv/../secret/x"), "file:///secret/x");
        assert_eq!(normalize("file:///%73ecret//x"), "file:///secret/x");
        assert_eq!(normalize("file:///srv/%252e%252e/secret"), "file:///secret");
        assert_eq!(
            normalize("db://Prod.Example/t/./x?q=1"),
            "db://prod.example/t/x?q=1"
        );
        assert_eq!(normalize("urn:x:y"), "urn:x:y");
        assert!(is_acceptable("file:///a"));
        assert!(!is_acceptable("file:///a b"));
        assert!(!is_acceptable("file:///a\\b"));
        assert!(!is_acceptable("file:///a\u{0}"));
        assert!(!is_acceptable(""));
    }

    #[test]
    fn url_readings() {
        let has = |uri: &str, want: &str| {
            let r = readings(uri);
            assert!(r.iter().any(|x| x == want), "{uri}: {r:?}");
        };
        // As JavaScript's `new URL(..).toString()` reads them (checked with Node).
        for (uri, want) in [
            ("file://localhost/srv/secret.txt", "file:///srv/secret.txt"),
            ("file:/srv/secret.txt", "file:///srv/secret.txt"),
            ("file:srv/secret.txt", "file:///srv/secret.txt"),
            (
                "https://internal.example:443/secret",
                "https://internal.example/secret",
            ),
            (
                "https://internal.example:0443/secret",
                "https://internal.example/secret",
            ),
            (
                "https:internal.example/secret",
                "https://internal.example/secret",
            ),
            (
                "https:/internal.example/secret",
                "https://internal.example/secret",
            ),
            (
                "https:///internal.example/secret",
                "https://internal.example/secret",
            ),
            (
                "https://@internal.example/secret",
                "https://internal.example/secret",
            ),
            (
                "https://internal.example:/secret",
                "https://internal.example/secret",
            ),
            ("http://internal.example:80", "http://internal.example/"),
            ("https://0x7f.1/x", "https://127.0.0.1/x"),
            ("http://0177.0.0.1/x", "http://127.0.0.1/x"),
            ("http://2130706433/x", "http://127.0.0.1/x"),
            ("notes://secret:", "notes://secret"),
            ("notes://user@secret", "notes://secret"),
            ("http://[::1]:80/x", "http://[::1]/x"),
            ("http://[0:0:0:0:0:0:0:1]/x", "http://[::1]/x"),
            ("http://[0::0001]:8080/x", "http://[::1]:8080/x"),
            ("http://[1:0:0:2:0:0:0:3]/", "http://[1:0:0:2::3]/"),
            ("http://[1:0:0:2:0:0:3:4]/", "http://[1::2:0:0:3:4]/"),
            ("http://[1::]/", "http://[1::]/"),
            ("http://[::]/", "http://[::]/"),
            ("http://[A:B:C:D:E:F:0:1]/", "http://[a:b:c:d:e:f:0:1]/"),
            // IPv4-mapped: the client connects to the IPv4 host.
            ("http://[::FFFF:127.0.0.1]/x", "http://127.0.0.1/x"),
            ("http://[0:0:0:0:0:ffff:7f00:1]:80/x", "http://127.0.0.1/x"),
            (
                "http://[::ffff:a9fe:a9fe]/latest",
                "http://169.254.169.254/latest",
            ),
            // Without the zone, which picks only an interface.
            ("http://[::1%25lo]/x", "http://[::1]/x"),
            ("http://[::1%eth0]:81/x", "http://[::1]:81/x"),
            ("http://[::ffff:127.0.0.1%251]/x", "http://127.0.0.1/x"),
            // Leading zeros past four digits, which Go 1.19 reads.
            ("http://[::00001]:8080/x", "http://[::1]:8080/x"),
            ("http://[::0000ffff:127.0.0.1]/x", "http://127.0.0.1/x"),
            // Ports only Python's `int()` reads, which httpx connects to.
            ("http://[0::1]:+8080/x", "http://[::1]:+8080/x"),
            ("http://2130706433:8_0/x", "http://127.0.0.1:8_0/x"),
            (
                "http://0x7f.1:\u{0668}\u{0660}/x",
                "http://127.0.0.1:\u{0668}\u{0660}/x",
            ),
        ] {
            has(uri, want);
        }
        // A file URI's host ends at its first `/`, `?` or `#` as sent, as `urlparse` reads it.
        for uri in [
            "file://evil/etc/passwd",
            "file://x%2Fsafe/etc/passwd",
            "file://x%3F/etc/passwd",
            "FILE://a%40b%2Fc/etc/passwd",
        ] {
            has(uri, "file:///etc/passwd");
        }
        for uri in [
            "https://h/admin;x",
            "https://h/admin;",
            "HTTPS://h/admin;c?q",
        ] {
            let r = readings(uri);
            assert!(
                r.iter().any(|x| x.starts_with("https://h/admin")),
                "{uri}: {r:?}"
            );
        }
        assert!(readings("https://h/a;b/admin;c?q").contains(&"https://h/a/admin?q".into()));
        for uri in [
            "https://h/public/..;/admin",
            "http://h/.;/admin",
            "https://h/;/admin",
        ] {
            let r = readings(uri);
            assert!(r.iter().any(|x| x.ends_with("://h/admin")), "{uri}: {r:?}");
        }
        assert!(!readings("file:///srv/a;b").contains(&"file:///srv/a".into()));
        // Without the query and fragment, as the Python SDK matches `notes://{name}{?v}`.
        for uri in ["notes://secret#x", "notes://secret?", "notes://secret?v=1"] {
            has(uri, "notes://secret");
        }
        assert_eq!(readings("file:///srv/a.txt"), ["file:///srv/a.txt"]);
        assert_eq!(readings("urn:x:y"), ["urn:x:y"]);
        // Not IPv4: left as a name.
        has("http://1.2.3.4.5/x", "http://1.2.3.4.5/x");
        has("http://0x1g/x", "http://0x1g/x");
        has("http://1.2.3.256/x", "http://1.2.3.256/x");
        has("http://1.2.65535/x", "http://1.2.255.255/x");
        has("http://1.2.65536/x", "http://1.2.65536/x");
        has("https://example.com./x", "https://example.com/x");
        // Not IPv6: left as written.
        for bad in [
            "http://[1:2:3:4:5:6:7:8:9]/x",
            "http://[1:2:3:4:5:6:7]/x",
            "http://[1::2::3]/x",
            "http://[10000::1]/x",
            "http://[::g]/x",
            "http://[1:2:3:4:5:6:7::8]/x",
        ] {
            has(bad, bad);
        }
        // `a/.` and `a/b/..` are the directory `a/`, and a server opening that path (or
        // routing it non-strictly) reads it as `a`.
        has("https://h/admin/.", "https://h/admin/");
        has("https://h/admin/x/..", "https://h/admin/");
        for uri in [
            "file://docs/secret.txt/",
            "file://docs/secret.txt/.",
            "file://docs/secret.txt%2F",
            "file://docs/secret.txt//",
            "file://docs/x/../secret.txt/",
        ] {
            has(uri, "file://docs/secret.txt");
        }
        has("https://h/admin/?q=1", "https://h/admin?q=1");
        has("https://h/admin/?q=1", "https://h/admin");
        for root in ["file:///", "https://h/", "notes://a/", "urn:x/"] {
            let r = readings(root);
            assert!(r.iter().all(|x| x.len() + 1 >= root.len()), "{root}: {r:?}");
        }
        assert_eq!(
            path_reading("/etc//./x/../passwd/").as_deref(),
            Some("/etc/passwd")
        );
        assert_eq!(
            path_reading("x/../etc/passwd/").as_deref(),
            Some("etc/passwd")
        );
        assert_eq!(path_reading("/").as_deref(), Some("/"));
        assert_eq!(path_reading("passwd"), None);
        assert_eq!(
            path_reading("../../../etc/passwd").as_deref(),
            Some("/etc/passwd")
        );
        assert_eq!(
            path_reading("./x/../../etc/passwd").as_deref(),
            Some("/etc/passwd")
        );
        // Beyond these readings: refused.
        for unreadable in [
            "https://int\u{ad}ernal.example/x",
            "https://int%C2%ADernal.example/x",
            "https://\u{ff49}nternal.example/x",
            "http://[0::1]/x",
            "file://C:/Windows/x",
            "file:///C|/Windows/x",
            "file:C|/Windows/x",
            "file:///C:/../Windows/x",
        ] {
            assert!(is_unreadable(unreadable), "{unreadable}");
        }
        for fine in [
            "file:///C:/Windows/x",
            "file:///srv/x",
            "notes://ünïcode",
            "https://h.example/ü",
            "urn:x:y",
        ] {
            assert!(!is_unreadable(fine), "{fine}");
        }
        assert!(readings("x").len() <= 5);
    }
}
