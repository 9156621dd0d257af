//! A request's query string as a server speaking JSON-RPC over HTTP GET reads it. Such a
//! server takes the message's `method` and `params` (and `jsonrpc`, `id`) from the query,
//! and the most lenient ones merge query members into a body's message, so a call written
//! there reaches the server unjudged whatever the body holds. MCP clients never name these
//! members in a query (the 2024-11-05 transport adds only a session id), so a request whose
//! query does is refused, body or not.

use crate::fold::alias_chars;

/// JSON-RPC members and the `tools/call`, `prompts/get` and `resources/read` params a
/// lenient server could take from a query.
const MEMBERS: [&str; 6] = ["jsonrpc", "method", "params", "name", "arguments", "uri"];

/// The first query parameter of `path` (a request's `:path`) that names a JSON-RPC or MCP
/// member as a lenient server reads names: percent-escapes decoded, compared like argument
/// keys (`fold::alias_chars`: case, compatibility forms, whitespace, invisible characters
/// and ASCII punctuation), a bracket or dot suffix (`params[name]`, `params.name`) taken as
/// the member it belongs to, leading brackets dropped, and `+` as the space form decoders
/// make of it. `None` when there is none, or no query. The work is linear in the path,
/// which Envoy's header limits bound.
pub fn member_in_query(path: &[u8]) -> Option<&'static str> {
    if !path.iter().any(|&c| matches!(c, b'?' | b'%' | b';')) {
        return None;
    }
    read_query(path)
}

// Apart from the check above, so that the usual request (no query) stays cheap for its caller.
#[inline(never)]
fn read_query(path: &[u8]) -> Option<&'static str> {
    // Decoded before it is split, as the least careful servers do: `%3F` then starts a query
    // and `%26` a parameter. This reading finds every name that splitting first would. What
    // precedes the first separator is the path; `;` parameters in the path count too.
    let decoded = crate::uri::percent_decode(&crate::lossy::lossy(path)).replace('+', " ");
    decoded
        .as_bytes()
        .split(|&c| matches!(c, b'?' | b'&' | b';'))
        .skip(1)
        .find_map(|pair| {
            let end = pair.iter().position(|&c| c == b'=').unwrap_or(pair.len());
            let name = pair.get(..end)?;
            // The member a bracket or dot suffix belongs to (`params[name]`), taken from the
            // first part that is not empty, as `qs` and Rack drop leading brackets
            // (`[method]`); and the whole name, as PHP makes `_` of dots and key-casing
            // middleware drops punctuation (`me.thod`, `_method`).
            let first = name
                .split(|&c| matches!(c, b'[' | b']' | b'.'))
                .find(|part| !part.is_empty())
                .unwrap_or(&[]);
            [first, name].into_iter().find_map(|n| {
                // Cut at ASCII bytes, so still UTF-8.
                let n = std::str::from_utf8(n).ok()?;
                MEMBERS
                    .into_iter()
                    .find(|m| alias_chars(n.chars()).eq(alias_chars(m.chars())))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::member_in_query;

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
