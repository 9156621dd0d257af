//! A `tools/list` answer of 100 tools (about 21 KB) filtered for a policy hiding two of
//! them, in a loop, natively: what every list answer costs a policy that hides tools.
//!
//!     CARGO_PROFILE_RELEASE_DEBUG=true CARGO_PROFILE_RELEASE_STRIP=false \
//!       cargo build --release -p toolgate-engine --example list_loop
//!     # per answer: the difference between runs of 300 and 100, divided by 200
//!     valgrind --tool=callgrind target/release/examples/list_loop 300
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use toolgate_engine::json::Validator;
use toolgate_engine::outcome::Verdict;
use toolgate_engine::ratelimit::{ManualClock, MemoryStore};
use toolgate_engine::{Engine, Head, NoAttributes};

const CONFIG: &str = r#"{"version":"1","default":"allow","hide":["tool_7","tool_42"]}"#;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let tools: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"name":"tool_{i}","description":"Does thing number {i} to the cache, with care and at length.","inputSchema":{{"type":"object","properties":{{"key":{{"type":"string"}},"value":{{"type":"string"}}}},"required":["key"]}}}}"#
            )
        })
        .collect();
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{}]}}}}"#,
        tools.join(",")
    );
    let config = toolgate_engine::config::load(CONFIG.as_bytes()).unwrap();
    let store = MemoryStore::new();
    let engine = Engine::new(config, "bench", &store, [7; 16]).unwrap();
    let clock = ManualClock::at_secs(1_795_602_660);
    let mut validator = Validator::new();
    let headers: [(&[u8], &[u8]); 2] = [
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
    ];
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let mut filtered = 0usize;
    for _ in 0..n {
        let Head::Inspect(info) = engine.inspect_head(b"POST", &headers, true, &NoAttributes)
        else {
            panic!("not inspected")
        };
        let outcome = engine.decide(&info, list.as_bytes(), &store, &clock, &mut validator);
        let Verdict::Forward(forward) = outcome.verdict else {
            panic!("not forwarded")
        };
        let out = engine
            .list_rules()
            .json_body(answer.as_bytes(), &forward.lists)
            .unwrap();
        filtered += usize::from(out.is_some_and(|o| o.len() < answer.len()));
    }
    assert_eq!(filtered, n);
    println!("{n} answers of {} bytes filtered", answer.len());
}
