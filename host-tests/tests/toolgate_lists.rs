//! List responses through the real module: hidden tools vanish from `tools/list` answers,
//! JSON and SSE (whole, in 1-byte and in many-event chunks, with notifications passing as
//! they come), pagination kept, and anything that cannot be filtered fails closed.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use host_tests::{Direction, Exchange, Outcome, UpstreamResponse};
use serde_json::json;
use support::*;

const LIST_REQUEST: &str =
    r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":"c1"}}"#;

const LIST: &str = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"cache_get","inputSchema":{"type":"object"}},{"name":"cache_delete","description":"x"},{"name":"CACHE_DELETE"},{"name":"cache_set"}],"nextCursor":"n2"}}"#;

const FILTERED: &str = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"cache_get","inputSchema":{"type":"object"}},{"name":"cache_set"}],"nextCursor":"n2"}}"#;

const PROGRESS: &str = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\r\n\r\n";

fn sse(chunks: Vec<Vec<u8>>) -> UpstreamResponse {
    UpstreamResponse::new(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .chunks(chunks)
}

fn list_exchange(config: &str, response: UpstreamResponse) -> Exchange {
    let envoy = start(config);
    let ex = envoy
        .worker(0)
        .send(mcp_as("k", LIST_REQUEST).upstream_response(response));
    assert_vm_alive(&envoy, &ex);
    // The request itself went on untouched (the cursor included).
    assert_eq!(ex.upstream.body_text(), LIST_REQUEST);
    assert_eq!(decision(&ex), "passed");
    ex
}

/// The module's answer in place of a tools/list response it could not check.
fn withheld(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32603,"message":"Toolgate could not check the tools/list response against the policy, so it was withheld.","data":{{"reason":"list_unfilterable"}}}}}}"#
    )
}

#[test]
fn a_json_list_loses_its_hidden_tools_and_keeps_its_cursor() {
    let ex = list_exchange(
        HIDE,
        UpstreamResponse::json(LIST).header("content-length", LIST.len().to_string()),
    );
    assert_eq!(ex.outcome, Outcome::Forwarded);
    let response = ex.response.as_ref().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body_text(), FILTERED, "spliced byte for byte");
    assert_eq!(
        response.header("content-length"),
        None,
        "the length changed, so the header went"
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&response.body_text()).unwrap();
    assert_eq!(v["result"]["nextCursor"], "n2");
}

#[test]
fn a_json_list_in_one_byte_chunks_and_in_a_batch_is_filtered_too() {
    let ex = list_exchange(
        HIDE,
        UpstreamResponse::new(200)
            .header("content-type", "application/json")
            .body_in_chunks(LIST, 1),
    );
    assert_eq!(ex.body_text(), FILTERED);
    assert_eq!(
        ex.response.as_ref().unwrap().frames.len(),
        1,
        "a JSON list is held to its end, then sent whole"
    );

    let batch = format!(r#"[{LIST},{{"jsonrpc":"2.0","id":1,"result":{{}}}}]"#);
    let ex = list_exchange(HIDE, UpstreamResponse::json(batch));
    assert_eq!(
        ex.body_text(),
        format!(r#"[{FILTERED},{{"jsonrpc":"2.0","id":1,"result":{{}}}}]"#)
    );
}

#[test]
fn hide_denied_tools_also_removes_tools_every_call_to_which_is_denied() {
    let config = with_settings(SEED, json!({"hide_denied_tools": true}));
    let ex = list_exchange(&config, UpstreamResponse::json(LIST));
    assert_eq!(
        ex.body_text(),
        r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[],"nextCursor":"n2"}}"#
    );
}

#[test]
fn lists_are_untouched_when_nothing_is_hidden_and_filtered_whatever_id_they_answer() {
    let ex = list_exchange(SEED, UpstreamResponse::json(LIST));
    assert_eq!(ex.body_text(), LIST, "the seed policy hides nothing");
    // A server keying answers by id alone may put the answer to another list request here.
    let other = LIST.replace("\"id\":4", "\"id\":5");
    let ex = list_exchange(HIDE, UpstreamResponse::json(other));
    assert_eq!(ex.body_text(), FILTERED.replace("\"id\":4", "\"id\":5"));
    // An error answer to the list passes.
    let error = r#"{"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"no"}}"#;
    let ex = list_exchange(HIDE, UpstreamResponse::json(error));
    assert_eq!(ex.body_text(), error);
}

fn sse_stream() -> (String, String) {
    let stream = format!(": keepalive\n\nid: 7\nevent: message\ndata: {LIST}\n\n{PROGRESS}");
    let expected = format!(": keepalive\n\nid: 7\nevent: message\ndata: {FILTERED}\n\n{PROGRESS}");
    (stream, expected)
}

#[test]
fn an_sse_list_is_filtered_whole_in_one_byte_chunks_and_in_arbitrary_splits() {
    let (stream, expected) = sse_stream();
    for size in [stream.len(), 1, 7, 64] {
        let ex = list_exchange(
            HIDE,
            sse(stream.as_bytes().chunks(size).map(<[u8]>::to_vec).collect()),
        );
        assert_eq!(ex.outcome, Outcome::Forwarded);
        assert_eq!(ex.body_text(), expected, "chunks of {size}");
        let response = ex.response.as_ref().unwrap();
        assert_eq!(response.header("content-type"), Some("text/event-stream"));
        assert!(
            ex.callbacks.iter().all(|c| !matches!(
                c,
                host_tests::Callback::ResponseBody {
                    action: host_tests::Action::Pause,
                    ..
                }
            )),
            "an event stream is never held back by Envoy"
        );
        assert_eq!(
            ex.body_sizes(Direction::Response).len(),
            stream.len().div_ceil(size)
        );
    }
}

#[test]
fn many_events_in_one_chunk_are_each_judged() {
    // Ten notifications, the list, a second copy of it, a ping and more notifications in
    // a single chunk.
    let many = format!(
        "{}data: {LIST}\n\n{}event: ping\ndata:\n\ndata: {LIST}\n\n{}",
        PROGRESS.repeat(10),
        PROGRESS,
        PROGRESS.repeat(3)
    );
    let expected = format!(
        "{}data: {FILTERED}\n\n{}event: ping\ndata:\n\ndata: {FILTERED}\n\n{}",
        PROGRESS.repeat(10),
        PROGRESS,
        PROGRESS.repeat(3)
    );
    let ex = list_exchange(HIDE, sse(vec![many.into_bytes()]));
    assert_eq!(ex.body_text(), expected);
}

#[test]
fn notifications_pass_as_they_come_while_the_list_is_still_arriving() {
    let list_event = format!("id: 9\ndata: {LIST}\n\n");
    let (head, tail) = list_event.split_at(40);
    let second = PROGRESS.replace("\"progress\":1", "\"progress\":2");
    let ex = list_exchange(
        HIDE,
        sse(vec![
            PROGRESS.into(),
            second.clone().into_bytes(),
            head.into(),
            tail.into(),
            PROGRESS.into(),
        ]),
    );
    let frames = &ex.response.as_ref().unwrap().frames;
    assert_eq!(
        frames[0],
        PROGRESS.as_bytes(),
        "the first notification went on at once"
    );
    assert_eq!(frames[1], second.as_bytes(), "so did the second");
    assert_eq!(
        String::from_utf8(frames[2].clone()).unwrap(),
        format!("id: 9\ndata: {FILTERED}\n\n"),
        "the list event went on filtered once complete, nothing of it before"
    );
    assert_eq!(frames[3], PROGRESS.as_bytes());
    assert_eq!(frames.len(), 4);
}

#[test]
fn a_malformed_sse_stream_fails_closed() {
    for bad in [
        "data: not json\n\n".to_string(),
        format!("data: {}\n\n", LIST.replace("\"id\":4", "\"Id\":4")),
        format!("data: {LIST}trailing\n\n"),
        format!(
            "data: {}\n\n",
            LIST.replace("{\"name\":\"cache_set\"}", "{\"Name\":\"cache_delete\"}")
        ),
    ] {
        let rest = format!("data: {LIST}\n\n{PROGRESS}");
        let ex = list_exchange(HIDE, sse(vec![bad.clone().into_bytes(), rest.into_bytes()]));
        let body = ex.body_text();
        assert!(body.contains("list_unfilterable"), "{bad} -> {body}");
        assert!(!body.contains("cache_delete"), "{bad} -> {body}");
        assert!(
            body.contains(&withheld(4)),
            "the pending list is answered with an error: {body}"
        );
    }
}

#[test]
fn compressed_or_unknown_list_responses_fail_closed_with_a_502() {
    let cases = [
        UpstreamResponse::json(LIST).header("content-encoding", "gzip"),
        UpstreamResponse::new(200)
            .header("content-type", "text/event-stream")
            .header("content-encoding", "br")
            .body(format!("data: {LIST}\n\n")),
        UpstreamResponse::new(200)
            .header("content-type", "text/html")
            .body(LIST),
    ];
    for response in cases {
        let ex = list_exchange(HIDE, response);
        let r = ex.response.as_ref().unwrap();
        assert_eq!(r.status, 502, "{}", r.body_text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.body_text(), withheld(4));
        assert!(!r.body_text().contains("cache_delete"));
    }
}

#[test]
fn a_list_response_over_max_response_bytes_fails_closed() {
    let config = with_settings(HIDE, json!({"max_response_bytes": 1024}));
    let big = LIST.replace(
        "\"description\":\"x\"",
        &format!("\"description\":\"{}\"", "x".repeat(2000)),
    );
    let ex = list_exchange(&config, UpstreamResponse::json(big.clone()));
    assert_eq!(ex.body_text(), withheld(4));
    let ex = list_exchange(&config, sse(vec![format!("data: {big}\n\n").into_bytes()]));
    assert!(ex.body_text().contains("list_unfilterable"));
    assert!(!ex.body_text().contains("cache_delete"));
}

#[test]
fn resources_and_prompts_lists_lose_their_hidden_entries() {
    let config = r#"{"version":"1","default":"allow",
        "resources":{"default":"allow","hide":["file:///secret/*"]},
        "prompts":{"default":"allow","hide":["admin_*"]}}"#;
    let envoy = start(config);
    let w = envoy.worker(0);
    let resources = r#"{"jsonrpc":"2.0","id":"r","result":{"resources":[{"uri":"file:///srv/a","name":"a"},{"uri":"file:///secret/key","name":"k"}]}}"#;
    let ex = w.send(
        mcp_as(
            "k",
            r#"{"jsonrpc":"2.0","id":"r","method":"resources/list"}"#,
        )
        .upstream_response(UpstreamResponse::json(resources)),
    );
    assert_eq!(
        ex.body_text(),
        r#"{"jsonrpc":"2.0","id":"r","result":{"resources":[{"uri":"file:///srv/a","name":"a"}]}}"#
    );
    let prompts = r#"{"jsonrpc":"2.0","id":2,"result":{"prompts":[{"name":"admin_reset"},{"name":"summarize"}]}}"#;
    let ex = w.send(
        mcp_as("k", method(2, "prompts/list")).upstream_response(UpstreamResponse::json(prompts)),
    );
    assert_eq!(
        ex.body_text(),
        r#"{"jsonrpc":"2.0","id":2,"result":{"prompts":[{"name":"summarize"}]}}"#
    );
}

#[test]
fn lists_of_two_kinds_under_one_id_each_lose_their_hidden_entries() {
    let config = r#"{"version":"1","default":"allow","hide":["cache_delete"],
        "resources":{"default":"allow","hide":["file:///secret/*"]}}"#;
    let envoy = start(config);
    let w = envoy.worker(0);
    // The id is awaited as a tools list and as a resources list; a server answering both,
    // in either order, and a lenient client reading both, see neither hidden entry.
    let request = r#"[{"jsonrpc":"2.0","id":5,"method":"tools/list"},{"jsonrpc":"2.0","id":5,"method":"resources/list"}]"#;
    let tools = r#"{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"cache_get"},{"name":"cache_delete"}]}}"#;
    let resources = r#"{"jsonrpc":"2.0","id":5,"result":{"resources":[{"uri":"file:///secret/key"},{"uri":"file:///srv/a"}]}}"#;
    let kept_tools = r#"{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"cache_get"}]}}"#;
    let kept_resources =
        r#"{"jsonrpc":"2.0","id":5,"result":{"resources":[{"uri":"file:///srv/a"}]}}"#;
    for (answer, expected) in [
        (
            format!("[{tools},{resources}]"),
            format!("[{kept_tools},{kept_resources}]"),
        ),
        (
            format!("[{resources},{tools}]"),
            format!("[{kept_resources},{kept_tools}]"),
        ),
    ] {
        let ex = w.send(mcp_as("k", request).upstream_response(UpstreamResponse::json(answer)));
        assert_vm_alive(&envoy, &ex);
        assert_eq!(ex.body_text(), expected);
    }
}

/// A request that awaits no list, sent as a client of `hide` would.
fn other_exchange(config: &str, body: &str, response: UpstreamResponse) -> Exchange {
    let envoy = start(config);
    let ex = envoy.worker(0).send(
        mcp_as("k", body)
            .header("accept-encoding", "gzip, br")
            .upstream_response(response),
    );
    assert_vm_alive(&envoy, &ex);
    assert_eq!(ex.upstream.body_text(), body, "{}", ex.body_text());
    ex
}

const OPEN: &str = r#"{"version":"1","default":"allow"}"#;

const PING: &str = r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#;

#[test]
fn a_list_answering_a_request_that_awaits_none_is_filtered_by_its_shape() {
    // The Python SDK's stateful transport routes answers by id alone: a ping sent with the
    // id of a concurrent tools/list can be answered with that list.
    let ex = other_exchange(HIDE, PING, UpstreamResponse::json(LIST));
    assert_eq!(ex.body_text(), FILTERED);
    let ex = other_exchange(
        HIDE,
        PING,
        sse(vec![
            format!("event: message\ndata: {LIST}\n\n").into_bytes()
        ]),
    );
    assert_eq!(
        ex.body_text(),
        format!("event: message\ndata: {FILTERED}\n\n")
    );
    // So are lists in a batch answer, and in an answer to a call.
    let batch = format!("[{LIST}]");
    let ex = other_exchange(HIDE, &format!("[{PING}]"), UpstreamResponse::json(batch));
    assert_eq!(ex.body_text(), format!("[{FILTERED}]"));
    let call = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"cache_get","arguments":{"key":"k"}}}"#;
    let ex = other_exchange(HIDE, call, UpstreamResponse::json(LIST));
    assert_eq!(ex.body_text(), FILTERED);
    // While anything is hidden, no answer may come compressed: the request asks for none.
    assert_eq!(ex.upstream.header("accept-encoding"), None);
    // A compressed answer, or one that cannot be read strictly, is withheld.
    let unreadable = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{{\"Tools\":{}}}}}",
        "[]"
    );
    for response in [
        UpstreamResponse::json(LIST).header("content-encoding", "gzip"),
        UpstreamResponse::json(unreadable),
        UpstreamResponse::json(format!("{LIST} x")),
    ] {
        let ex = other_exchange(HIDE, PING, response);
        assert!(
            ex.body_text().contains("list_unfilterable"),
            "{}",
            ex.body_text()
        );
        assert!(!ex.body_text().contains("cache_delete"));
    }
}

#[test]
fn answers_that_hold_no_list_pass_byte_for_byte() {
    let call = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"cache_get","arguments":{"key":"k"}}}"#;
    let answers = [
        // Escapes and list-like words in a tool's output are read, and left as they are.
        r#"{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"\"tools\": [\"cache_delete\"]\n"}],"isError":false}}"#,
        r#"{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"plain"}]}}"#,
        r#"{"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"bad \"tools\""}}"#,
    ];
    for answer in answers {
        for config in [HIDE, OPEN] {
            let ex = other_exchange(config, call, UpstreamResponse::json(answer));
            assert_eq!(ex.body_text(), answer);
        }
    }
    // With nothing hidden, nothing is read: compressed answers pass, and the client's
    // Accept-Encoding goes on.
    let ex = other_exchange(
        OPEN,
        call,
        UpstreamResponse::json("x").header("content-encoding", "gzip"),
    );
    assert_eq!(ex.body_text(), "x");
    assert_eq!(ex.upstream.header("accept-encoding"), Some("gzip, br"));
    // Bodies no MCP client reads as an answer pass while something is hidden too.
    let ex = other_exchange(
        HIDE,
        call,
        UpstreamResponse::new(200)
            .header("content-type", "text/html")
            .body(LIST),
    );
    assert_eq!(ex.body_text(), LIST);
}

#[test]
fn a_json_answer_larger_than_envoy_is_left_to_hold_is_taken_chunk_by_chunk_and_filtered_whole() {
    // Past 16 KiB the module takes the answer out of the stream (Envoy's buffer limit would
    // cut it short) and writes it back, filtered, at its end.
    let description = "d".repeat(200_000);
    let big = LIST.replace(
        r#"{"name":"cache_get","inputSchema":{"type":"object"}}"#,
        &format!(r#"{{"name":"cache_get","description":"{description}"}}"#),
    );
    let want = FILTERED.replace(
        r#"{"name":"cache_get","inputSchema":{"type":"object"}}"#,
        &format!(r#"{{"name":"cache_get","description":"{description}"}}"#),
    );
    for size in [4096, 65536] {
        let ex = list_exchange(
            HIDE,
            UpstreamResponse::new(200)
                .header("content-type", "application/json")
                .body_in_chunks(&big, size),
        );
        assert_eq!(ex.body_text(), want, "chunks of {size}");
    }
    // An answer awaiting no list passes whole too.
    let envoy = start(HIDE);
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":7,"result":{{"content":[{{"type":"text","text":"{description}"}}]}}}}"#
    );
    let ex = envoy.worker(0).send(
        mcp_as("k", call(7, "cache_get", r#"{"key":"k"}"#)).upstream_response(
            UpstreamResponse::new(200)
                .header("content-type", "application/json")
                .body_in_chunks(&answer, 8192),
        ),
    );
    assert_vm_alive(&envoy, &ex);
    assert_eq!(ex.body_text(), answer);
}

#[test]
fn a_withheld_answer_names_the_requests_it_answers() {
    let config = with_settings(HIDE, json!({"max_response_bytes": 1024}));
    let envoy = start(&config);
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":"call-7","result":{{"content":[{{"type":"text","text":"{}"}}]}}}}"#,
        "x".repeat(4000)
    );
    let request = r#"{"jsonrpc":"2.0","id":"call-7","method":"tools/call","params":{"name":"cache_get","arguments":{"key":"k"}}}"#;
    for response in [
        UpstreamResponse::json(answer.clone()),
        sse(vec![format!("data: {answer}\n\n").into_bytes()]),
    ] {
        let ex = envoy
            .worker(0)
            .send(mcp_as("k", request).upstream_response(response));
        assert_vm_alive(&envoy, &ex);
        let body = ex.body_text();
        assert!(
            body.contains(r#"{"jsonrpc":"2.0","id":"call-7","error":{"code":-32603"#)
                && body.contains("list_unfilterable")
                && !body.contains("xxxx"),
            "{body}"
        );
    }
}
