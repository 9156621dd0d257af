//! Sends the 1 KB allowed, counted `cache_cas` call through this host N times and prints
//! the median and 10th-percentile time inside the module's callbacks: a target for
//! profilers, where `cargo bench` is a measurement.
//!
//!     CARGO_PROFILE_BENCH_STRIP=false CARGO_PROFILE_BENCH_DEBUG=line-tables-only \
//!       cargo build --profile bench -p host-tests --example profile_loop
//!     # instructions inside the callbacks, repeatable (compare with `probe` as argument):
//!     valgrind --tool=callgrind --toggle-collect='host_tests::vm::Vm::call' \
//!       target/release/examples/profile_loop 2000
//!     # the module's own functions by name (a module built with its name section kept):
//!     HOST_PERFMAP=1 TOOLGATE_WASM=... perf record -e cpu-clock target/release/examples/profile_loop
//!
//! `HOST_PERFMAP=1` makes wasmtime write `/tmp/perf-<pid>.map` for perf to name JIT code.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use host_tests::{modules, Envoy, Request, UpstreamResponse};
use std::time::Duration;

const ONE_LIMIT: &str = r#"{"policy":{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"day","max":1000000000000,"scope":"grant"}]}}},"max_body_bytes":4194304}"#;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000)
        .max(1);
    let probe = std::env::args().any(|a| a == "probe");
    let empty = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas","arguments":{"key":"k","value":""}}}"#;
    let body = empty.replace(
        r#""value":"""#,
        &format!(r#""value":"{}""#, "x".repeat(1024 - empty.len())),
    );
    let mut request = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("authorization", "Bearer bench")
        .body(body.into_bytes())
        .upstream_response(UpstreamResponse::json(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
        ));
    let envoy = if probe {
        request = request.header("x-probe-body", "buffer");
        Envoy::builder(modules::probe()).start().unwrap()
    } else {
        Envoy::builder(modules::toolgate())
            .configuration(ONE_LIMIT)
            .start_time(std::time::UNIX_EPOCH + Duration::from_secs(1_795_602_660))
            .start()
            .unwrap()
    };
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let ex = envoy.worker(0).send(request.clone());
        assert!(ex.is_forwarded(), "{:?}", ex.outcome);
        times.push(ex.module_time);
    }
    times.sort();
    println!(
        "{n} requests, inside the module: median {:?}, 10th percentile {:?}",
        times[n / 2],
        times[n / 10]
    );
}
