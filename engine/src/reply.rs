//! Rendering replies: JSON-RPC denials (as tool results or errors) and refusals.

use crate::config::DenialStyle;
use crate::digits::{push_decimal, push_signed};
use crate::outcome::{LimitState, Reason, Rejection, Reply};

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                // `\u` and four lower-case hex digits (`{:04x}` without core's `LowerHex`).
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(char::from_digit((c as u32 >> shift) & 15, 16).unwrap_or('0'));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal (how names are quoted in every message).
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// A denial of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Why, as operators see it (metrics, logs, filter state).
    pub reason: Reason,
    /// The rule's path in the policy, as operators see it.
    pub rule: String,
    /// The reason and rule the agent is told instead, where they differ: a hidden name is
    /// refused as one the policy does not allow, so the reply does not show that it exists.
    pub shown_as: Option<(Reason, String)>,
    /// The counter, for rate limits.
    pub counter: Option<String>,
    /// Seconds until a retry can succeed, for rate limits.
    pub retry_after: Option<u64>,
    /// The text the agent reads.
    pub message: String,
    /// The exhausted limit, for the rate-limit headers.
    pub limit: Option<LimitState>,
}

fn push_detail(out: &mut String, d: &Denial) {
    let (reason, rule) = d
        .shown_as
        .as_ref()
        .map_or((d.reason, &d.rule), |(r, p)| (*r, p));
    out.push_str("{\"reason\":");
    push_json_string(out, reason.code());
    out.push_str(",\"rule\":");
    push_json_string(out, rule);
    if let Some(c) = &d.counter {
        out.push_str(",\"counter\":");
        push_json_string(out, c);
    }
    if let Some(r) = d.retry_after {
        out.push_str(",\"retry_after\":");
        push_decimal(out, r);
    }
    out.push('}');
}

/// The JSON-RPC response denying one call. `id` is the request id's JSON text; a
/// notification (no id) is answered in the error style with `id: null`.
pub fn push_denial(out: &mut String, id: Option<&str>, style: DenialStyle, code: i32, d: &Denial) {
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    out.push_str(id.unwrap_or("null"));
    match (style, id) {
        (DenialStyle::Result, Some(_)) => {
            out.push_str(",\"result\":{\"content\":[{\"type\":\"text\",\"text\":");
            push_json_string(out, &d.message);
            // MCP 2026-07-28 requires `resultType` (its clients refuse a result without it);
            // clients of earlier revisions take it as an extra field.
            out.push_str(
                "}],\"isError\":true,\"resultType\":\"complete\",\"_meta\":{\"toolgate/decision\":",
            );
            push_detail(out, d);
            out.push_str("}}}");
        }
        _ => {
            out.push_str(",\"error\":{\"code\":");
            push_signed(out, code.into());
            out.push_str(",\"message\":");
            push_json_string(out, &d.message);
            out.push_str(",\"data\":");
            push_detail(out, d);
            out.push_str("}}");
        }
    }
}

/// The headers of a rate-limited denial: `Retry-After` and the IETF `RateLimit` fields.
pub fn rate_limit_headers(l: &LimitState, headers: &mut Vec<(String, String)>) {
    let mut secs = String::new();
    push_decimal(&mut secs, l.reset_secs);
    headers.push(("retry-after".into(), secs));
    let state = limit_state_headers(std::slice::from_ref(l));
    headers.extend(state.into_iter().flatten().map(|(k, v)| (k.to_string(), v)));
}

/// `RateLimit-Policy` and `RateLimit` for counted limits (draft-ietf-httpapi-ratelimit-headers).
/// `None` when no limit counted the call.
pub fn limit_state_headers(limits: &[LimitState]) -> Option<[(&'static str, String); 2]> {
    if limits.is_empty() {
        return None;
    }
    let size: usize = limits.iter().map(|l| l.counter.len() + 32).sum();
    let mut policy = String::with_capacity(size);
    let mut state = String::with_capacity(size);
    for (i, l) in limits.iter().enumerate() {
        if i > 0 {
            policy.push_str(", ");
            state.push_str(", ");
        }
        // Built by hand: this runs for every counted call that goes upstream.
        for (out, [a, b], [x, y]) in [
            (&mut policy, ["\";q=", ";w="], [l.max, l.window_secs]),
            (&mut state, ["\";r=", ";t="], [l.remaining, l.reset_secs]),
        ] {
            out.push('"');
            out.push_str(&l.counter);
            out.push_str(a);
            push_decimal(out, x);
            out.push_str(b);
            push_decimal(out, y);
        }
    }
    Some([("ratelimit-policy", policy), ("ratelimit", state)])
}

/// A JSON reply with status 200.
pub fn json_reply(body: String, mut headers: Vec<(String, String)>) -> Reply {
    headers.insert(0, ("content-type".into(), "application/json".into()));
    Reply {
        status: 200,
        headers,
        body,
    }
}

/// A refusal before judging: HTTP 400/413/415 with a JSON-RPC error, id null.
pub fn rejection(kind: Rejection, detail: &str) -> Reply {
    rejection_for(kind, detail, None)
}

/// A refusal answering the request `id` (its JSON text), or `null`.
pub fn rejection_for(kind: Rejection, detail: &str, id: Option<&str>) -> Reply {
    let label = match kind {
        Rejection::ParseError => "Parse error",
        Rejection::InvalidRequest => "Invalid request",
        Rejection::InvalidParams => "Invalid params",
        Rejection::HeaderMismatch => "Header mismatch",
        Rejection::BodyTooLarge => "Request body too large",
        Rejection::UnsupportedMediaType => "Unsupported media type",
    };
    let mut body = String::from("{\"jsonrpc\":\"2.0\",\"id\":");
    body.push_str(id.unwrap_or("null"));
    body.push_str(",\"error\":{\"code\":");
    push_signed(&mut body, kind.rpc_code().into());
    body.push_str(",\"message\":");
    push_json_string(&mut body, &[label, ": ", detail].concat());
    body.push_str(",\"data\":{\"reason\":");
    push_json_string(&mut body, kind.code());
    body.push_str("}}}");
    Reply {
        status: kind.status(),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial() -> Denial {
        Denial {
            reason: Reason::RateLimited,
            rule: "tools.cache_cas.limits[0]".into(),
            shown_as: None,
            counter: Some("cache_cas_rate".into()),
            retry_after: Some(12),
            message: "no \"more\"\n".into(),
            limit: None,
        }
    }

    #[test]
    fn denial_styles() {
        let mut out = String::new();
        push_denial(
            &mut out,
            Some("\"a\""),
            DenialStyle::Result,
            -32003,
            &denial(),
        );
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":"a","result":{"content":[{"type":"text","text":"no \"more\"\n"}],"isError":true,"resultType":"complete","_meta":{"toolgate/decision":{"reason":"rate_limited","rule":"tools.cache_cas.limits[0]","counter":"cache_cas_rate","retry_after":12}}}}"#
        );
        let mut out = String::new();
        push_denial(&mut out, Some("7"), DenialStyle::Error, -32003, &denial());
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32003,"message":"no \"more\"\n","data":{"reason":"rate_limited","rule":"tools.cache_cas.limits[0]","counter":"cache_cas_rate","retry_after":12}}}"#
        );
        let mut out = String::new();
        push_denial(&mut out, None, DenialStyle::Result, -32003, &denial());
        assert!(out.starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32003"#));
    }

    #[test]
    fn headers_and_rejections() {
        let l = LimitState {
            counter: "c".into(),
            max: 30,
            window_secs: 60,
            remaining: 0,
            reset_secs: 12,
        };
        let mut h = Vec::new();
        rate_limit_headers(&l, &mut h);
        assert_eq!(
            h,
            [
                ("retry-after".to_string(), "12".to_string()),
                ("ratelimit-policy".into(), "\"c\";q=30;w=60".into()),
                ("ratelimit".into(), "\"c\";r=0;t=12".into())
            ]
        );
        let r = rejection(Rejection::ParseError, "invalid JSON at byte 3");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: invalid JSON at byte 3","data":{"reason":"parse_error"}}}"#
        );
        assert_eq!(rejection(Rejection::BodyTooLarge, "x").status, 413);
        assert_eq!(rejection(Rejection::UnsupportedMediaType, "x").status, 415);
        let mut s = String::new();
        push_json_string(&mut s, "\u{1}\u{2028}é");
        assert_eq!(s, "\"\\u0001\\u2028é\"");
    }
}
