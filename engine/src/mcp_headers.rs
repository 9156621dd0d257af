//! The MCP 2026-07-28 `Mcp-Method` and `Mcp-Name` headers: when present they must say what
//! the body says, so a router acting on headers can never disagree with the filter.

use crate::mcp::Message;
use crate::names::canonical_method;

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

/// Checks the headers against the body.
pub(crate) fn check(
    method: Option<&[u8]>,
    name: Option<&[u8]>,
    messages: &[Message<'_>],
    batch: bool,
) -> Result<(), String> {
    let (
        Some(Message::Request {
            method: m, params, ..
        }),
        false,
    ) = (messages.first(), batch)
    else {
        return Err(
            "Mcp-Method and Mcp-Name describe a single request, but the body is not one".into(),
        );
    };
    let body_method = m.decode();
    if let Some(h) = method {
        if h != body_method.as_bytes() {
            return Err("the Mcp-Method header does not match the body's method".into());
        }
    }
    let Some(h) = name else {
        return Ok(());
    };
    let Some(h) = header_value(h) else {
        return Err("the Mcp-Name header is not valid base64".into());
    };
    let field = match canonical_method(&body_method).as_deref() {
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
}
