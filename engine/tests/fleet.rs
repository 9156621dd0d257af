#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Fleet-wide limits: the engine asks the rate limit service and finishes with its answer.

mod common;
use common::*;
use toolgate_engine::config::load;
use toolgate_engine::outcome::{Outcome, Reason, Verdict};
use toolgate_engine::rls::{encode_response, Code, Response, Status};
use toolgate_engine::{Consultation, ServiceAnswer};

fn policy(failure: &str) -> String {
    format!(
        r#"{{"policy":{{"version":"1","default":"deny","tools":{{
        "cache_cas":{{"limits":[{{"counter":"fleet_cas","window":"minute","max":3,"store":"service"}},{{"counter":"local_cas","window":"minute","max":100}}]}},
        "cache_get":{{}}}}}},
        "hash_salt":"fleet-secret",
        "rate_limit_service":{{"cluster":"ratelimit","domain":"mcp","timeout_ms":50,"failure_mode":"{failure}"}}}}"#
    )
}

fn consult(o: Outcome) -> Consultation {
    match o.verdict {
        Verdict::Consult(c) => *c,
        other => panic!("expected a consultation, got {other:?}"),
    }
}

fn ok(remaining: u32) -> Vec<u8> {
    encode_response(&Response {
        overall: Code::Ok,
        statuses: vec![Status {
            code: Code::Ok,
            remaining,
            reset_secs: Some(30),
        }],
    })
}

#[test]
fn configuration_rules() {
    let bare = r#"{"version":"1","default":"allow","tools":{"a":{"limits":[{"counter":"c","window":"minute","max":3,"store":"service"}]}}}"#;
    let problems: Vec<String> = load(bare.as_bytes())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems, ["tools.a.limits[0].store: \"service\" without a rate_limit_service setting; expected a rate_limit_service block beside the policy (or \"store\": \"local\")"]);
    let mixed = r#"{"version":"1","default":"allow","tools":{"a":{"limits":[{"counter":"c","window":"minute","max":3}]},"b":{"limits":[{"counter":"c","window":"minute","max":3,"store":"service"}]}}}"#;
    let problems: Vec<String> = load(mixed.as_bytes())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(problems.iter().any(|p| p.starts_with("tools.b.limits[0].store: a different store from the same counter's limit at tools.a.limits[0]")), "{problems:?}");
    let huge = policy("deny").replace("\"max\":3", "\"max\":5000000000");
    let problems: Vec<String> = load(huge.as_bytes())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        problems.iter().any(|p| p
            .starts_with("policy.tools.cache_cas.limits[0].max: 5000000000 is over 4294967295")),
        "{problems:?}"
    );
    let bad = r#"{"policy":{"version":"1","default":"allow"},"rate_limit_service":{"domain":"x","timeout_ms":0,"failure_mode":"maybe"}}"#;
    let problems: Vec<String> = load(bad.as_bytes())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    for want in [
        "rate_limit_service.cluster: missing; expected the name of an Envoy cluster",
        "rate_limit_service.timeout_ms: 0 is out of range; expected an integer from 1 to 60000",
        "rate_limit_service.failure_mode: \"maybe\" is not a failure mode; expected deny or allow",
    ] {
        assert!(
            problems.iter().any(|p| p == want),
            "missing {want:?} in {problems:?}"
        );
    }
}

#[test]
fn allowed_by_the_service() {
    let mut h = Harness::new(&policy("deny"));
    let c = consult(h.call("Bearer a", "cache_cas", "{}"));
    assert_eq!(c.timeout_ms, 50);
    assert_eq!(c.upstream, b"\x0a\x0b\x0a\x09ratelimit");
    let msg = String::from_utf8_lossy(&c.message).to_string();
    assert!(
        msg.contains("mcp")
            && msg.contains("fleet_cas")
            && msg.contains("grant:")
            && msg.contains("cache_cas"),
        "{msg:?}"
    );
    assert!(
        !msg.contains("Bearer a"),
        "credentials never leave in clear"
    );
    let o = h
        .engine
        .resume(c, ServiceAnswer::Response(&ok(2)), &h.store);
    let Verdict::Forward(f) = &o.verdict else {
        panic!("{o:?}")
    };
    let fleet = f.limits.iter().find(|l| l.counter == "fleet_cas").unwrap();
    assert_eq!((fleet.remaining, fleet.reset_secs), (2, 30));
    assert!(f
        .limits
        .iter()
        .any(|l| l.counter == "local_cas" && l.remaining == 99));
    // Calls without fleet limits never ask.
    assert!(forwarded(&h.call("Bearer a", "cache_get", "{}")));
    // Static denials never ask either.
    assert_eq!(
        reason(&h.call("Bearer a", "cache_delete", "{}")),
        Some(Reason::NotAllowed)
    );
}

#[test]
fn over_limit_at_the_service_undoes_local_counts() {
    let mut h = Harness::new(&policy("deny").replace("\"max\":100", "\"max\":1"));
    let c = consult(h.call("Bearer a", "cache_cas", "{}"));
    let over = encode_response(&Response {
        overall: Code::OverLimit,
        statuses: vec![Status {
            code: Code::OverLimit,
            remaining: 0,
            reset_secs: Some(17),
        }],
    });
    let o = h.engine.resume(c, ServiceAnswer::Response(&over), &h.store);
    assert_eq!(reason(&o), Some(Reason::RateLimited));
    assert_eq!(header(&o, "retry-after").as_deref(), Some("17"));
    assert!(reply_body(&o)
        .contains("rate limit of 3 calls per minute reached (counter \\\"fleet_cas\\\")"));
    // Rules are named within the policy, whichever form the configuration takes.
    assert!(reply_body(&o).contains(r#""rule":"tools.cache_cas.limits[0]""#));
    // local_cas (max 1) was given back: the next call is asked about again.
    let c = consult(h.call("Bearer a", "cache_cas", "{}"));
    assert!(forwarded(&h.engine.resume(
        c,
        ServiceAnswer::Response(&ok(1)),
        &h.store
    )));
}

#[test]
fn local_precheck_spares_the_round_trip() {
    let mut h = Harness::new(&policy("deny"));
    for _ in 0..3 {
        let c = consult(h.call("Bearer a", "cache_cas", "{}"));
        assert!(forwarded(&h.engine.resume(
            c,
            ServiceAnswer::Response(&ok(0)),
            &h.store
        )));
    }
    // This Envoy alone has seen 3: the fleet is surely at 3.
    let o = h.call("Bearer a", "cache_cas", "{}");
    assert_eq!(reason(&o), Some(Reason::RateLimited));
    // Another grant still asks.
    assert!(matches!(
        h.call("Bearer b", "cache_cas", "{}").verdict,
        Verdict::Consult(_)
    ));
    let no_precheck = policy("deny").replace(
        "\"failure_mode\":\"deny\"",
        "\"failure_mode\":\"deny\",\"local_precheck\":false",
    );
    let mut h = Harness::new(&no_precheck);
    for _ in 0..4 {
        let c = consult(h.call("Bearer a", "cache_cas", "{}"));
        let _ = h
            .engine
            .resume(c, ServiceAnswer::Response(&ok(0)), &h.store);
    }
    assert!(matches!(
        h.call("Bearer a", "cache_cas", "{}").verdict,
        Verdict::Consult(_)
    ));
}

#[test]
fn the_local_precheck_reads_no_other_grants_counts() {
    // One slot: the first grant holds it, every later one shares the overflow slot.
    let mut h =
        Harness::new(&policy("deny").replace("\"hash_salt\"", "\"counter_slots\":1,\"hash_salt\""));
    let admit = |h: &mut Harness, grant: &str| {
        let c = consult(h.call(grant, "cache_cas", "{}"));
        assert!(forwarded(&h.engine.resume(
            c,
            ServiceAnswer::Response(&ok(2)),
            &h.store
        )));
    };
    for grant in [
        "Bearer a", "Bearer a", "Bearer a", "Bearer b", "Bearer c", "Bearer d",
    ] {
        admit(&mut h, grant);
    }
    // Grant a's own slot is full: denied here.
    assert_eq!(
        reason(&h.call("Bearer a", "cache_cas", "{}")),
        Some(Reason::RateLimited)
    );
    // The overflow slot holds b, c and d together: a grant counted there is not denied for
    // their calls, the service decides.
    for grant in ["Bearer b", "Bearer e"] {
        assert!(
            matches!(
                h.call(grant, "cache_cas", "{}").verdict,
                Verdict::Consult(_)
            ),
            "{grant}"
        );
    }
}

#[test]
fn a_batch_over_a_fleet_limit_is_refused_here() {
    // max 3: four calls of one batch add up to more than the limit on their own, whatever
    // the service would answer for each descriptor against its count before the request.
    let mut h = Harness::new(&policy("deny").replace(
        "\"failure_mode\":\"deny\"",
        "\"failure_mode\":\"deny\",\"local_precheck\":false",
    ));
    let batch = |n: u64| {
        let calls: Vec<String> = (1..=n).map(|i| call_body(i, "cache_cas", "{}")).collect();
        format!("[{}]", calls.join(","))
    };
    let o = h.post("Bearer a", &batch(4));
    assert_eq!(reason(&o), Some(Reason::RateLimited), "{o:?}");
    assert!(reply_body(&o).contains("rate limit of 3 calls per minute"));
    // Three fit: the service is asked about them, one descriptor per call.
    let c = consult(h.post("Bearer a", &batch(3)));
    let msg = String::from_utf8_lossy(&c.message)
        .matches("fleet_cas")
        .count();
    assert_eq!(msg, 3);
}

#[test]
fn the_offline_service_adds_up_one_descriptor_within_a_request() {
    use toolgate_engine::offline::service::Service;
    use toolgate_engine::rls::{decode_response, Descriptor};
    let d = |hits| Descriptor {
        entries: vec![("counter".into(), "c".into())],
        requests_per_unit: 3,
        unit: 2,
        hits_addend: hits,
    };
    let mut s = Service::default();
    let five = s.answer(&vec![d(1); 5], 120);
    assert_eq!(decode_response(&five).unwrap().overall, Code::OverLimit);
    let three = s.answer(&vec![d(1); 3], 120);
    assert_eq!(decode_response(&three).unwrap().overall, Code::Ok);
    // Full: even a call adding nothing needs room for one.
    let zero = s.answer(&[d(0)], 120);
    assert_eq!(decode_response(&zero).unwrap().overall, Code::OverLimit);
}

#[test]
fn failures_follow_the_failure_mode() {
    for answer in ["timeout", "garbage", "unknown"] {
        let mut h = Harness::new(&policy("deny"));
        let c = consult(h.call("Bearer a", "cache_cas", "{}"));
        let unknown = encode_response(&Response {
            overall: Code::Unknown,
            statuses: vec![],
        });
        let o = match answer {
            "timeout" => h.engine.resume(
                c,
                ServiceAnswer::Failed("gRPC status 4 (deadline exceeded)".into()),
                &h.store,
            ),
            "garbage" => h
                .engine
                .resume(c, ServiceAnswer::Response(&[0xff, 0xff, 0xff]), &h.store),
            _ => h
                .engine
                .resume(c, ServiceAnswer::Response(&unknown), &h.store),
        };
        assert_eq!(reason(&o), Some(Reason::StoreError), "{answer}");
        assert!(
            o.report
                .store_error
                .as_deref()
                .is_some_and(|e| e.starts_with("rate limit service: ")),
            "{answer}"
        );
        assert!(reply_body(&o).contains("the rate limit service did not answer"));
    }
    let mut h = Harness::new(&policy("allow"));
    let c = consult(h.call("Bearer a", "cache_cas", "{}"));
    let o = h
        .engine
        .resume(c, ServiceAnswer::Failed("unavailable".into()), &h.store);
    assert!(forwarded(&o));
    assert!(
        o.report.store_error.is_some(),
        "fail-open is still reported"
    );
}

#[test]
fn shadow_mode_consults_but_forwards() {
    let cfg = policy("deny").replace("\"hash_salt\"", "\"mode\":\"shadow\",\"hash_salt\"");
    let mut h = Harness::new(&cfg);
    let c = consult(h.call("Bearer a", "cache_cas", "{}"));
    let over = encode_response(&Response {
        overall: Code::OverLimit,
        statuses: vec![],
    });
    let o = h.engine.resume(c, ServiceAnswer::Response(&over), &h.store);
    assert!(forwarded(&o));
    assert_eq!(o.report.summary(), "shadow_denied:rate_limited:cache_cas");
}

#[test]
fn fingerprints_are_stable_across_engines() {
    // Two Envoys (two stores, two random salts) describe the same grant the same way.
    let mut a = Harness::new(&policy("deny"));
    let mut b = Harness::with_store(
        &policy("deny"),
        toolgate_engine::ratelimit::MemoryStore::new(),
    );
    let ca = consult(a.call("Bearer same", "cache_cas", "{}"));
    let cb = consult(b.call("Bearer same", "cache_cas", "{}"));
    assert_eq!(ca.message, cb.message);
}
