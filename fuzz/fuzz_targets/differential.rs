//! Differential: whenever the filter forwards a body, no other plausible reading of it may
//! contain a call the policy denies. Two readers: serde_json (duplicate keys: last wins),
//! and "the most lenient server imaginable": trailing data and a BOM ignored, invalid UTF-8
//! replaced, keys and names matched after NFKC, case folding and removing control
//! characters and whitespace, last matching key wins, batches executed element by element.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use toolgate_engine::config::load;
use toolgate_engine::json::Validator;
use toolgate_engine::outcome::Verdict;
use toolgate_engine::ratelimit::{ManualClock, MemoryStore};
use toolgate_engine::{Engine, Head, NoAttributes};
use unicode_normalization::UnicodeNormalization;

/// Denied: cache_delete (hidden), anything not listed (default deny), cache_get with
/// key "secret" (deny_if), cache_set with amount over 100 (require).
const POLICY: &str = r#"{"version":"1","default":"deny","hide":["cache_delete"],"tools":{
  "cache_get":{"deny_if":[{"path":"args.key","op":"eq","value":"secret"}]},
  "cache_set":{"require":[{"path":"args.amount","op":"lte","value":100}]},
  "cache_delete":{}}}"#;

/// The same calls under a policy that allows what it does not name, so a name that only
/// means a denied tool to a lenient server gets no default denial to hide behind.
/// Denied: cache_delete, and cache_get with key "secret".
const OPEN_POLICY: &str = r#"{"version":"1","default":"allow","tools":{
  "cache_get":{"deny_if":[{"path":"args.key","op":"eq","value":"secret"}]},
  "cache_delete":{"action":"deny"}}}"#;

fn fold(s: &str) -> String {
    s.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_control() && !c.is_whitespace() && !matches!(*c, '\u{200b}'..='\u{200f}' | '\u{feff}' | '\u{2060}'..='\u{206f}' | '\u{ad}'))
        .collect()
}

/// The last member whose key means `name` (exactly, or to a lenient reader, which also
/// drops every ASCII character but letters and digits, as lodash's `camelCase` does).
fn member<'a>(obj: &'a serde_json::Map<String, Value>, name: &str, lenient: bool) -> Option<&'a Value> {
    if !lenient {
        return obj.get(name);
    }
    let alias = |k: &str| fold(k).chars().filter(|c| !c.is_ascii() || c.is_ascii_alphanumeric()).collect::<String>();
    obj.iter().filter(|(k, _)| alias(k) == name).map(|(_, v)| v).last()
}

/// Whether a reading of one message is a call the policy denies (`OPEN_POLICY` if `open`).
fn denied(msg: &Value, lenient: bool, open: bool) -> bool {
    let Some(obj) = msg.as_object() else { return false };
    // Names match policy names ASCII-case-insensitively (Toolgate's documented rule).
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(|s| if lenient { fold(s) } else { s.to_ascii_lowercase() });
    let Some(method) = text(member(obj, "method", lenient)) else { return false };
    // Routers may trim and collapse slashes in a method as in a path.
    let method: Vec<&str> = method.split('/').filter(|p| !p.is_empty()).collect();
    if method.join("/") != "tools/call" {
        return false;
    }
    let Some(params) = member(obj, "params", lenient).and_then(Value::as_object) else { return false };
    let Some(name) = text(member(params, "name", lenient)) else { return false };
    let args = member(params, "arguments", lenient).and_then(Value::as_object);
    let arg = |k: &str| args.and_then(|a| member(a, k, lenient));
    // Both policies deny cache_get of the key "secret".
    let secret_key = || arg("key").is_some_and(|k| k == "secret" || k.as_str().is_some_and(|s| fold(s) == "secret" && lenient));
    if open {
        // A lenient server may look a tool up by its letters and digits alone
        // (`cache-delete`, `cacheDelete`).
        let name = if lenient { name.chars().filter(char::is_ascii_alphanumeric).collect() } else { name };
        return match name.as_str() {
            "cachedelete" | "cache_delete" => true,
            "cacheget" | "cache_get" => secret_key(),
            _ => false,
        };
    }
    match name.as_str() {
        "cache_get" => secret_key(),
        "cache_set" => match arg("amount") {
            None => false, // the tool would fail; not an admitted over-limit call
            Some(a) => a.as_f64().is_none_or(|n| n > 100.0) || a.as_str().and_then(|s| s.trim().parse::<f64>().ok()).is_some_and(|n| n > 100.0),
        },
        // Any other name is denied: hidden, or not listed.
        _ => true,
    }
}

fn readings(body: &[u8]) -> Vec<(Value, bool)> {
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        out.push((v, false));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}');
    if let Some(Ok(v)) = serde_json::Deserializer::from_str(text).into_iter::<Value>().next() {
        out.push((v, true));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    for (policy, open) in [(POLICY, false), (OPEN_POLICY, true)] {
        check(policy, open, data);
    }
});

fn check(policy: &str, open: bool, data: &[u8]) {
    let Ok(config) = load(policy.as_bytes()) else { return };
    let store = MemoryStore::new();
    let Ok(engine) = Engine::new(config, "fuzz", &store, [4; 16]) else { return };
    let headers: &[(&[u8], &[u8])] = &[(b"content-type", b"application/json")];
    let Head::Inspect(info) = engine.inspect_head(b"POST", headers, true, &NoAttributes) else { return };
    let o = engine.decide(&info, data, &store, &ManualClock::at_secs(1), &mut Validator::new());
    if !matches!(o.verdict, Verdict::Forward(_)) {
        return;
    }
    for (v, lenient) in readings(data) {
        let messages = match &v {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for m in &messages {
            assert!(
                !denied(m, lenient, open),
                "forwarded a body that a {} reading sees as a denied call under the {} policy: {}",
                if lenient { "lenient" } else { "serde_json" },
                if open { "default-allow" } else { "default-deny" },
                String::from_utf8_lossy(data)
            );
        }
    }
}
