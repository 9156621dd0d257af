//! Shadow mode and both denial styles through the real module.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use host_tests::LogLevel;
use serde_json::json;
use support::*;

#[test]
fn shadow_mode_forwards_everything_and_reports_what_it_would_have_done() {
    let envoy = start(&with_settings(SEED, json!({"mode": "shadow"})));
    let w = envoy.worker(0);

    let body = call(1, "cache_delete", "{}");
    let ex = w.send(mcp_as("Bearer a", body.clone()));
    assert_forwarded(&ex, body.as_bytes());
    assert_eq!(decision(&ex), "shadow_denied:not_allowed:cache_delete");

    for i in 0..30 {
        assert!(w
            .send(mcp_as("Bearer a", call(i, "cache_cas", "{}")))
            .is_forwarded());
    }
    let body = call(31, "cache_cas", "{}");
    let ex = w.send(mcp_as("Bearer a", body.clone()));
    assert_forwarded(&ex, body.as_bytes());
    assert_eq!(decision(&ex), "shadow_denied:rate_limited:cache_cas");
    assert_eq!(
        ex.response.as_ref().unwrap().body_text(),
        EXECUTED,
        "the server's answer, not a denial"
    );

    // Refusals before judging are not enforced either.
    let ex = w.send(mcp_as("Bearer a", "{not json"));
    assert_forwarded(&ex, b"{not json");
    assert_eq!(decision(&ex), "shadow_rejected:parse_error");

    let metrics = envoy.metrics();
    assert_eq!(
        metrics.counter("toolgate.tool_calls.tool._other.decision.shadow_denied"),
        Some(1)
    );
    assert_eq!(
        metrics.counter("toolgate.tool_calls.tool.cache_cas.decision.shadow_denied"),
        Some(1)
    );
    assert_eq!(
        metrics.counter("toolgate.tool_calls.tool.cache_cas.decision.allowed"),
        Some(30)
    );
    let lines = envoy
        .logs()
        .containing("toolgate: shadow_denied tool=\"cache_delete\"");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].level, LogLevel::Info);
    assert!(lines[0].message.contains("reason=not_allowed rule=default"));
    assert_eq!(
        envoy
            .logs()
            .containing("toolgate: shadow_rejected reason=parse_error")
            .len(),
        1
    );
}

#[test]
fn result_style_is_a_tool_result_the_model_can_read() {
    let envoy = start(SEED);
    let ex = envoy.worker(0).send(mcp_as(
        "k",
        call(1, "x", "{}").replace("\"id\":1", "\"id\":\"abc\""),
    ));
    assert_eq!(
        ex.body_text(),
        r#"{"jsonrpc":"2.0","id":"abc","result":{"content":[{"type":"text","text":"Toolgate denied tool \"x\": it is not allowed by policy."}],"isError":true,"resultType":"complete","_meta":{"toolgate/decision":{"reason":"not_allowed","rule":"default"}}}}"#
    );
    assert_eq!(
        ex.local_reply().unwrap().details,
        "toolgate_denied",
        "response code details"
    );
}

#[test]
fn error_style_with_the_default_and_a_configured_code() {
    let envoy = start(&with_settings(SEED, json!({"denial_style": "error"})));
    let ex = envoy.worker(0).send(mcp_as(
        "k",
        call(1, "x", "{}").replace("\"id\":1", "\"id\":\"abc\""),
    ));
    assert_eq!(ex.status(), Some(200));
    assert_eq!(
        ex.body_text(),
        r#"{"jsonrpc":"2.0","id":"abc","error":{"code":-32003,"message":"Toolgate denied tool \"x\": it is not allowed by policy.","data":{"reason":"not_allowed","rule":"default"}}}"#
    );

    let envoy = start(&with_settings(
        SEED,
        json!({"denial_style": "error", "denial_error_code": -32099}),
    ));
    let w = envoy.worker(0);
    for i in 0..30 {
        assert!(w
            .send(mcp_as("k", call(i, "cache_cas", "{}")))
            .is_forwarded());
    }
    let ex = w.send(mcp_as("k", call(77, "cache_cas", "{}")));
    let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
    assert_eq!(reply["id"], 77);
    assert_eq!(reply["error"]["code"], -32099);
    assert_eq!(reply["error"]["data"]["reason"], "rate_limited");
    assert_eq!(reply["error"]["data"]["retry_after"], 60);
    assert!(reply.get("result").is_none());
    assert_eq!(
        ex.response.as_ref().unwrap().header("retry-after"),
        Some("60")
    );
}

#[test]
fn a_denied_notification_is_answered_in_the_error_style_with_id_null() {
    let envoy = start(SEED);
    let ex = envoy.worker(0).send(mcp_as(
        "k",
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"cache_delete","arguments":{}}}"#,
    ));
    let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
    assert_eq!(reply["id"], serde_json::Value::Null);
    assert_eq!(reply["error"]["code"], -32003);
    assert_eq!(reply["error"]["data"]["reason"], "not_allowed");
}
