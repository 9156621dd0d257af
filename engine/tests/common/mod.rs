#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A harness around the engine: an in-memory CAS store with the host's semantics, a
//! manual clock, and request helpers.
#![allow(dead_code)]

use toolgate_engine::config::load;
use toolgate_engine::json::Validator;
use toolgate_engine::outcome::{CallOutcome, Outcome, Reason, Verdict};
use toolgate_engine::ratelimit::{ManualClock, MemoryStore};
use toolgate_engine::{Attributes, Engine, Head};

pub const SEED: &str = r#"{"version":"1","default":"deny","tools":{"cache_cas":{"limits":[{"counter":"cache_cas_rate","window":"minute","max":30,"scope":"grant"}]}}}"#;

/// 2026-11-25T10:31:00Z
pub const T0: u64 = 1_795_602_660;

pub struct Attrs {
    pub address: Option<String>,
    pub jwt_sub: Option<String>,
}

impl Attributes for Attrs {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            ["source", "address"] => self.address.clone().map(String::into_bytes),
            [.., "sub"] => self.jwt_sub.clone().map(String::into_bytes),
            _ => None,
        }
    }
}

pub struct Harness {
    pub engine: Engine,
    pub store: MemoryStore,
    pub clock: ManualClock,
    validator: Validator,
}

pub fn call_body(id: u64, tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    )
}

impl Harness {
    pub fn new(config: &str) -> Harness {
        Self::with_store(config, MemoryStore::new())
    }

    pub fn with_store(config: &str, store: MemoryStore) -> Harness {
        let cfg = load(config.as_bytes()).unwrap_or_else(|p| panic!("{p:?}"));
        let engine = Engine::new(cfg, "test", &store, [7; 16]).unwrap();
        Harness {
            engine,
            store,
            clock: ManualClock::at_secs(T0),
            validator: Validator::new(),
        }
    }

    /// Replaces the configuration, keeping the store (a hot reload).
    pub fn reload(&mut self, config: &str) {
        let cfg = load(config.as_bytes()).unwrap_or_else(|p| panic!("{p:?}"));
        self.engine = Engine::new(cfg, "test", &self.store, [9; 16]).unwrap();
    }

    pub fn request(&mut self, headers: &[(&str, &str)], body: &str) -> Outcome {
        let list: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        let attrs = Attrs {
            address: Some("10.0.0.9:41000".into()),
            jwt_sub: None,
        };
        match self.engine.inspect_head(b"POST", &list, true, &attrs) {
            Head::Pass | Head::Watch => panic!("a POST must be inspected"),
            Head::Done(o) => o,
            Head::Inspect(info) => self.engine.decide(
                &info,
                body.as_bytes(),
                &self.store,
                &self.clock,
                &mut self.validator,
            ),
        }
    }

    pub fn post(&mut self, grant: &str, body: &str) -> Outcome {
        self.request(
            &[
                ("content-type", "application/json"),
                ("authorization", grant),
            ],
            body,
        )
    }

    pub fn call(&mut self, grant: &str, tool: &str, args: &str) -> Outcome {
        self.post(grant, &call_body(1, tool, args))
    }
}

pub fn forwarded(o: &Outcome) -> bool {
    matches!(o.verdict, Verdict::Forward(_))
}

pub fn reply_body(o: &Outcome) -> String {
    match &o.verdict {
        Verdict::Respond(r) => r.body.clone(),
        other => panic!("not answered: {other:?} {:?}", o.report),
    }
}

pub fn status(o: &Outcome) -> u16 {
    match &o.verdict {
        Verdict::Respond(r) => r.status,
        _ => 0,
    }
}

pub fn header(o: &Outcome, name: &str) -> Option<String> {
    match &o.verdict {
        Verdict::Respond(r) => r
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone()),
        _ => None,
    }
}

pub fn reason(o: &Outcome) -> Option<Reason> {
    o.report.calls.iter().find_map(|c| match c.outcome {
        CallOutcome::Denied { reason, .. } if reason != Reason::BatchRefused => Some(reason),
        _ => None,
    })
}
