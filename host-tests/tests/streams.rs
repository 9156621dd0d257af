//! Streams: bodies in chunks, trailers, pauses, local replies, callouts, the response
//! path, properties, metrics and logs.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod common;

use host_tests::{
    Action, Callback, Direction, GrpcEvent, HttpCallReply, LogLevel, MetricValue, Outcome, Request,
    StallKind, UpstreamResponse,
};

#[test]
fn one_byte_chunks_report_cumulative_sizes_while_buffering() {
    let envoy = common::start("");
    let body = r#"{"jsonrpc":"2.0"}"#;
    let ex = envoy.worker(0).send(
        Request::post("/mcp")
            .header("x-probe-body", "buffer")
            .body_in_chunks(body, 1),
    );
    assert_eq!(
        ex.body_sizes(Direction::Request),
        (1..=body.len()).collect::<Vec<_>>()
    );
    assert_eq!(ex.upstream.body_text(), body);
    assert!(ex.is_forwarded());
}

#[test]
fn without_buffering_each_chunk_goes_on_alone() {
    let envoy = common::start("");
    let ex = envoy
        .worker(0)
        .send(Request::post("/").chunks(["ab", "cde"]));
    assert_eq!(ex.body_sizes(Direction::Request), vec![2, 3]);
    assert_eq!(ex.upstream.body_text(), "abcde");
}

#[test]
fn the_filter_reads_and_replaces_the_whole_buffered_body() {
    let envoy = common::start("");
    let w = envoy.worker(0);
    let ex = w.send(
        Request::post("/")
            .header("x-probe-body", "echo")
            .chunks(["he", "llo"]),
    );
    assert_eq!(ex.status(), Some(200));
    assert_eq!(ex.body_text(), "hello");
    assert!(
        ex.upstream.opened_without_body(),
        "headers went on, the body did not"
    );
    let ex = w.send(
        Request::post("/")
            .header("x-probe-body", "replace:NEW")
            .chunks(["old", "body"]),
    );
    assert_eq!(ex.upstream.body_text(), "NEW");
}

#[test]
fn with_trailers_the_body_never_ends_and_trailers_release_it() {
    let envoy = common::start("");
    let ex = envoy.worker(0).send(
        Request::post("/")
            .header("x-probe-body", "buffer")
            .chunks(["a", "b"])
            .trailer("x-checksum", "1"),
    );
    let eos: Vec<bool> = ex
        .callbacks
        .iter()
        .filter_map(|c| match c {
            Callback::RequestBody { end_of_stream, .. } => Some(*end_of_stream),
            _ => None,
        })
        .collect();
    assert_eq!(
        eos,
        vec![false, false],
        "end_of_stream never comes with trailers"
    );
    assert_eq!(
        ex.filter_state_text("wasm.probe.trailers").as_deref(),
        Some("1")
    );
    // The body was held (Pause) but the trailers callback continued: it all went on.
    assert_eq!(ex.upstream.body_text(), "ab");
    assert_eq!(
        ex.upstream
            .trailers
            .as_ref()
            .and_then(|t| t.get("x-checksum")),
        Some("1")
    );
    assert!(ex.upstream.complete);

    // A filter that held the body still sees all of it in its trailers callback and may
    // change it (Envoy exposes the decoding buffer while the filter buffers).
    let ex = envoy.worker(0).send(
        Request::post("/")
            .header("x-probe-body", "buffer")
            .header("x-probe-trailers", "body:NEW")
            .chunks(["a", "b", "c"])
            .trailer("t", "1"),
    );
    assert_eq!(
        ex.filter_state_text("wasm.probe.trailer_body").as_deref(),
        Some("abc")
    );
    assert_eq!(ex.upstream.body_text(), "NEW");
    assert!(ex.upstream.complete);

    let ex = envoy.worker(0).send(
        Request::post("/")
            .header("x-probe-trailers", "pause")
            .body("a")
            .trailer("t", "1"),
    );
    assert!(matches!(ex.outcome, Outcome::Stalled(_)));
    assert_eq!(ex.upstream.body_text(), "a");
    assert!(!ex.upstream.complete);
}

#[test]
fn pause_from_headers_stops_all_without_the_flag() {
    let envoy = common::start("");
    let ex = envoy
        .worker(0)
        .send(Request::post("/").header("x-probe", "pause").body("x"));
    let Outcome::Stalled(stall) = &ex.outcome else {
        panic!("{:?}", ex.outcome)
    };
    assert_eq!(stall.kind, StallKind::StopAllIteration);
    assert!(
        ex.body_sizes(Direction::Request).is_empty(),
        "no body callback under StopAllIteration"
    );
    assert!(!ex.upstream.reached());
    assert!(ex.response.is_none());
}

#[test]
fn with_the_flag_body_callbacks_come_while_headers_are_held() {
    let envoy = common::probe("")
        .allow_on_headers_stop_iteration(true)
        .start()
        .unwrap();
    let ex = envoy.worker(0).send(
        Request::post("/")
            .header("x-probe", "pause")
            .header("x-probe-body", "buffer")
            .chunks(["a", "b"]),
    );
    assert_eq!(ex.body_sizes(Direction::Request), vec![1, 2]);
    assert!(ex.is_forwarded());
    assert_eq!(ex.upstream.body_text(), "ab");

    // Denied at the end: nothing at all reached the upstream.
    let ex = envoy.worker(0).send(
        Request::post("/")
            .header("x-probe", "pause")
            .header("x-probe-body", "reply_at_end:413")
            .body("big"),
    );
    assert_eq!(ex.status(), Some(413));
    assert!(!ex.upstream.reached());
}

#[test]
fn continue_from_headers_opens_the_upstream_before_the_body_decision() {
    let envoy = common::start("");
    let ex = envoy.worker(0).send(
        Request::post("/")
            .header("x-probe-body", "reply_at_end:403")
            .chunks(["a", "b"]),
    );
    assert_eq!(ex.status(), Some(403));
    assert!(
        ex.upstream.opened_without_body(),
        "upstream request opened, no body byte sent"
    );
    assert!(ex.upstream.reset);
}

#[test]
fn local_replies_are_deferred_and_encoded_through_the_filter() {
    let envoy = common::start("");
    let ex = envoy.worker(0).send(
        Request::post("/")
            .header("x-probe", "reply:401;cas:never")
            .header("x-probe-response", "header")
            .body("x"),
    );
    let reply = ex.local_reply().expect("local reply");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body_text(), "denied by probe");
    let response = ex.response.as_ref().unwrap();
    assert_eq!(response.header("x-probe-reply"), Some("1"));
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(
        response.header("x-probe-seen"),
        Some("401"),
        "on_response_headers saw its own reply"
    );
    assert!(!ex.upstream.reached());
    assert!(
        ex.body_sizes(Direction::Request).is_empty(),
        "no body callback after the reply"
    );
    assert!(
        envoy.shared_value("never").is_none(),
        "commands after reply did not run"
    );
}

#[test]
fn a_resume_inside_the_callback_takes_effect_after_it() {
    let envoy = common::start("");
    let ex = envoy
        .worker(0)
        .send(Request::get("/").header("x-probe", "resume_now"));
    assert!(ex.is_forwarded(), "{:?}", ex.outcome);
}

#[test]
fn http_callouts_pause_the_stream_until_answered() {
    let envoy = common::probe("").cluster("authz").start().unwrap();
    let w = envoy.worker(0);
    let stream = w.open(
        Request::post("/")
            .header("x-probe", "callout")
            .body("payload"),
    );
    let calls = stream.pending_http_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.cluster, "authz");
    assert_eq!(call.headers.get(":path"), Some("/check"));
    assert_eq!(call.body, b"check me");
    assert_eq!(call.timeout, Some(std::time::Duration::from_millis(250)));
    w.answer_http_call(call.token, HttpCallReply::with_body(200, "fine"));
    let ex = stream.finish();
    assert!(ex.is_forwarded(), "{:?}", ex.outcome);
    assert_eq!(
        ex.upstream.body_text(),
        "payload",
        "StopAll buffered the body until the resume"
    );
    assert_eq!(ex.body_sizes(Direction::Request), vec![7]);
    assert_eq!(
        ex.filter_state_text("wasm.probe.callout_body").as_deref(),
        Some("fine")
    );

    let stream = w.open(Request::get("/").header("x-probe", "callout"));
    let token = stream.pending_http_calls()[0].token;
    w.answer_http_call(token, HttpCallReply::Reset);
    let ex = stream.finish();
    assert_eq!(ex.status(), Some(502));
    assert_eq!(ex.body_text(), "callout failed 11 reset");
}

#[test]
fn responders_answer_callouts_and_unknown_clusters_are_bad_arguments() {
    let envoy = common::probe("")
        .cluster("authz")
        .http_responder(|_| Some(HttpCallReply::Timeout))
        .grpc_responder(|call| {
            assert_eq!(call.service, "probe.Auth");
            Some(vec![GrpcEvent::Close {
                code: 7,
                message: "no".into(),
            }])
        })
        .start()
        .unwrap();
    let w = envoy.worker(0);
    let ex = w.send(Request::get("/").header("x-probe", "callout"));
    assert_eq!(ex.body_text(), "callout said 504");
    let ex = w.send(Request::get("/").header("x-probe", "grpc"));
    assert_eq!(ex.status(), Some(403));
    assert_eq!(ex.body_text(), "grpc 7 no");
    let ex = w.send(Request::get("/").header("x-probe", "callout_unknown"));
    assert_eq!(
        ex.filter_state_text("wasm.probe.callout").as_deref(),
        Some("Err(BadArgument)")
    );
    assert_eq!(w.http_calls().len(), 1);
    assert_eq!(w.grpc_calls()[0].messages, vec![b"req".to_vec()]);
}

#[test]
fn a_unary_grpc_success_is_a_message_alone() {
    let envoy = common::probe("")
        .cluster("authz")
        .grpc_responder(|_| Some(vec![GrpcEvent::Message(b"ok".to_vec())]))
        .start()
        .unwrap();
    let ex = envoy
        .worker(0)
        .send(Request::get("/").header("x-probe", "grpc"));
    assert!(ex.is_forwarded(), "{:?}", ex.outcome);
    assert_eq!(
        ex.filter_state_text("wasm.probe.grpc_message").as_deref(),
        Some("ok")
    );
}

#[test]
fn the_response_path_buffers_and_rewrites_streamed_bodies() {
    let envoy = common::start("");
    let ex = envoy.worker(0).send(
        Request::get("/")
            .header("x-probe-response", "upper")
            .upstream_response(
                UpstreamResponse::new(200)
                    .header("content-type", "text/event-stream")
                    .chunks(["data: {\"a\"", ":1}\n\n", "data: {}\n\n"]),
            ),
    );
    assert_eq!(ex.body_sizes(Direction::Response), vec![10, 15, 25]);
    assert_eq!(ex.body_text(), "DATA: {\"A\":1}\n\nDATA: {}\n\n");
    assert!(ex.response.as_ref().unwrap().complete);
    // The probe buffers until the end: the client got one frame.
    assert_eq!(ex.response.as_ref().unwrap().frames.len(), 1);

    // Untouched, each chunk reaches the client as its own frame.
    let ex = envoy.worker(0).send(
        Request::get("/").upstream_response(
            UpstreamResponse::new(200)
                .header("content-type", "text/event-stream")
                .chunks(["data: 1\n\n", "", "data: 2\n\n"]),
        ),
    );
    assert_eq!(
        ex.response.as_ref().unwrap().frames,
        [b"data: 1\n\n".to_vec(), b"data: 2\n\n".to_vec()]
    );
}

#[test]
fn a_paused_response_stalls_and_a_late_reply_replaces_it() {
    let envoy = common::start("");
    let ex = envoy
        .worker(0)
        .send(Request::get("/").header("x-probe-response", "pause_headers"));
    let Outcome::Stalled(stall) = &ex.outcome else {
        panic!("{:?}", ex.outcome)
    };
    assert_eq!(stall.direction, Direction::Response);
    assert!(ex.upstream.complete);
    assert!(ex.response.is_none());

    let ex = envoy
        .worker(0)
        .send(Request::get("/").header("x-probe-response", "reply:502"));
    assert_eq!(ex.status(), Some(502));
    assert_eq!(ex.body_text(), "replaced by probe");
}

#[test]
fn properties_come_from_the_plugin_and_the_request() {
    let envoy = common::probe("")
        .name("toolgate")
        .root_id("root")
        .vm_id("vm")
        .property(&["node", "id"], "n1")
        .start()
        .unwrap();
    let w = envoy.worker(0);
    let prop = |path: &str, req: Request| {
        let ex = w.send(req.header("x-probe", format!("prop:{path}")));
        ex.filter_state.get("wasm.probe.prop").cloned().unwrap()
    };
    assert_eq!(prop("plugin_name", Request::get("/")), b"toolgate");
    assert_eq!(prop("plugin_root_id", Request::get("/")), b"root");
    assert_eq!(prop("plugin_vm_id", Request::get("/")), b"vm");
    assert_eq!(prop("node.id", Request::get("/")), b"n1");
    assert_eq!(prop("request.path", Request::get("/a?b")), b"/a?b");
    assert_eq!(prop("request.url_path", Request::get("/a?b")), b"/a");
    assert_eq!(
        prop(
            "source.address",
            Request::get("/").source_address("192.0.2.7:1234")
        ),
        b"192.0.2.7:1234"
    );
    assert_eq!(
        prop(
            "source.port",
            Request::get("/").source_address("192.0.2.7:1234")
        ),
        1234i64.to_le_bytes()
    );
    assert_eq!(
        prop(
            "metadata.filter_metadata.jwt.sub",
            Request::get("/").property(&["metadata", "filter_metadata", "jwt", "sub"], "alice")
        ),
        b"alice"
    );
    assert_eq!(prop("no.such", Request::get("/")), b"<none>");
}

#[test]
fn set_property_becomes_filter_state_and_reads_back() {
    let envoy = common::start("");
    let ex = envoy
        .worker(0)
        .send(Request::get("/").header("x-probe", "setprop:decision=denied;prop:decision"));
    assert_eq!(
        ex.filter_state_text("wasm.decision").as_deref(),
        Some("denied")
    );
    assert_eq!(
        ex.filter_state_text("wasm.probe.prop").as_deref(),
        Some("denied")
    );
}

#[test]
fn headers_read_first_values_and_changes_reach_the_upstream() {
    let envoy = common::start("");
    let w = envoy.worker(0);
    let ex = w.send(
        Request::get("/")
            .header("x-dup", "first")
            .header("x-dup", "second")
            .header("x-probe", "header:x-dup"),
    );
    assert_eq!(
        ex.filter_state_text("wasm.probe.header").as_deref(),
        Some("first")
    );
    let ex = w.send(
        Request::get("/")
            .header("x-dup", "1")
            .header("x-dup", "2")
            .header("x-gone", "y")
            .header("x-probe", "add:x-new=v;replace:x-dup=3;remove:x-gone;pairs"),
    );
    let upstream = ex.upstream.headers.as_ref().unwrap();
    assert_eq!(upstream.get_all("x-dup"), vec!["3"]);
    assert_eq!(upstream.get("x-new"), Some("v"));
    assert!(!upstream.contains("x-gone"));
    assert!(
        upstream.contains("x-request-id"),
        "the connection manager added it"
    );
    let pairs = ex.filter_state_text("wasm.probe.pairs").unwrap();
    assert!(
        pairs.starts_with(":authority=example.com\n:path=/\n:method=GET"),
        "{pairs}"
    );
}

#[test]
fn metrics_are_shared_by_name_across_workers() {
    let envoy = common::probe("").workers(2).start().unwrap();
    for w in envoy.workers() {
        let ex = w.send(Request::get("/").header(
            "x-probe",
            "metric:probe.requests;gauge:probe.g=10;hist:probe.h=5",
        ));
        assert_eq!(
            ex.filter_state_text("wasm.probe.metric_zero").as_deref(),
            Some("Err(BadArgument)")
        );
        assert_eq!(
            ex.filter_state_text("wasm.probe.hist_get").as_deref(),
            Some("Err(BadArgument)")
        );
    }
    assert_eq!(envoy.metrics().counter("probe.requests"), Some(2));
    assert_eq!(envoy.metrics().gauge("probe.g"), Some(9));
    assert_eq!(
        envoy.metrics().get("probe.h"),
        Some(MetricValue::Histogram(vec![5, 5]))
    );
}

#[test]
fn logs_keep_levels_and_stdout_stderr_and_the_log_level_is_envoys() {
    let envoy = common::probe("")
        .log_level(LogLevel::Debug)
        .start()
        .unwrap();
    let ex = envoy
        .worker(0)
        .send(Request::get("/").header("x-probe", "log;level"));
    assert_eq!(
        ex.filter_state_text("wasm.probe.level").as_deref(),
        Some("Debug")
    );
    let lines = envoy.logs().containing("probe: ");
    let find = |m: &str| lines.iter().find(|l| l.message == m).map(|l| l.level);
    assert_eq!(find("probe: Trace"), Some(LogLevel::Trace));
    assert_eq!(find("probe: Critical"), Some(LogLevel::Critical));
    assert_eq!(find("probe: stdout line"), Some(LogLevel::Info));
    assert_eq!(find("probe: stderr line"), Some(LogLevel::Error));
    assert!(lines.iter().any(|l| l.context_id == ex.context_id));
}

#[test]
fn time_is_virtual_for_hostcalls_and_wasi() {
    let envoy = common::start("");
    let w = envoy.worker(0);
    let at = |w: &host_tests::Worker| {
        let ex = w.send(Request::get("/").header("x-probe", "time"));
        (
            ex.filter_state_text("wasm.probe.time")
                .unwrap()
                .parse::<u128>()
                .unwrap(),
            ex.filter_state_text("wasm.probe.wasi_time")
                .unwrap()
                .parse::<u128>()
                .unwrap(),
        )
    };
    let (proxy, wasi) = at(w);
    assert_eq!(proxy, 1_767_225_600 * 1_000_000_000);
    assert_eq!(wasi, proxy);
    envoy.advance_time(std::time::Duration::from_secs(60));
    assert_eq!(at(w).0, proxy + 60 * 1_000_000_000);
}

#[test]
fn shared_queues_notify_the_registering_root_context() {
    let envoy = common::probe("queue:jobs").workers(2).start().unwrap();
    envoy
        .worker(1)
        .send(Request::get("/").header("x-probe", "enqueue:jobs=hello"));
    // Worker 1 registered last; its root context is told, on its own thread.
    envoy.worker(1).send(Request::get("/"));
    let lines = envoy.logs().containing("probe: queue item hello");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].vm, host_tests::VmRole::Worker(1));
}

#[test]
fn actions_report_what_the_module_returned() {
    let envoy = common::probe("")
        .allow_on_headers_stop_iteration(true)
        .start()
        .unwrap();
    let ex = envoy
        .worker(0)
        .send(Request::get("/").header("x-probe", "pause"));
    assert!(matches!(
        ex.callbacks[1],
        Callback::RequestHeaders {
            action: Action::Pause,
            end_of_stream: true,
            ..
        }
    ));
    assert!(matches!(ex.outcome, Outcome::Stalled(ref s) if s.kind == StallKind::Paused));
}
