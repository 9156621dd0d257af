//! Filtering list responses (`tools/list`, `resources/list`, `resources/templates/list`,
//! `prompts/list`): hidden entries are cut out of the result array by splicing the original
//! text, so everything else is byte-for-byte what the server sent. Anything that cannot be
//! read strictly while a list response is expected fails closed.

use crate::join::push_joined;
use crate::json::{KeyRule, Kind as JsonKind, Number, Options, Validator, Value};
use crate::mcp::{check_member_names, ENVELOPE_KEYS};
use crate::policy::{Kind, Policy};
use crate::reply::push_json_string;
use crate::subslice::offset_in;
use crate::uri;

/// A list request whose response must be filtered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingList {
    /// The request id's JSON text.
    pub id: String,
    /// What is listed.
    pub kind: Kind,
}

/// What decides which entries vanish.
#[derive(Clone, Copy)]
pub struct ListRules<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// Also remove tools every call to which would be denied.
    pub hide_denied_tools: bool,
    /// JSON depth bound.
    pub max_depth: u32,
}

pub(crate) const RESULT_KEYS: [&str; 6] = [
    "tools",
    "resources",
    "resourceTemplates",
    "prompts",
    "nextCursor",
    "_meta",
];

impl Kind {
    /// The arrays a list answer of this kind holds its entries in, each with the member
    /// that names an entry: resource templates are judged by their text, as resources by
    /// their URI.
    pub(crate) fn arrays(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Tool => &[("tools", "name")],
            Kind::Resource => &[("resources", "uri"), ("resourceTemplates", "uriTemplate")],
            Kind::Prompt => &[("prompts", "name")],
        }
    }

    /// The list method for this kind.
    pub fn list_method(self) -> &'static str {
        match self {
            Kind::Tool => "tools/list",
            Kind::Resource => "resources/list",
            Kind::Prompt => "prompts/list",
        }
    }
}

/// A canonical form of an id: numbers by value, strings decoded. A client may match a
/// response id `"5"` to request `5`, so both compare equal here.
fn id_key(v: Value<'_>) -> Option<String> {
    match v.kind() {
        JsonKind::Number => v.as_number().map(|n| n.canonical()),
        JsonKind::String => {
            let s = v.as_str()?.decode().into_owned();
            Some(Number::parse(s.trim()).map_or(s.clone(), |n| n.canonical()))
        }
        _ => None,
    }
}

impl ListRules<'_> {
    fn removes(&self, kind: Kind, name: &str) -> bool {
        let Some(surface) = self.policy.surface(kind) else {
            return false;
        };
        match kind {
            Kind::Resource => uri::readings(name)
                .iter()
                .chain(&uri::template_readings(name))
                .any(|r| surface.is_hidden(r)),
            Kind::Tool if self.hide_denied_tools => {
                !surface.judges_name(name) || surface.always_denied(name)
            }
            // A name no call can use through Toolgate (`Secret Tool`, `admin:reset`) may be
            // a hidden one spelled as no respelling reaches: it goes too.
            _ => !surface.judges_name(name) || surface.hides(name),
        }
    }

    /// Whether list responses of any kind need filtering.
    pub fn hides_anything(&self) -> bool {
        [Kind::Tool, Kind::Resource, Kind::Prompt]
            .into_iter()
            .any(|k| self.filters(k))
    }

    /// Whether list responses of `kind` need filtering at all.
    pub fn filters(&self, kind: Kind) -> bool {
        match kind {
            Kind::Tool => self.hide_denied_tools || self.policy.tools.hides_anything(),
            k => self.policy.surface(k).is_some_and(|s| s.hides_anything()),
        }
    }

    /// Filters one JSON-RPC message. `Ok(None)`: unchanged. Every message answering a
    /// pending id is filtered, not only the first (a client might read a later duplicate),
    /// and any other by its shape: a server that keys its answers by id alone sends the
    /// answer to a list request onto the stream of another request with the same id.
    /// `awaited`: the pending ids' keys ([`id_key`]).
    fn message(&self, msg: Value<'_>, awaited: &[String]) -> Result<Option<String>, String> {
        if msg.kind() != JsonKind::Object {
            return Ok(None);
        }
        check_member_names(msg, &ENVELOPE_KEYS, "response").map_err(|e| e.0)?;
        let id = msg.get("id").and_then(id_key);
        if id.is_some_and(|id| awaited.contains(&id)) {
            self.filter_message(msg)
        } else {
            self.by_shape(msg)
        }
    }

    /// Filters a message by its shape, whatever request it answers: a `result` holding a
    /// list this policy filters. The caller has checked the envelope's member names.
    pub(crate) fn by_shape(&self, msg: Value<'_>) -> Result<Option<String>, String> {
        if !self.hides_anything() {
            return Ok(None);
        }
        if msg
            .get("result")
            .is_none_or(|r| r.kind() != JsonKind::Object)
        {
            return Ok(None);
        }
        self.filter_message(msg)
    }

    /// Filters one JSON-RPC message as a list answer: every list it holds of a kind the
    /// policy hides, not only the kind awaited (the id of a batch's `tools/list` may also
    /// be its `resources/list`'s, and a lenient client reads whichever list it finds).
    pub(crate) fn filter_message(&self, msg: Value<'_>) -> Result<Option<String>, String> {
        let Some(result) = msg.get("result") else {
            return Ok(None);
        };
        if result.kind() != JsonKind::Object {
            return Err("the result is not an object".into());
        }
        check_member_names(result, &RESULT_KEYS, "result").map_err(|e| e.0)?;
        let outer = msg.raw();
        // Where each array that lost entries starts, its length, and what it keeps.
        let mut cuts: Vec<(usize, usize, Vec<&str>)> = Vec::new();
        let filtered = [Kind::Tool, Kind::Resource, Kind::Prompt]
            .into_iter()
            .filter(|&k| self.filters(k));
        for kind in filtered {
            for &(array, name_key) in kind.arrays() {
                let Some(list) = result.get(array) else {
                    continue;
                };
                if let Some(kept) = self.kept(list, kind, array, name_key)? {
                    let start = offset_in(outer.as_bytes(), list.raw().as_bytes())
                        .ok_or("internal offset error")?;
                    cuts.push((start, list.raw().len(), kept));
                }
            }
        }
        if cuts.is_empty() {
            return Ok(None);
        }
        // Spliced in the order the server wrote them.
        crate::sort::heapsort(&mut cuts, |a, b| a.0 < b.0);
        let mut out = String::with_capacity(outer.len());
        let mut at = 0;
        for (start, len, kept) in &cuts {
            out.push_str(outer.get(at..*start).ok_or("internal offset error")?);
            out.push('[');
            push_joined(&mut out, &mut kept.iter().copied(), ",");
            out.push(']');
            at = start + len;
        }
        out.push_str(outer.get(at..).unwrap_or(""));
        Ok(Some(out))
    }

    /// The entries of one listed array that stay, or `None` when all do.
    fn kept<'v>(
        &self,
        list: Value<'v>,
        kind: Kind,
        array: &str,
        name_key: &'static str,
    ) -> Result<Option<Vec<&'v str>>, String> {
        if list.kind() != JsonKind::Array {
            return Err(["result.", array, " is not an array"].concat());
        }
        let mut kept: Vec<&str> = Vec::new();
        let mut removed = false;
        for item in list.elements() {
            if item.kind() != JsonKind::Object {
                return Err("a listed entry is not an object".into());
            }
            check_member_names(item, &[name_key], "entry").map_err(|e| e.0)?;
            let name = item
                .get(name_key)
                .and_then(|n| n.as_str())
                .ok_or_else(|| ["a listed entry has no string ", name_key].concat())?
                .decode();
            if self.removes(kind, &name) {
                removed = true;
            } else {
                kept.push(item.raw());
            }
        }
        Ok(removed.then_some(kept))
    }

    /// Filters a JSON body (one message or a batch). `Ok(None)`: unchanged.
    pub fn json_body(
        &self,
        body: &[u8],
        pending: &[PendingList],
    ) -> Result<Option<Vec<u8>>, String> {
        let mut validator = Validator::for_answers();
        let root = validator
            .validate_indexed(body, self.json_options())
            .map_err(|e| e.to_string())?;
        // Each pending id is read once, not once per message of a batch answer.
        let awaited: Vec<String> = pending
            .iter()
            .filter_map(|p| {
                crate::json::parse_strict(p.id.as_bytes(), 2)
                    .ok()
                    .and_then(id_key)
            })
            .collect();
        each_message(root, |m| self.message(m, &awaited))
    }

    /// Answers are read strictly; keys that only resemble the names read (envelope, result,
    /// an entry's name) are refused where they are read, not in the data around them (a
    /// tool's schema may have properties `ID` and `id`).
    pub(crate) fn json_options(&self) -> Options {
        Options {
            max_depth: self.max_depth,
            keys: KeyRule::Exact,
        }
    }
}

/// A body (one message or a batch) with `rewrite` applied to each message. `Ok(None)`:
/// unchanged.
pub(crate) fn each_message(
    root: Value<'_>,
    rewrite: impl Fn(Value<'_>) -> Result<Option<String>, String>,
) -> Result<Option<Vec<u8>>, String> {
    if root.kind() != JsonKind::Array {
        return Ok(rewrite(root)?.map(String::into_bytes));
    }
    let mut parts: Vec<String> = Vec::new();
    let mut changed = false;
    for e in root.elements() {
        if e.kind() != JsonKind::Object {
            // A lenient client might flatten it into the batch.
            return Err("an element of a batch answer is not an object".into());
        }
        match rewrite(e)? {
            Some(new) => {
                changed = true;
                parts.push(new);
            }
            None => parts.push(e.raw().to_string()),
        }
    }
    Ok(changed.then(|| {
        let mut out = String::from("[");
        push_joined(&mut out, &mut parts.iter().map(String::as_str), ",");
        out.push(']');
        out.into_bytes()
    }))
}

/// The error that replaces a response Toolgate could not check: one answer for each
/// request id in `ids` (the raw ids of the requests forwarded; the pending lists' when none
/// are known, and `null` when neither is), naming the list method of a pending list.
pub fn unfilterable(pending: &[PendingList], ids: &[String]) -> String {
    let one = |id: &str, kind: Option<Kind>| {
        let mut s = String::from("{\"jsonrpc\":\"2.0\",\"id\":");
        s.push_str(id);
        s.push_str(",\"error\":{\"code\":-32603,\"message\":");
        match kind {
            Some(kind) => push_json_string(
                &mut s,
                &[
                    "Toolgate could not check the ",
                    kind.list_method(),
                    " response against the policy, so it was withheld.",
                ]
                .concat(),
            ),
            None => s.push_str(
                "\"Toolgate could not check this response against the policy, so it was withheld.\"",
            ),
        }
        s.push_str(",\"data\":{\"reason\":\"list_unfilterable\"}}}");
        s
    };
    let each: Vec<String> = if ids.is_empty() {
        pending.iter().map(|p| one(&p.id, Some(p.kind))).collect()
    } else {
        ids.iter()
            .map(|id| one(id, pending.iter().find(|p| p.id == *id).map(|p| p.kind)))
            .collect()
    };
    match each.as_slice() {
        [one] => one.clone(),
        [] => one("null", None),
        many => {
            let mut out = String::from("[");
            push_joined(&mut out, &mut many.iter().map(String::as_str), ",");
            out.push(']');
            out
        }
    }
}
