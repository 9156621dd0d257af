//! The seed policy through the real module: cache_cas 30 times per calendar minute per
//! grant, everything else denied, MCP housekeeping untouched.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use host_tests::{Outcome, Request};
use support::*;

const CAS_ARGS: &str = r#"{"key":"k","value":"v","cas":1,"expire":60}"#;

#[test]
fn cache_cas_is_allowed_30_times_a_minute_then_denied_until_the_next_minute() {
    let envoy = toolgate(SEED).start_time(at(T0 + 5)).start().unwrap();
    let w = envoy.worker(0);
    for i in 0..30u64 {
        let body = call(i, "cache_cas", CAS_ARGS);
        let ex = w.send(mcp_as("Bearer agent-1", body.clone()));
        assert_forwarded(&ex, body.as_bytes());
        assert_eq!(decision(&ex), "allowed");
        // Counted calls say how much is left.
        let response = ex.response.as_ref().unwrap();
        assert_eq!(
            response.header("ratelimit"),
            Some(format!("\"cache_cas_rate\";r={};t=55", 29 - i).as_str())
        );
        assert_eq!(
            response.header("ratelimit-policy"),
            Some("\"cache_cas_rate\";q=30;w=60")
        );
        assert_eq!(
            response.body_text(),
            EXECUTED,
            "the server's answer is untouched"
        );
    }

    let ex = w.send(mcp_as("Bearer agent-1", call(31, "cache_cas", CAS_ARGS)));
    let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
    assert_eq!(
        ex.body_text(),
        r#"{"jsonrpc":"2.0","id":31,"result":{"content":[{"type":"text","text":"Toolgate denied tool \"cache_cas\": rate limit of 30 calls per minute reached (counter \"cache_cas_rate\"); retry in 55 seconds."}],"isError":true,"resultType":"complete","_meta":{"toolgate/decision":{"reason":"rate_limited","rule":"tools.cache_cas.limits[0]","counter":"cache_cas_rate","retry_after":55}}}}"#
    );
    assert_eq!(reply["result"]["isError"], true);
    let response = ex.response.as_ref().unwrap();
    assert_eq!(response.header("retry-after"), Some("55"));
    assert_eq!(
        response.header("ratelimit"),
        Some("\"cache_cas_rate\";r=0;t=55")
    );
    assert_eq!(decision(&ex), "denied:rate_limited:cache_cas");
    assert_eq!(
        envoy
            .metrics()
            .counter("toolgate.rate_limited.counter.cache_cas_rate"),
        Some(1)
    );
    assert!(
        envoy
            .logs()
            .containing("toolgate: denied tool=\"cache_cas\" reason=rate_limited rule=tools.cache_cas.limits[0] counter=cache_cas_rate")
            .len()
            == 1,
        "one denial log line"
    );
    assert!(
        envoy.logs().containing("agent-1").is_empty(),
        "credentials are never logged"
    );

    // 54 seconds later it is still the same minute.
    advance_secs(&envoy, 54);
    let ex = w.send(mcp_as("Bearer agent-1", call(32, "cache_cas", CAS_ARGS)));
    assert_eq!(denial_reason(&ex), "rate_limited");
    assert_eq!(
        ex.response.as_ref().unwrap().header("retry-after"),
        Some("1")
    );

    // The next calendar minute admits again, 30 times.
    advance_secs(&envoy, 1);
    for i in 0..30u64 {
        let body = call(100 + i, "cache_cas", CAS_ARGS);
        assert_forwarded(
            &w.send(mcp_as("Bearer agent-1", body.clone())),
            body.as_bytes(),
        );
    }
    assert_eq!(
        denial_reason(&w.send(mcp_as("Bearer agent-1", call(200, "cache_cas", CAS_ARGS)))),
        "rate_limited"
    );
}

#[test]
fn a_second_grant_has_its_own_count() {
    let envoy = start(SEED);
    let w = envoy.worker(0);
    for i in 0..30 {
        assert!(w
            .send(mcp_as("Bearer a", call(i, "cache_cas", "{}")))
            .is_forwarded());
    }
    assert_eq!(
        denial_reason(&w.send(mcp_as("Bearer a", call(30, "cache_cas", "{}")))),
        "rate_limited"
    );
    for i in 0..30 {
        let body = call(i, "cache_cas", "{}");
        assert_forwarded(&w.send(mcp_as("Bearer b", body.clone())), body.as_bytes());
    }
    assert_eq!(
        denial_reason(&w.send(mcp_as("Bearer b", call(30, "cache_cas", "{}")))),
        "rate_limited"
    );
    // Without Authorization the next grant source is x-api-key, then the client address.
    let by_key = mcp(call(1, "cache_cas", "{}")).header("x-api-key", "Bearer a");
    assert!(w.send(by_key).is_forwarded(), "x-api-key is another source");
    let by_address = mcp(call(1, "cache_cas", "{}")).source_address("192.0.2.7:1234");
    assert!(w.send(by_address).is_forwarded());
}

#[test]
fn every_other_tool_is_denied_under_default_deny_and_not_counted() {
    let envoy = start(SEED);
    let w = envoy.worker(0);
    for tool in [
        "cache_get",
        "cache_set",
        "cache_delete",
        "cache_flush",
        "anything",
    ] {
        let ex = w.send(mcp_as("Bearer a", call(7, tool, r#"{"key":"k"}"#)));
        let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
        assert_eq!(reply["id"], 7);
        assert_eq!(
            denial_text(&reply),
            format!("Toolgate denied tool \"{tool}\": it is not allowed by policy.")
        );
        assert_eq!(detail(&reply)["reason"], "not_allowed");
        assert_eq!(detail(&reply)["rule"], "default");
        assert_eq!(decision(&ex), format!("denied:not_allowed:{tool}"));
        assert!(
            ex.response
                .as_ref()
                .unwrap()
                .header("retry-after")
                .is_none(),
            "no Retry-After on a static denial"
        );
    }
    // Nothing was counted: cache_cas still has its 30.
    for i in 0..30 {
        assert!(w
            .send(mcp_as("Bearer a", call(i, "cache_cas", "{}")))
            .is_forwarded());
    }
    assert_eq!(
        envoy
            .metrics()
            .counter("toolgate.tool_calls.tool._other.decision.denied"),
        Some(5)
    );
}

#[test]
fn tools_list_initialize_notifications_and_get_pass() {
    let envoy = start(SEED);
    let w = envoy.worker(0);
    let bodies = [
        method(1, "tools/list"),
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#.to_string(),
        method(2, "ping"),
        r#"{"jsonrpc":"2.0","id":"s1","result":{"content":[]}}"#.to_string(),
    ];
    for body in bodies {
        let ex = w.send(mcp_as("Bearer a", body.clone()));
        assert_forwarded(&ex, body.as_bytes());
        assert_eq!(decision(&ex), "passed", "{body}");
        assert!(ex.response.as_ref().unwrap().header("ratelimit").is_none());
    }
    // GET (the SSE stream of a session), DELETE (ending it) and OPTIONS pass untouched.
    for m in ["GET", "DELETE", "OPTIONS"] {
        let ex = w.send(
            Request::new(m, "/mcp")
                .header("mcp-session-id", "S1")
                .upstream_response(host_tests::UpstreamResponse::new(200)),
        );
        assert_eq!(ex.outcome, Outcome::Forwarded, "{m}");
        assert!(ex.upstream.complete);
        assert_eq!(
            ex.filter_state_text(DECISION),
            None,
            "{m} is not inspected at all"
        );
    }
    assert!(envoy.logs().containing("toolgate: denied").is_empty());
}
