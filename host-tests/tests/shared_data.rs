//! Shared data with cpp-host's semantics, directly and through the probe, and four
//! workers hammering one key.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod common;

use host_tests::{Request, SharedData, Status};

#[test]
fn cas_zero_writes_unconditionally_and_tokens_count_from_one() {
    let store = SharedData::default();
    assert_eq!(store.get("vm", "k"), Err(Status::NotFound));
    assert_eq!(store.set("vm", "k", b"a", 0), Status::Ok);
    assert_eq!(store.get("vm", "k"), Ok((b"a".to_vec(), 1)));
    assert_eq!(store.set("vm", "k", b"b", 0), Status::Ok);
    assert_eq!(store.get("vm", "k"), Ok((b"b".to_vec(), 2)));
    // The counter is global: another key and another vm_id take the next tokens.
    assert_eq!(store.set("vm", "other", b"x", 0), Status::Ok);
    assert_eq!(store.set("vm2", "k", b"y", 0), Status::Ok);
    assert_eq!(store.get("vm", "other"), Ok((b"x".to_vec(), 3)));
    assert_eq!(store.get("vm2", "k"), Ok((b"y".to_vec(), 4)));
}

#[test]
fn a_stale_cas_is_a_mismatch_and_the_right_one_wins() {
    let store = SharedData::default();
    store.set("vm", "k", b"a", 0);
    let (_, cas) = store.get("vm", "k").unwrap();
    assert_eq!(store.set("vm", "k", b"b", cas + 7), Status::CasMismatch);
    assert_eq!(store.get("vm", "k").unwrap().0, b"a");
    assert_eq!(store.set("vm", "k", b"b", cas), Status::Ok);
    assert_eq!(store.set("vm", "k", b"c", cas), Status::CasMismatch);
}

#[test]
fn inserting_a_missing_key_is_never_cas_checked_and_nothing_deletes() {
    let store = SharedData::default();
    assert_eq!(store.set("vm", "fresh", b"v", 12345), Status::Ok);
    assert_eq!(store.get("vm", "fresh"), Ok((b"v".to_vec(), 1)));
    assert_eq!(store.set("vm", "fresh", b"", 0), Status::Ok);
    assert_eq!(store.keys("vm"), vec!["fresh".to_string()]);
    assert_eq!(store.get("vm", "fresh"), Ok((Vec::new(), 2)));
}

#[test]
fn the_probe_sees_the_same_semantics_through_hostcalls() {
    let envoy = common::probe("").vm_id("probe-vm").start().unwrap();
    let w = envoy.worker(0);
    let ex = w.send(Request::get("/").header("x-probe", "get:k"));
    assert_eq!(
        ex.filter_state_text("wasm.probe.get").as_deref(),
        Some("not_found")
    );
    let ex = w.send(Request::get("/").header("x-probe", "set:k=hello@999"));
    assert_eq!(
        ex.filter_state_text("wasm.probe.set").as_deref(),
        Some("Ok(())"),
        "insert ignores cas"
    );
    let ex = w.send(Request::get("/").header("x-probe", "set:k=again@999"));
    assert_eq!(
        ex.filter_state_text("wasm.probe.set").as_deref(),
        Some("Err(CasMismatch)")
    );
    let ex = w.send(Request::get("/").header("x-probe", "get:k"));
    assert_eq!(
        ex.filter_state_text("wasm.probe.get").as_deref(),
        Some("hello@1")
    );
    assert_eq!(
        envoy.shared_value("k").as_deref(),
        Some(b"hello".as_slice())
    );
    assert_eq!(envoy.shared_data().keys("probe-vm"), vec!["k".to_string()]);
    assert!(
        envoy.shared_data().keys("").is_empty(),
        "keys live under the vm_id"
    );
}

#[test]
fn keys_created_by_the_canary_are_there_for_the_workers() {
    let envoy = common::start("init:counter");
    // Canary and one worker both configured: the key exists, written twice.
    assert_eq!(
        envoy.shared_value("counter").as_deref(),
        Some(b"0".as_slice())
    );
    let ex = envoy
        .worker(0)
        .send(Request::get("/").header("x-probe", "get:counter"));
    assert_eq!(
        ex.filter_state_text("wasm.probe.get").as_deref(),
        Some("0@2")
    );
}

#[test]
fn four_workers_on_four_threads_reach_an_exact_total() {
    const PER_WORKER: usize = 150;
    let envoy = common::probe("init:hits").workers(4).start().unwrap();
    std::thread::scope(|scope| {
        for worker in envoy.workers() {
            scope.spawn(move || {
                for _ in 0..PER_WORKER {
                    let ex = worker.send(Request::get("/").header("x-probe", "cas:hits"));
                    assert!(ex.is_forwarded(), "{:?}", ex.outcome);
                }
            });
        }
    });
    let total = String::from_utf8(envoy.shared_value("hits").unwrap()).unwrap();
    assert_eq!(total, (4 * PER_WORKER).to_string());
}
