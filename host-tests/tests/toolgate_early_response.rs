//! An upstream that answers before the request has ended. In the plain arrangement
//! (Continue at request headers) the upstream has the request head while the body is still
//! buffered, and Envoy passes its response headers through every filter at once (gRPC-style
//! bidirectional streaming depends on it). The request must stay held and judged, and the
//! response read as one that may carry a list.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use host_tests::{Callback, UpstreamResponse};
use support::*;

const LIST_REQUEST: &str = r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#;

const LIST: &str = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"cache_get"},{"name":"cache_delete","description":"x"}]}}"#;

/// Response headers before the body has ended leave the request buffered and judged: a
/// denied call never reaches the upstream (until 2026-12-07 they switched the stream to
/// passing, and Envoy released the body unjudged).
#[test]
fn an_early_response_must_not_release_a_denied_body() {
    let envoy = start_in(Arrangement::ContinueAtHeaders, SEED);
    let body = call(1, "drop_table", r#"{"table":"users"}"#);
    let ex = envoy.worker(0).send(
        mcp_as("k", body.clone())
            .body_in_chunks(body.clone(), 16)
            .early_response(),
    );
    assert_vm_alive(&envoy, &ex);
    let order: Vec<String> = ex.callbacks.iter().map(|c| format!("{c:?}")).collect();
    assert!(
        matches!(ex.callbacks.get(2), Some(Callback::ResponseHeaders { .. })),
        "the response headers came before the body: {order:#?}"
    );
    assert!(
        !ex.upstream.body_text().contains("drop_table"),
        "a call the seed policy denies reached the upstream: {:?}\nupstream body: {}\ncallbacks: {order:#?}",
        ex.outcome,
        ex.upstream.body_text()
    );
}

/// The same sequence with a list request: the answer is filtered by its shape.
#[test]
fn an_early_response_must_still_have_its_list_filtered() {
    let envoy = start_in(Arrangement::ContinueAtHeaders, HIDE);
    let ex = envoy.worker(0).send(
        mcp_as("k", LIST_REQUEST)
            .body_in_chunks(LIST_REQUEST, 8)
            .upstream_response(UpstreamResponse::json(LIST))
            .early_response(),
    );
    assert_vm_alive(&envoy, &ex);
    assert!(
        !ex.body_text().contains("cache_delete"),
        "a hidden tool reached the agent: {:?} {}",
        ex.outcome,
        ex.body_text()
    );
}

/// Control: without the early response the same denied body is held and refused.
#[test]
fn control_without_an_early_response_the_body_is_refused() {
    let envoy = start_in(Arrangement::ContinueAtHeaders, SEED);
    let body = call(1, "drop_table", r#"{"table":"users"}"#);
    let ex = envoy
        .worker(0)
        .send(mcp_as("k", body.clone()).body_in_chunks(body, 16));
    assert_denied(&ex, Arrangement::ContinueAtHeaders);
}
