//! Envoy's lifecycle: restricted callbacks, the configuration canary, stream end order,
//! ticks, failures and failure policies, memory.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use host_tests::{Callback, FailurePolicy, LogLevel, Outcome, Request, StartError, VmRole};

#[test]
fn a_hostcall_during_initialize_traps_with_restricted_callback() {
    let err = common::probe("")
        .env("PROBE_INIT", "shared_data")
        .start()
        .err()
        .expect("must fail");
    let StartError::VmFailed { failure, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(failure.callback, "_initialize");
    assert!(
        failure.message.contains("restricted_callback"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("proxy_get_shared_data"),
        "{}",
        failure.message
    );
}

#[test]
fn the_canary_rejecting_its_configuration_rejects_the_plugin() {
    let err = common::probe("reject").start().err().expect("must fail");
    let StartError::Rejected { reason, logs } = err else {
        panic!("{err}")
    };
    assert!(reason.contains("proxy_on_configure"));
    let line = logs
        .iter()
        .find(|l| l.message == "probe: configuration rejected")
        .expect("logged");
    assert_eq!(
        line.vm,
        VmRole::Canary,
        "the canary said no before any worker existed"
    );
    assert_eq!(line.level, LogLevel::Error);
}

#[test]
fn vm_start_false_rejects_too_and_a_trap_in_configure_is_a_failure() {
    let err = common::probe("")
        .vm_configuration("vm_start_false")
        .start()
        .err()
        .expect("must fail");
    assert!(
        matches!(err, StartError::Rejected { ref reason, .. } if reason.contains("vm_start")),
        "{err}"
    );
    let err = common::probe("trap_configure")
        .start()
        .err()
        .expect("must fail");
    let StartError::VmFailed { failure, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(failure.callback, "proxy_on_configure");
    assert!(
        failure
            .panic
            .as_deref()
            .unwrap_or("")
            .contains("trap in on_configure"),
        "{failure:?}"
    );
}

#[test]
fn start_runs_base_canary_then_each_worker() {
    let envoy = common::probe("").workers(3).start().unwrap();
    let configured: Vec<VmRole> = envoy
        .logs()
        .containing("probe: configured")
        .into_iter()
        .map(|l| l.vm)
        .collect();
    assert_eq!(
        configured,
        vec![
            VmRole::Canary,
            VmRole::Worker(0),
            VmRole::Worker(1),
            VmRole::Worker(2)
        ]
    );
    assert!(envoy.has_base_vm());
    assert!(envoy.boot_failures().is_empty());
}

#[test]
fn on_log_comes_before_on_done_then_on_delete() {
    let envoy = common::start("");
    let ex = envoy.worker(0).send(Request::get("/x"));
    assert_eq!(
        ex.callback_names(),
        vec![
            "context_create",
            "request_headers",
            "response_headers",
            "log",
            "done",
            "delete"
        ]
    );
    // In on_log the module still reads the request and response headers.
    assert_eq!(envoy.logs().containing("probe: on_log").len(), 1);
    assert!(envoy.logs().containing("probe: on_log")[0]
        .message
        .ends_with("/x 200"));
}

#[test]
fn ticks_fire_as_virtual_time_advances() {
    let envoy = common::probe("tick:100").workers(2).start().unwrap();
    assert_eq!(
        envoy.worker(0).tick_period(),
        Some(Duration::from_millis(100))
    );
    envoy.advance_time(Duration::from_millis(99));
    assert!(
        envoy.shared_value("ticks").is_none(),
        "no tick before the period"
    );
    envoy.advance_time(Duration::from_millis(1));
    assert_eq!(
        envoy.shared_value("ticks").as_deref(),
        Some(b"2".as_slice()),
        "one tick per worker"
    );
    envoy.advance_time(Duration::from_millis(300));
    assert_eq!(
        envoy.shared_value("ticks").as_deref(),
        Some(b"8".as_slice()),
        "three more per worker"
    );
}

#[test]
fn a_trap_fails_the_vm_and_every_later_request_gets_503() {
    let envoy = common::start("");
    let w = envoy.worker(0);
    let ex = w.send(Request::get("/").header("x-probe", "trap"));
    let Outcome::VmFailed(failure) = &ex.outcome else {
        panic!("{:?}", ex.outcome)
    };
    assert_eq!(failure.callback, "proxy_on_request_headers");
    assert!(
        failure
            .panic
            .as_deref()
            .unwrap_or("")
            .contains("probe: trap requested"),
        "{failure:?}"
    );
    assert_eq!(ex.status(), Some(503));
    assert!(!ex.upstream.reached());
    let later = w.send(Request::get("/fine"));
    assert!(matches!(later.outcome, Outcome::VmFailed(_)));
    assert_eq!(later.status(), Some(503));
    assert!(later.callbacks.is_empty(), "a failed VM is never called");
    assert_eq!(w.failure().unwrap().callback, "proxy_on_request_headers");
}

#[test]
fn fail_open_lets_requests_pass_and_fail_reload_recreates_the_vm() {
    let envoy = common::probe("")
        .failure_policy(FailurePolicy::FailOpen)
        .start()
        .unwrap();
    let w = envoy.worker(0);
    let ex = w.send(Request::get("/").header("x-probe", "trap"));
    assert!(matches!(ex.outcome, Outcome::VmFailed(_)));
    assert_eq!(ex.status(), Some(200), "fail open: the request went on");
    assert!(ex.upstream.complete);
    let later = w.send(Request::post("/").body("b"));
    assert_eq!(later.status(), Some(200));
    assert_eq!(later.upstream.body_text(), "b");

    let envoy = common::probe("")
        .failure_policy(FailurePolicy::FailReload)
        .start()
        .unwrap();
    let w = envoy.worker(0);
    assert_eq!(
        w.send(Request::get("/").header("x-probe", "trap")).status(),
        Some(503)
    );
    let later = w.send(Request::get("/"));
    assert_eq!(later.outcome, Outcome::Forwarded);
    assert_eq!(w.reloads(), 1);
    assert!(w.failure().is_none());
}

#[test]
fn memory_growth_is_visible() {
    let envoy = common::start("");
    let w = envoy.worker(0);
    let before = w.memory_size();
    assert!(before > 0);
    w.send(Request::get("/").header("x-probe", "grow:4000000"));
    assert!(
        w.memory_size() > before + 3_000_000,
        "{} -> {}",
        before,
        w.memory_size()
    );
}

#[test]
fn reading_request_headers_after_letting_them_go_traps_with_envoys_reason() {
    let envoy = common::start("");
    let ex = envoy.worker(0).send(
        Request::post("/")
            .header("x-probe-body", "header_after_continue")
            .body("x"),
    );
    let Outcome::VmFailed(failure) = &ex.outcome else {
        panic!("{:?}", ex.outcome)
    };
    assert!(
        failure.message.contains("proxy_get_header_map_value"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("BAD_ARGUMENT"),
        "{}",
        failure.message
    );
    assert!(
        ex.upstream.opened_without_body(),
        "headers had gone upstream, the body never did"
    );
    assert!(ex.upstream.reset);
}

#[test]
fn callbacks_record_the_stream_in_order() {
    let envoy = common::start("");
    let ex = envoy.worker(0).send(Request::post("/").body("abc"));
    assert!(
        matches!(
            ex.callbacks[1],
            Callback::RequestHeaders {
                headers: 6,
                end_of_stream: false,
                ..
            }
        ),
        "{:?}",
        ex.callbacks
    );
}
