//! The benchmarked request, shared by the `cargo bench` harness and the profiling example
//! (`examples/profile_loop`), so both time and profile the same call under the same policy.

use std::time::Duration;

use crate::{modules, Envoy, Request, StartError, UpstreamResponse};

/// 2026-11-25T10:31:00Z: the hosts' start time, so calendar windows are fixed.
pub const T0: u64 = 1_795_602_660;

/// One generous limit: every benchmarked call is counted and none is ever refused.
pub const ONE_LIMIT: &str = r#"{"policy":{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"day","max":1000000000000,"scope":"grant"}]}}},"max_body_bytes":4194304}"#;

/// A tool with ten argument conditions, one of each kind (and a limit): the scaling
/// workload for conditions. [`TEN_CONDITION_ARGS`] meets every one.
pub const TEN_CONDITIONS: &str = r#"{"policy":{"version":"1","default":"deny","tools":{"cond":{
    "require":[{"path":"args.a","op":"eq","value":"x"},{"path":"args.b","op":"neq","value":"y"},
               {"path":"args.c","op":"in","value":["p","q","r"]},{"path":"args.d","op":"not_in","value":["s","t"]},
               {"path":"args.e","op":"lt","value":10},{"path":"args.f","op":"gte","value":1},
               {"path":"args.g","op":"regex","value":"^/srv/[a-z]+$"},{"path":"args.h","op":"exists","value":true}],
    "deny_if":[{"path":"args.i","op":"contains","value":".."},{"path":"args.j","op":"gt","value":100}],
    "limits":[{"counter":"c","window":"day","max":1000000000000}]}}},"max_body_bytes":4194304}"#;

/// Arguments meeting every condition of [`TEN_CONDITIONS`].
pub const TEN_CONDITION_ARGS: &str =
    r#"{"a":"x","b":"z","c":"q","d":"u","e":5,"f":1,"g":"/srv/data","h":true,"i":"/a/b","j":7}"#;

/// A policy hiding two of the tools [`hundred_tool_list`] lists.
pub const HIDING_TWO: &str =
    r#"{"policy":{"version":"1","default":"allow","hide":["tool_7","tool_42"]}}"#;

/// A `tools/list` answer of 100 tools, about 21 KB (each with a description and a small
/// input schema): the list a policy that hides tools filters.
pub fn hundred_tool_list() -> String {
    let tools: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"name":"tool_{i}","description":"Does thing number {i} to the cache, with care and at length.","inputSchema":{{"type":"object","properties":{{"key":{{"type":"string"}},"value":{{"type":"string"}}}},"required":["key"]}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{}]}}}}"#,
        tools.join(",")
    )
}

/// A default-deny policy of `n` tools `tool_0`.., each with a generous limit on one of 8
/// counters: the policy-size scaling workload.
pub fn policy_with_tools(n: usize) -> String {
    let tools: Vec<String> = (0..n)
        .map(|i| format!(r#""tool_{i}":{{"limits":[{{"counter":"c{}","window":"day","max":1000000000000}}]}}"#, i % 8))
        .collect();
    format!(
        r#"{{"policy":{{"version":"1","default":"deny","tools":{{{}}}}},"max_body_bytes":4194304}}"#,
        tools.join(",")
    )
}

/// A `tools/call` of `tool` with `args` (JSON text).
pub fn call_body(tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    )
}

/// A cache_cas call of exactly `size` bytes (the value argument pads it).
pub fn sized_call(size: usize) -> String {
    sized_call_to("cache_cas", size)
}

/// A call of `tool` of exactly `size` bytes.
pub fn sized_call_to(tool: &str, size: usize) -> String {
    let empty = call_body(tool, r#"{"key":"k","value":""}"#);
    let pad = size.saturating_sub(empty.len());
    call_body(
        tool,
        &format!(r#"{{"key":"k","value":"{}"}}"#, "x".repeat(pad)),
    )
}

/// `body` as an MCP POST with a grant, answered by the upstream with a small result.
pub fn mcp(body: &str) -> Request {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("authorization", "Bearer bench")
        .body(body.as_bytes().to_vec())
        .upstream_response(UpstreamResponse::json(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
        ))
}

/// The same request for the probe module: it buffers the body and reads it once.
pub fn probe_request(body: &str) -> Request {
    mcp(body).header("x-probe-body", "buffer")
}

/// Toolgate with `config`, started at [`T0`].
pub fn start_toolgate(config: &str) -> Result<Envoy, StartError> {
    Envoy::builder(modules::toolgate())
        .name("toolgate")
        .configuration(config)
        .start_time(std::time::UNIX_EPOCH + Duration::from_secs(T0))
        .start()
}

/// The probe module, which only buffers (with [`probe_request`]).
pub fn start_probe() -> Result<Envoy, StartError> {
    Envoy::builder(modules::probe()).start()
}
