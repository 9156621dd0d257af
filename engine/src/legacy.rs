//! The 2024-11-05 HTTP+SSE transport: its clients POST each message to the endpoint the
//! server named and read every answer on the session's GET stream; the POST itself is
//! answered `202 Accepted`. A denial Toolgate answered on the POST, or a list it filtered
//! there, would never reach the client. So:
//! - a denied request of that transport goes on as a `ping` whose id holds the whole denial,
//!   and on the GET stream the ping's answer is swapped for that denial;
//! - on a GET stream, answers listing tools, resources or prompts are filtered by their
//!   shape (a `result` with that list), since the request they answer was on another stream.
//!
//! Stateless on purpose: the GET stream and the POST may be on different Envoy workers. An
//! id a client forges with the prefix changes only what that client itself reads.

use crate::http::{self, HeaderList};
use crate::json::{Kind as JsonKind, Validator, Value};
use crate::listing::{each_message, ListRules};
use crate::mcp::{check_member_names, ENVELOPE_KEYS};
use crate::uri;

/// The id prefix of a ping carrying a denial.
const DENIAL: &str = "toolgate-denial:";

/// Whether a request is a message of this transport: its query carries the session id the
/// server put in the endpoint, as the SDKs' servers write it (`session_id=` and 32 hex
/// digits in Python, `sessionId=` and a UUID in TypeScript), and it does not accept an event
/// stream in reply (a Streamable HTTP client must).
pub fn is_message_post(path: &[u8], headers: &HeaderList<'_>) -> bool {
    let Some(q) = path.iter().position(|&c| c == b'?') else {
        return false;
    };
    let names_session = path
        .get(q + 1..)
        .unwrap_or(&[])
        .split(|&c| c == b'&')
        .any(|p| {
            let id = p
                .strip_prefix(b"session_id=")
                .or_else(|| p.strip_prefix(b"sessionId="));
            id.is_some_and(|id| {
                (32..=36).contains(&id.len())
                    && id.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-')
            })
        });
    names_session && !http::values(headers, "accept").any(|v| contains(v, b"text/event-stream"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The `ping` that carries `denial` (a JSON-RPC response) to the GET stream, hex-encoded:
/// the server, however it reads the ping, sees no tool name or message in it.
pub fn denial_ping(denial: &str) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(64 + 2 * denial.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":\"");
    out.extend_from_slice(DENIAL.as_bytes());
    for b in denial.bytes() {
        for nibble in [b >> 4, b & 0xf] {
            out.push(*DIGITS.get(usize::from(nibble)).unwrap_or(&b'0'));
        }
    }
    out.extend_from_slice(b"\"}");
    out
}

fn unhex(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len() / 2);
    let mut digits = s.bytes();
    while let Some(hi) = digits.next() {
        out.push(uri::hex(hi)? << 4 | uri::hex(digits.next()?)?);
    }
    String::from_utf8(out).ok()
}

/// Whether an event's data may hold a denial or a list to filter: the cheap test before
/// parsing (a key or id may be written with escapes, so any escape counts).
#[inline(never)]
pub fn may_answer(data: &[u8]) -> bool {
    [
        &b"\\"[..],
        b"toolgate-",
        b"\"tools\"",
        b"\"resources\"",
        b"\"resourceTemplates\"",
        b"\"prompts\"",
    ]
    .iter()
    .any(|n| contains(data, n))
}

/// An event's data on a GET stream, with denials restored and lists filtered: `Ok(None)`
/// when nothing in it changes; `Err` when it must be withheld.
#[inline(never)]
pub fn restore(data: &[u8], rules: &ListRules<'_>) -> Result<Option<Vec<u8>>, String> {
    // While anything is hidden, as strict as an awaited list answer: a lenient client might
    // read what is not JSON. Otherwise only a readable denial changes anything.
    let hides = rules.hides_anything();
    let withheld = |why: String| if hides { Err(why) } else { Ok(None) };
    let mut validator = Validator::new();
    let msg = match validator.validate(data, rules.json_options()) {
        Ok(msg) => msg,
        Err(e) => return withheld(e.to_string()),
    };
    each_message(msg, |m| {
        if m.kind() == JsonKind::Object {
            restore_one(m, rules, hides)
        } else {
            Ok(None)
        }
    })
    .or_else(withheld)
}

fn restore_one(
    msg: Value<'_>,
    rules: &ListRules<'_>,
    hides: bool,
) -> Result<Option<String>, String> {
    let id = msg.get("id").and_then(|v| v.as_str()).map(|s| s.decode());
    // Toolgate wrote it, or the client forged it for itself: either way, its own. A forged
    // one that does not decode is no denial, and is filtered like any other answer.
    if let Some(denial) = id
        .as_deref()
        .and_then(|i| i.strip_prefix(DENIAL))
        .and_then(unhex)
    {
        return Ok(Some(denial));
    }
    if !hides {
        return Ok(None);
    }
    // Members that only resemble these names could be read as them: withheld.
    check_member_names(msg, &ENVELOPE_KEYS, "response").map_err(|e| e.0)?;
    rules.by_shape(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::json::parse_strict;

    fn rules_of(policy: &crate::policy::Policy) -> ListRules<'_> {
        ListRules {
            policy,
            hide_denied_tools: false,
            max_depth: 64,
        }
    }

    #[test]
    fn every_list_array_is_looked_for() {
        use crate::policy::Kind;
        // The cheap test must not pass over any array a list answer holds its entries in.
        for kind in [Kind::Tool, Kind::Resource, Kind::Prompt] {
            for (array, _) in kind.arrays() {
                let data = format!(r#"{{"result":{{"{array}":[]}}}}"#);
                assert!(may_answer(data.as_bytes()), "{array}");
            }
        }
    }

    #[test]
    fn message_posts_are_told_from_streamable_http_requests() {
        let plain: [(&[u8], &[u8]); 1] = [(b"accept", b"*/*")];
        let streamable: [(&[u8], &[u8]); 1] = [(b"accept", b"application/json, Text/Event-Stream")];
        let python = b"/messages/?session_id=0f1fae4085214947b1869cf9710eb94c";
        let typescript = b"/message?sessionId=2b9a2c4e-53f6-4f1e-9d0a-7c1f3e5b8a61";
        assert!(is_message_post(python, &plain));
        assert!(is_message_post(typescript, &[]));
        assert!(!is_message_post(python, &streamable));
        for other in [
            &b"/mcp"[..],
            b"/messages?sessionId=abc",
            b"/mcp?tenant=session_id=0f1fae4085214947b1869cf9710eb94c",
            b"/messages/?session_id=0f1fae4085214947b1869cf9710eb94c!",
        ] {
            assert!(!is_message_post(other, &plain));
        }
    }

    #[test]
    fn a_denial_rides_a_ping_and_comes_back_whole() {
        let config = config::load(br#"{"version":"1","default":"allow"}"#).unwrap();
        let rules = rules_of(&config.policy);
        let denial = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"Toolgate denied tool \"x\"."}],"isError":true}}"#;
        let ping = denial_ping(denial);
        let sent = parse_strict(&ping, 64).unwrap();
        assert_eq!(
            sent.get("method").unwrap().as_str().unwrap().decode(),
            "ping"
        );
        // The server sees neither the tool nor the message.
        assert!(!String::from_utf8_lossy(&ping).contains("denied"));
        // It answers the ping with its id, re-serialised its own way (here with every `a`
        // as a \u escape).
        let id = sent.get("id").unwrap().raw().to_string();
        for id in [id.clone(), id.replace('a', "\\u0061")] {
            let answer = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
            assert!(may_answer(answer.as_bytes()));
            let restored = restore(answer.as_bytes(), &rules).unwrap().unwrap();
            assert_eq!(String::from_utf8(restored).unwrap(), denial);
        }
        // Other answers stay as they are.
        for other in [
            &br#"{"jsonrpc":"2.0","id":"toolgate","result":{}}"#[..],
            br#"{"jsonrpc":"2.0","id":"toolgate-denial:7b0","result":{}}"#,
        ] {
            assert_eq!(restore(other, &rules).unwrap(), None);
        }
        assert!(!may_answer(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#));
    }

    #[test]
    fn list_answers_on_the_stream_are_filtered_by_their_shape() {
        let config =
            config::load(br#"{"version":"1","default":"allow","hide":["secret"]}"#).unwrap();
        let rules = rules_of(&config.policy);
        let answer =
            br#"{"jsonrpc":"2.0","id":12,"result":{"tools":[{"name":"secret"},{"name":"open"}]}}"#;
        assert!(may_answer(answer));
        let restored = restore(answer, &rules).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(restored).unwrap(),
            r#"{"jsonrpc":"2.0","id":12,"result":{"tools":[{"name":"open"}]}}"#
        );
        // In a batch each answer is filtered; what a lenient client might flatten into the
        // batch is withheld.
        let batch = format!("[{}]", String::from_utf8_lossy(answer));
        assert_eq!(
            String::from_utf8(restore(batch.as_bytes(), &rules).unwrap().unwrap()).unwrap(),
            r#"[{"jsonrpc":"2.0","id":12,"result":{"tools":[{"name":"open"}]}}]"#
        );
        let nested = format!("[[{}]]", String::from_utf8_lossy(answer));
        assert!(restore(nested.as_bytes(), &rules).is_err());
        // A forged denial id that does not decode (not hex, odd, or not UTF-8) is no denial:
        // the list it answers is filtered like any other.
        for id in [
            "toolgate-denial:zz",
            "toolgate-denial:7b0",
            "toolgate-denial:ff",
            "toolgate-denial:",
        ] {
            let forged = format!(
                r#"{{"jsonrpc":"2.0","id":"{id}","result":{{"tools":[{{"name":"secret"}},{{"name":"open"}}]}}}}"#
            );
            let restored =
                String::from_utf8(restore(forged.as_bytes(), &rules).unwrap().unwrap()).unwrap();
            assert!(!restored.contains("secret"), "{restored}");
        }
        // A list that cannot be read strictly is withheld; other answers pass.
        let odd = br#"{"jsonrpc":"2.0","id":12,"result":{"tools":[{"name":"secret","NAME":"x"}]}}"#;
        assert!(restore(odd, &rules).is_err());
        let variant = br#"{"jsonrpc":"2.0","id":12,"result":{"Tools":[{"name":"secret"}]}}"#;
        assert!(restore(variant, &rules).is_err());
        let call = br#"{"jsonrpc":"2.0","id":14,"result":{"content":[{"type":"text","text":"\"tools\""}]}}"#;
        assert_eq!(restore(call, &rules).unwrap(), None);
        assert!(restore(b"not json \"tools\"", &rules).is_err());
        // With nothing hidden, nothing is withheld.
        let open = config::load(br#"{"version":"1","default":"allow"}"#).unwrap();
        let rules = rules_of(&open.policy);
        for data in [
            &b"not json \"tools\""[..],
            batch.as_bytes(),
            nested.as_bytes(),
            variant,
            answer,
        ] {
            assert_eq!(restore(data, &rules).unwrap(), None);
        }
    }
}
