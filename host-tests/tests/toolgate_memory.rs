//! Bounded state: 100,000 distinct grants leave the shared-data keys at what the module
//! created at configure (`counter_slots` per counter, plus overflow, marker and salt), and
//! the VMs' linear memory flat after warm-up.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use host_tests::Envoy;
use serde_json::json;
use support::*;

const SLOTS: usize = 64;
const WORKERS: usize = 2;
const WASM_PAGE: usize = 65_536;

/// Sends calls for grants `from..to`, spread over the workers on their own threads.
fn send_grants(envoy: &Envoy, from: usize, to: usize) -> usize {
    std::thread::scope(|s| {
        let handles: Vec<_> = envoy
            .workers()
            .iter()
            .enumerate()
            .map(|(n, w)| {
                s.spawn(move || {
                    let mut forwarded = 0;
                    for i in (from + n..to).step_by(WORKERS) {
                        let body = call(i as u64, "cache_cas", r#"{"key":"k"}"#);
                        let ex = w.send(mcp_as(&format!("Bearer grant-{i}"), body));
                        forwarded += usize::from(ex.is_forwarded());
                    }
                    forwarded
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn memory(envoy: &Envoy) -> Vec<usize> {
    envoy.workers().iter().map(|w| w.memory_size()).collect()
}

#[test]
fn a_hundred_thousand_grants_keep_keys_bounded_and_memory_flat() {
    let config = with_settings(SEED, json!({"counter_slots": SLOTS}));
    let envoy = toolgate(&config).workers(WORKERS).start().unwrap();

    // What configure created: every slot, the overflow slot, the ready marker, the salt.
    let keys_at_configure = envoy.shared_keys();
    let prefix = format!("tg/{PLUGIN}/cache_cas_rate/grant/60/{SLOTS}/");
    let slot_keys = keys_at_configure
        .iter()
        .filter(|k| k.starts_with(&prefix))
        .count();
    assert_eq!(slot_keys, SLOTS + 2, "{keys_at_configure:?}");
    assert_eq!(keys_at_configure.len(), SLOTS + 3);
    assert!(keys_at_configure.contains(&format!("tg/{PLUGIN}/salt")));
    let at_start = memory(&envoy);

    // Warm-up: 10,000 grants (far more than 64 slots × 8 probes: most share overflow).
    let forwarded = send_grants(&envoy, 0, 10_000);
    assert_eq!(envoy.shared_keys(), keys_at_configure, "no key added");
    let after_10k = memory(&envoy);

    let forwarded = forwarded + send_grants(&envoy, 10_000, 100_000);
    assert_eq!(envoy.shared_keys(), keys_at_configure, "no key added");
    let after_100k = memory(&envoy);

    eprintln!(
        "linear memory per worker: at start {at_start:?}, after 10k grants {after_10k:?}, \
         after 100k grants {after_100k:?} (bytes); shared-data keys {}; forwarded {forwarded}",
        keys_at_configure.len()
    );
    for (w, (a, b)) in after_10k.iter().zip(&after_100k).enumerate() {
        assert!(
            b.saturating_sub(*a) <= WASM_PAGE,
            "worker {w} grew from {a} to {b} bytes between 10k and 100k grants"
        );
    }
    // Within the one minute all of this takes on the virtual clock, each of the 64 slots
    // went to the first grant that probed it free, and every other grant counted in the
    // shared overflow slot, which admitted 30: a clash only ever limits earlier.
    assert_eq!(forwarded, SLOTS + 30, "admitted in one minute");
    // The next minute the slots are free again for new owners.
    advance_secs(&envoy, 60);
    assert_eq!(send_grants(&envoy, 100_000, 100_000 + SLOTS), SLOTS);
    assert_eq!(envoy.shared_keys(), keys_at_configure);
    for w in envoy.workers() {
        assert_eq!(w.failure(), None);
    }
}
