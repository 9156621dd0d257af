//! Failure policies through the real module: when the counter store misbehaves (values it
//! cannot read, compare-and-swap races it keeps losing) the call is denied with
//! `store_error`, counted and logged, and the VM stays up. (A trapping VM and Envoy's
//! `failure_policy` are shown with the probe module in `lifecycle.rs` and in real Envoy in
//! `e2e/test_failure_policy.py`; an invalid configuration update in
//! `toolgate_configuration.rs`.)
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use host_tests::LogLevel;
use support::*;

const CAS_ARGS: &str = r#"{"key":"k","value":"v","cas":1,"expire":60}"#;
const TWO_TOOLS: &str = r#"{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"minute","max":30,"scope":"grant"}]},"cache_get":{}}}"#;

#[test]
fn unreadable_counter_values_deny_with_store_error_and_the_vm_stays_up() {
    let envoy = toolgate(TWO_TOOLS).workers(2).start().unwrap();
    let keys = envoy.shared_keys();
    assert!(!keys.is_empty(), "keys are created at configure");
    // Another plugin sharing the vm_id (or a bug) overwrites every counter slot.
    for key in &keys {
        envoy.shared_data().set("", key, b"not a counter", 0);
    }
    for worker in 0..2 {
        let ex = envoy
            .worker(worker)
            .send(mcp_as("Bearer agent-1", call(1, "cache_cas", CAS_ARGS)));
        assert_vm_alive(&envoy, &ex);
        assert_eq!(denial_reason(&ex), "store_error");
        assert_eq!(decision(&ex), "denied:store_error:cache_cas");
    }
    assert_eq!(envoy.metrics().counter("toolgate.store_errors"), Some(2));
    let warnings = envoy.logs().containing("toolgate: counter store failure");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().all(|l| l.level == LogLevel::Warn));
    // A tool with no limit never touches the store: it keeps working.
    let body = call(2, "cache_get", r#"{"key":"k"}"#);
    let ex = envoy.worker(0).send(mcp_as("Bearer agent-1", body.clone()));
    assert_forwarded(&ex, body.as_bytes());
}

#[test]
fn lost_races_are_retried_and_an_exhausted_budget_denies() {
    let config = with_settings(TWO_TOOLS, serde_json::json!({"cas_retries": 4}));
    let envoy = toolgate(&config).start().unwrap();
    let w = envoy.worker(0);
    // Three lost races: the fourth attempt wins and the call counts once.
    envoy.shared_data().contend(3);
    let body = call(1, "cache_cas", CAS_ARGS);
    let ex = w.send(mcp_as("Bearer agent-1", body.clone()));
    assert_forwarded(&ex, body.as_bytes());
    assert_eq!(
        ex.response.as_ref().unwrap().header("ratelimit"),
        Some("\"cache_cas_rate\";r=29;t=60")
    );
    // More lost races than the budget: denied, never admitted uncounted.
    envoy.shared_data().contend(1_000);
    let ex = w.send(mcp_as("Bearer agent-1", call(2, "cache_cas", CAS_ARGS)));
    assert_vm_alive(&envoy, &ex);
    assert_eq!(denial_reason(&ex), "store_error");
    assert_eq!(envoy.metrics().counter("toolgate.store_errors"), Some(1));
    assert!(!envoy
        .logs()
        .containing("compare-and-swap retries exhausted")
        .is_empty());
    // Once the contention is over, counting resumes where it was.
    envoy.shared_data().contend(0);
    let ex = w.send(mcp_as("Bearer agent-1", call(3, "cache_cas", CAS_ARGS)));
    assert_eq!(
        ex.response.as_ref().unwrap().header("ratelimit"),
        Some("\"cache_cas_rate\";r=28;t=60")
    );
}

#[test]
fn callbacks_for_contexts_the_host_never_created_fail_closed_without_a_trap() {
    let envoy = toolgate(TWO_TOOLS).start().unwrap();
    let worker = envoy.worker(0);
    // A request callback for an unknown stream: held (1 = StopIteration), never passed.
    for export in ["proxy_on_request_headers", "proxy_on_request_body"] {
        let answer = worker
            .call_export(export, 987_654, vec![987_654, 0, 1])
            .unwrap();
        assert_eq!(answer, Ok(Some(1)), "{export}");
    }
    // Response callbacks and lifecycle calls for it are ignored.
    let answer = worker.call_export("proxy_on_response_headers", 987_654, vec![987_654, 0, 1]);
    assert_eq!(answer.unwrap(), Ok(Some(0)));
    assert!(worker
        .call_export("proxy_on_delete", 987_654, vec![987_654])
        .unwrap()
        .is_ok());
    // A gRPC answer for a token nobody holds changes nothing.
    assert!(worker
        .call_export("proxy_on_grpc_receive", 1, vec![1, 424_242, 10])
        .unwrap()
        .is_ok());
    assert_eq!(worker.failure(), None);
    // The VM still decides real requests.
    let ex = worker.send(mcp_as("Bearer agent-1", call(1, "cache_cas", CAS_ARGS)));
    assert_vm_alive(&envoy, &ex);
    assert!(ex.is_forwarded());
    let ex = worker.send(mcp_as("Bearer agent-1", call(2, "cache_delete", "{}")));
    assert_eq!(denial_reason(&ex), "not_allowed");
}
