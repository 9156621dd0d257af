//! The module and the `toolgate` command agree byte for byte. The shared cases
//! (`host-tests/equivalence/policy.json` and `requests.jsonl`, one request envelope per
//! line as `toolgate eval` reads them) go through the built `.wasm` in this host and
//! through `toolgate eval POLICY - --format json` at the same clock; for every request
//! the status, headers and body of the local reply (or, for a forwarded request, the
//! RateLimit headers added to its response) and the decision must be identical.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use host_tests::{modules, Exchange, Outcome, Request, UpstreamResponse};
use serde_json::Value;
use support::*;

/// 2026-11-24T10:31:17Z: not on a minute, so every Retry-After is a computed one.
const AT: u64 = 1_795_516_277;

/// The address the command gives every request (`--address`, port 50000).
const ADDRESS: &str = "127.0.0.1";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("equivalence")
}

/// The `toolgate` command: `TOOLGATE_CLI` if set, else built like the modules are (its
/// own target directory, so it never waits on the lock of the build running the tests).
fn toolgate_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("TOOLGATE_CLI") {
        return PathBuf::from(path);
    }
    let target_dir = modules::wasm_target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(modules::workspace_root())
        .args([
            "build",
            "-p",
            "toolgate-cli",
            "--bin",
            "toolgate",
            "--target-dir",
        ])
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build -p toolgate-cli failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bin = target_dir.join("debug").join("toolgate");
    assert!(bin.is_file(), "{} is missing", bin.display());
    bin
}

/// What the command printed for each request.
fn command_outputs(policy: &Path, requests: &[u8]) -> Vec<Value> {
    let mut child = Command::new(toolgate_cli())
        .arg("eval")
        .arg(policy)
        .args([
            "-",
            "--format",
            "json",
            "--at",
            &AT.to_string(),
            "--address",
            ADDRESS,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command runs");
    child.stdin.take().unwrap().write_all(requests).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "toolgate eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// An envelope as the command reads it, as a request through the host: the same
/// headers (Content-Type application/json unless the envelope says otherwise; null
/// removes; a list repeats), method, body and downstream address.
fn request(envelope: &Value) -> Request {
    let method = envelope["method"].as_str().unwrap_or("POST");
    let mut headers: Vec<(String, String)> =
        vec![("content-type".into(), "application/json".into())];
    if let Some(h) = envelope.get("headers").and_then(Value::as_object) {
        for (name, value) in h {
            let name = name.to_ascii_lowercase();
            headers.retain(|(n, _)| *n != name);
            match value {
                Value::Null => {}
                Value::String(v) => headers.push((name, v.clone())),
                Value::Array(vs) => {
                    for v in vs {
                        headers.push((name.clone(), v.as_str().unwrap().to_string()));
                    }
                }
                other => panic!("header {name}: {other}"),
            }
        }
    }
    let body = envelope["body"]
        .as_str()
        .expect("bodies are raw text")
        .as_bytes();
    let mut r = Request::new(method, "/mcp")
        .source_address(&format!("{ADDRESS}:50000"))
        .upstream_response(UpstreamResponse::json(EXECUTED));
    for (k, v) in &headers {
        r = r.header(k, v);
    }
    let passive = matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS");
    if !body.is_empty() || !passive {
        r = r.body(body.to_vec());
    }
    r
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Where the module and the command differ on one request, if anywhere.
fn compare(ex: &Exchange, command: &Value) -> Result<(), String> {
    let state = ex.filter_state_text(DECISION);
    let summary = command["summary"].as_str().unwrap();
    match (state.as_deref(), summary) {
        (Some(s), c) if s == c => {}
        (None, "passed") => {}
        (s, c) => return Err(format!("decision: module {s:?}, command {c:?}")),
    }
    if let Some(reply) = command.get("reply") {
        let Outcome::LocalReply(local) = &ex.outcome else {
            return Err(format!("the command replies, the module: {:?}", ex.outcome));
        };
        let status = reply["status"].as_u64().unwrap();
        if u64::from(local.status) != status {
            return Err(format!("status: module {}, command {status}", local.status));
        }
        let headers = pairs(&reply["headers"]);
        if local.headers.pairs() != headers {
            return Err(format!(
                "headers: module {:?}, command {headers:?}",
                local.headers.pairs()
            ));
        }
        let body = reply["body"].as_str().unwrap();
        if local.body != body.as_bytes() {
            return Err(format!(
                "body:\n  module  {}\n  command {body}",
                local.body_text()
            ));
        }
        // And the client got exactly that.
        let client = ex.response.as_ref().unwrap();
        if client.body != local.body || u64::from(client.status) != status {
            return Err("the client got something else than the reply".into());
        }
    } else {
        if ex.outcome != Outcome::Forwarded {
            return Err(format!(
                "the command forwards, the module: {:?}",
                ex.outcome
            ));
        }
        let added: Vec<(String, String)> = ex
            .response
            .as_ref()
            .unwrap()
            .headers
            .pairs()
            .into_iter()
            .filter(|(k, _)| k.starts_with("ratelimit"))
            .collect();
        let expected = pairs(&command["forwarded"]["response_headers"]);
        if added != expected {
            return Err(format!(
                "response headers: module {added:?}, command {expected:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn the_module_and_the_command_answer_every_case_byte_for_byte() {
    let dir = cases_dir();
    let policy = dir.join("policy.json");
    let requests = std::fs::read(dir.join("requests.jsonl")).unwrap();
    let envelopes: Vec<Value> = String::from_utf8(requests.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outputs = command_outputs(&policy, &requests);
    assert_eq!(outputs.len(), envelopes.len(), "one answer per request");

    let config = std::fs::read_to_string(&policy).unwrap();
    let envoy = toolgate(&config).start_time(at(AT)).start().unwrap();
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeMap::new();
    for (i, (envelope, command)) in envelopes.iter().zip(&outputs).enumerate() {
        let ex = envoy.worker(0).send(request(envelope));
        assert_vm_alive(&envoy, &ex);
        *kinds
            .entry(command["decision"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        if let Some(reason) = command["reason"].as_str() {
            *kinds.entry(reason.to_string()).or_insert(0) += 1;
        }
        if let Err(why) = compare(&ex, command) {
            failures.push(format!("request {} ({}): {why}", i + 1, envelope["body"]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests differ:\n{}",
        failures.len(),
        envelopes.len(),
        failures.join("\n")
    );
    // The cases cover what they claim to: every decision, and denials, rate limits,
    // refusals, batches and resources among them.
    let seen: String = outputs.iter().map(Value::to_string).collect();
    for kind in [
        "\"decision\":\"allowed\"",
        "\"decision\":\"denied\"",
        "\"decision\":\"rejected\"",
        "\"decision\":\"passed\"",
        "rate_limited",
        "retry-after",
        "ratelimit-policy",
        "hidden",
        "parse_error",
        "unsupported_media_type",
        "header_mismatch",
        "batch_refused",
        "denied resource",
        "denied prompt",
    ] {
        assert!(
            seen.contains(kind),
            "no {kind} case; decisions seen: {kinds:?}"
        );
    }
}
