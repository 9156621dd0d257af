//! The compiled policy: what the engine consults per call. Built only by
//! [`crate::config::load`], so every value here is valid by construction.

use crate::condition::{ArgPath, Condition};
use crate::pattern::{most_specific, Pattern};
use crate::ratelimit::Window;
use crate::respelling::{Met, Respellings};
use std::num::NonZeroU64;

/// What happens to a name no entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// Allowed.
    Allow,
    /// Denied (`not_allowed`).
    Deny,
}

/// An entry's `action`.
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

/// Where a limit's count lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitStore {
    /// Proxy-wasm shared data: one Envoy's workers.
    Local,
    /// The rate limit service: every Envoy of the fleet.
    Service,
}

/// A limit.
#[derive(Clone, Debug)]
pub struct Limit {
    /// Where the count lives.
    pub store: LimitStore,
    /// The count it checks and advances.
    pub counter: CounterId,
    /// Units admitted per window per scope value.
    pub max: NonZeroU64,
    /// Units per call.
    pub increment: Increment,
    /// The limit's place in the policy (`tools.cache_cas.limits[0]`).
    pub rule: String,
}

/// Index of an entry in [`Surface::entries`] (a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ToolId(pub usize);

/// What kind of MCP object a surface governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Tools (`tools/call`, `tools/list`).
    Tool,
    /// Resources (`resources/read`, `resources/list`), by URI.
    Resource,
    /// Prompts (`prompts/get`, `prompts/list`).
    Prompt,
}

impl Kind {
    /// The word used in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Resource => "resource",
            Kind::Prompt => "prompt",
        }
    }
}

/// The rules of one entry (a tool name or glob, a resource URI pattern, a prompt name).
#[derive(Clone, Debug)]
pub struct Rules {
    /// The name or pattern as written in the policy.
    pub name: String,
    /// Its matcher.
    pub pattern: Pattern,
    /// Listed with rules (as opposed to named only in `hide`).
    pub listed: bool,
    /// The action.
    pub action: Action,
    /// The text shown to the agent when these rules deny a call.
    pub reason: Option<String>,
    /// Conditions that must all hold.
    pub require: Vec<Condition>,
    /// Conditions any of which denies.
    pub deny_if: Vec<Condition>,
    /// Limits.
    pub limits: Vec<Limit>,
    /// Path of the entry (`tools.cache_cas`).
    pub path: String,
}

/// Backwards-compatible name of [`Rules`] for tools.
pub type ToolRules = Rules;

/// The rules for one kind of object.
#[derive(Clone, Debug)]
pub struct Surface {
    /// What it governs.
    pub kind: Kind,
    /// For names no entry matches.
    pub default: DefaultAction,
    /// `hide` contains `"*"`.
    pub hide_all: bool,
    /// `hide` patterns.
    pub hide: Vec<Pattern>,
    /// Every entry, in policy order.
    pub entries: Vec<Rules>,
    /// Exact entries: `(normalised name, index)`, sorted.
    pub(crate) exact: Vec<(String, usize)>,
    /// Glob entries, in policy order.
    pub(crate) globs: Vec<(Pattern, usize)>,
    /// Exact hidden names (normalised), sorted: looking a name up is O(log n), where a scan
    /// of `hide` was linear in the hidden names for every request and every listed tool.
    pub(crate) hidden_exact: Vec<String>,
    /// Hidden globs.
    pub(crate) hidden_globs: Vec<Pattern>,
    /// Tool or prompt entries and hidden names by the respellings a lenient server may
    /// look a name up by (empty for resources).
    pub(crate) respellings: Respellings,
}

impl Surface {
    /// A surface with no entries.
    pub fn empty(kind: Kind, default: DefaultAction) -> Surface {
        Surface {
            kind,
            default,
            hide_all: false,
            hide: Vec::new(),
            entries: Vec::new(),
            exact: Vec::new(),
            globs: Vec::new(),
            hidden_exact: Vec::new(),
            hidden_globs: Vec::new(),
            respellings: Respellings::default(),
        }
    }

    /// `name` as exact names are indexed: ASCII-lowercased where names match case-
    /// insensitively.
    fn key<'n>(&self, name: &'n str) -> std::borrow::Cow<'n, str> {
        if self.folds_case() {
            crate::names::ascii_lowercase(name)
        } else {
            std::borrow::Cow::Borrowed(name)
        }
    }

    fn folds_case(&self) -> bool {
        self.kind != Kind::Resource
    }

    /// Builds the lookup indexes after `entries` is complete.
    pub(crate) fn index(&mut self) {
        let fold = self.folds_case();
        let mut names: Vec<(String, usize)> = Vec::with_capacity(self.entries.len());
        for (i, e) in self.entries.iter().enumerate() {
            names.push((
                if fold {
                    e.name.to_ascii_lowercase()
                } else {
                    e.name.clone()
                },
                i,
            ));
        }
        // A resource rule also answers to its URI as servers read it, and that without
        // its query (the readings a request is judged under), unless another rule is
        // written that way.
        if self.kind == Kind::Resource {
            let mut written: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
            crate::sort::heapsort(&mut written, |a, b| a < b);
            for (i, e) in self.entries.iter().enumerate() {
                for alias in crate::uri::readings(&e.name).into_iter().skip(1) {
                    if written.binary_search(&alias.as_str()).is_err() {
                        names.push((alias, i));
                    }
                }
            }
        }
        self.exact.clear();
        self.globs.clear();
        for (name, i) in names {
            let pattern = Pattern::new(&name, fold);
            if pattern.is_exact() {
                self.exact.push((name, i));
            } else {
                self.globs.push((pattern, i));
            }
        }
        crate::sort::heapsort(&mut self.exact, |a, b| a.0 < b.0);
        // A URI a rule denies, or hides, is also met as a server's template matching meets
        // it (`Pattern::template`): a deny rule or hidden template by its text denies the
        // URIs it expands to. Allow rules keep to their text.
        let templates = self.kind == Kind::Resource;
        for (i, e) in self.entries.iter().enumerate() {
            if templates && e.action != Action::Allow && Pattern::has_template_reading(&e.name) {
                self.globs.push((Pattern::template(&e.name), i));
            }
        }
        self.hidden_exact.clear();
        self.hidden_globs.clear();
        for p in &self.hide {
            if p.is_exact() {
                self.hidden_exact.push(self.key(p.as_str()).into_owned());
            } else {
                self.hidden_globs.push(p.clone());
            }
            if templates && Pattern::has_template_reading(p.as_str()) {
                self.hidden_globs.push(Pattern::template(p.as_str()));
            }
        }
        crate::sort::heapsort(&mut self.hidden_exact, |a, b| a < b);
        if fold {
            self.respellings = Respellings::new(&self.entries, &self.hide);
        }
    }

    /// What the respellings of `name` meet, for a tool or prompt name (not a URI, not a
    /// name outside the MCP tool-name characters).
    pub fn respelled(&self, name: &str) -> Option<Met<'_>> {
        self.folds_case()
            .then(|| self.respellings.meet(name))
            .flatten()
    }

    /// The entries the respellings of a name meet.
    pub(crate) fn respelled_rules<'a>(
        &'a self,
        met: &Met<'a>,
    ) -> impl Iterator<Item = &'a Rules> + 'a {
        met.entries().filter_map(|i| self.entries.get(i))
    }

    /// Whether `name` is hidden as sent or under a respelling.
    pub fn hides(&self, name: &str) -> bool {
        self.hides_met(name, self.respelled(name).as_ref())
    }

    /// [`Surface::hides`], given what `name`'s respellings meet (for callers that use it
    /// again).
    fn hides_met(&self, name: &str, met: Option<&Met<'_>>) -> bool {
        self.is_hidden(name) || met.is_some_and(|m| m.hidden)
    }

    /// The entry governing `name`: an exact entry, else the most specific glob.
    pub fn lookup(&self, name: &str) -> Option<(ToolId, &Rules)> {
        let key = self.key(name);
        let i = match self.exact.binary_search_by(|(n, _)| n.as_str().cmp(&key)) {
            Ok(pos) => self.exact.get(pos).map(|(_, i)| *i),
            Err(_) => most_specific(&self.globs, name).map(|(_, i)| *i),
        }?;
        self.entries.get(i).map(|e| (ToolId(i), e))
    }

    /// The most specific glob entry `name` matches, passing over exact entries: the rules
    /// a name the policy does not list by name falls under.
    pub fn lookup_glob(&self, name: &str) -> Option<&Rules> {
        most_specific(&self.globs, name).and_then(|(_, i)| self.entries.get(*i))
    }

    /// Whether calls to `name` are judged at all: a valid tool or prompt name, or one of
    /// other visible ASCII that an exact entry lists (never through a glob, which could
    /// catch a namespaced spelling such as `cache/delete` of a name it does not mean).
    pub fn judges_name(&self, name: &str) -> bool {
        if crate::names::is_tool_name(name) {
            return true;
        }
        let key = self.key(name);
        crate::names::is_listable_name(name)
            && self
                .exact
                .binary_search_by(|(n, _)| n.as_str().cmp(&key))
                .is_ok()
    }

    /// Whether `name` is hidden.
    pub fn is_hidden(&self, name: &str) -> bool {
        if self.hide_all {
            return true;
        }
        let key = self.key(name);
        self.hidden_exact
            .binary_search_by(|h| h.as_str().cmp(&key))
            .is_ok()
            || self.hidden_globs.iter().any(|p| p.matches(name))
    }

    /// Whether every call to `name` is denied whatever its arguments (hidden, unlisted
    /// under `default: deny`, or an action other than allow).
    pub fn always_denied(&self, name: &str) -> bool {
        let met = self.respelled(name);
        if self.hides_met(name, met.as_ref()) {
            return true;
        }
        let denies = |r: &Rules| {
            (!r.listed && self.default == DefaultAction::Deny) || r.action != Action::Allow
        };
        let as_sent = match self.lookup(name) {
            None => self.default == DefaultAction::Deny,
            Some((_, r)) => denies(r),
        };
        as_sent || met.is_some_and(|m| self.respelled_rules(&m).any(denies))
    }

    /// The path of a field of this surface in the policy (`hide`, `resources.default`).
    pub fn rule_path(&self, field: &str) -> String {
        match self.kind {
            Kind::Tool => field.to_string(),
            Kind::Resource => format!("resources.{field}"),
            Kind::Prompt => format!("prompts.{field}"),
        }
    }

    /// Whether list responses of this kind need filtering (something is hidden).
    pub fn hides_anything(&self) -> bool {
        self.hide_all || !self.hide.is_empty()
    }
}

/// A compiled policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Tools (PolicyLayer's `default`, `hide`, `tools`).
    pub tools: Surface,
    /// Resources, if the policy has a `resources` section.
    pub resources: Option<Surface>,
    /// Prompts, if the policy has a `prompts` section.
    pub prompts: Option<Surface>,
    /// `all_tools.limits`.
    pub all_tools: Vec<Limit>,
    /// Every distinct (counter, scope).
    pub counters: Vec<CounterDef>,
}

impl Policy {
    /// The counter definition of an id.
    pub fn counter(&self, id: CounterId) -> Option<&CounterDef> {
        self.counters.get(id.0)
    }

    /// Every limit of the policy.
    pub fn limits(&self) -> impl Iterator<Item = &Limit> {
        // Collected by plain loops: only loading a configuration asks, and an iterator
        // chain of flattens expands to a state machine at every use.
        let mut out = Vec::new();
        for s in [
            Some(&self.tools),
            self.resources.as_ref(),
            self.prompts.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            for e in &s.entries {
                out.extend(e.limits.iter());
            }
        }
        out.extend(self.all_tools.iter());
        out.into_iter()
    }

    /// Whether any limit keys on the grant or session (so a grant must be identified).
    pub fn needs_grant(&self) -> bool {
        self.counters.iter().any(|c| c.scope != Scope::Global)
    }

    /// The argument paths a `tools/call` of `tool` is judged or counted by: its entry's
    /// conditions and argument-valued increments, and those of `all_tools`.
    pub fn argument_paths(&self, tool: &str) -> Vec<&ArgPath> {
        let mut paths = Vec::new();
        // A hidden tool falls under what a tool the policy does not name would: its own
        // conditions must not show through the header check.
        let met = self.tools.respelled(tool);
        let hidden = self.tools.hides_met(tool, met.as_ref());
        let rules = if hidden {
            self.tools.lookup_glob(tool)
        } else {
            self.tools.lookup(tool).map(|(_, r)| r)
        };
        let met = met.filter(|_| !hidden);
        // Plain loops: chained and flattened iterators expand to a large state machine.
        if let Some(r) = rules {
            push_rule_paths(r, &mut paths);
        }
        if let Some(m) = &met {
            for r in self.tools.respelled_rules(m) {
                push_rule_paths(r, &mut paths);
            }
        }
        push_increments(&self.all_tools, &mut paths);
        paths
    }

    /// The surface for a kind, if the policy governs it.
    pub fn surface(&self, kind: Kind) -> Option<&Surface> {
        match kind {
            Kind::Tool => Some(&self.tools),
            Kind::Resource => self.resources.as_ref(),
            Kind::Prompt => self.prompts.as_ref(),
        }
    }
}

/// The paths a rule's conditions and argument-valued increments read, in that order.
fn push_rule_paths<'a>(r: &'a Rules, paths: &mut Vec<&'a ArgPath>) {
    for c in &r.require {
        paths.push(&c.path);
    }
    for c in &r.deny_if {
        paths.push(&c.path);
    }
    push_increments(&r.limits, paths);
}

/// The paths of the argument-valued increments among `limits`.
fn push_increments<'a>(limits: &'a [Limit], paths: &mut Vec<&'a ArgPath>) {
    for l in limits {
        if let Increment::From(p) = &l.increment {
            paths.push(p);
        }
    }
}
