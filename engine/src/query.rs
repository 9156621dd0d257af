//! A request's query string as a server speaking JSON-RPC over HTTP GET reads it. Such a
//! server takes the message's `method` and `params` (and `jsonrpc`, `id`) from the query,
//! and the most lenient ones merge query members into a body's message, so a call written
//! there reaches the server unjudged whatever the body holds. MCP clients never name these
//! members in a query (the 2024-11-05 transport adds only a session id), so a request whose
//! query does is refused, body or not.

use crate::fold::fold_eq;

/// JSON-RPC members and the `tools/call`, `prompts/get` and `resources/read` params a
/// lenient server could take from a query.
const MEMBERS: [&str; 6] = ["jsonrpc", "method", "params", "name", "arguments", "uri"];

/// The first query parameter of `path` (a request's `:path`) that names a JSON-RPC or MCP
/// member as a lenient server reads names: percent-escapes decoded, folded like keys (case,
/// compatibility forms, whitespace and invisible characters), and a bracket or dot suffix
/// (`params[name]`, `params.name`) taken as the member it belongs to, and `+` as the space
/// form decoders make of it. `None` when there is
/// none, or no query. The work is linear in the path, which Envoy's header limits bound.
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
            let end = pair
                .iter()
                .position(|&c| matches!(c, b'=' | b'[' | b'.'))
                .unwrap_or(pair.len());
            // Cut at ASCII bytes, so still UTF-8.
            let name = std::str::from_utf8(pair.get(..end)?).ok()?;
            MEMBERS
                .into_iter()
                .find(|m| fold_eq(name.chars(), m.chars()))
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
            "/tools%2Fcall",
        ] {
            assert_eq!(member_in_query(path.as_bytes()), None, "{path}");
        }
    }
}
