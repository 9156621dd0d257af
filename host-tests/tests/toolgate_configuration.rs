//! Configuration through the real module: invalid configurations rejected by the canary
//! with path-precise messages, and a new configuration on the same shared store keeping
//! the counters (Envoy's hot reload: a second plugin start on the same shared data).
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;

use host_tests::{Envoy, LogLevel, StartError, VmRole};
use serde_json::json;
use support::*;

/// Starts `config` and returns the module's configuration problems, asserting the
/// plugin was rejected by the canary before any worker existed.
fn rejected(config: &str) -> Vec<String> {
    let err = toolgate(config)
        .workers(2)
        .start()
        .err()
        .unwrap_or_else(|| panic!("accepted: {config}"));
    let StartError::Rejected { reason, logs } = err else {
        panic!("not a rejection: {err}")
    };
    assert!(reason.contains("proxy_on_configure"), "{reason}");
    let problems: Vec<String> = logs
        .iter()
        .filter_map(|l| {
            // `toolgate: configuration: <path>: ...`, or `toolgate: configuration: ...` for
            // the whole document (not `configuration: configuration: ...`).
            let p = l.message.strip_prefix("toolgate: configuration: ")?;
            assert!(!p.starts_with("configuration:"), "{l}");
            assert_eq!(l.level, LogLevel::Error, "{l}");
            assert_eq!(l.vm, VmRole::Canary, "{l}");
            Some(p.to_string())
        })
        .collect();
    assert!(!problems.is_empty(), "no problem logged for {config}");
    problems
}

#[test]
fn a_window_typo_rejects_the_plugin_with_the_exact_path() {
    let config = SEED.replace("\"minute\"", "\"minutes\"");
    assert_eq!(
        rejected(&config),
        ["tools.cache_cas.limits[0].window: \"minutes\" is not a window; expected second, minute, hour or day"]
    );
}

#[test]
fn settings_problems_are_rejected_with_their_paths() {
    let problems = rejected(&with_settings(
        SEED,
        json!({"mode": "audit", "counter_slots": 0, "max_body_bytes": "1MB", "colour": "blue"}),
    ));
    for want in [
        "mode: \"audit\" is not a mode; expected enforce or shadow",
        "counter_slots: 0 is out of range; expected an integer from 1 to 65536",
    ] {
        assert!(
            problems.iter().any(|p| p == want),
            "missing {want:?} in {problems:?}"
        );
    }
    assert!(
        problems.iter().any(|p| p.starts_with("max_body_bytes: ")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("colour: ")),
        "{problems:?}"
    );
    // A fleet-wide limit without the service to ask.
    let problems = rejected(&SEED.replace(
        "\"scope\":\"grant\"",
        "\"scope\":\"grant\",\"store\":\"service\"",
    ));
    assert_eq!(problems, ["tools.cache_cas.limits[0].store: \"service\" without a rate_limit_service setting; expected a rate_limit_service block beside the policy (or \"store\": \"local\")"]);
    // No configuration at all.
    assert!(!rejected("").is_empty());
}

#[test]
fn every_broken_policy_of_the_command_corpus_is_rejected_the_same_way() {
    // The toolgate command's corpus: each file with the problems `toolgate check` prints.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/broken");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let config = std::fs::read_to_string(&path).unwrap();
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let problems = rejected(&config);
        for want in expected.lines().filter(|l| !l.is_empty()) {
            // `toolgate check` names the whole document `configuration`, as the log line does.
            let want = want.strip_prefix("configuration: ").unwrap_or(want);
            assert!(
                problems.iter().any(|p| p == want),
                "{}: missing {want:?} in {problems:?}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} broken policies found");
}

/// Envoy applying a new configuration: a new plugin (canary, then workers) on the same
/// process-wide shared data and clock.
fn reload(old: &Envoy, config: &str) -> Result<Envoy, StartError> {
    toolgate(config)
        .shared_data(old.shared_data().clone())
        .clock(old.clock().clone())
        .start()
}

#[test]
fn hot_reload_keeps_counters_and_applies_the_new_policy() {
    let first = start(SEED);
    for i in 0..30 {
        assert!(first
            .worker(0)
            .send(mcp_as("Bearer a", call(i, "cache_cas", "{}")))
            .is_forwarded());
    }
    let keys = first.shared_keys();

    let allow_more = SEED.replace("\"default\":\"deny\"", "\"default\":\"allow\"");
    let second = reload(&first, &allow_more).unwrap();
    assert_eq!(second.shared_keys(), keys, "the reload created no new key");
    let w = second.worker(0);
    let ex = w.send(mcp_as("Bearer a", call(31, "cache_cas", "{}")));
    assert_eq!(
        denial_reason(&ex),
        "rate_limited",
        "the count survived the reload"
    );
    let body = call(32, "cache_get", "{}");
    assert_forwarded(&w.send(mcp_as("Bearer a", body.clone())), body.as_bytes());
    // Other grants still have their own counts.
    assert!(w
        .send(mcp_as("Bearer b", call(1, "cache_cas", "{}")))
        .is_forwarded());
    // The old plugin's workers see the same counts (one store).
    let ex = first
        .worker(0)
        .send(mcp_as("Bearer a", call(33, "cache_cas", "{}")));
    assert_eq!(denial_reason(&ex), "rate_limited");
}

#[test]
fn a_reload_with_other_counter_slots_or_namespace_starts_afresh() {
    let first = start(SEED);
    for i in 0..30 {
        assert!(first
            .worker(0)
            .send(mcp_as("Bearer a", call(i, "cache_cas", "{}")))
            .is_forwarded());
    }
    for settings in [
        json!({"counter_slots": 64}),
        json!({"key_namespace": "other"}),
    ] {
        let second = reload(&first, &with_settings(SEED, settings.clone())).unwrap();
        let ex = second
            .worker(0)
            .send(mcp_as("Bearer a", call(1, "cache_cas", "{}")));
        assert!(ex.is_forwarded(), "{settings}: a new count");
    }
}

#[test]
fn an_invalid_reload_is_refused_and_the_running_plugin_keeps_its_counts() {
    let first = start(SEED);
    for i in 0..30 {
        assert!(first
            .worker(0)
            .send(mcp_as("Bearer a", call(i, "cache_cas", "{}")))
            .is_forwarded());
    }
    let err = reload(&first, &SEED.replace("\"max\":30", "\"max\":0")).err();
    assert!(matches!(err, Some(StartError::Rejected { .. })), "{err:?}");
    let ex = first
        .worker(0)
        .send(mcp_as("Bearer a", call(31, "cache_cas", "{}")));
    assert_eq!(denial_reason(&ex), "rate_limited");
}
