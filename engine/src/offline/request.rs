//! Requests as the command reads them: a JSON-RPC body, or an envelope with headers.

use crate::json::{KeyRule, Kind, Options, Validator, Value};

/// One HTTP request to decide.
#[derive(Clone, Debug)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// Default headers every request gets unless its envelope says otherwise.
pub struct Defaults<'a> {
    pub grant: Option<&'a str>,
    pub session: Option<&'a str>,
    pub extra: &'a [(String, String)],
}

fn is_envelope(v: Value<'_>) -> bool {
    v.kind() == Kind::Object && v.get("body").is_some() && v.get("jsonrpc").is_none()
}

/// Reads one request from its text. Anything that is not an envelope is the body, as is.
pub fn read(text: &[u8], defaults: &Defaults<'_>) -> Result<Request, String> {
    let mut headers: Vec<(String, String)> =
        vec![("content-type".into(), "application/json".into())];
    if let Some(g) = defaults.grant {
        headers.push(("authorization".into(), g.into()));
    }
    if let Some(s) = defaults.session {
        headers.push(("mcp-session-id".into(), s.into()));
    }
    headers.extend(defaults.extra.iter().cloned());
    // Only true duplicates are refused here: the body a filter sees may well carry keys
    // that differ by case (which the decision then judges), and so may the headers.
    let parsed = Validator::new()
        .validate(
            text,
            Options {
                max_depth: 64,
                keys: KeyRule::Exact,
            },
        )
        .ok()
        .filter(|v| is_envelope(*v));
    let Some(env) = parsed else {
        return Ok(Request {
            method: "POST".into(),
            headers,
            body: text.to_vec(),
        });
    };
    if let Some((k, _)) = env
        .members()
        .find(|(k, _)| !["method", "path", "headers", "body"].contains(&k.decode().as_ref()))
    {
        return Err(format!(
            "envelope: unknown member \"{}\"; expected method, path, headers and body",
            k.decode()
        ));
    }
    let method = match env.get("method") {
        Some(m) => m
            .as_str()
            .map(|s| s.decode().into_owned())
            .ok_or("envelope method: expected a string such as \"POST\"")?,
        None => "POST".into(),
    };
    if let Some(h) = env.get("headers") {
        if h.kind() != Kind::Object {
            return Err("envelope headers: expected an object of header names to values".into());
        }
        for (k, v) in h.members() {
            let name = k.decode().to_ascii_lowercase();
            headers.retain(|(n, _)| *n != name);
            match v.kind() {
                Kind::Null => {}
                Kind::String => headers.push((
                    name,
                    v.as_str()
                        .map(|s| s.decode().into_owned())
                        .unwrap_or_default(),
                )),
                Kind::Array => {
                    for e in v.elements() {
                        let s = e
                            .as_str()
                            .ok_or("envelope headers: a repeated header takes a list of strings")?;
                        headers.push((name.clone(), s.decode().into_owned()));
                    }
                }
                _ => {
                    return Err(format!(
                        "envelope headers.{name}: expected a string, a list of strings or null"
                    ))
                }
            }
        }
    }
    if let Some(p) = env.get("path") {
        let path = p
            .as_str()
            .ok_or("envelope path: expected a string such as \"/mcp?x=1\"")?;
        headers.retain(|(n, _)| n != ":path");
        headers.push((":path".into(), path.decode().into_owned()));
    }
    let body = env.get("body").ok_or("envelope: body missing")?;
    let body = match body.as_str() {
        Some(raw) => raw.decode().into_owned().into_bytes(),
        None => body.raw().as_bytes().to_vec(),
    };
    Ok(Request {
        method,
        headers,
        body,
    })
}
