//! The 2024-11-05 HTTP+SSE transport through the real module: a denied call POSTed to the
//! server's message endpoint goes on as a `ping` carrying the denial, and the ping's answer
//! on the GET stream (here on another worker) becomes the denial the client awaits; list
//! answers on the GET stream lose their hidden tools. Streamable HTTP requests are answered
//! locally as before.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use host_tests::{Envoy, Exchange, Outcome, Request, UpstreamResponse};
use serde_json::{json, Value};
use support::*;

const POLICY: &str =
    r#"{"version":"1","default":"deny","hide":["secret"],"tools":{"cache_get":{}}}"#;

/// The endpoint the Python SDK's server names.
const ENDPOINT: &str = "/messages/?session_id=0f1fae4085214947b1869cf9710eb94c";

/// A message POST as the Python SDK's client sends it (no event stream accepted).
fn message_post(body: &str) -> Request {
    Request::post(ENDPOINT)
        .header("content-type", "application/json")
        .header("accept", "*/*")
        .header("content-length", body.len().to_string())
        .body(body.to_string())
        .upstream_response(UpstreamResponse::new(202).body("Accepted"))
}

fn stream_of(chunks: Vec<Vec<u8>>) -> UpstreamResponse {
    UpstreamResponse::new(200)
        .header("content-type", "text/event-stream")
        .chunks(chunks)
}

/// The GET stream on worker 1 with `events` from the server, in chunks of `size`.
fn get_stream(envoy: &Envoy, events: &str, size: usize) -> Exchange {
    let chunks = events.as_bytes().chunks(size).map(<[u8]>::to_vec).collect();
    let ex = envoy.worker(1).send(
        Request::get("/sse")
            .header("accept", "text/event-stream")
            .upstream_response(stream_of(chunks)),
    );
    assert_vm_alive(envoy, &ex);
    ex
}

fn two_workers() -> Envoy {
    toolgate(POLICY)
        .workers(2)
        .start()
        .unwrap_or_else(|e| panic!("toolgate did not start: {e}"))
}

#[test]
fn a_denied_call_reaches_its_client_on_the_get_stream() {
    let envoy = two_workers();
    let sent = call(7, "cache_delete", r#"{"key":"k"}"#);
    let ex = envoy.worker(0).send(message_post(&sent));
    assert_vm_alive(&envoy, &ex);
    assert_eq!(decision(&ex), "denied:not_allowed:cache_delete");
    // What went upstream is a ping, whose length the head no longer claims.
    assert_eq!(ex.outcome, Outcome::Forwarded);
    let ping: Value = serde_json::from_slice(&ex.upstream.body).unwrap();
    assert_eq!(ping["method"], "ping");
    assert!(!ex.upstream.body_text().contains("tools/call"));
    assert!(!ex.upstream.body_text().contains("cache_delete"));
    assert_eq!(ex.upstream.header("content-length"), None);
    // The POST's own answer (the server's 202) becomes the denial too, for any client
    // that reads it.
    assert_eq!(ex.status(), Some(200));
    let on_post = reply_json(&ex);
    assert_eq!(on_post["id"], 7);
    assert_eq!(
        on_post["result"]["content"][0]["text"],
        "Toolgate denied tool \"cache_delete\": it is not allowed by policy."
    );
    // The server answers the ping on the GET stream with its id, as the Python SDK writes it.
    let answer = json!({"jsonrpc": "2.0", "id": ping["id"], "result": {}}).to_string();
    let events = format!(
        "event: endpoint\r\ndata: /messages/?session_id=0f1fae4085214947b1869cf9710eb94c\r\n\r\n: ping\r\n\r\nevent: message\r\ndata: {answer}\r\n\r\n"
    );
    for size in [events.len(), 1, 13] {
        let ex = get_stream(&envoy, &events, size);
        let body = ex.body_text();
        assert!(
            body.starts_with("event: endpoint\r\ndata: /messages/?session_id=0f1fae4085214947b1869cf9710eb94c\r\n\r\n: ping\r\n\r\nevent: message\n"),
            "{body}"
        );
        let data = body
            .lines()
            .find_map(|l| l.strip_prefix("data: {"))
            .unwrap();
        let denial: Value = serde_json::from_str(&format!("{{{data}")).unwrap();
        assert_eq!(denial["id"], 7, "chunks of {size}");
        assert_eq!(denial["result"]["isError"], true);
        assert_eq!(
            denial["result"]["content"][0]["text"],
            "Toolgate denied tool \"cache_delete\": it is not allowed by policy."
        );
        assert!(!body.contains("toolgate-denial:"), "{body}");
    }
}

#[test]
fn allowed_calls_and_other_answers_pass_untouched() {
    let envoy = two_workers();
    let sent = call(8, "cache_get", r#"{"key":"k"}"#);
    let ex = envoy.worker(0).send(message_post(&sent));
    assert_eq!(decision(&ex), "allowed");
    assert_eq!(ex.upstream.body_text(), sent);
    let events = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"a \\\"quoted\\\" value\"}]}}\n\n";
    assert_eq!(get_stream(&envoy, events, events.len()).body_text(), events);
}

#[test]
fn list_answers_on_the_get_stream_lose_hidden_tools() {
    let envoy = two_workers();
    let sent = method(3, "tools/list");
    let ex = envoy.worker(0).send(message_post(&sent));
    assert_eq!(ex.upstream.body_text(), sent);
    let list =
        r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"cache_get"},{"name":"secret"}]}}"#;
    let events = format!("event: message\ndata: {list}\n\n");
    for size in [events.len(), 1] {
        let body = get_stream(&envoy, &events, size).body_text();
        assert_eq!(
            body,
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"cache_get\"}]}}\n\n"
        );
    }
    // One that cannot be read strictly is withheld, with the rest of the stream.
    let odd = list.replace(
        "{\"name\":\"secret\"}",
        "{\"name\":\"secret\",\"NAME\":\"x\"}",
    );
    let body = get_stream(&envoy, &format!("data: {odd}\n\n"), 64).body_text();
    assert!(
        !body.contains("secret") && body.contains("list_unfilterable"),
        "{body}"
    );
}

#[test]
fn a_watched_get_asks_for_no_compression_and_a_compressed_stream_is_withheld() {
    let envoy = two_workers();
    let list = r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"secret"}]}}"#;
    let ex = envoy.worker(1).send(
        Request::get("/sse")
            .header("accept", "text/event-stream")
            .header("accept-encoding", "gzip")
            .upstream_response(
                stream_of(vec![format!("data: {list}\n\n").into_bytes()])
                    .header("content-encoding", "gzip"),
            ),
    );
    assert_vm_alive(&envoy, &ex);
    assert_eq!(ex.upstream.header("accept-encoding"), None);
    assert_eq!(ex.status(), Some(502));
    assert!(!ex.body_text().contains("secret"), "{}", ex.body_text());
    // Other answers to a GET pass as they are, compressed or not.
    let page = UpstreamResponse::new(200)
        .header("content-type", "text/html")
        .header("content-encoding", "gzip")
        .body("<p>secret</p>");
    let ex = envoy
        .worker(1)
        .send(Request::get("/").upstream_response(page));
    assert_eq!(
        (ex.status(), ex.body_text().as_str()),
        (Some(200), "<p>secret</p>")
    );
}

#[test]
fn streamable_http_and_batches_are_answered_locally() {
    let envoy = two_workers();
    let denied = call(9, "cache_delete", "{}");
    // A client that accepts an event stream reads its answer on the POST.
    let ex = envoy
        .worker(0)
        .send(message_post(&denied).set_header("accept", "application/json, text/event-stream"));
    assert_denied(&ex, Arrangement::ContinueAtHeaders);
    // A batch is refused whole on the POST, as before.
    let batch = format!("[{denied},{}]", call(10, "cache_get", "{}"));
    let ex = envoy.worker(0).send(message_post(&batch));
    assert_nothing_forwarded(&ex, Arrangement::ContinueAtHeaders);
}
