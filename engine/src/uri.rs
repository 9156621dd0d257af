//! Resource URIs as a lenient server might read them: percent-escapes decoded, the scheme
//! lower-cased, `.` and `..` segments resolved and repeated slashes collapsed. Resource
//! rules are checked against both the URI as sent and this reading.

/// Whether a URI may be judged at all: no whitespace, control characters or backslashes
/// (which servers read in too many ways), at most 2048 bytes.
pub fn is_acceptable(uri: &str) -> bool {
    (1..=2048).contains(&uri.len())
        && !uri
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

pub(crate) fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes every `%XX` (repeatedly, so `%2570` is `p` too); invalid escapes stay as written.
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
            }
            out.push(c);
            i += 1;
        }
        cur = out;
        if !changed {
            break;
        }
    }
    String::from_utf8_lossy(&cur).into_owned()
}

fn resolve_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = String::from("/");
    p.push_str(&out.join("/"));
    if path.ends_with('/') && !out.is_empty() {
        p.push('/');
    }
    p
}

/// The lenient reading of a URI.
pub fn normalize(uri: &str) -> String {
    let decoded = percent_decode(uri);
    let (scheme, rest) = match decoded.split_once(':') {
        Some((s, r))
            if !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')) =>
        {
            (Some(s.to_ascii_lowercase()), r.to_string())
        }
        _ => (None, decoded.clone()),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(i) => (
                Some(after.get(..i).unwrap_or("").to_ascii_lowercase()),
                after.get(i..).unwrap_or("").to_string(),
            ),
            None => (Some(after.to_ascii_lowercase()), String::new()),
        },
        None => (None, rest),
    };
    let (path, query) = match path.find(['?', '#']) {
        Some(i) => (
            path.get(..i).unwrap_or("").to_string(),
            path.get(i..).unwrap_or("").to_string(),
        ),
        None => (path, String::new()),
    };
    let path = if path.starts_with('/') {
        resolve_path(&path)
    } else {
        path
    };
    let mut out = String::new();
    if let Some(s) = scheme {
        out.push_str(&s);
        out.push(':');
    }
    if let Some(a) = authority {
        out.push_str("//");
        out.push_str(&a);
    }
    out.push_str(&path);
    out.push_str(&query);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
