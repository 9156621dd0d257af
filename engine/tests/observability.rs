#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! What an agent cannot do to operators' observability: forge fields in the access log
//! through the decision Toolgate records, write unbounded log lines, choose the request id
//! its refusals are logged under, or have metrics credit another tool than the entry that
//! judged the call.

mod common;

use common::*;
use toolgate_engine::outcome::{CallOutcome, ToolLabel};
use toolgate_engine::Head;

/// The index of the tool entry named `name`.
fn entry(h: &Harness, name: &str) -> usize {
    h.engine
        .policy()
        .tools
        .entries
        .iter()
        .position(|e| e.name == name)
        .unwrap()
}

fn attrs() -> Attrs {
    Attrs {
        address: Some("10.0.0.9:41000".into()),
        jwt_sub: None,
    }
}

/// The decision recorded for the access log (`%FILTER_STATE(wasm.toolgate.decision:PLAIN)%`)
/// holds none of the quotes, spaces, line separators or bidirectional overrides an agent
/// puts in a tool name: in a text access log they would close a field and forge others.
#[test]
fn the_recorded_decision_holds_no_quote_space_or_separator_of_the_agents() {
    let mut h = Harness::new(SEED);
    // JSON-escaped name: x" decision="allowed" tool="cache_cas<U+2028>fake line<U+202E>
    let name = r#"x\" decision=\"allowed\" tool=\"cache_cas\u2028fake line\u202e"#;
    let o = h.call("Bearer a", name, "{}");
    assert!(!forwarded(&o));
    let s = o.report.summary();
    let bad = |c: char| c == '"' || c == ' ' || c == '\u{2028}' || c == '\u{202e}';
    assert!(
        !s.chars().any(bad),
        "filter state value holds agent-chosen quote/space/separator: {s:?}"
    );
}

/// Against the shipped access-log format (space-separated key=value, `envoy/envoy.yaml`), an
/// invalid tool name with spaces and `=` stays one field.
#[test]
fn an_invalid_name_forges_no_field_in_the_shipped_access_log() {
    let mut h = Harness::new(SEED);
    let name = "x upstream=10.1.2.3:8080 request_id=3f1c0c5e-victim duration_ms=1 toolgate=allowed";
    let o = h.call("Bearer a", name, "{}");
    let line = format!(
        "[t] \"POST /mcp\" 200 via_upstream toolgate={} upstream=- request_id=9b2d-real duration_ms=0",
        o.report.summary()
    );
    // A log parser splits the line at spaces: one request_id field, the real one.
    let ids: Vec<&str> = line
        .split(' ')
        .filter(|f| f.starts_with("request_id="))
        .collect();
    assert_eq!(ids, ["request_id=9b2d-real"], "{line}");
}

/// The name Toolgate's own log line quotes holds no bidirectional override (a log viewer
/// would show the line reordered).
#[test]
fn the_logged_name_holds_no_bidirectional_override() {
    let mut h = Harness::new(SEED);
    let o = h.call("Bearer a", r#"cache_\u202edeleted_ok"#, "{}");
    let q = toolgate_engine::reply::quoted(&o.report.calls[0].name);
    assert!(!q.contains('\u{202e}'), "{q:?}");
}

/// The same for a resource URI with whitespace (refused as an invalid name).
#[test]
fn a_uri_with_spaces_forges_no_field_either() {
    let policy = r#"{"version":"1","default":"deny","tools":{"cache_cas":{}},"resources":{"default":"deny"}}"#;
    let mut h = Harness::new(policy);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a\" status=200 decision=allowed"}}"#;
    let o = h.post("Bearer a", body);
    let s = o.report.summary();
    assert!(!s.contains('"') && !s.contains(' '), "{s:?}");
}

/// A rejection's detail, which the filter logs, quotes a member name cut short: a name as
/// long as the body (`m____…___ethod` resembles `method`) made a log line as long.
#[test]
fn a_rejection_detail_quotes_a_long_name_cut_short() {
    let mut h = Harness::new(SEED);
    let key = format!("m{}ethod", "_".repeat(900_000));
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"{key}":"tools/call","method":"ping"}}"#);
    let o = h.post("Bearer a", &body);
    let (_, detail) = o.report.rejection.clone().expect("refused");
    assert!(
        detail.len() <= 1024,
        "detail logged is {} bytes",
        detail.len()
    );
}

/// The request id logged is Envoy's `x-request-id`, not a client's `x_request_id` (which
/// Envoy passes on and other headers answer to): a refusal at the head is never logged
/// under an id the agent chose (another request's).
#[test]
fn a_head_refusal_is_logged_under_envoys_request_id() {
    let h = Harness::new(SEED);
    let head: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"POST"),
        (b":path", b"/mcp?method=tools/call"),
        (b"content-type", b"application/json"),
        (b"x_request_id", b"3f1c0c5e-victim-request-id"),
        // What Envoy adds (appended after the client's headers).
        (b"x-request-id", b"9b2d-envoy-generated"),
    ];
    let Head::Done(o) = h.engine.inspect_head(b"POST", &head, true, &attrs()) else {
        panic!("not refused at the head");
    };
    assert_eq!(o.report.request_id.as_deref(), Some("9b2d-envoy-generated"));
}

/// Past the head, the client's `x_request_id` does not blank the logged id either.
#[test]
fn an_underscore_request_id_neither_replaces_nor_blanks_envoys() {
    let mut h = Harness::new(SEED);
    let o = h.request(
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer a"),
            ("x_request_id", "anything"),
            ("x-request-id", "9b2d-envoy-generated"),
        ],
        &call_body(1, "cache_delete", "{}"),
    );
    assert!(!forwarded(&o));
    assert_eq!(o.report.request_id.as_deref(), Some("9b2d-envoy-generated"));
}

/// A name a server respells onto an exact entry (`cacheCas` is `cache_cas`) that also meets a
/// glob as sent: the metrics name the entry that denied it, as the log does.
#[test]
fn metrics_name_the_exact_entry_that_denied_a_respelled_call() {
    let policy =
        r#"{"version":"1","default":"deny","tools":{"cache*":{},"cache_cas":{"action":"deny"}}}"#;
    let mut h = Harness::new(policy);
    let o = h.call("Bearer a", "cacheCas", "{}");
    assert!(
        !forwarded(&o),
        "respelled call onto a denied entry must be denied"
    );
    let c = &o.report.calls[0];
    let CallOutcome::Denied { rule, .. } = &c.outcome else {
        panic!()
    };
    let cas = entry(&h, "cache_cas");
    assert_eq!(rule, "tools.cache_cas.action");
    assert!(
        matches!(c.tool, ToolLabel::Policy(id) if id.0 == cas),
        "metric label {:?} is not the entry that enforced ({rule})",
        c.tool
    );
}

/// The same for an allowed call counted under the exact entry's limit.
#[test]
fn metrics_name_the_exact_entry_an_allowed_respelled_call_counts_under() {
    let policy = r#"{"version":"1","default":"deny","tools":{"cache*":{},"cache_cas":{"limits":[{"counter":"cas","window":"minute","max":1,"scope":"global"}]}}}"#;
    let mut h = Harness::new(policy);
    let o = h.call("Bearer a", "cacheCas", "{}");
    assert!(forwarded(&o));
    let o2 = h.call("Bearer a", "cacheCas", "{}");
    // Counted against cache_cas's limit: the second is limited...
    assert!(!forwarded(&o2));
    let c = &o.report.calls[0];
    let cas = entry(&h, "cache_cas");
    // ...and metrics count the allowed one under that entry too.
    assert!(
        matches!(c.tool, ToolLabel::Policy(id) if id.0 == cas),
        "{:?}",
        c.tool
    );
}
