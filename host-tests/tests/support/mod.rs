#![allow(
    dead_code,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
//! Helpers of the Toolgate suite: the real module (`modules::toolgate()`) in this host,
//! requests an MCP client would send, and assertions on what came back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use host_tests::{
    modules, Direction, Envoy, EnvoyBuilder, Exchange, Outcome, Request, UpstreamResponse,
};
use serde_json::Value;

/// The seed policy: cache_cas 30 times per calendar minute per grant, everything else denied.
pub const SEED: &str = r#"{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"minute","max":30,"scope":"grant"}]}}}"#;

/// Hides `cache_delete`, allows everything else: list answers are filtered.
pub const HIDE: &str = r#"{"version":"1","default":"allow","hide":["cache_delete"]}"#;

/// 2026-11-25T10:31:00Z: the start of a minute (not of an hour or a day).
pub const T0: u64 = 1_795_602_660;

/// What the upstream MCP server answers to anything that reaches it.
pub const EXECUTED: &str =
    r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"executed"}]}}"#;

/// The plugin name, hence the shared-data namespace (`tg/toolgate/...`).
pub const PLUGIN: &str = "toolgate";

/// The filter-state key of the decision.
pub const DECISION: &str = "wasm.toolgate.decision";

/// Unix seconds as a `SystemTime`.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// How the plugin is arranged in Envoy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrangement {
    /// The default: headers continue upstream at once, the body is held and judged.
    ContinueAtHeaders,
    /// `allow_on_headers_stop_iteration: true` and `pause_on_request_headers: true`:
    /// nothing goes upstream before the decision.
    PauseAtHeaders,
}

impl Arrangement {
    /// Both arrangements.
    pub const BOTH: [Arrangement; 2] =
        [Arrangement::ContinueAtHeaders, Arrangement::PauseAtHeaders];
}

/// A configuration in settings form (`{"policy": ...}`), whatever form `config` has.
pub fn settings_form(config: &str) -> Value {
    let v: Value = serde_json::from_str(config).unwrap_or_else(|e| panic!("{e}: {config}"));
    if v.get("version").is_some() {
        serde_json::json!({ "policy": v })
    } else {
        v
    }
}

/// `config` with extra settings merged in (it is turned into settings form).
pub fn with_settings(config: &str, settings: Value) -> String {
    let mut v = settings_form(config);
    let obj = v.as_object_mut().unwrap();
    for (k, s) in settings.as_object().unwrap() {
        obj.insert(k.clone(), s.clone());
    }
    v.to_string()
}

/// A builder for the Toolgate module with `config`, plugin name `toolgate`, started at T0.
pub fn toolgate(config: &str) -> EnvoyBuilder {
    Envoy::builder(modules::toolgate())
        .name(PLUGIN)
        .configuration(config)
        .start_time(at(T0))
}

/// A builder in an arrangement (adds the plugin flag and the module setting for pausing).
pub fn toolgate_in(arrangement: Arrangement, config: &str) -> EnvoyBuilder {
    match arrangement {
        Arrangement::ContinueAtHeaders => toolgate(config),
        Arrangement::PauseAtHeaders => toolgate(&with_settings(
            config,
            serde_json::json!({"pause_on_request_headers": true}),
        ))
        .allow_on_headers_stop_iteration(true),
    }
}

/// Starts Toolgate with `config` (one worker).
pub fn start(config: &str) -> Envoy {
    toolgate(config)
        .start()
        .unwrap_or_else(|e| panic!("toolgate did not start: {e}"))
}

/// Starts Toolgate in an arrangement.
pub fn start_in(arrangement: Arrangement, config: &str) -> Envoy {
    toolgate_in(arrangement, config)
        .start()
        .unwrap_or_else(|e| panic!("toolgate did not start ({arrangement:?}): {e}"))
}

/// A `tools/call` body.
pub fn call(id: u64, tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    )
}

/// A JSON-RPC request body without params.
pub fn method(id: u64, method: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#)
}

/// A POST to /mcp as an MCP client sends it, the upstream answering `EXECUTED`.
pub fn mcp(body: impl Into<Vec<u8>>) -> Request {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
        .upstream_response(UpstreamResponse::json(EXECUTED))
}

/// The same, with `Authorization: <grant>`.
pub fn mcp_as(grant: &str, body: impl Into<Vec<u8>>) -> Request {
    mcp(body).header("authorization", grant)
}

/// The reply's body as JSON (what the client received).
pub fn reply_json(ex: &Exchange) -> Value {
    let body = ex
        .response
        .as_ref()
        .map(|r| r.body.clone())
        .unwrap_or_default();
    serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "the reply is not JSON ({e}): {:?} {}",
            ex.outcome,
            ex.body_text()
        )
    })
}

/// The decision detail of a single denial (`result._meta["toolgate/decision"]` or
/// `error.data`).
pub fn detail(reply: &Value) -> &Value {
    if let Some(d) = reply.pointer("/result/_meta/toolgate~1decision") {
        return d;
    }
    reply
        .pointer("/error/data")
        .unwrap_or_else(|| panic!("no decision detail in {reply}"))
}

/// The text the agent reads in a denial.
pub fn denial_text(reply: &Value) -> String {
    reply
        .pointer("/result/content/0/text")
        .or_else(|| reply.pointer("/error/message"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no denial text in {reply}"))
        .to_string()
}

/// Asserts the request reached the upstream whole and the upstream's answer came back.
#[track_caller]
pub fn assert_forwarded(ex: &Exchange, sent: &[u8]) {
    assert_eq!(
        ex.outcome,
        Outcome::Forwarded,
        "expected forwarded: {}",
        ex.body_text()
    );
    assert!(ex.upstream.complete, "the upstream got the whole request");
    assert_eq!(
        ex.upstream.body, sent,
        "the upstream got the body unchanged"
    );
    assert_eq!(ex.status(), Some(200));
}

/// Asserts the filter answered itself and nothing of the body reached the upstream: in
/// the pause arrangement not even the headers; in the continue arrangement at most the
/// headers (then reset).
#[track_caller]
pub fn assert_nothing_forwarded(ex: &Exchange, arrangement: Arrangement) {
    assert!(
        ex.local_reply().is_some(),
        "expected a local reply, got {:?}",
        ex.outcome
    );
    match arrangement {
        Arrangement::PauseAtHeaders => assert!(
            !ex.upstream.reached(),
            "the upstream request was opened in the pause arrangement"
        ),
        Arrangement::ContinueAtHeaders => {
            if ex.upstream.reached() {
                assert!(
                    ex.upstream.opened_without_body(),
                    "body bytes reached the upstream"
                );
                assert!(!ex.upstream.complete, "the upstream request was completed");
            }
        }
    }
}

/// Asserts a denied `tools/call` answered with HTTP 200 and a JSON-RPC reply, nothing
/// forwarded, and returns the reply.
#[track_caller]
pub fn assert_denied(ex: &Exchange, arrangement: Arrangement) -> Value {
    assert_nothing_forwarded(ex, arrangement);
    assert_eq!(ex.status(), Some(200), "{}", ex.body_text());
    let response = ex.response.as_ref().unwrap();
    assert_eq!(response.header("content-type"), Some("application/json"));
    reply_json(ex)
}

/// The reason code of a denied single call as operators see it (the filter state), asserting
/// it was denied (continue arrangement) and that the agent was told the same reason, or
/// `not_allowed` for a hidden name.
#[track_caller]
pub fn denial_reason(ex: &Exchange) -> String {
    let reply = assert_denied(ex, Arrangement::ContinueAtHeaders);
    let state = decision(ex);
    let reason = state
        .strip_prefix("denied:")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("filter state {state}"));
    assert_eq!(detail(&reply)["reason"], shown_reason(reason), "{state}");
    reason.to_string()
}

/// The reason the agent is told for a denial operators see as `reason`: a hidden name is
/// refused as one the policy does not allow.
pub fn shown_reason(reason: &str) -> &str {
    if reason == "hidden" {
        "not_allowed"
    } else {
        reason
    }
}

/// Asserts a refusal before judging: `status`, a JSON-RPC error `code`, id null unless
/// told, nothing forwarded. Returns the reply.
#[track_caller]
pub fn assert_rejected(ex: &Exchange, arrangement: Arrangement, status: u16, code: i64) -> Value {
    assert_nothing_forwarded(ex, arrangement);
    assert_eq!(ex.status(), Some(status), "{}", ex.body_text());
    let reply = reply_json(ex);
    assert_eq!(reply["jsonrpc"], "2.0");
    assert_eq!(reply["error"]["code"], code, "{reply}");
    reply
}

/// The decision the module recorded as filter state.
pub fn decision(ex: &Exchange) -> String {
    ex.filter_state_text(DECISION)
        .unwrap_or_else(|| panic!("no {DECISION} filter state: {:?}", ex.filter_state))
}

/// Asserts the exchange did not fail the VM and the worker is healthy.
#[track_caller]
pub fn assert_vm_alive(envoy: &Envoy, ex: &Exchange) {
    assert!(
        !matches!(ex.outcome, Outcome::VmFailed(_)),
        "the VM failed: {:?}",
        ex.outcome
    );
    assert_eq!(envoy.worker(ex.worker).failure(), None);
}

/// The body sizes the module saw for the request (to show chunking happened).
pub fn request_body_callbacks(ex: &Exchange) -> usize {
    ex.body_sizes(Direction::Request).len()
}

/// Moves virtual time by whole seconds (and fires due ticks).
pub fn advance_secs(envoy: &Envoy, secs: u64) {
    envoy.advance_time(Duration::from_secs(secs));
}
