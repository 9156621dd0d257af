//! Envoy counters. Every name is built from the policy (tool and counter names) and fixed
//! enumerations, never from request data, so the number of stats is bounded by the policy.
//! Ids are cached per VM in a flat table indexed by numbers, so counting a request formats
//! no string once its metrics exist.

use crate::abi;
use std::cell::RefCell;
use toolgate_engine::outcome::{CallOutcome, Reason, Rejection, Report, ToolLabel};
use toolgate_engine::policy::{Kind, Policy};

/// The label of tools not named in the policy.
const OTHER: &str = "_other";
const DECISIONS: [&str; 3] = ["allowed", "denied", "shadow_denied"];

/// One counter, as a position in the id table.
#[derive(Clone, Copy)]
enum Metric {
    ToolDecision { tool: usize, decision: usize },
    Denial { tool: usize, reason: Reason },
    RateLimited { counter: usize },
    Rejected(Rejection),
    KindDecision { kind: Kind, decision: usize },
    StoreErrors,
    ListUnfilterable,
}

/// Metric ids of one VM, defined on first use.
pub struct Metrics {
    /// Tool labels: the policy's tool entries, then `_other`.
    tools: Vec<String>,
    counters: Vec<String>,
    ids: RefCell<Vec<Option<u32>>>,
}

impl Metrics {
    /// The metrics a policy can produce.
    pub fn new(policy: &Policy) -> Metrics {
        let mut tools = Vec::new();
        for e in &policy.tools.entries {
            tools.push(e.name.clone());
        }
        tools.push(OTHER.into());
        let mut counters = Vec::new();
        for c in &policy.counters {
            counters.push(c.name.clone());
        }
        let m = Metrics {
            tools,
            counters,
            ids: RefCell::new(Vec::new()),
        };
        let size = m.slot(Metric::ListUnfilterable) + 1;
        m.ids.replace(vec![None; size]);
        m
    }

    fn slot(&self, metric: Metric) -> usize {
        let t = self.tools.len();
        let d = DECISIONS.len();
        let r = Reason::ALL.len();
        let c = self.counters.len();
        let k = Rejection::ALL.len();
        match metric {
            Metric::ToolDecision { tool, decision } => tool * d + decision,
            Metric::Denial { tool, reason } => t * d + tool * r + reason.index(),
            Metric::RateLimited { counter } => t * (d + r) + counter,
            Metric::Rejected(kind) => t * (d + r) + c + kind.index(),
            Metric::KindDecision { kind, decision } => {
                let row = usize::from(kind == Kind::Prompt);
                t * (d + r) + c + k + row * d + decision
            }
            Metric::StoreErrors => t * (d + r) + c + k + 2 * d,
            Metric::ListUnfilterable => t * (d + r) + c + k + 2 * d + 1,
        }
    }

    fn name(&self, metric: Metric) -> String {
        let tool = |i: usize| self.tools.get(i).map_or(OTHER, String::as_str);
        let decision = |i: usize| DECISIONS.get(i).copied().unwrap_or("allowed");
        // One concatenation of four parts (without the format machinery).
        let parts: [&str; 4] = match metric {
            Metric::ToolDecision {
                tool: t,
                decision: d,
            } => [
                "toolgate.tool_calls.tool.",
                tool(t),
                ".decision.",
                decision(d),
            ],
            Metric::Denial { tool: t, reason } => {
                ["toolgate.denials.tool.", tool(t), ".reason.", reason.code()]
            }
            Metric::RateLimited { counter } => [
                "toolgate.rate_limited.counter.",
                self.counters
                    .get(counter)
                    .map_or("_unknown", String::as_str),
                "",
                "",
            ],
            Metric::Rejected(kind) => ["toolgate.rejected.reason.", kind.code(), "", ""],
            Metric::KindDecision { kind, decision: d } => {
                let family = if kind == Kind::Prompt {
                    "prompt_gets"
                } else {
                    "resource_reads"
                };
                ["toolgate.", family, ".decision.", decision(d)]
            }
            Metric::StoreErrors => ["toolgate.store_errors", "", "", ""],
            Metric::ListUnfilterable => ["toolgate.list_unfilterable", "", "", ""],
        };
        parts.concat()
    }

    fn add(&self, metric: Metric) {
        let slot = self.slot(metric);
        let Ok(mut ids) = self.ids.try_borrow_mut() else {
            return;
        };
        let Some(entry) = ids.get_mut(slot) else {
            return;
        };
        let id = match *entry {
            Some(id) => id,
            None => match abi::define_counter(&self.name(metric)) {
                Ok(id) => *entry.insert(id),
                Err(_) => return,
            },
        };
        let _ = abi::increment(id, 1);
    }

    /// Counts a list response Toolgate withheld because it could not filter it.
    pub fn list_unfilterable(&self) {
        self.add(Metric::ListUnfilterable);
    }

    /// Counts what a report says happened.
    pub fn record(&self, report: &Report) {
        if let Some((kind, _)) = &report.rejection {
            self.add(Metric::Rejected(*kind));
        }
        if report.store_error.is_some() {
            self.add(Metric::StoreErrors);
        }
        let other = self.tools.len() - 1;
        for call in &report.calls {
            let decision = match (&call.outcome, report.shadow) {
                (CallOutcome::Allowed, _) => 0,
                (CallOutcome::Denied { .. }, false) => 1,
                (CallOutcome::Denied { .. }, true) => 2,
            };
            if call.kind != Kind::Tool {
                self.add(Metric::KindDecision {
                    kind: call.kind,
                    decision,
                });
                continue;
            }
            let tool = match call.tool {
                ToolLabel::Policy(id) if id.0 < other => id.0,
                _ => other,
            };
            self.add(Metric::ToolDecision { tool, decision });
            if let CallOutcome::Denied {
                reason, counter, ..
            } = &call.outcome
            {
                self.add(Metric::Denial {
                    tool,
                    reason: *reason,
                });
                // Only counters the policy defines are named (the engine reports no other).
                if let Some(i) = counter
                    .as_ref()
                    .and_then(|c| self.counters.iter().position(|n| n == c))
                {
                    self.add(Metric::RateLimited { counter: i });
                }
            }
        }
    }
}
