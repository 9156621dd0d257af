//! The MCP 2026-07-28 headers that mirror the body (`Mcp-Method`, `Mcp-Name` and a tool's
//! `Mcp-Param-*`): when present they must say what the body says, so a router or server
//! acting on headers can never act on something the filter did not judge.

use crate::condition::ArgPath;
use crate::http::HeaderList;
use crate::json::{Kind, Number, Value};
use crate::mcp::Message;
use crate::names::canonical_method;
use crate::policy::Policy;

/// The header mirroring the body's method (lower case, as the host gives names).
pub const METHOD_HEADER: &str = "mcp-method";

/// The header mirroring the body's tool or prompt name or resource URI.
pub const NAME_HEADER: &str = "mcp-name";

/// The prefix of the headers that mirror a tool's arguments (lower case).
pub const PARAM_PREFIX: &[u8] = b"mcp-param-";

/// The most `Mcp-Param-*` headers one request may carry: each is matched against every
/// argument, so the count bounds that work (a tool marks a handful of arguments at most).
pub const MAX_PARAM_HEADERS: usize = 32;

/// The mirroring headers of one request, as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrored {
    /// `Mcp-Method`.
    pub method: Option<Vec<u8>>,
    /// `Mcp-Name` (possibly base64-wrapped).
    pub name: Option<Vec<u8>>,
    /// Each `Mcp-Param-<token>`.
    pub params: Vec<Param>,
}

/// One `Mcp-Param-<token>` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// The token, in lower case.
    pub token: Vec<u8>,
    /// The value as sent (possibly base64-wrapped).
    pub value: Vec<u8>,
}

impl Mirrored {
    /// Whether the request sent none of them (the common case: nothing to check).
    pub fn is_empty(&self) -> bool {
        self.method.is_none() && self.name.is_none() && self.params.is_empty()
    }
}

/// The token of an `Mcp-Param-<token>` header name, if it is one.
pub fn param_token(name: &[u8]) -> Option<&[u8]> {
    // Every header of every request comes here: most fail on the first byte.
    if !name.first().is_some_and(|c| c.eq_ignore_ascii_case(&b'm')) {
        return None;
    }
    let (prefix, token) = name.split_at_checked(PARAM_PREFIX.len())?;
    (crate::http::same_name(prefix, PARAM_PREFIX) && !token.is_empty()).then_some(token)
}

/// The `Mcp-Param-*` headers of a head; an error when a token repeats (a first-copy and a
/// last-copy reader would disagree) or there are more than [`MAX_PARAM_HEADERS`].
pub fn params(headers: &HeaderList<'_>) -> Result<Vec<Param>, String> {
    let mut params: Vec<Param> = Vec::new();
    for (k, v) in headers {
        let Some(token) = param_token(k) else {
            continue;
        };
        if params.len() == MAX_PARAM_HEADERS {
            return Err(format!("more than {MAX_PARAM_HEADERS} Mcp-Param headers"));
        }
        let token = token.to_ascii_lowercase();
        if params
            .iter()
            .any(|p| crate::http::same_name(&p.token, &token))
        {
            return Err(format!(
                "repeated Mcp-Param-{} header",
                crate::http::loggable(&token)
            ));
        }
        params.push(Param {
            token,
            value: v.to_vec(),
        });
    }
    Ok(params)
}

/// Whether a header names a call: `Mcp-Method`, `Mcp-Name` or `Mcp-Param-*`.
pub fn names_a_call(name: &[u8]) -> bool {
    crate::http::same_name(name, METHOD_HEADER.as_bytes())
        || crate::http::same_name(name, NAME_HEADER.as_bytes())
        || param_token(name).is_some()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (padding optional); `None` if malformed.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let s = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &c in s {
        let v = B64.iter().position(|&b| b == c)?;
        acc = (acc << 6) | u32::try_from(v).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The header's value: plain, or `=?base64?...?=` decoded.
fn header_value(raw: &[u8]) -> Option<Vec<u8>> {
    match raw
        .strip_prefix(b"=?base64?")
        .and_then(|r| r.strip_suffix(b"?="))
    {
        Some(b64) => base64_decode(b64),
        None => Some(raw.to_vec()),
    }
}

/// Checks the headers against the body, under `policy` (which arguments it judges).
pub(crate) fn check(
    mirrored: &Mirrored,
    messages: &[Message<'_>],
    batch: bool,
    policy: &Policy,
) -> Result<(), String> {
    let (
        Some(Message::Request {
            method: m, params, ..
        }),
        false,
    ) = (messages.first(), batch)
    else {
        return Err(
            "Mcp-Method, Mcp-Name and Mcp-Param headers describe a single request, but the body is not one"
                .into(),
        );
    };
    let body_method = m.decode();
    if let Some(h) = &mirrored.method {
        if h.as_slice() != body_method.as_bytes() {
            return Err("the Mcp-Method header does not match the body's method".into());
        }
    }
    let canonical = canonical_method(&body_method);
    if !mirrored.params.is_empty() {
        if canonical.as_deref() != Some("tools/call") {
            return Err("Mcp-Param headers were sent for a method other than tools/call".into());
        }
        let tool = params
            .and_then(|p| p.get("name"))
            .and_then(|v| v.as_str())
            .map(|s| s.decode())
            .unwrap_or_default();
        check_params(
            &mirrored.params,
            params.and_then(|p| p.get("arguments")),
            &policy.argument_paths(&tool),
        )?;
    }
    let Some(h) = &mirrored.name else {
        return Ok(());
    };
    let Some(h) = header_value(h) else {
        return Err("the Mcp-Name header is not valid base64".into());
    };
    let field = match canonical.as_deref() {
        Some("tools/call" | "prompts/get") => "name",
        Some("resources/read") => "uri",
        _ => return Err("an Mcp-Name header was sent for a method without a name".into()),
    };
    let body_name = params
        .and_then(|p| p.get(field))
        .and_then(|v| v.as_str())
        .map(|s| s.decode().into_owned());
    if body_name.as_deref().map(str::as_bytes) != Some(h.as_slice()) {
        return Err(format!(
            "the Mcp-Name header does not match the body's params.{field}"
        ));
    }
    Ok(())
}

/// One `Mcp-Param-<token>` header being matched against the arguments.
struct Wanted<'h> {
    token: &'h [u8],
    value: Vec<u8>,
    /// Whether an argument named like the token holds the value (`None`: no such argument).
    named: Option<bool>,
    /// Whether any scalar argument holds the value.
    any: bool,
}

/// Each `Mcp-Param-<token>` header must carry a value the arguments hold. Which argument it
/// mirrors is in the tool's schema (`x-mcp-header`), which the filter does not see: the
/// argument named like the token when there is one, else any scalar argument. So a server
/// or router acting on the header acts on a value the policy judged in the body. A token
/// naming an argument on a path the policy judges (`judged`) that the body lacks is
/// refused: a server taking the argument from the header would act on a value no condition
/// saw; a token naming the last argument of such a path must carry the value at that path.
/// One walk over the arguments serves every header (at most [`MAX_PARAM_HEADERS`]).
fn check_params(
    params: &[Param],
    arguments: Option<Value<'_>>,
    judged: &[&ArgPath],
) -> Result<(), String> {
    let mut wanted = Vec::with_capacity(params.len());
    for p in params {
        let Some(value) = header_value(&p.value) else {
            let shown = crate::http::loggable(&p.token);
            return Err(format!("the Mcp-Param-{shown} header is not valid base64"));
        };
        wanted.push(Wanted {
            token: &p.token,
            value,
            named: None,
            any: false,
        });
    }
    if let Some(args) = arguments {
        visit_scalars(args, &mut |key, v| {
            let key = key.decode();
            for w in &mut wanted {
                let same = mirrors(v, &w.value);
                if names_token(key.as_bytes(), w.token) {
                    w.named = Some(w.named.unwrap_or(false) || same);
                }
                w.any |= same;
            }
        });
    }
    for w in &wanted {
        let shown = crate::http::loggable(w.token);
        // A path the policy reads that ends in an argument named like the token: the header
        // must be the value there, under every reading a condition took.
        let mut own = judged
            .iter()
            .filter(|p| {
                p.segments()
                    .last()
                    .is_some_and(|s| names_token(s.as_bytes(), w.token))
            })
            .peekable();
        if own.peek().is_some() {
            for p in own {
                let r = p.resolve(arguments);
                let readings = [r.exact, r.folded];
                let mut present = readings.iter().flatten().peekable();
                if present.peek().is_none() || present.any(|v| !mirrors(*v, &w.value)) {
                    return Err(format!(
                        "the Mcp-Param-{shown} header is not the body's {} argument, which the policy judges",
                        crate::reply::quoted(p.argument())
                    ));
                }
            }
            continue;
        }
        match w.named {
            Some(true) => {}
            None if w.any && !judges(judged, w.token) => {}
            None if w.any => {
                return Err(format!(
                    "the Mcp-Param-{shown} header names an argument the policy judges, which the body does not hold"
                ))
            }
            _ => {
                return Err(format!(
                    "the Mcp-Param-{shown} header does not match the body's arguments"
                ))
            }
        }
    }
    Ok(())
}

/// Whether a path the policy reads passes through an argument named like `token`.
fn judges(judged: &[&ArgPath], token: &[u8]) -> bool {
    judged
        .iter()
        .any(|p| p.segments().any(|seg| names_token(seg.as_bytes(), token)))
}

/// Whether argument name `key` is header token `token`: as conditions match argument
/// names, by letters and digits in any case (`Tenant-Id`, `TenantId` and `tenant-id` all
/// name `tenant_id`; a header name cannot hold `_` safely).
fn names_token(key: &[u8], token: &[u8]) -> bool {
    crate::fold::ascii_alias_same(key, token)
}

/// Calls `f` with each scalar member of `object` and of the objects nested in it (the
/// places a schema can mark with `x-mcp-header`).
fn visit_scalars<'a>(object: Value<'a>, f: &mut dyn FnMut(crate::json::JsonStr<'a>, Value<'a>)) {
    for (key, v) in object.members() {
        match v.kind() {
            Kind::Object => visit_scalars(v, f),
            Kind::String | Kind::Number | Kind::Bool => f(key, v),
            Kind::Array | Kind::Null => {}
        }
    }
}

/// Whether a header value renders the argument: a string as itself, a boolean as
/// `true`/`false`, a number by value (`42`, `42.0` and `4.2e1` are the same).
fn mirrors(argument: Value<'_>, header: &[u8]) -> bool {
    if let Some(s) = argument.as_str() {
        return s.decode().as_bytes() == header;
    }
    if let Some(b) = argument.as_bool() {
        return header == if b { &b"true"[..] } else { &b"false"[..] };
    }
    match (
        argument.as_number(),
        std::str::from_utf8(header).ok().and_then(Number::parse),
    ) {
        (Some(a), Some(h)) => a.compare(h).is_eq(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(
            base64_decode(b"Y2FjaGVfY2Fz").as_deref(),
            Some(b"cache_cas".as_slice())
        );
        assert_eq!(base64_decode(b"YQ==").as_deref(), Some(b"a".as_slice()));
        assert_eq!(base64_decode(b"YQ").as_deref(), Some(b"a".as_slice()));
        assert_eq!(base64_decode(b"Y"), None);
        assert_eq!(base64_decode(b"Y$=="), None);
        assert_eq!(
            header_value(b"=?base64?Y2FjaGVfY2Fz?=").as_deref(),
            Some(b"cache_cas".as_slice())
        );
        assert_eq!(header_value(b"plain").as_deref(), Some(b"plain".as_slice()));
    }

    #[test]
    fn param_tokens() {
        assert_eq!(param_token(b"mcp-param-region"), Some(b"region".as_slice()));
        assert_eq!(param_token(b"Mcp-Param-Region"), Some(b"Region".as_slice()));
        assert_eq!(param_token(b"mcp-param-"), None);
        assert_eq!(param_token(b"mcp-params"), None);
        assert!(names_a_call(b"MCP-NAME") && names_a_call(b"mcp-param-x"));
        assert!(!names_a_call(b"mcp-session-id") && !names_a_call(b"mcp-protocol-version"));
        assert!(names_token(b"tenant_id", b"tenant-id") && names_token(b"Region", b"region"));
        assert!(names_token(b"tenantid", b"Tenant-Id") && names_token(b"file_path", b"FilePath"));
        assert!(!names_token(b"tenant", b"tenant-id") && !names_token(b"tenant_idx", b"tenant-id"));
    }
}
