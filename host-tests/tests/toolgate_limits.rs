//! Limits through the real module: all_tools limits, counters shared across tools, every
//! window on the virtual clock, every scope, increment_from.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use host_tests::{Envoy, Worker};
use support::*;

fn allowed(w: &Worker, grant: &str, tool: &str, args: &str) -> bool {
    let ex = w.send(mcp_as(grant, call(1, tool, args)));
    if ex.is_forwarded() {
        assert_eq!(decision(&ex), "allowed");
        true
    } else {
        false
    }
}

#[test]
fn all_tools_limits_and_counters_shared_across_tools() {
    let envoy = start(
        r#"{"version":"1","default":"allow",
        "all_tools":{"limits":[{"counter":"calls","window":"minute","max":5,"scope":"grant"}]},
        "tools":{"a":{"limits":[{"counter":"writes","window":"hour","max":3}]},
                 "b":{"limits":[{"counter":"writes","window":"hour","max":3}]}}}"#,
    );
    let w = envoy.worker(0);
    assert!(allowed(w, "k", "a", "{}"));
    assert!(allowed(w, "k", "b", "{}"));
    assert!(allowed(w, "k", "a", "{}"));
    let ex = w.send(mcp_as("k", call(4, "b", "{}")));
    let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
    assert_eq!(
        detail(&reply),
        &serde_json::json!({"reason":"rate_limited","rule":"tools.b.limits[0]","counter":"writes","retry_after":1740}),
        "a and b share one count of writes"
    );
    assert_eq!(
        denial_text(&reply),
        "Toolgate denied tool \"b\": rate limit of 3 calls per hour reached (counter \"writes\"); retry in 1740 seconds."
    );
    // Both counted calls name both limits in their RateLimit headers.
    let ex = w.send(mcp_as("k2", call(5, "a", "{}")));
    let response = ex.response.as_ref().unwrap();
    assert_eq!(
        response.header("ratelimit-policy"),
        Some("\"writes\";q=3;w=3600, \"calls\";q=5;w=60")
    );
    assert_eq!(
        response.header("ratelimit"),
        Some("\"writes\";r=2;t=1740, \"calls\";r=4;t=60")
    );
    // The denied call consumed nothing from "calls": two more unlisted calls fit under 5.
    assert!(allowed(w, "k", "c", "{}"));
    assert!(allowed(w, "k", "d", "{}"));
    let ex = w.send(mcp_as("k", call(6, "c", "{}")));
    let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
    assert_eq!(detail(&reply)["rule"], "all_tools.limits[0]");
    assert_eq!(detail(&reply)["counter"], "calls");
    assert_eq!(
        envoy
            .metrics()
            .counter("toolgate.rate_limited.counter.writes"),
        Some(1)
    );
    assert_eq!(
        envoy
            .metrics()
            .counter("toolgate.rate_limited.counter.calls"),
        Some(1)
    );
}

#[test]
fn every_window_resets_on_the_calendar() {
    let day_start = T0 - T0 % 86_400;
    for (window, secs) in [
        ("second", 1u64),
        ("minute", 60),
        ("hour", 3600),
        ("day", 86_400),
    ] {
        let config = format!(
            r#"{{"version":"1","default":"allow","tools":{{"t":{{"limits":[{{"counter":"c","window":"{window}","max":2}}]}}}}}}"#
        );
        let envoy = toolgate(&config).start_time(at(day_start)).start().unwrap();
        let w = envoy.worker(0);
        assert!(allowed(w, "k", "t", "{}"), "{window}");
        assert!(allowed(w, "k", "t", "{}"), "{window}");
        let ex = w.send(mcp_as("k", call(1, "t", "{}")));
        assert_eq!(denial_reason(&ex), "rate_limited", "{window}");
        assert_eq!(
            ex.response.as_ref().unwrap().header("retry-after"),
            Some(secs.to_string().as_str()),
            "{window}"
        );
        assert_eq!(
            ex.response.as_ref().unwrap().header("ratelimit-policy"),
            Some(format!("\"c\";q=2;w={secs}").as_str())
        );
        // One nanosecond before the window ends: still limited.
        envoy.advance_time(Duration::from_secs(secs) - Duration::from_nanos(1));
        let ex = w.send(mcp_as("k", call(1, "t", "{}")));
        assert_eq!(denial_reason(&ex), "rate_limited", "{window} still");
        // The next window admits again, max times.
        envoy.advance_time(Duration::from_nanos(1));
        assert!(allowed(w, "k", "t", "{}"), "{window} reset");
        assert!(allowed(w, "k", "t", "{}"), "{window} reset");
        assert!(!allowed(w, "k", "t", "{}"), "{window} full again");
    }
}

fn session_call(w: &Worker, grant: &str, session: &str) -> bool {
    let ex = w.send(mcp_as(grant, call(1, "s", "{}")).header("mcp-session-id", session));
    ex.is_forwarded()
}

#[test]
fn scopes_grant_session_within_its_grant_and_global() {
    let envoy = start(
        r#"{"version":"1","default":"allow","tools":{
        "g":{"limits":[{"counter":"cg","window":"minute","max":1,"scope":"grant"}]},
        "s":{"limits":[{"counter":"cs","window":"minute","max":1,"scope":"session"}]},
        "all":{"limits":[{"counter":"ca","window":"minute","max":1,"scope":"global"}]}}}"#,
    );
    let w = envoy.worker(0);
    // grant: each credential its own count.
    assert!(allowed(w, "k1", "g", "{}"));
    assert!(!allowed(w, "k1", "g", "{}"));
    assert!(allowed(w, "k2", "g", "{}"));
    // global: one count for everyone.
    assert!(allowed(w, "k1", "all", "{}"));
    assert!(!allowed(w, "k2", "all", "{}"), "global is shared");
    assert!(!allowed(w, "k3", "all", "{}"));
    // session: per MCP session, within its grant.
    assert!(session_call(w, "k1", "S1"));
    assert!(!session_call(w, "k1", "S1"));
    assert!(
        session_call(w, "k1", "S2"),
        "a new session of the grant has its own count"
    );
    assert!(
        session_call(w, "k2", "S1"),
        "the same session id under another grant is another session"
    );
    assert!(!session_call(w, "k2", "S1"));
}

#[test]
fn grant_scoped_limits_without_any_grant_deny_with_no_grant() {
    let envoy = start(
        r#"{"policy":{"version":"1","default":"allow","tools":{"t":{"limits":[{"counter":"c","window":"minute","max":5}]}}},
            "grant_sources":[{"header":"x-user"}]}"#,
    );
    let w = envoy.worker(0);
    let ex = w.send(mcp(call(1, "t", "{}")));
    assert_eq!(denial_reason(&ex), "no_grant");
    assert!(w
        .send(mcp(call(1, "t", "{}")).header("x-user", "u"))
        .is_forwarded());
    // Tools without limits need no grant.
    assert!(w.send(mcp(call(1, "other", "{}"))).is_forwarded());
}

#[test]
fn increment_from_counts_the_argument() {
    let envoy = start(
        r#"{"version":"1","default":"allow","tools":{"spend":{"limits":[{"counter":"cents","window":"day","max":1000,"increment_from":"args.amount"}]}}}"#,
    );
    let w = envoy.worker(0);
    let ex = w.send(mcp_as("k", call(1, "spend", r#"{"amount":600}"#)));
    assert!(ex.is_forwarded());
    assert_eq!(
        ex.response.as_ref().unwrap().header("ratelimit"),
        Some("\"cents\";r=400;t=48540"),
        "600 of 1000 used; the day ends at midnight UTC"
    );
    assert!(allowed(w, "k", "spend", r#"{"amount":399.5}"#));
    let ex = w.send(mcp_as("k", call(3, "spend", r#"{"amount":1}"#)));
    let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
    assert_eq!(
        detail(&reply)["reason"],
        "rate_limited",
        "600 + 400 (rounded up)"
    );
    assert!(denial_text(&reply).contains("rate limit of 1000 units per day reached"));
    for bad in [
        r#"{}"#,
        r#"{"amount":-1}"#,
        r#"{"amount":"5"}"#,
        r#"{"amount":null}"#,
    ] {
        let ex = w.send(mcp_as("k2", call(4, "spend", bad)));
        assert_eq!(denial_reason(&ex), "invalid_increment", "{bad}");
    }
    // An amount of zero is admitted and counts nothing.
    assert!(allowed(w, "k3", "spend", r#"{"amount":0}"#));
    assert!(allowed(w, "k3", "spend", r#"{"amount":1000}"#));
    assert!(!allowed(w, "k3", "spend", r#"{"amount":1}"#));
}

#[test]
fn counters_are_shared_by_every_worker_of_one_envoy() {
    let envoy: Envoy = toolgate(SEED).workers(3).start().unwrap();
    let mut admitted = 0;
    for i in 0..45 {
        let ex = envoy
            .worker(i % 3)
            .send(mcp_as("Bearer a", call(1, "cache_cas", "{}")));
        admitted += usize::from(ex.is_forwarded());
    }
    assert_eq!(admitted, 30);
}
