//! The 1 KB allowed, counted `cache_cas` decision in a loop, natively: a target for
//! `valgrind --tool=callgrind` (instruction counts are repeatable where timings are not).
//!
//!     CARGO_PROFILE_RELEASE_DEBUG=true CARGO_PROFILE_RELEASE_STRIP=false \
//!       cargo build --release -p toolgate-engine --example decide_loop
//!     valgrind --tool=callgrind target/release/examples/decide_loop 10000
//!     # the benchmarked tools/list instead (nothing hidden): what every request pays
//!     valgrind --tool=callgrind target/release/examples/decide_loop 10000 list
//!     # a call meeting ten argument conditions (the scaling bench's) instead
//!     valgrind --tool=callgrind target/release/examples/decide_loop 10000 conditions
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use toolgate_engine::json::Validator;
use toolgate_engine::outcome::Verdict;
use toolgate_engine::ratelimit::{ManualClock, MemoryStore};
use toolgate_engine::{Engine, Head, NoAttributes};

const CONFIG: &str = r#"{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"minute","max":1000000000,"scope":"grant"}]}}}"#;

/// The scaling bench's ten conditions (host-tests/benches/toolgate.rs), every one met.
const TEN_CONDITIONS: &str = r#"{"version":"1","default":"deny","tools":{"cond":{
    "require":[{"path":"args.a","op":"eq","value":"x"},{"path":"args.b","op":"neq","value":"y"},
               {"path":"args.c","op":"in","value":["p","q","r"]},{"path":"args.d","op":"not_in","value":["s","t"]},
               {"path":"args.e","op":"lt","value":10},{"path":"args.f","op":"gte","value":1},
               {"path":"args.g","op":"regex","value":"^/srv/[a-z]+$"},{"path":"args.h","op":"exists","value":true}],
    "deny_if":[{"path":"args.i","op":"contains","value":".."},{"path":"args.j","op":"gt","value":100}],
    "limits":[{"counter":"c","window":"day","max":1000000000000}]}}}"#;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let empty = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas","arguments":{"key":"k","value":"","cas_unique":1,"expire":60}}}"#;
    let conditions = std::env::args().any(|a| a == "conditions");
    let body = if conditions {
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cond","arguments":{"a":"x","b":"z","c":"q","d":"u","e":5,"f":1,"g":"/srv/data","h":true,"i":"/a/b","j":7}}}"#.to_string()
    } else if std::env::args().any(|a| a == "list") {
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_string()
    } else {
        empty.replace(
            r#""value":"""#,
            &format!(r#""value":"{}""#, "x".repeat(1024 - empty.len())),
        )
    };
    let config =
        toolgate_engine::config::load(if conditions { TEN_CONDITIONS } else { CONFIG }.as_bytes())
            .unwrap();
    let store = MemoryStore::new();
    let engine = Engine::new(config, "bench", &store, [7; 16]).unwrap();
    let clock = ManualClock::at_secs(1_795_602_660);
    let mut validator = Validator::new();
    let headers: [(&[u8], &[u8]); 3] = [
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"authorization", b"Bearer bench"),
    ];
    let mut forwarded = 0usize;
    for _ in 0..n {
        let Head::Inspect(info) = engine.inspect_head(b"POST", &headers, true, &NoAttributes)
        else {
            panic!("not inspected")
        };
        let outcome = engine.decide(&info, body.as_bytes(), &store, &clock, &mut validator);
        forwarded += usize::from(matches!(outcome.verdict, Verdict::Forward(_)));
        std::hint::black_box(&outcome);
    }
    assert_eq!(forwarded, n);
    println!("{n} decisions, body {} bytes", body.len());
}
