//! The Toolgate playground: the policy engine compiled to WebAssembly for a static page.
//!
//! Nothing here decides anything: validation is `toolgate_engine::config::load`, decisions
//! are `toolgate_engine::offline::Runner` (the engine with an in-memory counter store, a
//! manual clock and an in-memory rate limit service, as `toolgate eval` runs it) and the
//! replies are rendered by `toolgate_engine::offline::render`, the code that prints
//! `toolgate eval`'s output. So the page shows byte for byte what the command prints.
//!
//! Results cross to JavaScript as JSON text (`JSON.parse` on the page): no serde needed.

use toolgate_engine::config::{self, Config};
use toolgate_engine::offline::render::{self, problems_json};
use toolgate_engine::offline::{request, Defaults, Request, Runner};
use toolgate_engine::reply::quoted;
use wasm_bindgen::prelude::wasm_bindgen;

/// The downstream address the playground's requests come from (the command's default).
const ADDRESS: &str = "127.0.0.1";

/// Validates a policy (a bare PolicyLayer document or a full Toolgate configuration):
/// `{"valid": bool, "problems": [{"path", "found", "expected", "message"}], "summary"}`.
#[wasm_bindgen]
pub fn validate(policy_text: &str) -> String {
    match config::load(policy_text.as_bytes()) {
        Ok(c) => format!(
            "{{\"valid\":true,\"problems\":[],\"summary\":{}}}",
            quoted(&render::summary(&c))
        ),
        Err(problems) => format!(
            "{{\"valid\":false,\"problems\":{},\"summary\":{}}}",
            problems_json(&problems),
            quoted(&format!(
                "{} problem{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ))
        ),
    }
}

/// Seconds from JavaScript (a double) as whole Unix seconds.
fn whole_secs(at: f64) -> u64 {
    if at.is_finite() && at > 0.0 {
        at as u64
    } else {
        0
    }
}

/// Reads `Name: value` lines (blank lines skipped) as the command's `--header` does.
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = line.split_once(':').ok_or_else(|| {
            format!(
                "headers line {}: {:?}: expected NAME: VALUE",
                i + 1,
                line.trim()
            )
        })?;
        out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(out)
}

/// One request as typed on the page.
pub struct Input<'a> {
    /// A JSON-RPC body, or an envelope `{"headers", "method", "body"}`.
    pub request: &'a str,
    /// The Authorization header (the default grant source); empty for none.
    pub grant: &'a str,
    /// The Mcp-Session-Id header; empty for none.
    pub session: &'a str,
    /// More headers, `Name: value` a line.
    pub headers: &'a str,
    /// The clock when the request arrives (Unix seconds).
    pub at: u64,
}

impl Input<'_> {
    fn read(&self) -> Result<Request, String> {
        let extra = parse_headers(self.headers)?;
        let non_empty = |s: &'_ str| !s.is_empty();
        let grant = Some(self.grant).filter(|s| non_empty(s));
        let session = Some(self.session).filter(|s| non_empty(s));
        let defaults = Defaults {
            grant,
            session,
            extra: &extra,
        };
        request::read(self.request.as_bytes(), &defaults).map_err(|e| format!("request: {e}"))
    }
}

/// A policy with its own counters and clock: the state behind the page.
pub struct Playground {
    config: Config,
    runner: Runner,
    /// Requests sent so far and when: replayed on a scratch runner for previews.
    sent: Vec<(Request, u64)>,
}

fn error_json(message: &str) -> String {
    format!("{{\"error\":{}}}", quoted(message))
}

fn decided_json(index: usize, at: u64, o: Option<&toolgate_engine::outcome::Outcome>) -> String {
    format!(
        "{{\"index\":{index},\"at\":{at},\"result\":{},\"text\":{}}}",
        render::line(index, o),
        quoted(&render::text(index, o))
    )
}

impl Playground {
    /// A playground for a policy; `Err` holds the problems as `validate` renders them.
    pub fn new(policy_text: &str) -> Result<Playground, String> {
        let config = config::load(policy_text.as_bytes()).map_err(|_| validate(policy_text))?;
        let runner = Runner::new(config.clone(), 0, ADDRESS).map_err(|e| error_json(&e))?;
        Ok(Playground {
            config,
            runner,
            sent: Vec::new(),
        })
    }

    /// How many requests have been sent (and counted).
    pub fn sent(&self) -> usize {
        self.sent.len()
    }

    /// Forgets every count: a fresh store, as if no request had been sent.
    pub fn reset(&mut self) -> Result<(), String> {
        self.runner = Runner::new(self.config.clone(), 0, ADDRESS)?;
        self.sent.clear();
        Ok(())
    }

    /// Sends a request: decides it, counting it against the limits, and answers
    /// `{"index", "at", "result": <toolgate eval --format json line>, "text": <toolgate
    /// eval's text>}`, or `{"error"}` when the request cannot be read.
    pub fn evaluate(&mut self, input: &Input<'_>) -> String {
        let req = match input.read() {
            Ok(r) => r,
            Err(e) => return error_json(&e),
        };
        self.runner
            .clock
            .set_nanos(input.at.saturating_mul(1_000_000_000));
        let o = self.runner.decide(&req);
        self.sent.push((req, input.at));
        decided_json(self.sent.len(), input.at, o.as_ref())
    }

    /// What `evaluate` would answer now, counting nothing: the requests sent so far are
    /// replayed on fresh counters, then this one is decided.
    pub fn preview(&self, input: &Input<'_>) -> String {
        let req = match input.read() {
            Ok(r) => r,
            Err(e) => return error_json(&e),
        };
        let mut scratch = match Runner::new(self.config.clone(), 0, ADDRESS) {
            Ok(r) => r,
            Err(e) => return error_json(&e),
        };
        for (r, at) in &self.sent {
            scratch.clock.set_nanos(at.saturating_mul(1_000_000_000));
            let _ = scratch.decide(r);
        }
        scratch
            .clock
            .set_nanos(input.at.saturating_mul(1_000_000_000));
        let o = scratch.decide(&req);
        decided_json(self.sent.len() + 1, input.at, o.as_ref())
    }
}

/// The playground as JavaScript sees it: `new Session(policyText)` throws the problems
/// (as `validate` renders them) when the policy is invalid.
#[wasm_bindgen]
pub struct Session {
    inner: Playground,
}

#[wasm_bindgen]
impl Session {
    /// A session on a policy, with empty counters.
    #[wasm_bindgen(constructor)]
    pub fn new(policy_text: &str) -> Result<Session, String> {
        Playground::new(policy_text).map(|inner| Session { inner })
    }

    /// Sends a request at `at_seconds` (Unix seconds): decided and counted. `grant` is sent
    /// as Authorization, `session` as Mcp-Session-Id (empty: not sent), `headers` holds
    /// more `Name: value` lines. Answers JSON text (see `Playground::evaluate`).
    pub fn evaluate(
        &mut self,
        request_text: &str,
        grant: &str,
        session: &str,
        headers: &str,
        at_seconds: f64,
    ) -> String {
        self.inner.evaluate(&Input {
            request: request_text,
            grant,
            session,
            headers,
            at: whole_secs(at_seconds),
        })
    }

    /// What `evaluate` would answer, counting nothing.
    pub fn preview(
        &self,
        request_text: &str,
        grant: &str,
        session: &str,
        headers: &str,
        at_seconds: f64,
    ) -> String {
        self.inner.preview(&Input {
            request: request_text,
            grant,
            session,
            headers,
            at: whole_secs(at_seconds),
        })
    }

    /// Forgets every count.
    pub fn reset(&mut self) -> Result<(), String> {
        self.inner.reset()
    }

    /// How many requests have been sent.
    pub fn sent(&self) -> usize {
        self.inner.sent()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../envoy/policies/seed.json");
    const CALL: &str =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas"}}"#;
    const START: u64 = 1_767_225_600;

    fn input(request: &str, at: u64) -> Input<'_> {
        Input {
            request,
            grant: "Bearer agent-1",
            session: "",
            headers: "",
            at,
        }
    }

    #[test]
    fn validates_with_paths() {
        assert!(validate(SEED).contains("\"valid\":true"));
        let bad = r#"{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"c","window":"minutes","max":30}]}}}"#;
        let v = validate(bad);
        assert!(v.contains("\"valid\":false"), "{v}");
        assert!(v.contains("tools.cache_cas.limits[0].window"), "{v}");
        assert!(Playground::new(bad).is_err());
    }

    #[test]
    fn rate_limit_then_next_minute() {
        let mut p = Playground::new(SEED).unwrap();
        for _ in 0..30 {
            let r = p.evaluate(&input(CALL, START));
            assert!(r.contains("\"decision\":\"allowed\""), "{r}");
        }
        let preview = p.preview(&input(CALL, START));
        assert!(preview.contains("\"decision\":\"denied\""), "{preview}");
        assert_eq!(p.sent(), 30, "a preview counts nothing");
        let r = p.evaluate(&input(CALL, START));
        assert!(r.contains("\"reason\":\"rate_limited\""), "{r}");
        assert!(r.contains("\"text\":\"[31] denied"), "{r}");
        let r = p.evaluate(&input(CALL, START + 60));
        assert!(r.contains("\"decision\":\"allowed\""), "{r}");
        p.reset().unwrap();
        assert_eq!(p.sent(), 0);
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut p = Playground::new(SEED).unwrap();
        let mut i = input(CALL, START);
        i.headers = "no colon here";
        assert!(p.evaluate(&i).starts_with("{\"error\":"));
        assert_eq!(p.sent(), 0);
    }
}
