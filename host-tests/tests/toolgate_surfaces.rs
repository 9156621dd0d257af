//! Tool globs and their precedence, resources and prompts rules, the MCP 2026 request
//! headers, and RateLimit headers on counted calls, through the real module.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use host_tests::{Exchange, Worker};
use support::*;

const GLOBS: &str = r#"{"version":"1","default":"deny","hide":["*_secret"],"tools":{
    "*":{"limits":[{"counter":"any","window":"minute","max":100}]},
    "cache_*":{"action":"allow"},
    "cache_de*":{"action":"deny","reason":"No deleting."},
    "cache_delete_one":{},
    "db.*":{"require":[{"path":"args.ro","op":"eq","value":true}]}}}"#;

#[test]
fn exact_names_beat_globs_and_the_most_specific_glob_wins() {
    let envoy = start(GLOBS);
    let w = envoy.worker(0);
    let outcome = |tool: &str, args: &str| -> Option<(String, String)> {
        let ex = w.send(mcp_as("k", call(1, tool, args)));
        if ex.is_forwarded() {
            return None;
        }
        let reason = denial_reason(&ex);
        let reply = reply_json(&ex);
        let rule = detail(&reply)["rule"].as_str().unwrap().to_string();
        Some((reason, rule))
    };
    let denied = |reason: &str, rule: &str| Some((reason.to_string(), rule.to_string()));
    assert_eq!(outcome("cache_get", "{}"), None, "cache_* allows");
    assert_eq!(
        outcome("cache_delete", "{}"),
        denied("tool_denied", r#"tools["cache_de*"].action"#),
        "cache_de* is more specific than cache_*"
    );
    assert_eq!(
        outcome("cache_delete_one", "{}"),
        None,
        "exact beats every glob"
    );
    assert_eq!(
        outcome("CACHE_GET", "{}"),
        None,
        "globs match case-insensitively"
    );
    assert_eq!(outcome("anything_else", "{}"), None, "* matches the rest");
    assert_eq!(
        outcome("db.query", r#"{"ro":false}"#),
        denied("require_failed", r#"tools["db.*"].require[0]"#)
    );
    assert_eq!(outcome("db.query", r#"{"ro":true}"#), None);
    assert_eq!(
        outcome("cache_secret", "{}"),
        denied("hidden", "default"),
        "hide beats every rule"
    );
    let ex = w.send(mcp_as("k", call(1, "cache_deleted", "{}")));
    assert!(denial_text(&reply_json(&ex)).ends_with("\"cache_deleted\": No deleting."));
    // The "*" limit counts only what "*" governs: cache_get is governed by cache_*.
    let ex = w.send(mcp_as("k", call(1, "cache_get", "{}")));
    assert_eq!(ex.response.as_ref().unwrap().header("ratelimit"), None);
    let ex = w.send(mcp_as("k", call(1, "other", "{}")));
    assert_eq!(
        ex.response.as_ref().unwrap().header("ratelimit"),
        Some("\"any\";r=98;t=60"),
        "only anything_else and this call are governed by \"*\""
    );
}

const SECTIONS: &str = r#"{"version":"1","default":"allow","resources":{
    "default":"allow",
    "hide":["file:///secret/*"],
    "rules":{
      "file:///etc/*":{"action":"deny","reason":"System files are off limits."},
      "db://prod/*":{"deny_if":[{"path":"args.uri","op":"contains","value":"users"}],"limits":[{"counter":"prod_reads","window":"minute","max":2}]}}},
    "prompts":{"default":"deny","rules":{"summarize":{},"admin_*":{"action":"require_approval"}}}}"#;

fn read(w: &Worker, uri: &str) -> Exchange {
    w.send(mcp_as(
        "k",
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{{"uri":"{uri}"}}}}"#
        ),
    ))
}

#[test]
fn resources_are_judged_by_uri_under_every_spelling() {
    let envoy = start(SECTIONS);
    let w = envoy.worker(0);
    assert!(read(w, "file:///srv/readme.md").is_forwarded());
    let ex = read(w, "file:///etc/passwd");
    assert!(ex.body_text().starts_with(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32003,"message":"Toolgate denied resource \"file:///etc/passwd\": System files are off limits.""#), "{}", ex.body_text());
    assert_eq!(decision(&ex), "denied:tool_denied:file:///etc/passwd");
    for sneaky in [
        "file:///srv/../etc/passwd",
        "file:///%65tc/passwd",
        "FILE:///etc/passwd",
        "file:////etc//passwd",
        "file:///srv/%252e%252e/etc/passwd",
        // As JavaScript's `new URL` serialises them, and with a query or fragment.
        "file:/etc/passwd",
        "file:etc/passwd",
        "file://localhost/etc/passwd",
        "file:///etc/passwd?x",
        "file:///etc/passwd#x",
    ] {
        let ex = read(w, sneaky);
        assert_eq!(
            detail(&reply_json(&ex))["reason"],
            "tool_denied",
            "{sneaky}"
        );
        assert!(!ex.upstream.reached() || ex.upstream.opened_without_body());
    }
    for hidden in ["file:///secret/key", "file:///x/../secret/key"] {
        assert_eq!(denial_reason(&read(w, hidden)), "hidden");
    }
    assert_eq!(
        detail(&reply_json(&read(w, "file:///a b")))["reason"],
        "invalid_name"
    );
    assert_eq!(
        detail(&reply_json(&read(w, "db://prod/users")))["reason"],
        "deny_if_matched"
    );
    assert!(read(w, "db://prod/orders").is_forwarded());
    assert!(read(w, "db://prod/items").is_forwarded());
    let ex = read(w, "db://prod/orders");
    assert_eq!(detail(&reply_json(&ex))["reason"], "rate_limited");
    assert_eq!(
        ex.response.as_ref().unwrap().header("retry-after"),
        Some("60")
    );
}

#[test]
fn completions_and_subscriptions_of_what_the_agent_may_not_use_are_denied() {
    let envoy = start(SECTIONS);
    let w = envoy.worker(0);
    let send = |method: &str, params: &str| {
        w.send(mcp_as(
            "k",
            format!(r#"{{"jsonrpc":"2.0","id":4,"method":"{method}","params":{params}}}"#),
        ))
    };
    let complete = |reference: &str| {
        send(
            "completion/complete",
            &format!(r#"{{"ref":{reference},"argument":{{"name":"a","value":""}}}}"#),
        )
    };
    assert!(complete(r#"{"type":"ref/prompt","name":"summarize"}"#).is_forwarded());
    assert!(complete(r#"{"type":"ref/resource","uri":"file:///srv/{name}"}"#).is_forwarded());
    for (reference, reason) in [
        (r#"{"type":"ref/prompt","name":"other"}"#, "not_allowed"),
        (
            r#"{"type":"ref/prompt","name":"admin_reset"}"#,
            "approval_required",
        ),
        (
            r#"{"type":"ref/resource","uri":"file:///secret/{name}"}"#,
            "hidden",
        ),
        (
            r#"{"type":"ref/resource","uri":"file:///etc/{file}"}"#,
            "tool_denied",
        ),
    ] {
        let ex = complete(reference);
        assert_eq!(denial_reason(&ex), reason, "{reference}");
        assert!(!ex.upstream.reached() || ex.upstream.opened_without_body());
    }
    assert_eq!(
        denial_reason(&send(
            "resources/subscribe",
            r#"{"uri":"file:///secret/key"}"#
        )),
        "hidden"
    );
    // Subscribing is not reading: deny_if on reads and the read limit do not apply.
    for _ in 0..3 {
        assert!(send("resources/subscribe", r#"{"uri":"db://prod/users"}"#).is_forwarded());
    }
    assert!(read(w, "db://prod/items").is_forwarded());
}

#[test]
fn prompts_are_judged_by_name() {
    let envoy = start(SECTIONS);
    let w = envoy.worker(0);
    let get = |name: &str| {
        w.send(mcp_as(
            "k",
            format!(r#"{{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{{"name":"{name}","arguments":{{}}}}}}"#),
        ))
    };
    assert!(get("summarize").is_forwarded());
    assert!(get("SUMMARIZE").is_forwarded());
    let ex = get("other");
    let reply = reply_json(&ex);
    assert_eq!(reply["id"], "p");
    assert_eq!(reply["error"]["data"]["reason"], "not_allowed");
    assert_eq!(reply["error"]["data"]["rule"], "prompts.default");
    assert_eq!(
        detail(&reply_json(&get("admin_reset")))["reason"],
        "approval_required"
    );
    assert_eq!(
        detail(&reply_json(&get("ｓummarize")))["reason"],
        "invalid_name"
    );
    // Without a prompts section, prompts/get is not judged.
    let plain = start(SEED);
    assert!(plain
        .worker(0)
        .send(mcp_as(
            "k",
            r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"anything"}}"#
        ))
        .is_forwarded());
}

#[test]
fn mcp_method_and_name_headers_must_match_the_body() {
    for arrangement in Arrangement::BOTH {
        let envoy = start_in(arrangement, SEED);
        let w = envoy.worker(0);
        let body = call(9, "cache_cas", "{}");
        let send = |extra: &[(&str, &str)]| {
            let mut r = mcp_as("k", body.clone());
            for (k, v) in extra {
                r = r.header(k, v);
            }
            w.send(r)
        };
        for good in [
            vec![("mcp-method", "tools/call"), ("mcp-name", "cache_cas")],
            vec![
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?Y2FjaGVfY2Fz?="),
            ],
            vec![("mcp-method", "tools/call")],
        ] {
            assert_forwarded(&send(&good), body.as_bytes());
        }
        for bad in [
            vec![("mcp-method", "tools/list")],
            vec![("mcp-method", "TOOLS/CALL")],
            vec![("mcp-method", "tools/call"), ("mcp-name", "cache_delete")],
            vec![("mcp-name", "=?base64?Y2FjaGVfZGVsZXRl?=")],
            vec![("mcp-name", "=?base64?!!?=")],
        ] {
            let ex = send(&bad);
            let reply = assert_rejected(&ex, arrangement, 400, -32020);
            assert_eq!(reply["id"], 9, "{bad:?}");
            assert_eq!(reply["error"]["data"]["reason"], "header_mismatch");
            assert_eq!(decision(&ex), "rejected:header_mismatch");
        }
    }
}

/// Request trailers that a server merging them into the head would read as the headers the
/// head check reads are refused; others go on with the request.
#[test]
fn trailers_cannot_carry_what_the_head_is_checked_for() {
    for arrangement in Arrangement::BOTH {
        let envoy = start_in(arrangement, SEED);
        let w = envoy.worker(0);
        let body = call(9, "cache_cas", "{}");
        let send = |trailers: &[(&str, &str)]| {
            let mut r = mcp_as("k", body.clone()).chunks([body.clone()]);
            for (k, v) in trailers {
                r = r.trailer(k, v);
            }
            w.send(r)
        };
        let ex = send(&[("x-checksum", "1")]);
        assert_forwarded(&ex, body.as_bytes());
        let forwarded = ex
            .upstream
            .trailers
            .as_ref()
            .and_then(|t| t.get("x-checksum"));
        assert_eq!(forwarded, Some("1"));
        for bad in [
            ("mcp-name", "cache_delete"),
            ("Mcp_Method", "tools/call"),
            ("mcp-param-key", "k"),
            ("mcp-session-id", "other"),
            ("content-type", "text/plain"),
            ("authorization", "Bearer someone-else"),
        ] {
            let ex = send(&[("x-checksum", "1"), bad]);
            let reply = assert_rejected(&ex, arrangement, 400, -32600);
            let message = reply["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("trailer"), "{bad:?}: {reply}");
            assert_eq!(decision(&ex), "rejected:invalid_request", "{bad:?}");
        }
    }
}

#[test]
fn ratelimit_headers_come_only_on_responses_to_counted_calls() {
    let envoy = start(
        r#"{"version":"1","default":"allow",
        "all_tools":{"limits":[{"counter":"all","window":"hour","max":100}]},
        "tools":{"cache_cas":{"limits":[{"counter":"cas","window":"minute","max":30}]},
                 "free":{"action":"allow"}}}"#,
    );
    let w = envoy.worker(0);
    let ex = w.send(mcp_as("k", call(1, "cache_cas", "{}")));
    let r = ex.response.as_ref().unwrap();
    // Longest window first, as limits are counted.
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"all\";q=100;w=3600, \"cas\";q=30;w=60")
    );
    assert_eq!(
        r.header("ratelimit"),
        Some("\"all\";r=99;t=1740, \"cas\";r=29;t=60")
    );
    assert_eq!(r.header("retry-after"), None);
    // A passing method is not counted: no headers.
    let ex = w.send(mcp_as("k", method(2, "tools/list")));
    assert_eq!(ex.response.as_ref().unwrap().header("ratelimit"), None);
    assert_eq!(
        ex.response.as_ref().unwrap().header("ratelimit-policy"),
        None
    );
    // A batch of two counted calls reports the state after both.
    let batch = format!("[{},{}]", call(3, "cache_cas", "{}"), call(4, "free", "{}"));
    let ex = w.send(mcp_as("k", batch));
    assert!(ex.is_forwarded());
    let r = ex.response.as_ref().unwrap();
    assert!(
        r.header("ratelimit").unwrap().contains("\"cas\";r=28;t=60"),
        "{:?}",
        r.header("ratelimit")
    );
    assert!(
        r.header("ratelimit")
            .unwrap()
            .contains("\"all\";r=97;t=1740"),
        "{:?}",
        r.header("ratelimit")
    );
}
