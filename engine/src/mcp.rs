//! Reading JSON-RPC messages (MCP) from a validated body.
//!
//! Refused here, so no server can read a message differently from us: members whose names
//! only resemble JSON-RPC or MCP member names (other case, non-ASCII, control or whitespace
//! characters), a `jsonrpc` other than `"2.0"`, ids that are not strings or integers,
//! messages that are both request and response, names that are not MCP names.

use crate::fold::{alias_chars, ascii_alias_same};
use crate::json::{JsonStr, Kind, Value};
use crate::names::is_method_name;

/// A JSON-RPC id, kept as written so a reply echoes it with its exact type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Id<'a> {
    raw: &'a str,
}

impl<'a> Id<'a> {
    /// The id's JSON text.
    pub fn raw(&self) -> &'a str {
        self.raw
    }
}

/// One JSON-RPC message.
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    /// A request (`id` present) or notification (`id` absent).
    Request {
        /// The id, absent for a notification.
        id: Option<Id<'a>>,
        /// The method name (a valid method name).
        method: JsonStr<'a>,
        /// The params, if any.
        params: Option<Value<'a>>,
    },
    /// A response from the client to a server-initiated request.
    Response,
}

/// The body: one message or a batch.
#[derive(Debug)]
pub enum Envelope<'a> {
    /// A single message.
    Single(Message<'a>),
    /// A JSON array of messages.
    Batch(Vec<Message<'a>>),
}

/// Why a body is not a valid JSON-RPC request (-32600).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

/// The members a JSON-RPC 2.0 message may have.
pub const ENVELOPE_KEYS: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];

/// Keys MCP defines in the params of the methods the policy judges.
pub const PARAMS_KEYS: [&str; 6] = ["name", "arguments", "_meta", "uri", "cursor", "task"];

fn is_plain_key(k: JsonStr<'_>) -> bool {
    k.chars()
        .all(|c| c.is_ascii() && !c.is_ascii_control() && !c.is_ascii_whitespace())
}

/// Which of the `known` names member name `k` is, if any; an error when it is not plain, or
/// differs from a known name only by case, punctuation or invisible characters.
fn known_member(k: JsonStr<'_>, known: &[&str], what: &str) -> Result<Option<usize>, Invalid> {
    // Member names almost never hold escapes: compare the raw text, decode only otherwise.
    let found = if k.is_plain() {
        let raw = k.raw();
        let found = known.iter().position(|n| *n == raw);
        // Printable ASCII (nearly every name) is plain in `is_plain_key`'s sense and folds
        // to its lower case alone: the known names it resembles differ only by case and
        // punctuation.
        if found.is_none() && raw.bytes().all(|c| c.is_ascii_graphic()) {
            return match known
                .iter()
                .find(|n| ascii_alias_same(raw.as_bytes(), n.as_bytes()))
            {
                Some(n) => Err(resembles(k, n, what)),
                None => Ok(None),
            };
        }
        found
    } else {
        known.iter().position(|n| k.eq_str(n))
    };
    if found.is_some() {
        return Ok(found);
    }
    if !is_plain_key(k) {
        return Err(Invalid(format!(
            "{what} member names must be plain ASCII without control or whitespace characters"
        )));
    }
    if let Some(n) = known
        .iter()
        .find(|n| alias_chars(k.chars()).eq(alias_chars(n.chars())))
    {
        return Err(resembles(k, n, what));
    }
    Ok(None)
}

/// The refusal of member name `k`, which differs from the known name `n` only by case,
/// punctuation or invisible characters.
fn resembles(k: JsonStr<'_>, n: &str, what: &str) -> Invalid {
    Invalid(format!(
        "{what} member {} differs from {} only by case, punctuation or invisible characters",
        // Cut and visible ASCII only: it is logged, and a key can be as long as the body.
        crate::reply::quoted(&crate::http::loggable(k.decode().as_bytes())),
        crate::reply::quoted(n)
    ))
}

/// Checks the member names of an envelope or params object: each is a known name exactly,
/// or plainly different from every known name.
pub fn check_member_names(v: Value<'_>, known: &[&str], what: &str) -> Result<(), Invalid> {
    for (k, _) in v.members() {
        known_member(k, known, what)?;
    }
    Ok(())
}

/// The values of an object's `known` members (by position in `known`), its member names
/// checked as [`check_member_names`] does, in one walk over the object.
pub fn known_members<'a, const N: usize>(
    v: Value<'a>,
    known: &[&str; N],
    what: &str,
) -> Result<[Option<Value<'a>>; N], Invalid> {
    let mut found = [None; N];
    fill_known_members(v, known, &mut found, what)?;
    Ok(found)
}

// Not generic over the count, so each count's copy of `known_members` is a small shim.
fn fill_known_members<'a>(
    v: Value<'a>,
    known: &[&str],
    found: &mut [Option<Value<'a>>],
    what: &str,
) -> Result<(), Invalid> {
    for (k, value) in v.members() {
        if let Some(slot) = known_member(k, known, what)?.and_then(|i| found.get_mut(i)) {
            *slot = Some(value);
        }
    }
    Ok(())
}

fn read_id(v: Value<'_>) -> Result<Id<'_>, Invalid> {
    let ok = match v.kind() {
        Kind::String => true,
        Kind::Number => v.raw().bytes().all(|c| c.is_ascii_digit() || c == b'-'),
        _ => false,
    };
    if ok {
        Ok(Id { raw: v.raw() })
    } else {
        Err(Invalid("id must be a string or an integer".into()))
    }
}

/// Reads one message.
pub fn read_message(v: Value<'_>) -> Result<Message<'_>, Invalid> {
    if v.kind() != Kind::Object {
        return Err(Invalid("a JSON-RPC message must be an object".into()));
    }
    let [jsonrpc, id, method, params, result, error] = known_members(v, &ENVELOPE_KEYS, "message")?;
    if !jsonrpc
        .and_then(|j| j.as_str())
        .is_some_and(|j| j.eq_str("2.0"))
    {
        return Err(Invalid("jsonrpc must be \"2.0\"".into()));
    }
    let id = id.map(read_id).transpose()?;
    match method {
        Some(m) => {
            if result.is_some() || error.is_some() {
                return Err(Invalid(
                    "a request cannot also carry result or error".into(),
                ));
            }
            let name = m
                .as_str()
                .ok_or_else(|| Invalid("method must be a string".into()))?;
            let decoded = name.decode();
            if !is_method_name(&decoded) {
                return Err(Invalid(
                    "method must be 1 to 128 characters of A-Z a-z 0-9 _ . - /".into(),
                ));
            }
            // A router that resolves methods like paths reads `tools/x/../call` as
            // `tools/call`; no MCP method has such a part.
            if decoded.as_bytes().contains(&b'.') {
                let dots = decoded.split('/').any(|part| matches!(part, "." | ".."));
                if dots {
                    return Err(Invalid("method parts cannot be . or ..".into()));
                }
            }
            if let Some(p) = params {
                if !matches!(p.kind(), Kind::Object | Kind::Array) {
                    return Err(Invalid("params must be an object or an array".into()));
                }
            }
            Ok(Message::Request {
                id,
                method: name,
                params,
            })
        }
        None => {
            if result.is_some() == error.is_some() || id.is_none() {
                return Err(Invalid(
                    "a message needs a method, or an id and exactly one of result or error".into(),
                ));
            }
            Ok(Message::Response)
        }
    }
}

/// Reads a body: one message, or a batch of at most `max_batch` messages.
pub fn read(v: Value<'_>, max_batch: usize) -> Result<Envelope<'_>, Invalid> {
    if v.kind() != Kind::Array {
        return read_message(v).map(Envelope::Single);
    }
    let mut messages = Vec::new();
    for (i, e) in v.elements().enumerate() {
        if i >= max_batch {
            return Err(Invalid(format!(
                "a batch may hold at most {max_batch} messages"
            )));
        }
        let m =
            read_message(e).map_err(|Invalid(why)| Invalid(format!("batch element {i}: {why}")))?;
        messages.push(m);
    }
    if messages.is_empty() {
        return Err(Invalid("an empty batch".into()));
    }
    Ok(Envelope::Batch(messages))
}

/// The params of a `tools/call` (or `prompts/get`): a name and optional arguments.
#[derive(Clone, Copy, Debug)]
pub struct NamedCall<'a> {
    /// The name, decoded later (it may be invalid).
    pub name: JsonStr<'a>,
    /// The arguments object, if given and not null.
    pub arguments: Option<Value<'a>>,
}

/// Reads `{name, arguments?}` params (-32602 on failure).
pub fn read_named_call(params: Option<Value<'_>>) -> Result<NamedCall<'_>, Invalid> {
    let p = params.ok_or_else(|| Invalid("params with a name are required".into()))?;
    if p.kind() != Kind::Object {
        return Err(Invalid("params must be an object".into()));
    }
    let [name, arguments, ..] = known_members(p, &PARAMS_KEYS, "params")?;
    let name = name
        .ok_or_else(|| Invalid("params.name is required".into()))?
        .as_str()
        .ok_or_else(|| Invalid("params.name must be a string".into()))?;
    let arguments = match arguments {
        None => None,
        Some(a) if a.is_null() => None,
        Some(a) if a.kind() == Kind::Object => Some(a),
        Some(_) => return Err(Invalid("params.arguments must be an object".into())),
    };
    Ok(NamedCall { name, arguments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_strict;

    /// Reads with exact-key validation, so this layer's own checks are what is tested.
    fn msg(src: &str) -> Result<String, String> {
        let opts = crate::json::Options {
            max_depth: 16,
            keys: crate::json::KeyRule::Exact,
        };
        let v = crate::json::Validator::new()
            .validate(src.as_bytes(), opts)
            .map_err(|e| e.to_string())?;
        match read(v, 4) {
            Ok(Envelope::Single(Message::Request { id, method, .. })) => Ok(format!(
                "{} {}",
                id.map_or("-", |i| i.raw()),
                method.decode()
            )),
            Ok(Envelope::Single(Message::Response)) => Ok("response".into()),
            Ok(Envelope::Batch(b)) => Ok(format!("batch {}", b.len())),
            Err(Invalid(why)) => Err(why),
        }
    }

    #[test]
    fn reads_requests_notifications_responses_batches() {
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap(),
            "1 tools/list"
        );
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","id":"a","method":"tools\/call","params":{}}"#).unwrap(),
            "\"a\" tools/call"
        );
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap(),
            "- notifications/initialized"
        );
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap(),
            "response"
        );
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"x"}}"#).unwrap(),
            "response"
        );
        assert_eq!(
            msg(r#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]"#)
                .unwrap(),
            "batch 2"
        );
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","id":1,"method":"x","extension":1}"#).unwrap(),
            "1 x"
        );
    }

    #[test]
    fn refuses_ambiguous_envelopes() {
        for (src, why) in [
            (
                r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call"}"#,
                "differs from \"method\"",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}"#,
                "only by case",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method\u0000":"tools/call"}"#,
                "plain ASCII",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","ｍethod":"tools/call"}"#,
                "plain ASCII",
            ),
            // Key-casing middleware (lodash's camelCase) reads these as `method`, `name`
            // and `arguments`.
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","_method":"tools/call"}"#,
                "differs from \"method\" only by case, punctuation",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","__method__":"tools/call"}"#,
                "differs from \"method\"",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","me.thod":"tools/call"}"#,
                "differs from \"method\"",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","_params":{"name":"a"}}"#,
                "differs from \"params\"",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/x/../call"}"#,
                "cannot be . or ..",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"./tools/call"}"#,
                ". or ..",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/./call"}"#,
                ". or ..",
            ),
            (r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, "jsonrpc"),
            (r#"{"id":1,"method":"x"}"#, "jsonrpc"),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#, "id must"),
            (r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#, "id must"),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#, "id must"),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x","result":1}"#,
                "cannot also",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call "}"#,
                "method must be",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ｔools/call"}"#,
                "method must be",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                "method must be a string",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":"p"}"#,
                "params must",
            ),
            (r#"{"jsonrpc":"2.0","result":1}"#, "needs a method"),
            (r#"[]"#, "empty batch"),
            (r#"[1]"#, "batch element 0"),
            (
                r#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"}]"#,
                "at most 4",
            ),
            (r#""x""#, "must be an object"),
        ] {
            let got = msg(src);
            assert!(matches!(&got, Err(w) if w.contains(why)), "{src}: {got:?}");
        }
    }

    #[test]
    fn named_call_params() {
        let v = parse_strict(
            br#"{"name":"cache\u005fcas","arguments":{"k":1},"_meta":{"progressToken":1}}"#,
            8,
        )
        .unwrap();
        let c = read_named_call(Some(v)).unwrap();
        assert!(c.name.eq_str("cache_cas"));
        assert_eq!(c.arguments.map(|a| a.raw()), Some("{\"k\":1}"));
        let null_args = parse_strict(br#"{"name":"a","arguments":null}"#, 8).unwrap();
        assert!(read_named_call(Some(null_args))
            .unwrap()
            .arguments
            .is_none());
        for bad in [
            r#"{"Name":"a"}"#,
            r#"{"name":"a","Arguments":{}}"#,
            r#"{"name":1}"#,
            r#"{"name":"a","arguments":"{}"}"#,
            r#"{"name":"a","arguments":[]}"#,
            r#"["a",{}]"#,
            r#"{"name":"a","ａrguments":{}}"#,
            // Key-casing middleware reads these as `name` and `arguments`.
            r#"{"name":"a","name_":"b"}"#,
            r#"{"name":"a","arguments":{},"argu-ments":{"k":1}}"#,
            r#"{"name":"a","__arguments__":{"k":1}}"#,
            r#"{"na.me":"b","name":"a"}"#,
        ] {
            let v = parse_strict(bad.as_bytes(), 8).unwrap();
            assert!(read_named_call(Some(v)).is_err(), "{bad}");
        }
        assert!(read_named_call(None).is_err());
    }
}
