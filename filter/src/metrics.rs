//! Envoy counters. Every name is built from the policy (tool and counter names) and fixed
//! enumerations, never from request data, so the number of stats is bounded by the policy.

use crate::abi;
use std::cell::RefCell;
use std::collections::HashMap;
use toolgate_engine::outcome::{CallOutcome, Report, ToolLabel};
use toolgate_engine::policy::Policy;

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

    /// Counts what a report says happened.
    pub fn record(&self, report: &Report, policy: &Policy) {
        if let Some((kind, _)) = &report.rejection {
            self.add(format!("toolgate.rejected.reason.{}", kind.code()));
        }
        if report.store_error.is_some() {
            self.add("toolgate.store_errors".into());
        }
        for call in &report.calls {
            let tool = match call.tool {
                ToolLabel::Policy(id) => policy.tools.get(id.0).map_or(OTHER, |t| t.name.as_str()),
                ToolLabel::Other => OTHER,
            };
            match &call.outcome {
                CallOutcome::Allowed => {
                    self.add(format!("toolgate.tool_calls.tool.{tool}.decision.allowed"));
                }
                CallOutcome::Denied {
                    reason, counter, ..
                } => {
                    let decision = if report.shadow {
                        "shadow_denied"
                    } else {
                        "denied"
                    };
                    self.add(format!(
                        "toolgate.tool_calls.tool.{tool}.decision.{decision}"
                    ));
                    self.add(format!(
                        "toolgate.denials.tool.{tool}.reason.{}",
                        reason.code()
                    ));
                    if let Some(c) = counter {
                        // The counter name comes from the policy (the engine only reports
                        // names of counters it holds).
                        if policy.counters.iter().any(|d| &d.name == c) {
                            self.add(format!("toolgate.rate_limited.counter.{c}"));
                        }
                    }
                }
            }
        }
    }
}
