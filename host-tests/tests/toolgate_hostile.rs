//! Bad and hostile requests through the real module, from the shared corpus
//! (`host-tests/corpus/`, see its README): every one is refused with its documented
//! status and JSON-RPC code or reason, nothing of it reaches the upstream, and the VM
//! never traps. The whole corpus runs in both arrangements (continue at headers; pause at
//! headers), each request whole, in its own chunking, and in 1-byte chunks.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use host_tests::{Envoy, Exchange, Request, UpstreamResponse};
use serde_json::Value;
use support::*;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One corpus entry.
struct Case {
    name: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunk_size: Option<usize>,
    trailers: Vec<(String, String)>,
    status: u16,
    code: Option<i64>,
    reason: Option<String>,
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_string(),
                        p[1].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn corpus() -> (String, Vec<Case>) {
    let dir = corpus_dir();
    let manifest = read_json(&dir.join("manifest.json"));
    let config = std::fs::read_to_string(dir.join(manifest["config"].as_str().unwrap())).unwrap();
    let cases = manifest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            method: c["method"].as_str().unwrap().to_string(),
            path: c["path"].as_str().unwrap().to_string(),
            headers: pairs(c.get("headers")),
            body: std::fs::read(dir.join(c["file"].as_str().unwrap())).unwrap(),
            chunk_size: c
                .get("chunk_size")
                .and_then(Value::as_u64)
                .map(|n| n as usize),
            trailers: pairs(c.get("trailers")),
            status: c["expect"]["status"].as_u64().unwrap() as u16,
            code: c["expect"].get("code").and_then(Value::as_i64),
            reason: c["expect"]
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .collect();
    (config, cases)
}

#[derive(Clone, Copy, Debug)]
enum Delivery {
    /// In one chunk, or in the chunks the entry asks for.
    AsListed,
    /// One byte per body callback.
    OneByteChunks,
}

fn request(case: &Case, delivery: Delivery) -> Request {
    let mut r =
        Request::new(&case.method, &case.path).upstream_response(UpstreamResponse::json(EXECUTED));
    for (k, v) in &case.headers {
        r = r.header(k, v);
    }
    r = match (delivery, case.chunk_size) {
        // As Envoy delivers `Content-Length: 0`: the headers end the stream.
        _ if case.body.is_empty() && case.trailers.is_empty() => r,
        (Delivery::OneByteChunks, _) => r.body_in_chunks(&case.body, 1),
        (Delivery::AsListed, Some(n)) => r.body_in_chunks(&case.body, n),
        _ => r.body(case.body.clone()),
    };
    for (k, v) in &case.trailers {
        r = r.trailer(k, v);
    }
    r
}

/// What is wrong with the exchange, if anything.
fn check(
    case: &Case,
    ex: &Exchange,
    arrangement: Arrangement,
    envoy: &Envoy,
) -> Result<(), String> {
    assert_vm_alive(envoy, ex);
    let reply = ex
        .local_reply()
        .ok_or_else(|| format!("not answered locally: {:?}", ex.outcome))?;
    match arrangement {
        Arrangement::PauseAtHeaders if ex.upstream.reached() => {
            return Err("the upstream request was opened".into())
        }
        Arrangement::ContinueAtHeaders
            if ex.upstream.reached()
                && (!ex.upstream.opened_without_body() || ex.upstream.complete) =>
        {
            return Err(format!(
                "{} body bytes reached the upstream",
                ex.upstream.body.len()
            ))
        }
        _ => {}
    }
    if reply.status != case.status {
        return Err(format!("status {}: {}", reply.status, reply.body_text()));
    }
    let json: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("the reply is not JSON ({e}): {}", reply.body_text()))?;
    let replies: Vec<&Value> = match &json {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    if let Some(code) = case.code {
        if !replies.iter().any(|r| r["error"]["code"] == code) {
            return Err(format!("no JSON-RPC error {code} in {json}"));
        }
    }
    let state = decision(ex);
    match &case.reason {
        Some(reason) => {
            let found = replies.iter().any(|r| {
                r.pointer("/result/_meta/toolgate~1decision/reason")
                    .or_else(|| r.pointer("/error/data/reason"))
                    == Some(&Value::String(shown_reason(reason).to_string()))
            });
            if !found {
                return Err(format!("no denial with reason {reason} in {json}"));
            }
            let every_one_refused = replies
                .iter()
                .all(|r| r["result"]["isError"] == true || r.get("error").is_some());
            if !every_one_refused {
                return Err(format!("a batch element was not refused: {json}"));
            }
            // The filter state names the first real denial (not batch_refused).
            let named = reason == "batch_refused" && state.starts_with("denied:");
            if !named && !state.starts_with(&format!("denied:{reason}:")) {
                return Err(format!("filter state {state}"));
            }
        }
        None => {
            // Refusals before judging answer id null, except a header mismatch and invalid
            // params, which answer the (single) request they read.
            let answers_id = matches!(case.code, Some(-32020) | Some(-32602));
            if json["id"] != Value::Null && !answers_id {
                return Err(format!("a refusal before judging answers id null: {json}"));
            }
            if !state.starts_with("rejected:") {
                return Err(format!("filter state {state}"));
            }
        }
    }
    Ok(())
}

fn run_corpus(arrangement: Arrangement) {
    let (config, cases) = corpus();
    let envoy = start_in(arrangement, &config);
    let mut failures = Vec::new();
    let mut sent = 0;
    for case in &cases {
        for delivery in [Delivery::AsListed, Delivery::OneByteChunks] {
            let ex = envoy.worker(0).send(request(case, delivery));
            sent += 1;
            if let Err(why) = check(case, &ex, arrangement, &envoy) {
                failures.push(format!("{} ({delivery:?}): {why}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{arrangement:?}: {} of {sent} exchanges wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(envoy.worker(0).failure(), None);
    assert!(
        envoy.logs().containing("panicked").is_empty(),
        "the module never panics"
    );
}

#[test]
fn the_corpus_is_refused_and_nothing_reaches_the_upstream_when_headers_continue() {
    run_corpus(Arrangement::ContinueAtHeaders);
}

#[test]
fn the_corpus_is_refused_and_nothing_reaches_the_upstream_when_headers_pause() {
    run_corpus(Arrangement::PauseAtHeaders);
}

#[test]
fn body_refusals_in_the_continue_arrangement_open_the_upstream_without_a_body_byte() {
    let (config, cases) = corpus();
    let envoy = start_in(Arrangement::ContinueAtHeaders, &config);
    let body_level = cases
        .iter()
        .find(|c| c.name == "json-bom")
        .expect("the corpus has json-bom");
    let ex = envoy
        .worker(0)
        .send(request(body_level, Delivery::AsListed));
    assert!(ex.upstream.opened_without_body(), "headers went on at once");
    assert!(ex.upstream.reset, "then the upstream request was reset");
    let header_level = cases
        .iter()
        .find(|c| c.name == "content-type-text-plain")
        .unwrap();
    let ex = envoy
        .worker(0)
        .send(request(header_level, Delivery::AsListed));
    assert!(!ex.upstream.reached(), "refused before anything went on");
}

#[test]
fn the_same_requests_allowed_reach_the_upstream_intact() {
    // The corpus's policy is not a blanket denial: a well-formed allowed call passes whole,
    // in any chunking, in both arrangements.
    let (config, _) = corpus();
    for arrangement in Arrangement::BOTH {
        let envoy = start_in(arrangement, &config);
        let body = call(1, "cache_get", r#"{"key":"public"}"#);
        for size in [body.len(), 7, 1] {
            let ex = envoy.worker(0).send(
                Request::post("/mcp")
                    .header("content-type", "application/json")
                    .body_in_chunks(&body, size)
                    .upstream_response(UpstreamResponse::json(EXECUTED)),
            );
            assert_forwarded(&ex, body.as_bytes());
            assert_eq!(ex.upstream.header("content-type"), Some("application/json"));
        }
    }
}

#[test]
fn the_manifest_and_the_request_files_agree() {
    let dir = corpus_dir();
    let manifest = read_json(&dir.join("manifest.json"));
    let cases = manifest["cases"].as_array().unwrap();
    let mut names = BTreeSet::new();
    let mut files = BTreeSet::new();
    for c in cases {
        assert!(names.insert(c["name"].as_str().unwrap()), "duplicate {c}");
        assert!(
            files.insert(c["file"].as_str().unwrap().to_string()),
            "file twice: {c}"
        );
        let expect = &c["expect"];
        assert!(
            expect.get("code").is_some() || expect.get("reason").is_some(),
            "{c}: expects neither a code nor a reason"
        );
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir.join("requests"))
        .unwrap()
        .map(|e| format!("requests/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(on_disk, files, "every request file is listed once");
    assert!(cases.len() >= 60, "{} cases", cases.len());
}

#[test]
fn hostile_headers_the_corpus_cannot_carry_through_envoy() {
    // Envoy joins repeated headers and checks Content-Length itself, so these only make
    // sense at the filter: repeated identity headers and a declared oversize body.
    let (config, _) = corpus();
    for arrangement in Arrangement::BOTH {
        let envoy = start_in(arrangement, &config);
        let denied = call(1, "cache_delete", "{}");
        let w = envoy.worker(0);
        for (k, v1, v2) in [
            ("authorization", "a", "b"),
            ("mcp-session-id", "s1", "s2"),
            ("content-type", "application/json", "application/json"),
            ("mcp-method", "tools/call", "tools/call"),
        ] {
            let ex = w.send(mcp(denied.clone()).header(k, v1).header(k, v2));
            assert_rejected(&ex, arrangement, 400, -32600);
        }
        let ex = w.send(mcp(denied.clone()).header("content-length", "2000000"));
        assert_rejected(&ex, arrangement, 413, -32600);
        assert!(!ex.upstream.reached(), "refused at the headers");
        let ex = w.send(mcp(denied.clone()).header("transfer-encoding", "gzip, chunked"));
        assert_rejected(&ex, arrangement, 415, -32600);
        assert_eq!(w.failure(), None);
    }
}

/// The module scans string contents sixteen bytes at a time: a quote, backslash or control
/// character is found wherever it falls in a block, and the string reads exactly as sent.
#[test]
fn string_scanning_finds_every_special_byte_at_every_offset() {
    let envoy = start(
        r#"{"version":"1","default":"deny","tools":{"cache_cas":{"deny_if":[{"path":"args.key","op":"eq","value":"blocked\"\\"}]}}}"#,
    );
    let worker = envoy.worker(0);
    for offset in 0..40 {
        let pad = "x".repeat(offset);
        let with = |inner: &str| {
            call(
                1,
                "cache_cas",
                &format!(r#"{{"key":"{pad}{inner}{pad}","n":1}}"#),
            )
            .into_bytes()
        };
        // A raw control character: not JSON.
        let ex = worker.send(mcp(with("\u{1}")));
        assert_eq!(
            decision(&ex),
            "rejected:parse_error",
            "control byte at {offset}"
        );
        assert_rejected(&ex, Arrangement::ContinueAtHeaders, 400, -32700);
        // Escaped quotes and backslashes: allowed, and forwarded byte for byte.
        let body = with(r#"\"\\"#);
        let ex = worker.send(mcp(body.clone()));
        assert_forwarded(&ex, &body);
        // A quote ending the string early leaves text that is not JSON.
        let ex = worker.send(mcp(with(r#"" "#)));
        assert_eq!(decision(&ex), "rejected:parse_error", "quote at {offset}");
        assert_rejected(&ex, Arrangement::ContinueAtHeaders, 400, -32700);
    }
    // The condition reads the unescaped value, wherever the escapes fall.
    for pad in 0..20 {
        let body = call(
            1,
            "cache_cas",
            &format!(r#"{{"n":"{}","key":"blocked\"\\"}}"#, "y".repeat(pad)),
        );
        let ex = worker.send(mcp(body));
        assert_eq!(denial_reason(&ex), "deny_if_matched", "pad {pad}");
    }
}
