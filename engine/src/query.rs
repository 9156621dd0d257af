//! A request's query string as a server speaking JSON-RPC over HTTP GET reads it. Such a
//! server takes the message's `method` and `params` (and `jsonrpc`, `id`) from the query,
//! and the most lenient ones merge query members into a body's message, so a call written
//! there reaches the server unjudged whatever the body holds. MCP clients never name these
//! members in a query (the 2024-11-05 transport adds only a session id), so a request whose
//! query does is refused, body or not.

use crate::fold::alias_key;

/// JSON-RPC members and the `tools/call`, `prompts/get` and `resources/read` params a
/// lenient server could take from a query.
const MEMBERS: [&str; 6] = ["jsonrpc", "method", "params", "name", "arguments", "uri"];

/// What a request's query says to a lenient server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// The first parameter that names a JSON-RPC or MCP member, as a lenient server reads
    /// names: percent-escapes decoded, compared like argument keys (`fold::alias_chars`:
    /// case, compatibility forms, whitespace, invisible characters and ASCII punctuation), a
    /// bracket or dot suffix (`params[name]`, `params.name`) taken as the member it belongs
    /// to, leading brackets dropped, and `+` as the space form decoders make of it.
    pub member: Option<&'static str>,
    /// The session a server of the 2024-11-05 transport finds by the query: the value of a
    /// parameter whose name reads as `session_id` (the Python SDK's `session_id`, `sessionId`
    /// in the TypeScript SDK's examples), read as Python's `UUID(hex=...)` reads it
    /// ([`python_uuid`]).
    pub session: Option<Vec<u8>>,
    /// More than one parameter names a session (servers take the first, the last or all).
    pub sessions_repeated: bool,
}

/// Reads the query of `path` (a request's `:path`). The work is linear in the path, which
/// Envoy's header limits bound.
pub fn read(path: &[u8]) -> Query {
    if !path.iter().any(|&c| matches!(c, b'?' | b'%' | b';')) {
        return Query::default();
    }
    read_query(path)
}

// Apart from the check above, so that the usual request (no query) stays cheap for its caller.
#[inline(never)]
fn read_query(path: &[u8]) -> Query {
    let decode =
        |text: &[u8]| crate::uri::percent_decode(&crate::lossy::lossy(text)).replace('+', " ");
    let split = |text: &[u8]| -> Vec<(Vec<u8>, Vec<u8>)> {
        text.split(|&c| matches!(c, b'?' | b'&' | b';'))
            .skip(1)
            .map(|pair| {
                let end = pair.iter().position(|&c| c == b'=').unwrap_or(pair.len());
                let (name, value) = pair.split_at(end);
                (name.to_vec(), value.get(1..).unwrap_or(&[]).to_vec())
            })
            .collect()
    };
    // Decoded before it is split, as the least careful servers do: `%3F` then starts a query
    // and `%26` a parameter. What precedes the first separator is the path; `;` parameters
    // in the path count too. And split before each name is decoded, as parsers do: a name
    // `%3Dmethod` is `=method` to them, which the first reading takes for a value.
    let mut pairs = split(decode(path).as_bytes());
    let raw = split(path);
    let mut query = Query::default();
    let mut sessions = 0;
    for (name, value) in &pairs {
        if names_session(name) {
            sessions += 1;
            query.session = Some(python_uuid(value));
        }
    }
    query.sessions_repeated = sessions > 1;
    pairs.extend(
        raw.iter()
            .map(|(name, _)| (decode(name).into_bytes(), Vec::new())),
    );
    query.member = pairs.iter().find_map(|(name, _)| {
        readings(name).find_map(|key| MEMBERS.into_iter().find(|m| key == *m))
    });
    query
}

/// The alias keys a lenient server may read parameter `name` as: the member a bracket or
/// dot suffix belongs to (`params[name]`), taken from the first part that is not empty, as
/// `qs` and Rack drop leading brackets (`[method]`); the whole name, as PHP makes `_` of
/// dots and key-casing middleware drops punctuation (`me.thod`, `_method`); and each of
/// those cut at a NUL, as PHP's C strings end there (`method%00x` is `method`).
fn readings(name: &[u8]) -> impl Iterator<Item = String> + '_ {
    let first = name
        .split(|&c| matches!(c, b'[' | b']' | b'.'))
        .find(|part| !part.is_empty())
        .unwrap_or(&[]);
    [first, name].into_iter().flat_map(|n| {
        let cut = n.split(|&c| c == 0).next().unwrap_or(&[]);
        // Cut at ASCII bytes, so still UTF-8.
        [n, cut].map(|n| alias_key(std::str::from_utf8(n).unwrap_or("")))
    })
}

/// Whether parameter `name` names the session.
fn names_session(name: &[u8]) -> bool {
    readings(name).any(|key| key == "sessionid")
}

/// The digits of a session id as Python's `UUID(hex=...)` reads them (`urn:uuid:`, braces,
/// hyphens, whitespace, `+` and `_` skipped, case and leading zeros ignored, decimal digits
/// of any script): its last 32 hex digits, lower case, without leading zeros (the `d` of
/// `uuid:` is one). Text Python refuses may share the reading of one it accepts; that only
/// counts more calls against that session.
fn python_uuid(text: &[u8]) -> Vec<u8> {
    let mut digits = Vec::with_capacity(40);
    for c in crate::lossy::lossy(text).chars() {
        let d = c
            .to_digit(16)
            .or_else(|| crate::fold::decimal_digit(c).map(u32::from));
        digits.extend(d.and_then(|d| char::from_digit(d, 16)).map(|h| h as u8));
    }
    let last = digits.get(digits.len().saturating_sub(32)..).unwrap_or(&[]);
    let start = last.iter().position(|&d| d != b'0').unwrap_or(last.len());
    last.get(start..).unwrap_or(&[]).to_vec()
}

#[cfg(test)]
mod tests {
    use super::read;

    fn member_in_query(path: &[u8]) -> Option<&'static str> {
        read(path).member
    }

    fn session_in_query(path: &[u8]) -> Result<Option<Vec<u8>>, ()> {
        let q = read(path);
        if q.sessions_repeated {
            Err(())
        } else {
            Ok(q.session)
        }
    }

    #[test]
    fn a_session_in_the_query_is_read_as_python_reads_a_uuid() {
        let id = "0123456789abcdef0123456789abcdef";
        let plain = session_in_query(format!("/messages/?session_id={id}").as_bytes());
        let plain = plain.unwrap().unwrap();
        for path in [
            "/messages/?session_id=0123456789ABCDEF0123456789ABCDEF",
            "/messages/?session_id=01234567-89ab-cdef-0123-456789abcdef",
            "/messages/?session_id=%7B01234567-89ab-cdef-0123-456789abcdef%7D",
            "/messages/?session_id=urn:uuid:0123456789abcdef0123456789abcdef",
            "/messages/?x=1&Session-Id=0123456789abcdef0123456789abcdef",
            "/messages/?sessionId=0123456789abcdef0123456789abcdef",
            "/messages/?session_id=%2B123456789abcdef0123456789abcdef",
            "/messages/?session_id=+123456789abcdef0123456789abcdef",
            "/messages/?session_id=%D9%A0123456789abcdef0123456789abcdef",
        ] {
            let read = session_in_query(path.as_bytes()).unwrap();
            assert_eq!(read.as_deref(), Some(plain.as_slice()), "{path}");
        }
        let other = session_in_query(b"/messages/?session_id=123456789abcdef0123456789abcdee");
        assert_ne!(other.unwrap().as_deref(), Some(plain.as_slice()));
        assert_eq!(session_in_query(b"/mcp").unwrap(), None);
        assert_eq!(session_in_query(b"/mcp?tenant=a").unwrap(), None);
        assert!(session_in_query(b"/messages/?session_id=a&sessionId=b").is_err());
        assert_ne!(
            session_in_query(b"/messages/?session_id=nope").unwrap(),
            Some(plain)
        );
    }

    #[test]
    fn members_in_the_query_are_found_as_a_lenient_server_reads_them() {
        for (path, member) in [
            ("/mcp?jsonrpc=2.0&method=tools/call&id=1", "jsonrpc"),
            ("/mcp?id=1&method=tools%2Fcall", "method"),
            ("/mcp?%6Dethod=x", "method"),
            ("/mcp?%256Dethod=x", "method"),
            ("/mcp?METHOD=x", "method"),
            ("/mcp?%20method%00=x", "method"),
            ("/mcp?\u{ff4d}ethod=x", "method"),
            ("/mcp?params[name]=cache_delete", "params"),
            ("/mcp?params.arguments.key=x", "params"),
            ("/mcp?a=1;name=cache_delete", "name"),
            ("/messages?sessionId=abc&arguments", "arguments"),
            ("/mcp?uri=file:///etc/passwd", "uri"),
            ("/mcp%3Fmethod=x", "method"),
            ("/mcp?a=b%26method%3Dx", "method"),
            ("/mcp?na+me=cache_delete", "name"),
            ("/mcp?jsonrpc+=2.0", "jsonrpc"),
            ("/mcp;name=cache_delete", "name"),
            // Leading brackets, which `qs` and Rack drop, and punctuation around the name.
            ("/mcp?%5Bmethod%5D=tools/call", "method"),
            ("/mcp?[params][name]=cache_cas", "params"),
            ("/mcp?]method=x", "method"),
            ("/mcp?method]=x", "method"),
            ("/mcp?[[method]]=x", "method"),
            ("/mcp?_method=x", "method"),
            ("/mcp?me.thod=x", "method"),
            ("/mcp?x=1&__name__=cache_delete", "name"),
            ("/mcp?.arguments.key=x", "arguments"),
            ("/mcp?%u006Dethod=x", "method"),
            ("/mcp?%U006E%u0061me=x", "name"),
            // PHP's C strings end at a NUL: `method%00x` is `method`.
            ("/mcp?method%00x=tools%2Fcall", "method"),
            ("/mcp?name%00x=cache_delete", "name"),
            ("/mcp?arguments%00junk=x", "arguments"),
            // Split before it is decoded, a name `%3Dmethod` is `=method`.
            ("/mcp?%3Dmethod=tools/call", "method"),
            ("/mcp?%3Dparams[name]=cache_delete", "params"),
            ("/mcp?me%3Dthod=x", "method"),
        ] {
            assert_eq!(member_in_query(path.as_bytes()), Some(member), "{path}");
        }
    }

    #[test]
    fn queries_clients_send_pass() {
        for path in [
            "/mcp",
            "/mcp?",
            "/messages?sessionId=6f1c",
            "/messages/?session_id=6f1c",
            "/mcp?tenant=a&methods=x&named=y",
            "/mcp?x[method]=a&filter.name=b&[tenant]=c",
            "/tools%2Fcall",
        ] {
            assert_eq!(member_in_query(path.as_bytes()), None, "{path}");
        }
    }
}
