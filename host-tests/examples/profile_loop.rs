//! Sends the benchmarked call (`host_tests::workload`: the 1 KB allowed, counted
//! `cache_cas` call, one limit) through this host N times and prints the median and
//! 10th-percentile time inside the module's callbacks: a target for profilers, where
//! `cargo bench` is a measurement.
//!
//!     CARGO_PROFILE_BENCH_STRIP=false CARGO_PROFILE_BENCH_DEBUG=line-tables-only \
//!       cargo build --profile bench -p host-tests --example profile_loop
//!     # instructions inside the callbacks, repeatable (compare with `probe` as argument):
//!     valgrind --tool=callgrind --toggle-collect='host_tests::vm::Vm::call' \
//!       target/release/examples/profile_loop 2000
//!     # start-up (configuration, the first requests) is counted too: per request is the
//!     # difference between runs of 3000 and 1000, divided by 2000
//!     # the module's own functions by name (a module built with its name section kept):
//!     HOST_PERFMAP=1 TOOLGATE_WASM=... perf record -e cpu-clock target/release/examples/profile_loop
//!
//! `PROFILE_TOOLS=N` sends the same 1 KB call to the last tool of the N-tool policy of the
//! scaling bench instead (`workload::policy_with_tools`), to count what policy size costs.
//!
//! `PROFILE_CONDITIONS=1` sends a call meeting ten argument conditions
//! (`workload::TEN_CONDITIONS`) instead.
//!
//! `PROFILE_HIDDEN=1` sends a `tools/list` whose 100-tool answer (`workload::hundred_tool_list`)
//! is filtered for a policy hiding two of them.
//!
//! `PROFILE_LIST=1` sends the benchmarked `tools/list` instead (seed policy, nothing hidden):
//! the work every request pays, whatever it calls.
//!
//! `HOST_PERFMAP=1` makes wasmtime write `/tmp/perf-<pid>.map` for perf to name JIT code.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use host_tests::workload::{
    call_body, hundred_tool_list, mcp, policy_with_tools, probe_request, sized_call, sized_call_to,
    start_probe, start_toolgate, HIDING_TWO, ONE_LIMIT, TEN_CONDITIONS, TEN_CONDITION_ARGS,
};
use host_tests::UpstreamResponse;

/// The benchmarked `tools/list` (the Envoy bench's too).
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000)
        .max(1);
    let probe = std::env::args().any(|a| a == "probe");
    let tools: Option<usize> = std::env::var("PROFILE_TOOLS")
        .ok()
        .and_then(|t| t.parse().ok());
    let list = std::env::var_os("PROFILE_LIST").is_some();
    let conditions = std::env::var_os("PROFILE_CONDITIONS").is_some();
    let hidden = std::env::var_os("PROFILE_HIDDEN").is_some();
    let body = if list {
        TOOLS_LIST.to_string()
    } else {
        sized_call(1024)
    };
    let (envoy, request) = match tools {
        _ if probe => (start_probe().unwrap(), probe_request(&body)),
        _ if hidden => (
            start_toolgate(HIDING_TWO).unwrap(),
            mcp(TOOLS_LIST).upstream_response(UpstreamResponse::json(hundred_tool_list())),
        ),
        _ if conditions => (
            start_toolgate(TEN_CONDITIONS).unwrap(),
            mcp(&call_body("cond", TEN_CONDITION_ARGS)),
        ),
        Some(n) if n > 0 => (
            start_toolgate(&policy_with_tools(n)).unwrap(),
            mcp(&sized_call_to(&format!("tool_{}", n - 1), 1024)),
        ),
        _ => (start_toolgate(ONE_LIMIT).unwrap(), mcp(&body)),
    };
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let ex = envoy.worker(0).send(request.clone());
        assert!(ex.is_forwarded(), "{:?}", ex.outcome);
        assert!(
            !hidden || !ex.body_text().contains(r#""tool_42""#),
            "not filtered"
        );
        times.push(ex.module_time);
    }
    times.sort();
    println!(
        "{n} requests, inside the module: median {:?}, 10th percentile {:?}",
        times[n / 2],
        times[n / 10]
    );
}
