//! The engine outside a host: an in-memory counter store, a manual clock and an in-memory
//! rate limit service, with the requests and the reply rendering that the `toolgate`
//! command and the browser playground share, so both answer exactly as the filter does.

pub mod render;
pub mod request;
pub mod service;

use crate::config::Config;
use crate::json::Validator;
use crate::outcome::{Outcome, Verdict};
use crate::ratelimit::{Clock, ManualClock, MemoryStore};
use crate::{Attributes, Engine, Head, ServiceAnswer};
pub use request::{Defaults, Request};
use service::Service;

struct Address(String);

impl Attributes for Address {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            ["source", "address"] => Some(format!("{}:50000", self.0).into_bytes()),
            _ => None,
        }
    }
}

/// One engine and its counters.
pub struct Runner {
    engine: Engine,
    store: MemoryStore,
    pub clock: ManualClock,
    validator: Validator,
    address: Address,
    service: Service,
}

impl Runner {
    /// A runner for `config` at `now` (Unix seconds).
    pub fn new(config: Config, now: u64, address: &str) -> Result<Runner, String> {
        let store = MemoryStore::new();
        let engine =
            Engine::new(config, "toolgate", &store, [0x5a; 16]).map_err(|e| e.0.to_string())?;
        Ok(Runner {
            engine,
            store,
            clock: ManualClock::at_secs(now),
            validator: Validator::new(),
            address: Address(address.to_string()),
            service: Service::default(),
        })
    }

    /// Decides one request exactly as the filter does; `None` when it is not inspected.
    pub fn decide(&mut self, r: &Request) -> Option<Outcome> {
        let headers: Vec<(&[u8], &[u8])> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        let has_body = !r.body.is_empty()
            || !matches!(r.method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS");
        match self
            .engine
            .inspect_head(r.method.as_bytes(), &headers, has_body, &self.address)
        {
            Head::Pass | Head::Watch => None,
            Head::Done(o) => Some(o),
            Head::Inspect(info) => {
                let o = self.engine.decide(
                    &info,
                    &r.body,
                    &self.store,
                    &self.clock,
                    &mut self.validator,
                );
                Some(match o.verdict {
                    // Fleet-wide limits: the in-memory service answers.
                    Verdict::Consult(c) => {
                        let now = self.clock.now_nanos() / 1_000_000_000;
                        let answer = self.service.answer(&c.descriptors(), now);
                        self.engine
                            .resume(*c, ServiceAnswer::Response(&answer), &self.store)
                    }
                    verdict => Outcome {
                        verdict,
                        report: o.report,
                    },
                })
            }
        }
    }
}
