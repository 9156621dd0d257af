//! Envoy counters. Every name is built from the policy (tool and counter names) and fixed
//! enumerations, never from request data, so the number of stats is bounded by the policy.

use crate::abi;
use std::cell::RefCell;
use std::collections::HashMap;
use toolgate_engine::outcome::{CallOutcome, Report, ToolLabel};
use toolgate_engine::policy::{Kind, Policy};

/// Metric ids of one VM, defined on first use.
#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
}

/// The label of tools not named in the policy.
const OTHER: &str = "_other";

impl Metrics {
    fn add(&self, name: String) {
        let Ok(mut ids) = self.ids.try_borrow_mut() else {
            return;
        };
        let id = match ids.get(&name) {
            Some(id) => *id,
            None => match abi::define_counter(&name) {
                Ok(id) => {
                    ids.insert(name, id);
                    id
                }
                Err(_) => return,
            },
        };
        let _ = abi::increment(id, 1);
    }

    /// Counts a list response Toolgate withheld because it could not filter it.
    pub fn list_unfilterable(&self) {
        self.add("toolgate.list_unfilterable".into());
    }

    /// Counts what a report says happened.
    pub fn record(&self, report: &Report, policy: &Policy) {
        if let Some((kind, _)) = &report.rejection {
            self.add(format!("toolgate.rejected.reason.{}", kind.code()));
        }
        if report.store_error.is_some() {
            self.add("toolgate.store_errors".into());
        }
        for call in &report.calls {
            let decision = match (&call.outcome, report.shadow) {
                (CallOutcome::Allowed, _) => "allowed",
                (CallOutcome::Denied { .. }, false) => "denied",
                (CallOutcome::Denied { .. }, true) => "shadow_denied",
            };
            match call.kind {
                Kind::Tool => {}
                Kind::Resource => {
                    self.add(format!("toolgate.resource_reads.decision.{decision}"));
                    continue;
                }
                Kind::Prompt => {
                    self.add(format!("toolgate.prompt_gets.decision.{decision}"));
                    continue;
                }
            }
            let tool = match call.tool {
                ToolLabel::Policy(id) => policy
                    .tools
                    .entries
                    .get(id.0)
                    .map_or(OTHER, |t| t.name.as_str()),
                ToolLabel::Other => OTHER,
            };
            self.add(format!(
                "toolgate.tool_calls.tool.{tool}.decision.{decision}"
            ));
            if let CallOutcome::Denied {
                reason, counter, ..
            } = &call.outcome
            {
                self.add(format!(
                    "toolgate.denials.tool.{tool}.reason.{}",
                    reason.code()
                ));
                // Only counters the policy defines are named (the engine reports no other).
                if let Some(c) = counter
                    .as_ref()
                    .filter(|c| policy.counters.iter().any(|d| &d.name == *c))
                {
                    self.add(format!("toolgate.rate_limited.counter.{c}"));
                }
            }
        }
    }
}
