//! Judging one call by everything but its counters: name, hide, default, action,
//! conditions.

use super::Engine;
use crate::condition::Arguments;
use crate::explain;
use crate::json::{self, JsonStr, Kind as JsonKind, Value};
use crate::mcp::{self, Id, Invalid};
use crate::outcome::{Reason, ToolLabel};
use crate::policy::{Action, DefaultAction, Kind, Limit, Rules, Surface, ToolId};
use crate::reply::{push_json_string, Denial};
use crate::subslice::offset_in;
use crate::uri;

/// One call being judged (borrowing the request body).
pub(super) struct Call<'a> {
    pub kind: Kind,
    pub id: Option<Id<'a>>,
    pub label: ToolLabel,
    pub name: String,
    pub rules: Option<&'a Rules>,
    /// Limits of the rules other readings of a resource URI meet: they count the call too.
    pub also: Vec<&'a Limit>,
    pub arguments: Option<Value<'a>>,
    pub denial: Option<Denial>,
}

impl Engine {
    /// Reads the params of a judged call and judges it.
    pub(super) fn read_call<'a>(
        &'a self,
        kind: Kind,
        id: Option<Id<'a>>,
        params: Option<Value<'a>>,
    ) -> Result<Call<'a>, Invalid> {
        if kind == Kind::Resource {
            let p = params.ok_or_else(|| Invalid("params with a uri are required".into()))?;
            if p.kind() != JsonKind::Object {
                return Err(Invalid("params must be an object".into()));
            }
            let [_, _, _, uri, ..] = mcp::known_members(p, &mcp::PARAMS_KEYS, "params")?;
            let uri = uri
                .and_then(|u| u.as_str())
                .ok_or_else(|| Invalid("params.uri must be a string".into()))?;
            // Conditions on a resource see its params: `args.uri`.
            return Ok(self.judge(kind, id, uri, Some(p), Use::Call));
        }
        let call = mcp::read_named_call(params)?;
        Ok(self.judge(kind, id, call.name, call.arguments, Use::Call))
    }

    /// Reads what a `completion/complete`, a `resources/subscribe` or `unsubscribe`, or a
    /// `subscriptions/listen` names and judges it by access alone: the prompt or resource
    /// template of a completion's `ref` (both when it holds both: a lenient server may read
    /// either), the URI of a subscription, every URI a listen subscribes to. Completing the
    /// arguments of one the agent may not use would show that it exists and what its
    /// arguments may be; a subscription, when it changes.
    pub(super) fn read_access<'a>(
        &'a self,
        access: Access,
        id: Option<Id<'a>>,
        params: Option<Value<'a>>,
    ) -> Result<Option<Call<'a>>, Invalid> {
        let judged = |kind| self.policy().surface(kind).is_some();
        let completion = access == Access::Completion;
        if !(judged(Kind::Resource) || completion && judged(Kind::Prompt)) {
            return Ok(None);
        }
        // Shapes `prompts/get` and `resources/read` refuse are refused here too: a lenient
        // server may read positional params, or a name inside an array as the name.
        let object = |v: Option<Value<'a>>, what: &str| match v {
            Some(v) if v.kind() == JsonKind::Object => Ok(v),
            _ => Err(Invalid(format!("{what} must be an object"))),
        };
        let string = |v: Option<Value<'a>>, what: &str| match v {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| Invalid(format!("{what} must be a string"))),
        };
        let p = object(params, "params")?;
        if access == Access::Listen {
            return self.read_listen(id, p);
        }
        let (name, uri) = if completion {
            let [reference, ..] = mcp::known_members(p, &COMPLETION_KEYS, "params")?;
            let r = object(reference, "params.ref")?;
            let [_, name, uri] = mcp::known_members(r, &REF_KEYS, "params.ref")?;
            let named = (
                string(name, "params.ref.name")?,
                string(uri, "params.ref.uri")?,
            );
            if named == (None, None) {
                return Err(Invalid("params.ref must have a name or a uri".into()));
            }
            named
        } else {
            let [_, _, _, uri, ..] = mcp::known_members(p, &mcp::PARAMS_KEYS, "params")?;
            let uri = string(uri, "params.uri")?;
            if uri.is_none() {
                return Err(Invalid("params.uri is required".into()));
            }
            (None, uri)
        };
        // One request gets one answer: a denial if either is denied.
        let mut out = None;
        for (kind, named) in [(Kind::Prompt, name), (Kind::Resource, uri)] {
            let Some(named) = named.filter(|_| judged(kind)) else {
                continue;
            };
            let call = self.judge(kind, id, named, None, Use::Access);
            let denied = call.denial.is_some();
            out = Some(call);
            if denied {
                break;
            }
        }
        Ok(out)
    }

    /// Judges every URI of a `subscriptions/listen` (2026-07-28, where it replaces
    /// `resources/subscribe`): `params.notifications.resourceSubscriptions`. The answer is
    /// the first denial, or the first URI's allowance.
    fn read_listen<'a>(
        &'a self,
        id: Option<Id<'a>>,
        params: Value<'a>,
    ) -> Result<Option<Call<'a>>, Invalid> {
        let [notifications, _] = mcp::known_members(params, &LISTEN_KEYS, "params")?;
        let Some(notifications) = notifications.filter(|v| v.kind() != JsonKind::Null) else {
            return Ok(None);
        };
        if notifications.kind() != JsonKind::Object {
            return Err(Invalid("params.notifications must be an object".into()));
        }
        let [.., uris] = mcp::known_members(
            notifications,
            &SUBSCRIPTION_FILTER_KEYS,
            "params.notifications",
        )?;
        let Some(uris) = uris.filter(|v| v.kind() != JsonKind::Null) else {
            return Ok(None);
        };
        const WHAT: &str = "params.notifications.resourceSubscriptions";
        if uris.kind() != JsonKind::Array {
            return Err(Invalid(format!("{WHAT} must be an array of URIs")));
        }
        let mut first = None;
        for (i, uri) in uris.elements().enumerate() {
            if i == MAX_LISTENED_URIS {
                return Err(Invalid(format!(
                    "{WHAT} lists more than {MAX_LISTENED_URIS} URIs"
                )));
            }
            let uri = uri
                .as_str()
                .ok_or_else(|| Invalid(format!("{WHAT} must hold only strings")))?;
            let call = self.judge(Kind::Resource, id, uri, None, Use::Access);
            if call.denial.is_some() {
                return Ok(Some(call));
            }
            first.get_or_insert(call);
        }
        Ok(first)
    }

    fn judge<'a>(
        &'a self,
        kind: Kind,
        id: Option<Id<'a>>,
        name: JsonStr<'a>,
        arguments: Option<Value<'a>>,
        usage: Use,
    ) -> Call<'a> {
        let decoded = name.decode();
        let mut out = Call {
            kind,
            id,
            label: ToolLabel::Other,
            name: printable_name(&decoded),
            rules: None,
            also: Vec::new(),
            arguments,
            denial: None,
        };
        let Some(surface) = self.policy().surface(kind) else {
            return out;
        };
        let invalid = match kind {
            Kind::Tool | Kind::Prompt => {
                (!surface.judges_name(&decoded)).then(|| invalid_name(kind))
            }
            Kind::Resource => (!uri::is_acceptable(&decoded) || uri::is_unreadable(&decoded)).then_some((
                Reason::InvalidName,
                "the URI has whitespace, control characters or backslashes, a web host outside ASCII or in IPv6, a Windows drive written other than file:///C:/path, or is over 2048 characters",
            )),
        };
        if let Some((reason, why)) = invalid {
            out.denial = Some(self.denial(kind, &out.name, reason, "params".into(), None, why));
            return out;
        }
        // A template is hidden when a URI it expands to is.
        if kind == Kind::Resource
            && uri::template_readings(&decoded)
                .iter()
                .any(|r| surface.is_hidden(r))
        {
            let rule = surface.rule_path("hide");
            out.denial = Some(self.hidden_denial(surface, &out.name, &decoded, rule));
            return out;
        }
        // A resource is judged as sent and as lenient servers would read it: a denial
        // under any reading denies, and the limits of every rule met count it.
        let readings = if kind == Kind::Resource {
            uri::readings(&decoded)
        } else {
            Vec::new()
        };
        let names =
            std::iter::once(decoded.as_ref()).chain(readings.iter().skip(1).map(String::as_str));
        // The exact entry the name as sent meets, if any.
        let mut as_sent = None;
        for (i, reading) in names.enumerate() {
            // Conditions on `args.uri` read the URI as this reading has it: a server that
            // reads `db://prod/%75sers` reads `db://prod/users`.
            let respelled = (i > 0)
                .then(|| arguments.and_then(|p| with_uri(p, name, reading)))
                .flatten();
            let arguments = match &respelled {
                Some(text) => {
                    match json::parse_strict(text.as_bytes(), self.config.settings.max_json_depth) {
                        Ok(v) => Some(v),
                        // Conditions cannot read this reading: fail closed.
                        Err(_) => {
                            out.denial = Some(self.denial(
                                kind,
                                &out.name,
                                Reason::InvalidName,
                                "params".into(),
                                None,
                                "the params cannot be read under every reading of the URI",
                            ));
                            break;
                        }
                    }
                }
                None => arguments,
            };
            let found = surface.lookup(reading);
            if i == 0 {
                as_sent = found
                    .filter(|(_, r)| r.pattern.is_exact())
                    .map(|(id, _)| id);
            }
            let (rules, denial) =
                self.judge_name(surface, found, surface.is_hidden(reading), arguments, usage);
            if self.merge(&mut out, surface, reading, rules, denial) {
                break;
            }
        }
        // A tool or prompt name is also judged as servers may respell it: what its
        // respellings meet beyond the name as sent can only deny it or count it more.
        let lone = as_sent.is_some_and(|id| surface.respellings.add_nothing_to(id.0));
        // Denied by the default as sent, a name whose respelling is hidden is still hidden
        // to operators (the agent is told the same either way).
        let by_default = out
            .denial
            .as_ref()
            .is_some_and(|d| d.reason == Reason::NotAllowed);
        if let Some(met) = ((out.denial.is_none() || by_default) && !lone)
            .then(|| surface.respelled(&decoded))
            .flatten()
        {
            // Hidden as sent is denied above, so this hiding is the respelling's.
            if met.hidden {
                let (rules, denial) = self.judge_name(surface, None, true, arguments, usage);
                self.merge(&mut out, surface, &decoded, rules, denial);
            } else if out.denial.is_none() {
                for i in met.entries() {
                    let Some(r) = surface.entries.get(i) else {
                        continue;
                    };
                    if out.rules.is_some_and(|o| std::ptr::eq(o, r)) {
                        continue;
                    }
                    let (rules, denial) =
                        self.judge_name(surface, Some((ToolId(i), r)), false, arguments, usage);
                    if self.merge(&mut out, surface, &decoded, rules, denial) {
                        break;
                    }
                }
            }
        }
        if usage == Use::Access {
            // Limits count uses; this is none.
            out.rules = None;
            out.also.clear();
        }
        out
    }

    /// Adds what one reading of a call met to `out`: its rules (the first met label the
    /// call, later ones add their limits) and its denial, if any. Whether it denied.
    fn merge<'a>(
        &self,
        out: &mut Call<'a>,
        surface: &Surface,
        reading: &str,
        rules: Option<(ToolId, &'a Rules)>,
        denial: Option<(Reason, String, String)>,
    ) -> bool {
        if out.rules.is_none() {
            out.rules = rules.map(|(_, r)| r);
            if let (Kind::Tool, Some((id, _))) = (out.kind, rules) {
                out.label = ToolLabel::Policy(id);
            }
        } else if let Some((id, r)) =
            rules.filter(|(_, r)| !out.rules.is_some_and(|o| std::ptr::eq(o, *r)))
        {
            // A limit met twice counts once (limits naming one counter merge anyway).
            for l in &r.limits {
                if !out.also.iter().any(|m| std::ptr::eq(*m, l)) {
                    out.also.push(l);
                }
            }
            // Metrics name the tool a server runs the call as: an exact entry a respelling
            // meets (`cacheCas` is `cache_cas`) rather than a glob the name met as sent.
            let glob_labelled = out.rules.is_some_and(|o| !o.pattern.is_exact());
            if out.kind == Kind::Tool && r.pattern.is_exact() && glob_labelled {
                out.label = ToolLabel::Policy(id);
            }
        }
        let Some((reason, rule, why)) = denial else {
            return false;
        };
        let d = if reason == Reason::Hidden {
            self.hidden_denial(surface, &out.name, reading, rule)
        } else {
            let configured = rules.and_then(|(_, r)| r.reason.as_deref());
            self.denial(out.kind, &out.name, reason, rule, configured, &why)
        };
        out.denial = Some(d);
        out.rules = rules.map(|(_, r)| r);
        // The entry that denied names the call in metrics, as it does in the log.
        if let (Kind::Tool, Some((id, _))) = (out.kind, rules) {
            out.label = ToolLabel::Policy(id);
        }
        true
    }

    /// Judges a call under the rules one reading of its name met (`None`: no entry) and
    /// whether that reading is hidden.
    #[allow(clippy::type_complexity)]
    fn judge_name<'a>(
        &'a self,
        surface: &'a Surface,
        rules: Option<(ToolId, &'a Rules)>,
        hidden: bool,
        arguments: Option<Value<'_>>,
        usage: Use,
    ) -> (
        Option<(ToolId, &'a Rules)>,
        Option<(Reason, String, String)>,
    ) {
        let denial = if hidden {
            // No explanation: `hidden_denial` words what the agent is told.
            Some((Reason::Hidden, surface.rule_path("hide"), String::new()))
        } else {
            match rules {
                None if surface.default == DefaultAction::Deny => Some((
                    Reason::NotAllowed,
                    surface.rule_path("default"),
                    NOT_ALLOWED.into(),
                )),
                None => None,
                Some((_, r)) => match r.action {
                    Action::Deny | Action::RequireApproval => action_denial(surface.kind, r),
                    Action::Allow if usage == Use::Access => None,
                    Action::Allow if r.require.is_empty() && r.deny_if.is_empty() => None,
                    Action::Allow => {
                        let arguments = Arguments::new(arguments);
                        r.require
                            .iter()
                            .find(|c| !c.required_holds(&arguments))
                            .map(|c| {
                                (
                                    Reason::RequireFailed,
                                    c.rule.clone(),
                                    explain::require_failed(c),
                                )
                            })
                            .or_else(|| {
                                r.deny_if
                                    .iter()
                                    .find(|c| c.deny_triggers(&arguments))
                                    .map(|c| {
                                        (
                                            Reason::DenyIfMatched,
                                            c.rule.clone(),
                                            explain::deny_if_matched(c),
                                        )
                                    })
                            })
                    }
                },
            }
        };
        (rules, denial)
    }

    /// The denial of a hidden name, as operators see it (`hidden`), told to the agent as
    /// a name the policy does not name would be: a name that is no valid name is refused
    /// as such, a glob rule that denies its neighbours (as sent, or where neither that nor
    /// the default decides, respelled) denies it alike, and otherwise it is not allowed by
    /// the default. Its own rules (reason, conditions, limits) never show.
    fn hidden_denial(&self, surface: &Surface, name: &str, reading: &str, rule: String) -> Denial {
        let kind = surface.kind;
        let (reason, shown_rule, why, configured) =
            if kind != Kind::Resource && !crate::names::is_tool_name(reading) {
                let (reason, why) = invalid_name(kind);
                (reason, "params".to_string(), why.to_string(), None)
            } else {
                // As a visible name is judged: by the glob it meets as sent, else by the
                // default; where neither denies, by the glob it meets as a server respells
                // it (`secretTool` is `secret_tool` to it, and `secret_*` may deny).
                let denies = |r: &&Rules| action_denial(kind, r).is_some();
                let respelled = || {
                    surface
                        .respellings
                        .word_glob(reading)
                        .and_then(|i| surface.entries.get(i))
                        .filter(denies)
                };
                let glob = match surface.lookup_glob(reading) {
                    Some(r) if denies(&r) => Some(r),
                    Some(_) => respelled(),
                    None if surface.default == DefaultAction::Deny => None,
                    None => respelled(),
                };
                match glob.and_then(|r| Some((action_denial(kind, r)?, r))) {
                    Some(((reason, path, why), r)) => (reason, path, why, r.reason.as_deref()),
                    None => (
                        Reason::NotAllowed,
                        surface.rule_path("default"),
                        NOT_ALLOWED.to_string(),
                        None,
                    ),
                }
            };
        let mut d = self.denial(kind, name, Reason::Hidden, rule, configured, &why);
        d.shown_as = Some((reason, shown_rule));
        d
    }

    /// A denial with its message.
    pub(super) fn denial(
        &self,
        kind: Kind,
        name: &str,
        reason: Reason,
        rule: String,
        configured: Option<&str>,
        why: &str,
    ) -> Denial {
        Denial {
            reason,
            rule,
            shown_as: None,
            counter: None,
            retry_after: None,
            message: explain::denial_message(kind.noun(), name, reason, configured, why),
            limit: None,
        }
    }
}

/// The members of `completion/complete` params Toolgate reads (`ref`) or knows.
const COMPLETION_KEYS: [&str; 4] = ["ref", "argument", "context", "_meta"];
/// The members of a completion's `ref`.
const REF_KEYS: [&str; 3] = ["type", "name", "uri"];
/// The members of `subscriptions/listen` params.
const LISTEN_KEYS: [&str; 2] = ["notifications", "_meta"];
/// The members of a listen's `notifications` (a `SubscriptionFilter`) MCP defines.
const SUBSCRIPTION_FILTER_KEYS: [&str; 4] = [
    "toolsListChanged",
    "promptsListChanged",
    "resourcesListChanged",
    "resourceSubscriptions",
];
/// More URIs in one listen are refused: each is judged, and the body bounds them only
/// loosely.
const MAX_LISTENED_URIS: usize = 1000;

/// The requests judged by access alone ([`Engine::read_access`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// `completion/complete`: the prompt or resource template of its `ref`.
    Completion,
    /// `resources/subscribe` or `unsubscribe`: its `uri`.
    Subscription,
    /// `subscriptions/listen`: every URI it subscribes to.
    Listen,
}

/// What a judged request does with what it names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Calls, reads or gets it: every rule applies.
    Call,
    /// Only touches it (completions, subscriptions): it must not be hidden, denied or
    /// outside the policy, but conditions on arguments and limits on use do not apply.
    Access,
}

/// The JSON text of `params` with its `uri` member, whose string content is `uri`, written
/// as `reading`.
fn with_uri(params: Value<'_>, uri: JsonStr<'_>, reading: &str) -> Option<String> {
    let raw = params.raw();
    let start = offset_in(raw.as_bytes(), uri.raw().as_bytes())?;
    // The quotes around the content.
    let before = raw.get(..start.checked_sub(1)?)?;
    let after = raw.get(start.checked_add(uri.raw().len())?.checked_add(1)?..)?;
    let mut text = String::with_capacity(raw.len() + reading.len());
    text.push_str(before);
    push_json_string(&mut text, reading);
    text.push_str(after);
    Some(text)
}

/// Why a name that is no valid tool or prompt name is refused.
fn invalid_name(kind: Kind) -> (Reason, &'static str) {
    match kind {
        Kind::Tool => (
            Reason::InvalidToolName,
            "the name is not a valid MCP tool name (1 to 128 characters of A-Z a-z 0-9 _ . -) nor one the policy lists",
        ),
        _ => (
            Reason::InvalidName,
            "the name is not a valid prompt name (1 to 128 characters of A-Z a-z 0-9 _ . -) nor one the policy lists",
        ),
    }
}

/// The denial a rule's action makes whatever the arguments, if any: reason, rule path, why.
fn action_denial(kind: Kind, r: &Rules) -> Option<(Reason, String, String)> {
    let (reason, why) = match r.action {
        Action::Deny => (
            Reason::ToolDenied,
            format!("this {} may not be used", kind.noun()),
        ),
        Action::RequireApproval => (
            Reason::ApprovalRequired,
            "it requires human approval, which this gateway cannot grant".into(),
        ),
        Action::Allow => return None,
    };
    Some((reason, format!("{}.action", r.path), why))
}

/// Why a name the policy does not allow (or hides) is refused.
const NOT_ALLOWED: &str = "it is not allowed by policy";

/// A requested name as it may appear in logs and messages: visible ASCII, anything else
/// (spaces, which would start a field of its own in a key=value access log, controls, and
/// Unicode such as bidirectional overrides, which reorder what a log viewer shows) as `?`,
/// at most 128 characters. A valid name is visible ASCII, so it shows as sent.
fn printable_name(decoded: &str) -> String {
    // Nearly every name is visible ASCII: one copy, not a push per character.
    if decoded.len() <= 128 && decoded.bytes().all(|b| b.is_ascii_graphic()) {
        return decoded.to_owned();
    }
    decoded
        .chars()
        .take(128)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}
