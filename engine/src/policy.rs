//! The compiled policy: what the engine consults per call. Built only by
//! [`crate::config::load`], so every value here is valid by construction.

use crate::condition::{ArgPath, Condition};
use crate::names::NameKey;
use crate::ratelimit::Window;
use std::num::NonZeroU64;

/// What happens to a tool not listed under `tools`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// Unlisted tools are allowed.
    Allow,
    /// Unlisted tools are denied (`not_allowed`).
    Deny,
}

/// A tool's `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Allowed, subject to its conditions and limits.
    Allow,
    /// Always denied (`tool_denied`).
    Deny,
    /// Denied until an approval flow exists (`approval_required`).
    RequireApproval,
}

/// Whose count a limit keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The caller's credential.
    Grant,
    /// The MCP session, within its grant.
    Session,
    /// Everyone together.
    Global,
}

impl Scope {
    /// Every scope, in the order messages list them.
    pub const ALL: [(&'static str, Scope); 3] = [
        ("grant", Scope::Grant),
        ("session", Scope::Session),
        ("global", Scope::Global),
    ];

    /// The scope's name in the policy language.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Grant => "grant",
            Scope::Session => "session",
            Scope::Global => "global",
        }
    }
}

/// Index of a counter in [`Policy::counters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterId(pub usize);

/// One count: limits naming the same counter and scope share it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterDef {
    /// The counter's name.
    pub name: String,
    /// Whose count.
    pub scope: Scope,
    /// Its window (one per counter name).
    pub window: Window,
}

/// How much a call adds to a counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Increment {
    /// One per call.
    One,
    /// The numeric argument at this path (rounded up; negative or missing denies).
    From(ArgPath),
}

/// A limit on a tool (or on all tools).
#[derive(Clone, Debug)]
pub struct Limit {
    /// The count it checks and advances.
    pub counter: CounterId,
    /// Units admitted per window per scope value.
    pub max: NonZeroU64,
    /// Units per call.
    pub increment: Increment,
    /// The limit's place in the policy (`tools.cache_cas.limits[0]`).
    pub rule: String,
}

/// Index of a tool in [`Policy::tools`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ToolId(pub usize);

/// Everything the policy says about one tool name.
#[derive(Clone, Debug)]
pub struct ToolRules {
    /// The name as written in the policy.
    pub name: String,
    /// Listed under `tools` (as opposed to named only in `hide`).
    pub listed: bool,
    /// Named in `hide`.
    pub hidden: bool,
    /// The tool's action.
    pub action: Action,
    /// The text shown to the agent when these rules deny a call.
    pub reason: Option<String>,
    /// Conditions that must all hold.
    pub require: Vec<Condition>,
    /// Conditions any of which denies.
    pub deny_if: Vec<Condition>,
    /// Limits of this tool.
    pub limits: Vec<Limit>,
    /// Path of the tool's entry (`tools.cache_cas`).
    pub path: String,
}

/// A compiled policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// For tools not listed.
    pub default: DefaultAction,
    /// `hide` contains `"*"`.
    pub hide_all: bool,
    /// Every tool named in `tools` or `hide`.
    pub tools: Vec<ToolRules>,
    /// `(lower-cased name, tool)` sorted by name, for lookups.
    pub(crate) index: Vec<(String, ToolId)>,
    /// `all_tools.limits`.
    pub all_tools: Vec<Limit>,
    /// Every distinct (counter, scope).
    pub counters: Vec<CounterDef>,
}

impl Policy {
    /// The rules for a tool, matched ASCII-case-insensitively.
    pub fn lookup(&self, name: &NameKey) -> Option<(ToolId, &ToolRules)> {
        let key = name.as_str();
        let i = self
            .index
            .binary_search_by(|(n, _)| n.as_str().cmp(key))
            .ok()?;
        let (_, id) = self.index.get(i)?;
        self.tools.get(id.0).map(|t| (*id, t))
    }

    /// The counter definition of an id.
    pub fn counter(&self, id: CounterId) -> Option<&CounterDef> {
        self.counters.get(id.0)
    }

    /// Whether any limit keys on the grant or session (so a grant must be identified).
    pub fn needs_grant(&self) -> bool {
        self.counters.iter().any(|c| c.scope != Scope::Global)
    }
}
