//! Reading a PolicyLayer policy document (plus Toolgate's `resources` and `prompts`
//! sections) into a [`Policy`].

use super::path::Path;
use super::problems::Problems;
use super::read::{
    array, boolean, choice, fields, integer, is_kind, quote, quote_then, required, string, then,
};
use crate::condition::{ArgPath, Condition, Op};
use crate::json::{Kind as JsonKind, Owned, Value};
use crate::pattern::Pattern;
use crate::policy::{
    Action, CounterDef, CounterId, DefaultAction, Increment, Kind, Limit, LimitStore, Policy,
    Rules, Scope, Surface,
};
use crate::ratelimit::Window;
use crate::reply::quoted;
use std::cmp::Ordering;
use std::num::NonZeroU64;

/// The policy document's fields: PolicyLayer's, then Toolgate's `resources` and `prompts`.
pub(crate) const POLICY_FIELDS: &[&str] = &[
    "version",
    "description",
    "default",
    "hide",
    "all_tools",
    "tools",
    "resources",
    "prompts",
];
const SECTION_FIELDS: &[&str] = &["default", "hide", "rules"];
const RULE_FIELDS: &[&str] = &[
    "action",
    "reason",
    "require",
    "deny_if",
    "limits",
    "description",
];
const LIMIT_FIELDS: &[&str] = &[
    "counter",
    "window",
    "max",
    "scope",
    "increment_from",
    "store",
];
const CONDITION_FIELDS: &[&str] = &["path", "op", "value"];
const NAME_EXPECTED: &str =
    "a tool name of 1 to 128 visible ASCII characters (no spaces), or a glob of A-Z a-z 0-9 _ . - with *";
const PROMPT_EXPECTED: &str =
    "a prompt name of 1 to 128 visible ASCII characters (no spaces), or a glob of A-Z a-z 0-9 _ . - with *";
const URI_EXPECTED: &str = "a resource URI, or a glob with *, without spaces, control characters or backslashes (at most 2048 characters)";
/// The largest `max` accepted (far beyond any real limit, and safe to add to).
const MAX_LIMIT: i64 = 1_000_000_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpName {
    Eq,
    Neq,
    In,
    NotIn,
    Lt,
    Lte,
    Gt,
    Gte,
    Regex,
    Contains,
    Exists,
}

const OPS: [(&str, OpName); 11] = [
    ("eq", OpName::Eq),
    ("neq", OpName::Neq),
    ("in", OpName::In),
    ("not_in", OpName::NotIn),
    ("lt", OpName::Lt),
    ("lte", OpName::Lte),
    ("gt", OpName::Gt),
    ("gte", OpName::Gte),
    ("regex", OpName::Regex),
    ("contains", OpName::Contains),
    ("exists", OpName::Exists),
];

/// The names of [`OPS`], as `one_of` lists them.
const OP_NAMES: &str = "eq, neq, in, not_in, lt, lte, gt, gte, regex, contains or exists";

const DEFAULTS: [(&str, DefaultAction); 2] = [
    ("allow", DefaultAction::Allow),
    ("deny", DefaultAction::Deny),
];

/// Whether a name or name glob is acceptable for a kind.
fn valid_name(kind: Kind, s: &str) -> bool {
    match kind {
        Kind::Tool | Kind::Prompt => {
            // Other visible ASCII only in names listed exactly (see `crate::names`).
            crate::names::is_listable_name(s)
                || ((1..=128).contains(&s.len())
                    && s.bytes().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'*')
                    }))
        }
        Kind::Resource => crate::uri::is_acceptable(s),
    }
}

fn name_expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Tool => NAME_EXPECTED,
        Kind::Prompt => PROMPT_EXPECTED,
        Kind::Resource => URI_EXPECTED,
    }
}

/// Orders names as `kind` matches them: URIs exactly, tool and prompt names ASCII-case-
/// insensitively, so names equal under this order are the same name.
fn compare_names(kind: Kind, a: &str, b: &str) -> Ordering {
    match kind {
        Kind::Resource => a.cmp(b),
        _ => a
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase())),
    }
}

/// Positions in a list of names, kept sorted by name, so a repeat is found in O(log n):
/// a scan of every earlier name made reading a policy O(n²) (4,000 tools took four billion
/// instructions to configure).
#[derive(Default)]
struct SortedNames(Vec<usize>);

/// What earlier entries read as (a URI's readings, a glob's collapsed form), sorted, each
/// with the entry's index in the list of names.
#[derive(Default)]
struct Readings(Vec<(String, usize)>);

impl Readings {
    /// The first of `readings` an earlier entry reads as, and that entry's index.
    fn first_of<'r>(&self, readings: &'r [String]) -> Option<(&'r String, usize)> {
        readings.iter().find_map(|r| {
            let at = self.0.binary_search_by(|(k, _)| k.cmp(r)).ok()?;
            Some((r, self.0.get(at)?.1))
        })
    }

    /// Records that the entry at `index` reads as each of `readings`.
    fn insert(&mut self, readings: impl IntoIterator<Item = String>, index: usize) {
        for r in readings {
            if let Err(at) = self.0.binary_search_by(|(k, _)| k.cmp(&r)) {
                self.0.insert(at, (r, index));
            }
        }
    }
}

impl SortedNames {
    /// The position in the list of a name equal to `name` (`Ok`), else `Err` with where
    /// [`SortedNames::insert`] puts it; `at` reads the list.
    fn find<'a>(
        &self,
        kind: Kind,
        name: &str,
        at: &dyn Fn(usize) -> &'a str,
    ) -> Result<usize, usize> {
        self.0
            .binary_search_by(|&i| compare_names(kind, at(i), name))
            .map(|found| self.0.get(found).copied().unwrap_or(0))
    }

    /// Records that the list holds, at `index`, a name [`SortedNames::find`] placed at `slot`.
    fn insert(&mut self, slot: usize, index: usize) {
        self.0.insert(slot.min(self.0.len()), index);
    }

    /// The positions of a whole list of `len` names, sorted.
    fn of<'a>(kind: Kind, len: usize, at: &dyn Fn(usize) -> &'a str) -> SortedNames {
        let mut order: Vec<usize> = (0..len).collect();
        crate::sort::heapsort(&mut order, |&a, &b| {
            compare_names(kind, at(a), at(b)).is_lt()
        });
        SortedNames(order)
    }
}

/// The name at `i` in `names`, or "" past its end.
fn name_at(names: &[String], i: usize) -> &str {
    names.get(i).map_or("", String::as_str)
}

/// The name of the entry at `i`, or "" past the end.
fn entry_name(entries: &[Rules], i: usize) -> &str {
    entries.get(i).map_or("", |e| e.name.as_str())
}

/// Counters seen so far: one window per name, one id per (name, scope).
#[derive(Default)]
struct Counters {
    defs: Vec<CounterDef>,
    /// Each counter name, in the order first seen: its window, where that was first given,
    /// its id per scope.
    seen: Vec<SeenCounter>,
    /// `seen` by name.
    by_name: SortedNames,
}

/// A counter name as first seen.
struct SeenCounter {
    name: String,
    window: Window,
    at: String,
    ids: [Option<CounterId>; 3],
}

/// Where a scope's id is kept in a counter's entry.
fn scope_slot(scope: Scope) -> usize {
    match scope {
        Scope::Grant => 0,
        Scope::Session => 1,
        Scope::Global => 2,
    }
}

impl Counters {
    fn intern(
        &mut self,
        name: String,
        scope: Scope,
        window: Window,
        window_path: &Path,
        problems: &mut Problems,
    ) -> Option<CounterId> {
        // Counter names are matched exactly, as URIs are.
        let seen = &self.seen;
        let index = match self.by_name.find(Kind::Resource, &name, &|i| {
            seen.get(i).map_or("", |c| c.name.as_str())
        }) {
            Ok(i) => i,
            Err(slot) => {
                self.by_name.insert(slot, self.seen.len());
                self.seen.push(SeenCounter {
                    name: name.clone(),
                    window,
                    at: window_path.text(),
                    ids: [None; 3],
                });
                self.seen.len() - 1
            }
        };
        let first = self.seen.get_mut(index)?;
        if first.window != window {
            problems.push(
                window_path,
                then(
                    "\"".into(),
                    &[
                        window.name(),
                        "\" differs from the window \"",
                        first.window.name(),
                        "\" counter \"",
                        &name,
                        "\" has at ",
                        &first.at,
                    ],
                ),
                "one window for every limit of a counter",
            );
            return None;
        }
        let id = first.ids.get_mut(scope_slot(scope))?;
        if let Some(known) = *id {
            return Some(known);
        }
        let new = CounterId(self.defs.len());
        self.defs.push(CounterDef {
            name,
            scope,
            window,
        });
        *id = Some(new);
        Some(new)
    }
}

/// Reads a policy document; problems are collected, `None` when any was found.
pub(crate) fn read_policy(v: Value<'_>, path: &Path, problems: &mut Problems) -> Option<Policy> {
    let before = problems.is_empty();
    let f = fields(
        v,
        path,
        "a PolicyLayer policy document",
        POLICY_FIELDS,
        problems,
    )?;

    if let Some(ver) = required(&f, path, "version", "\"1\"", problems) {
        choice(
            ver,
            &path.key("version"),
            "a supported policy version",
            &[("1", ())],
            problems,
        );
    }
    if let Some(d) = f.get("description") {
        string(d, &path.key("description"), "a string", problems);
    }
    let default = required(&f, path, "default", "allow or deny", problems)
        .and_then(|d| choice(d, &path.key("default"), "a default", &DEFAULTS, problems));

    let mut counters = Counters::default();
    let mut tools = Surface::empty(Kind::Tool, default.unwrap_or(DefaultAction::Deny));
    if let Some(t) = f.get("tools") {
        tools.entries = read_entries(Kind::Tool, t, &path.key("tools"), &mut counters, problems);
    }
    if let Some(h) = f.get("hide") {
        read_hide(&mut tools, h, &path.key("hide"), problems);
    }
    tools.index();

    let mut all_tools = Vec::new();
    if let Some(a) = f.get("all_tools") {
        let apath = path.key("all_tools");
        if let Some(af) = fields(a, &apath, "the rules for all tools", &["limits"], problems) {
            if let Some(l) = af.get("limits") {
                all_tools = read_limits(l, &apath.key("limits"), &mut counters, problems);
            }
        }
    }
    let resources = f.get("resources").and_then(|r| {
        read_section(
            Kind::Resource,
            r,
            &path.key("resources"),
            &mut counters,
            problems,
        )
    });
    let prompts = f.get("prompts").and_then(|r| {
        read_section(
            Kind::Prompt,
            r,
            &path.key("prompts"),
            &mut counters,
            problems,
        )
    });

    if !before || !problems.is_empty() {
        return None;
    }
    default?;
    Some(Policy {
        tools,
        resources,
        prompts,
        all_tools,
        counters: counters.defs,
    })
}

/// A Toolgate section: `{"default": ..., "hide": [...], "rules": {pattern: rules}}`.
fn read_section(
    kind: Kind,
    v: Value<'_>,
    path: &Path,
    counters: &mut Counters,
    problems: &mut Problems,
) -> Option<Surface> {
    let what = match kind {
        Kind::Resource => "resource rules",
        _ => "prompt rules",
    };
    let f = fields(v, path, what, SECTION_FIELDS, problems)?;
    let default = match f.get("default") {
        Some(d) => choice(d, &path.key("default"), "a default", &DEFAULTS, problems)?,
        None => DefaultAction::Allow,
    };
    let mut surface = Surface::empty(kind, default);
    if let Some(r) = f.get("rules") {
        surface.entries = read_entries(kind, r, &path.key("rules"), counters, problems);
    }
    if let Some(h) = f.get("hide") {
        read_hide(&mut surface, h, &path.key("hide"), problems);
    }
    surface.index();
    Some(surface)
}

fn read_entries(
    kind: Kind,
    v: Value<'_>,
    path: &Path,
    counters: &mut Counters,
    problems: &mut Problems,
) -> Vec<Rules> {
    let mut out = Vec::new();
    if v.kind() != JsonKind::Object {
        problems.push(
            path,
            is_kind(v),
            then(
                "an object of ".into(),
                &[kind.noun(), " names to their rules"],
            ),
        );
        return out;
    }
    let mut names: Vec<String> = Vec::new();
    let mut by_name = SortedNames::default();
    // Resource URIs by what they read as to servers: two keys reading alike are one
    // resource with two rules, which would meet a request by its spelling alone.
    let mut resources = Readings::default();
    // Globs by what they match: `admin**` is `admin*`, and to a server respelling names
    // `admin-*` is `admin_*`. Two such keys would meet a name by their order alone.
    let mut globs = Readings::default();
    for (name, rules) in v.members() {
        let name = name.decode().into_owned();
        let p = path.key(&name);
        if !valid_name(kind, &name) {
            problems.push(
                &p,
                then(
                    quoted(&name),
                    &[" is not a ", kind.noun(), " name or pattern"],
                ),
                name_expected(kind),
            );
            continue;
        }
        let glob = name.contains('*').then(|| {
            let one = crate::pattern::pieces(&name).join("*");
            if kind == Kind::Resource {
                one
            } else {
                crate::respelling::words(&one)
            }
        });
        if let Some(g) = &glob {
            if let Some((_, at)) = globs.first_of(std::slice::from_ref(g)) {
                let other = name_at(&names, at);
                problems.push(
                    &p,
                    then(
                        quoted(&name),
                        &[
                            " matches what ",
                            &quoted(other),
                            " matches (both read as ",
                            &quoted(g),
                            ")",
                        ],
                    ),
                    "one rule per glob",
                );
                continue;
            }
        }
        let mut read_as = Vec::new();
        if kind == Kind::Resource {
            let readings = crate::uri::same_resource(&name);
            let other = resources
                .first_of(&readings)
                .map(|(r, at)| (r, name_at(&names, at)));
            if let Some((reading, other)) = other {
                problems.push(
                    &p,
                    then(
                        quoted(&name),
                        &[
                            " names the resource ",
                            &quoted(other),
                            " names (servers read both as ",
                            &quoted(reading),
                            ")",
                        ],
                    ),
                    "one rule per resource",
                );
                continue;
            }
            read_as = readings;
        }
        match by_name.find(kind, &name, &|i| name_at(&names, i)) {
            Ok(other) => {
                problems.push(
                    &p,
                    then(
                        quoted(&name),
                        &[
                            " differs from ",
                            &quoted(name_at(&names, other)),
                            " only by case",
                        ],
                    ),
                    "names that differ by more than case (they match case-insensitively)",
                );
                continue;
            }
            Err(slot) => by_name.insert(slot, names.len()),
        }
        resources.insert(read_as, names.len());
        globs.insert(glob, names.len());
        names.push(name.clone());
        if let Some(r) = read_rules(kind, rules, &name, &p, counters, problems) {
            out.push(r);
        }
    }
    out
}

fn read_hide(surface: &mut Surface, v: Value<'_>, path: &Path, problems: &mut Problems) {
    let kind = surface.kind;
    let fold = kind != Kind::Resource;
    let mut seen: Vec<String> = Vec::new();
    let mut seen_by_name = SortedNames::default();
    // The entries with rules, by name; hidden names added below are each listed once.
    let entries_by_name = SortedNames::of(kind, surface.entries.len(), &|j| {
        entry_name(&surface.entries, j)
    });
    for (p, e) in array(v, path, "a list of names, globs or \"*\"", problems).unwrap_or_default() {
        let Some(name) = string(e, &p, "a name, a glob or \"*\"", problems) else {
            continue;
        };
        match seen_by_name.find(kind, &name, &|i| name_at(&seen, i)) {
            Ok(_) => {
                problems.push(
                    &p,
                    then(quoted(&name), &[" is listed twice"]),
                    "each name once",
                );
                continue;
            }
            Err(slot) => seen_by_name.insert(slot, seen.len()),
        }
        seen.push(name.clone());
        if name == "*" {
            surface.hide_all = true;
            continue;
        }
        if !valid_name(kind, &name) {
            problems.push(
                &p,
                then(
                    quoted(&name),
                    &[" is not a ", kind.noun(), " name or pattern"],
                ),
                then(name_expected(kind).into(), &[", or \"*\""]),
            );
            continue;
        }
        let pattern = Pattern::new(&name, fold);
        // An exact hidden tool without rules still gets an entry: its metrics are labelled.
        if kind == Kind::Tool
            && pattern.is_exact()
            && entries_by_name
                .find(kind, &name, &|j| entry_name(&surface.entries, j))
                .is_err()
        {
            surface.entries.push(Rules {
                name: name.clone(),
                pattern: pattern.clone(),
                listed: false,
                action: Action::Allow,
                reason: None,
                require: Vec::new(),
                deny_if: Vec::new(),
                limits: Vec::new(),
                path: path.rule(),
            });
        }
        // A hidden URI is also hidden under every reading a rule key answers to: as
        // servers read it, and that without its query (see `Surface::index`).
        if kind == Kind::Resource {
            for reading in crate::uri::readings(&name).into_iter().skip(1) {
                surface.hide.push(Pattern::new(&reading, false));
            }
        }
        surface.hide.push(pattern);
    }
}

fn read_rules(
    kind: Kind,
    v: Value<'_>,
    name: &str,
    path: &Path,
    counters: &mut Counters,
    problems: &mut Problems,
) -> Option<Rules> {
    let f = fields(
        v,
        path,
        &then("the rules for a ".into(), &[kind.noun()]),
        RULE_FIELDS,
        problems,
    )?;
    let action = f.get("action").and_then(|a| {
        choice(
            a,
            &path.key("action"),
            "an action",
            &[
                ("allow", Action::Allow),
                ("deny", Action::Deny),
                ("require_approval", Action::RequireApproval),
            ],
            problems,
        )
    });
    let reason = f.get("reason").and_then(|r| {
        string(
            r,
            &path.key("reason"),
            "a string shown to the agent",
            problems,
        )
    });
    if let Some(d) = f.get("description") {
        string(d, &path.key("description"), "a string", problems);
    }
    let mut require = f
        .get("require")
        .map(|r| read_conditions(r, &path.key("require"), problems))
        .unwrap_or_default();
    let mut deny_if = f
        .get("deny_if")
        .map(|r| read_conditions(r, &path.key("deny_if"), problems))
        .unwrap_or_default();
    if kind == Kind::Resource {
        for c in require.iter_mut().chain(deny_if.iter_mut()) {
            add_uri_readings(c);
        }
    }
    let limits = f
        .get("limits")
        .map(|l| read_limits(l, &path.key("limits"), counters, problems))
        .unwrap_or_default();
    Some(Rules {
        name: name.to_string(),
        pattern: Pattern::new(name, kind != Kind::Resource),
        listed: true,
        action: if f.has("action") {
            action?
        } else {
            Action::Allow
        },
        reason,
        require,
        deny_if,
        limits,
        path: path.rule(),
    })
}

/// A URI compared for equality in a condition on `args.uri` also equals its server
/// readings: conditions read the requested URI under each reading, so an allow-list naming
/// `file:///srv/My%20Report.pdf` must meet that URI read as `file:///srv/My Report.pdf`.
fn add_uri_readings(c: &mut Condition) {
    if !c.path.segments().eq(["uri"]) {
        return;
    }
    let literals: &[Owned] = match &c.op {
        Op::Eq(l) | Op::Neq(l) => std::slice::from_ref(l),
        Op::In(ls) | Op::NotIn(ls) => ls,
        _ => return,
    };
    let mut also: Vec<Owned> = Vec::new();
    for l in literals {
        let Owned::String(text) = l else {
            continue;
        };
        for reading in crate::uri::readings(text).into_iter().skip(1) {
            let reading = Owned::String(reading);
            if !literals.contains(&reading) && !also.contains(&reading) {
                also.push(reading);
            }
        }
    }
    c.also_equal = also;
}

fn read_conditions(v: Value<'_>, path: &Path, problems: &mut Problems) -> Vec<Condition> {
    let mut out = Vec::new();
    for (p, c) in array(v, path, "a list of conditions", problems).unwrap_or_default() {
        if let Some(c) = read_condition(c, &p, problems) {
            out.push(c);
        }
    }
    out
}

fn read_arg_path(v: Value<'_>, path: &Path, problems: &mut Problems) -> Option<ArgPath> {
    let expected = "a path into the arguments such as \"args.amount\" or \"args.items.0.id\"";
    let s = string(v, path, expected, problems)?;
    let parsed = ArgPath::parse(&s);
    if parsed.is_none() {
        problems.push(
            path,
            then(quoted(&s), &[" is not an argument path"]),
            expected,
        );
    }
    parsed
}

fn read_condition(v: Value<'_>, path: &Path, problems: &mut Problems) -> Option<Condition> {
    let f = fields(v, path, "a condition", CONDITION_FIELDS, problems)?;
    let arg = required(&f, path, "path", "a path such as \"args.amount\"", problems)
        .and_then(|p| read_arg_path(p, &path.key("path"), problems));
    let op_name = required(&f, path, "op", OP_NAMES, problems)
        .and_then(|o| choice(o, &path.key("op"), "an operator", &OPS, problems));
    let vpath = path.key("value");
    let value = f.get("value");
    let op = match (op_name?, value) {
        (OpName::Exists, None) => Some(Op::Exists(true)),
        (OpName::Exists, Some(v)) => boolean(v, &vpath, problems).map(Op::Exists),
        (_, None) => {
            problems.push(&vpath, "missing", "the value to compare with");
            None
        }
        (OpName::Eq, Some(v)) => Some(Op::Eq(Owned::from_value(v))),
        (OpName::Neq, Some(v)) => Some(Op::Neq(Owned::from_value(v))),
        (OpName::Contains, Some(v)) => Some(Op::Contains(Owned::from_value(v))),
        (OpName::In | OpName::NotIn, Some(v)) => {
            let items = array(v, &vpath, "a non-empty list of values", problems)?;
            if items.is_empty() {
                problems.push(&vpath, "[] is empty", "a non-empty list of values");
                return None;
            }
            let items = items
                .into_iter()
                .map(|(_, e)| Owned::from_value(e))
                .collect();
            Some(if op_name? == OpName::In {
                Op::In(items)
            } else {
                Op::NotIn(items)
            })
        }
        (OpName::Lt | OpName::Lte | OpName::Gt | OpName::Gte, Some(v)) => {
            let n = v.as_number().map(|n| n.to_owned_number());
            if n.is_none() {
                problems.push(&vpath, quote_then(v, &[" is not a number"]), "a number");
            }
            let n = n?;
            Some(match op_name? {
                OpName::Lt => Op::Lt(n),
                OpName::Lte => Op::Lte(n),
                OpName::Gt => Op::Gt(n),
                _ => Op::Gte(n),
            })
        }
        (OpName::Regex, Some(v)) => {
            let pattern = string(v, &vpath, "a regular expression (a string)", problems)?;
            match crate::regex::Regex::new(&pattern) {
                Ok(re) => Some(Op::Regex(re)),
                Err(e) => {
                    problems.push(
                        &vpath,
                        format!("{} is not a valid regular expression ({e})", quote(v)),
                        "a regular expression in regex-lite syntax",
                    );
                    None
                }
            }
        }
    };
    Some(Condition {
        path: arg?,
        op: op?,
        rule: path.rule(),
        also_equal: Vec::new(),
    })
}

fn read_limits(
    v: Value<'_>,
    path: &Path,
    counters: &mut Counters,
    problems: &mut Problems,
) -> Vec<Limit> {
    let mut out = Vec::new();
    for (p, l) in array(v, path, "a list of limits", problems).unwrap_or_default() {
        if let Some(l) = read_limit(l, &p, counters, problems) {
            out.push(l);
        }
    }
    out
}

fn read_limit(
    v: Value<'_>,
    path: &Path,
    counters: &mut Counters,
    problems: &mut Problems,
) -> Option<Limit> {
    let f = fields(v, path, "a limit", LIMIT_FIELDS, problems)?;
    let counter_expected = "a counter name of 1 to 64 characters of A-Z a-z 0-9 _ . -";
    let counter = required(&f, path, "counter", counter_expected, problems)
        .and_then(|c| string(c, &path.key("counter"), counter_expected, problems))
        .and_then(|c| {
            if c.len() <= 64 && crate::names::is_tool_name(&c) {
                Some(c)
            } else {
                problems.push(
                    &path.key("counter"),
                    then(quoted(&c), &[" is not a counter name"]),
                    counter_expected,
                );
                None
            }
        });
    let wpath = path.key("window");
    let window = required(&f, path, "window", "second, minute, hour or day", problems)
        .and_then(|w| choice(w, &wpath, "a window", &Window::ALL, problems));
    let max = required(&f, path, "max", "an integer >= 1", problems)
        .and_then(|m| integer(m, &path.key("max"), 1, MAX_LIMIT, problems))
        .and_then(|m| u64::try_from(m).ok())
        .and_then(NonZeroU64::new);
    let scope = match f.get("scope") {
        Some(s) => choice(s, &path.key("scope"), "a scope", &Scope::ALL, problems),
        None => Some(Scope::Grant),
    };
    let store = match f.get("store") {
        Some(s) => choice(
            s,
            &path.key("store"),
            "a limit store",
            &[
                ("local", LimitStore::Local),
                ("service", LimitStore::Service),
            ],
            problems,
        ),
        None => Some(LimitStore::Local),
    };
    let increment = match f.get("increment_from") {
        Some(i) => read_arg_path(i, &path.key("increment_from"), problems).map(Increment::From),
        None => Some(Increment::One),
    };
    let counter = counters.intern(counter?, scope?, window?, &wpath, problems)?;
    Some(Limit {
        store: store?,
        counter,
        max: max?,
        increment: increment?,
        rule: path.rule(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn op_names_list_every_operator() {
        let names: Vec<&str> = super::OPS.iter().map(|(n, _)| *n).collect();
        assert_eq!(super::OP_NAMES, super::super::read::one_of(&names));
    }
}
