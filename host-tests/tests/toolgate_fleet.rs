//! Fleet-wide limits (`"store": "service"`) through the real module: the request waits,
//! nothing upstream, while Toolgate asks Envoy's rate limit service over gRPC
//! (`ShouldRateLimit` on the configured cluster); the test plays the service.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use host_tests::{Envoy, GrpcCall, GrpcEvent, Outcome, StallKind, Worker};
use support::*;
use toolgate_engine::rls::{encode_response, Code, Response, Status};

fn config(failure_mode: &str) -> String {
    format!(
        r#"{{"policy":{{"version":"1","default":"deny","tools":{{
        "cache_cas":{{"limits":[{{"counter":"fleet_cas","window":"minute","max":3,"store":"service"}},{{"counter":"local_cas","window":"minute","max":100}}]}},
        "cache_get":{{}}}}}},
        "hash_salt":"fleet-secret",
        "rate_limit_service":{{"cluster":"ratelimit","domain":"mcp","timeout_ms":50,"failure_mode":"{failure_mode}"}}}}"#
    )
}

fn fleet(arrangement: Arrangement, failure_mode: &str) -> Envoy {
    toolgate_in(arrangement, &config(failure_mode))
        .cluster("ratelimit")
        .start()
        .unwrap()
}

fn answer(overall: Code, remaining: u32, reset_secs: u64) -> GrpcEvent {
    GrpcEvent::Message(encode_response(&Response {
        overall,
        statuses: vec![Status {
            code: overall,
            remaining,
            reset_secs: Some(reset_secs),
        }],
    }))
}

fn cas(grant: &str) -> host_tests::Request {
    mcp_as(grant, call(1, "cache_cas", "{}"))
}

/// Opens a cache_cas call and returns the stream with the one gRPC call it made.
fn ask<'w>(w: &'w Worker, grant: &str) -> (host_tests::OpenStream<'w>, GrpcCall) {
    let before = w.grpc_calls().len();
    let stream = w.open(cas(grant));
    let calls = w.grpc_calls();
    assert_eq!(calls.len(), before + 1, "one ShouldRateLimit call");
    let call = calls
        .into_iter()
        .max_by_key(|c| c.token)
        .expect("a call was made");
    assert_eq!(call.context_id, stream.context_id());
    (stream, call)
}

#[test]
fn the_request_waits_for_the_service_with_nothing_upstream() {
    for arrangement in Arrangement::BOTH {
        let envoy = fleet(arrangement, "deny");
        let w = envoy.worker(0);
        let (stream, grpc) = ask(w, "Bearer a");
        assert_eq!(grpc.cluster, "ratelimit");
        assert_eq!(grpc.service, "envoy.service.ratelimit.v3.RateLimitService");
        assert_eq!(grpc.method, "ShouldRateLimit");
        assert_eq!(grpc.timeout, Some(Duration::from_millis(50)));
        assert!(!grpc.streaming);
        let message = String::from_utf8_lossy(&grpc.messages[0]).into_owned();
        for part in ["mcp", "fleet_cas", "cache_cas", "grant:"] {
            assert!(message.contains(part), "{part} not in {message:?}");
        }
        assert!(
            !message.contains("Bearer a"),
            "credentials never leave in clear"
        );
        // Nobody answers: the request is held, nothing of its body went upstream.
        let ex = stream.finish();
        let Outcome::Stalled(stall) = &ex.outcome else {
            panic!("{arrangement:?}: {:?}", ex.outcome)
        };
        assert_eq!(stall.kind, StallKind::Paused);
        assert_eq!(stall.pending_callouts, 1);
        match arrangement {
            Arrangement::PauseAtHeaders => assert!(!ex.upstream.reached()),
            Arrangement::ContinueAtHeaders => assert!(ex.upstream.opened_without_body()),
        }
        assert!(ex.response.is_none());
    }
}

#[test]
fn an_ok_answer_forwards_with_the_services_remaining_count() {
    for arrangement in Arrangement::BOTH {
        let envoy = fleet(arrangement, "deny");
        let w = envoy.worker(0);
        let (stream, grpc) = ask(w, "Bearer a");
        w.answer_grpc(grpc.token, vec![answer(Code::Ok, 2, 30)]);
        let ex = stream.finish();
        assert_forwarded(&ex, call(1, "cache_cas", "{}").as_bytes());
        assert_eq!(decision(&ex), "allowed");
        let r = ex.response.as_ref().unwrap();
        assert_eq!(
            r.header("ratelimit"),
            Some("\"local_cas\";r=99;t=60, \"fleet_cas\";r=2;t=30")
        );
        assert_eq!(
            r.header("ratelimit-policy"),
            Some("\"local_cas\";q=100;w=60, \"fleet_cas\";q=3;w=60")
        );
    }
}

#[test]
fn over_limit_denies_with_rate_limited_and_retry_after() {
    for arrangement in Arrangement::BOTH {
        let envoy = fleet(arrangement, "deny");
        let w = envoy.worker(0);
        let (stream, grpc) = ask(w, "Bearer a");
        w.answer_grpc(grpc.token, vec![answer(Code::OverLimit, 0, 17)]);
        let ex = stream.finish();
        let reply = assert_denied(&ex, arrangement);
        assert_eq!(
            detail(&reply),
            &serde_json::json!({"reason":"rate_limited","rule":"tools.cache_cas.limits[0]","counter":"fleet_cas","retry_after":17})
        );
        assert_eq!(
            denial_text(&reply),
            "Toolgate denied tool \"cache_cas\": rate limit of 3 calls per minute reached (counter \"fleet_cas\"); retry in 17 seconds."
        );
        assert_eq!(
            ex.response.as_ref().unwrap().header("retry-after"),
            Some("17")
        );
        assert_eq!(decision(&ex), "denied:rate_limited:cache_cas");
    }
}

#[test]
fn a_grpc_error_or_a_timeout_denies_with_store_error_by_default() {
    for (code, message) in [(14, "upstream connect error"), (4, "deadline exceeded")] {
        for arrangement in Arrangement::BOTH {
            let envoy = fleet(arrangement, "deny");
            let w = envoy.worker(0);
            let (stream, grpc) = ask(w, "Bearer a");
            w.answer_grpc(
                grpc.token,
                vec![GrpcEvent::Close {
                    code,
                    message: message.into(),
                }],
            );
            let ex = stream.finish();
            let reply = assert_denied(&ex, arrangement);
            assert_eq!(detail(&reply)["reason"], "store_error", "gRPC {code}");
            assert!(
                denial_text(&reply).contains("the rate limit service did not answer"),
                "{reply}"
            );
            assert_eq!(envoy.metrics().counter("toolgate.store_errors"), Some(1));
            assert_eq!(
                envoy
                    .logs()
                    .containing("toolgate: counter store failure (rate limit service: ")
                    .len(),
                1
            );
        }
    }
    // An answer that is not a RateLimitResponse is a failure too.
    let envoy = fleet(Arrangement::ContinueAtHeaders, "deny");
    let w = envoy.worker(0);
    let (stream, grpc) = ask(w, "Bearer a");
    w.answer_grpc(grpc.token, vec![GrpcEvent::Message(vec![0xff, 0xff, 0xff])]);
    assert_eq!(denial_reason(&stream.finish()), "store_error");
}

#[test]
fn with_failure_mode_allow_errors_and_timeouts_forward() {
    for code in [14, 4] {
        let envoy = fleet(Arrangement::PauseAtHeaders, "allow");
        let w = envoy.worker(0);
        let (stream, grpc) = ask(w, "Bearer a");
        w.answer_grpc(
            grpc.token,
            vec![GrpcEvent::Close {
                code,
                message: "no".into(),
            }],
        );
        let ex = stream.finish();
        assert_forwarded(&ex, call(1, "cache_cas", "{}").as_bytes());
        assert_eq!(
            envoy.metrics().counter("toolgate.store_errors"),
            Some(1),
            "fail-open is still reported"
        );
    }
}

#[test]
fn the_local_precheck_spares_the_callout_once_this_envoy_counted_max() {
    let envoy = toolgate(&config("deny"))
        .cluster("ratelimit")
        .grpc_responder(|_| Some(vec![answer(Code::Ok, 0, 30)]))
        .start()
        .unwrap();
    let w = envoy.worker(0);
    for _ in 0..3 {
        assert!(w.send(cas("Bearer a")).is_forwarded());
    }
    assert_eq!(w.grpc_calls().len(), 3);
    // This Envoy alone has admitted 3: the fleet is surely at 3. No call, denied at once.
    let ex = w.send(cas("Bearer a"));
    assert_eq!(denial_reason(&ex), "rate_limited");
    assert_eq!(w.grpc_calls().len(), 3, "no callout");
    // Another grant still asks.
    assert!(w.send(cas("Bearer b")).is_forwarded());
    assert_eq!(w.grpc_calls().len(), 4);
    // Calls without fleet limits and static denials never ask.
    assert!(w
        .send(mcp_as("Bearer a", call(1, "cache_get", "{}")))
        .is_forwarded());
    assert_eq!(
        denial_reason(&w.send(mcp_as("Bearer a", call(1, "cache_delete", "{}")))),
        "not_allowed"
    );
    assert_eq!(w.grpc_calls().len(), 4);
    // The next minute asks again.
    advance_secs(&envoy, 60);
    assert!(w.send(cas("Bearer a")).is_forwarded());
    assert_eq!(w.grpc_calls().len(), 5);
}

#[test]
fn an_unknown_cluster_fails_like_the_service_failing() {
    // The cluster is not declared: Envoy refuses the call at once; the engine's failure
    // mode decides.
    for (mode, forwarded) in [("deny", false), ("allow", true)] {
        let envoy = toolgate(&config(mode)).start().unwrap();
        let ex = envoy.worker(0).send(cas("Bearer a"));
        assert_eq!(ex.is_forwarded(), forwarded, "{mode}");
        assert_eq!(envoy.worker(0).grpc_calls().len(), 0);
        assert_vm_alive(&envoy, &ex);
    }
}

#[test]
fn two_envoys_describe_the_same_grant_the_same_way() {
    // Different processes (stores and random salts): the service must see one count.
    let a = fleet(Arrangement::ContinueAtHeaders, "deny");
    let b = toolgate(&config("deny"))
        .cluster("ratelimit")
        .random_seed(42)
        .start()
        .unwrap();
    let (_, ga) = ask(a.worker(0), "Bearer same");
    let (_, gb) = ask(b.worker(0), "Bearer same");
    assert_eq!(ga.messages, gb.messages);
    let (_, other) = ask(a.worker(0), "Bearer other");
    assert_ne!(ga.messages, other.messages);
}
