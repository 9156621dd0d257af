//! Workers on their own threads (one VM each) hammering one counter at the same time admit
//! exactly `max` per window: no more (no lost update), no fewer (no spurious store error).
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use std::sync::Barrier;

use host_tests::Envoy;
use support::*;

const WORKERS: usize = 4;
const PER_WORKER: usize = 40;
const MAX: usize = 50;

/// Every worker sends `PER_WORKER` calls at once; returns (admitted, denial reasons).
fn hammer(envoy: &Envoy, grant_of: impl Fn(usize) -> String + Sync) -> (usize, Vec<String>) {
    let start = Barrier::new(WORKERS);
    let results: Vec<(usize, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = envoy
            .workers()
            .iter()
            .map(|w| {
                let start = &start;
                let grant_of = &grant_of;
                s.spawn(move || {
                    start.wait();
                    let mut admitted = 0;
                    let mut reasons = Vec::new();
                    for i in 0..PER_WORKER {
                        let tool = if i % 2 == 0 { "write_a" } else { "write_b" };
                        let body = call(i as u64, tool, "{}");
                        let ex = w.send(mcp_as(&grant_of(i), body.clone()));
                        if ex.is_forwarded() {
                            assert_eq!(ex.upstream.body, body.as_bytes());
                            admitted += 1;
                        } else {
                            let reply = assert_denied(&ex, Arrangement::ContinueAtHeaders);
                            reasons.push(detail(&reply)["reason"].as_str().unwrap().to_string());
                        }
                    }
                    (admitted, reasons)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let admitted = results.iter().map(|r| r.0).sum();
    let reasons = results.into_iter().flat_map(|r| r.1).collect();
    (admitted, reasons)
}

fn policy(scope: &str) -> String {
    format!(
        r#"{{"version":"1","default":"deny","tools":{{
        "write_a":{{"limits":[{{"counter":"writes","window":"minute","max":{MAX},"scope":"{scope}"}}]}},
        "write_b":{{"limits":[{{"counter":"writes","window":"minute","max":{MAX},"scope":"{scope}"}}]}}}}}}"#
    )
}

#[test]
fn four_workers_on_one_grant_admit_exactly_max_in_every_window() {
    let envoy = toolgate(&policy("grant")).workers(WORKERS).start().unwrap();
    assert!(envoy.boot_failures().is_empty());
    for window in 0..5 {
        let (admitted, reasons) = hammer(&envoy, |_| "Bearer shared".to_string());
        assert_eq!(admitted, MAX, "window {window}: admitted {admitted}");
        assert_eq!(reasons.len(), WORKERS * PER_WORKER - MAX);
        assert!(
            reasons.iter().all(|r| r == "rate_limited"),
            "window {window}: {reasons:?}"
        );
        advance_secs(&envoy, 60);
    }
    assert_eq!(
        envoy
            .metrics()
            .counter("toolgate.store_errors")
            .unwrap_or(0),
        0,
        "no CAS retry ran out"
    );
    assert_eq!(
        envoy
            .metrics()
            .counter("toolgate.rate_limited.counter.writes"),
        Some((5 * (WORKERS * PER_WORKER - MAX)) as u64)
    );
    for w in envoy.workers() {
        assert_eq!(w.failure(), None);
    }
}

#[test]
fn four_workers_on_the_global_scope_with_many_grants_admit_exactly_max() {
    let envoy = toolgate(&policy("global"))
        .workers(WORKERS)
        .start()
        .unwrap();
    for window in 0..3 {
        let (admitted, reasons) = hammer(&envoy, |i| format!("Bearer g{}", i % 7));
        assert_eq!(admitted, MAX, "window {window}");
        assert!(reasons.iter().all(|r| r == "rate_limited"), "{reasons:?}");
        advance_secs(&envoy, 60);
    }
}

#[test]
fn concurrent_grants_each_get_their_own_max() {
    // Two grants interleaved on every worker: each admitted exactly MAX, never the other's.
    let envoy = toolgate(&policy("grant")).workers(WORKERS).start().unwrap();
    let (admitted, reasons) = hammer(&envoy, |i| format!("Bearer {}", i % 2));
    assert_eq!(admitted, 2 * MAX);
    assert!(reasons.iter().all(|r| r == "rate_limited"));
}
