//! The engine: one compiled configuration, its counters, and the decision for each request.

use crate::condition::ArgPath;
use crate::config::{Config, GrantSource, Mode};
use crate::explain;
use crate::hash::{siphash, siphash_parts, HashKey};
use crate::http::{self, HeaderList};
use crate::json::{JsonStr, KeyRule, Options, Validator, Value};
use crate::mcp::{self, Envelope, Id, Invalid, Message, NamedCall};
use crate::names::{is_tool_name, NameKey};
use crate::outcome::{
    CallOutcome, CallReport, LimitState, Outcome, Reason, Rejection, Report, ToolLabel, Verdict,
};
use crate::policy::{Action, CounterId, DefaultAction, Increment, Limit, Policy, Scope, ToolRules};
use crate::ratelimit::{
    acquire, release, Admission, CasStore, Clock, CounterKeys, Held, StoreError, SHARED_TAG,
};
use crate::reply::{self, Denial};

/// Values of the request only the host can give (Envoy attributes).
pub trait Attributes {
    /// The attribute at `path` (for example `["source", "address"]`), if present.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
}

/// No attributes (tools outside a proxy).
pub struct NoAttributes;

impl Attributes for NoAttributes {
    fn property(&self, _: &[&str]) -> Option<Vec<u8>> {
        None
    }
}

/// The caller, hashed: credentials are never kept in clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Stable fingerprint for logs (keyed by `hash_salt`).
    pub fingerprint: u64,
    /// The grant's tag in counter slots (keyed by the per-process secret).
    pub tag: u64,
    /// The (grant, session) tag in counter slots.
    pub session_tag: u64,
}

/// What the head of an inspected request told the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The caller, if any grant source was present.
    pub grant: Option<Grant>,
    /// The `x-request-id`, printable, for logs.
    pub request_id: Option<String>,
}

/// The decision on a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// Nothing to inspect: pass untouched.
    Pass,
    /// Buffer the whole body, then call [`Engine::decide`].
    Inspect(RequestInfo),
    /// Decided from the head alone (a refusal, or in shadow mode its report).
    Done(Outcome),
}

/// One `tools/call` being judged.
struct Call<'a> {
    id: Option<Id<'a>>,
    label: ToolLabel,
    name: String,
    rules: Option<&'a ToolRules>,
    arguments: Option<Value<'a>>,
    denial: Option<Denial>,
}

/// A loaded configuration, ready to decide.
pub struct Engine {
    config: Config,
    counters: Vec<CounterKeys>,
    slot_key: HashKey,
    fingerprint_key: HashKey,
}

const FINGERPRINT_DEFAULT_KEY: &[u8] = b"toolgate grant fingerprint";

/// The shared-data namespace: `key_namespace`, else the plugin name, else `default`.
pub fn namespace(config: &Config, plugin_name: &str) -> String {
    match &config.settings.key_namespace {
        Some(ns) => ns.clone(),
        None if !plugin_name.is_empty() => plugin_name.to_string(),
        None => "default".to_string(),
    }
}

fn salt_key(namespace: &str) -> String {
    format!("tg/{namespace}/salt")
}

impl Engine {
    /// Prepares the engine: creates every counter key not yet in the store (Envoy's
    /// configuration canary does this before any worker exists) and reads the
    /// per-process secret salt, creating it from `random` if absent.
    pub fn new(
        config: Config,
        namespace: &str,
        store: &impl CasStore,
        random: [u8; 16],
    ) -> Result<Engine, StoreError> {
        let slots = config.settings.counter_slots.get();
        let counters: Vec<CounterKeys> = config
            .policy
            .counters
            .iter()
            .map(|d| CounterKeys::new(namespace, d, slots))
            .collect();
        for k in &counters {
            k.create(store)?;
        }
        let salt_key = salt_key(namespace);
        let salt = match store.get(&salt_key)? {
            Some((v, _)) if v.len() == 16 => v,
            _ => {
                store.set(&salt_key, &random, 0)?;
                match store.get(&salt_key)? {
                    Some((v, _)) if v.len() == 16 => v,
                    _ => return Err(StoreError("the counter salt could not be stored")),
                }
            }
        };
        let configured = config.settings.hash_salt.as_deref().map(str::as_bytes);
        let fingerprint_key = HashKey::derive(configured.unwrap_or(FINGERPRINT_DEFAULT_KEY));
        let slot_key = HashKey::derive(&salt).mix(fingerprint_key);
        Ok(Engine {
            config,
            counters,
            slot_key,
            fingerprint_key,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.config.policy
    }

    fn shadow(&self) -> bool {
        self.config.settings.mode == Mode::Shadow
    }

    fn refuse(&self, kind: Rejection, detail: String, mut report: Report) -> Outcome {
        let verdict = if self.shadow() {
            Verdict::Forward(Vec::new())
        } else {
            Verdict::Respond(reply::rejection(kind, &detail))
        };
        report.rejection = Some((kind, detail));
        Outcome { verdict, report }
    }

    fn base_report(&self, info: Option<&RequestInfo>) -> Report {
        Report {
            shadow: self.shadow(),
            grant: info
                .and_then(|i| i.grant)
                .map(|g| format!("{:016x}", g.fingerprint)),
            request_id: info.and_then(|i| i.request_id.clone()),
            ..Report::default()
        }
    }

    /// Decides what the head alone allows: pass, refuse, or inspect the body.
    pub fn inspect_head(
        &self,
        method: &[u8],
        headers: &HeaderList<'_>,
        has_body: bool,
        attrs: &dyn Attributes,
    ) -> Head {
        if !http::must_inspect(method, has_body) {
            return Head::Pass;
        }
        let s = &self.config.settings;
        let request_id = http::single(headers, "x-request-id")
            .ok()
            .flatten()
            .map(http::loggable);
        let early = |kind: Rejection, detail: String| {
            let mut report = self.base_report(None);
            report.request_id = request_id.clone();
            Head::Done(self.refuse(kind, detail, report))
        };
        match http::single(headers, "content-type") {
            Err(http::Repeated) => {
                return early(
                    Rejection::InvalidRequest,
                    "repeated Content-Type header".into(),
                )
            }
            Ok(None) => {
                return early(
                    Rejection::UnsupportedMediaType,
                    "no Content-Type; send application/json".into(),
                )
            }
            Ok(Some(v)) if !http::is_json_content_type(v) => {
                return early(
                    Rejection::UnsupportedMediaType,
                    format!(
                        "Content-Type \"{}\" is not application/json",
                        http::loggable(v)
                    ),
                )
            }
            Ok(Some(_)) => {}
        }
        for v in http::values(headers, "content-encoding") {
            if !http::only_codings(v, &[b"identity"]) {
                return early(
                    Rejection::UnsupportedMediaType,
                    format!(
                        "Content-Encoding \"{}\"; send an uncompressed body",
                        http::loggable(v)
                    ),
                );
            }
        }
        for v in http::values(headers, "transfer-encoding") {
            if !http::only_codings(v, &[b"chunked", b"identity"]) {
                return early(
                    Rejection::UnsupportedMediaType,
                    format!("Transfer-Encoding \"{}\"", http::loggable(v)),
                );
            }
        }
        match http::single(headers, "content-length") {
            Err(http::Repeated) => {
                return early(
                    Rejection::InvalidRequest,
                    "repeated Content-Length header".into(),
                )
            }
            Ok(Some(v)) => {
                if http::content_length(v).is_some_and(|n| n > s.max_body_bytes as u64) {
                    return early(
                        Rejection::BodyTooLarge,
                        format!("the body is over {} bytes", s.max_body_bytes),
                    );
                }
            }
            Ok(None) => {}
        }
        let identity_headers = s
            .grant_sources
            .iter()
            .filter_map(|g| match g {
                GrantSource::Header(h) => Some(h.as_str()),
                _ => None,
            })
            .chain([s.session_header.as_str(), "mcp-method", "mcp-name"]);
        for h in identity_headers {
            if http::single(headers, h).is_err() {
                return early(Rejection::InvalidRequest, format!("repeated {h} header"));
            }
        }
        Head::Inspect(RequestInfo {
            grant: self.identify(headers, attrs),
            request_id,
        })
    }

    /// The caller's grant from the first source present.
    fn identify(&self, headers: &HeaderList<'_>, attrs: &dyn Attributes) -> Option<Grant> {
        let s = &self.config.settings;
        let (source, credential) = s.grant_sources.iter().enumerate().find_map(|(i, src)| {
            let value = match src {
                GrantSource::Header(h) => http::values(headers, h).next().map(<[u8]>::to_vec),
                GrantSource::Property(p) => {
                    let path: Vec<&str> = p.iter().map(String::as_str).collect();
                    attrs.property(&path)
                }
                GrantSource::DownstreamAddress => attrs
                    .property(&["source", "address"])
                    .map(|a| http::address_without_port(&a).to_vec()),
            };
            value.filter(|v| !v.is_empty()).map(|v| (i, v))
        })?;
        let session = http::values(headers, &s.session_header)
            .next()
            .unwrap_or(&[]);
        // The source index keeps a header value from posing as another source's value.
        let source = [u8::try_from(source).unwrap_or(u8::MAX)];
        let tag = |t: u64| t.max(SHARED_TAG + 1);
        Some(Grant {
            fingerprint: siphash(self.fingerprint_key, &credential),
            tag: tag(siphash_parts(self.slot_key, &[b"g", &source, &credential])),
            session_tag: tag(siphash_parts(
                self.slot_key,
                &[b"s", &source, &credential, session],
            )),
        })
    }

    /// The refusal of a body found over `max_body_bytes` while buffering.
    pub fn refuse_oversize(&self, info: &RequestInfo) -> Outcome {
        let max = self.config.settings.max_body_bytes;
        self.refuse(
            Rejection::BodyTooLarge,
            format!("the body is over {max} bytes"),
            self.base_report(Some(info)),
        )
    }

    /// The refusal of a body the host could not hand over: fail closed.
    pub fn refuse_unreadable(&self, info: &RequestInfo) -> Outcome {
        self.refuse(
            Rejection::InvalidRequest,
            "the request body could not be read".into(),
            self.base_report(Some(info)),
        )
    }

    /// Decides a complete request body.
    pub fn decide(
        &self,
        info: &RequestInfo,
        body: &[u8],
        store: &impl CasStore,
        clock: &impl Clock,
        validator: &mut Validator,
    ) -> Outcome {
        let s = &self.config.settings;
        let report = self.base_report(Some(info));
        if body.len() > s.max_body_bytes {
            return self.refuse(
                Rejection::BodyTooLarge,
                format!("the body is over {} bytes", s.max_body_bytes),
                report,
            );
        }
        let opts = Options {
            max_depth: s.max_json_depth,
            keys: KeyRule::Folded,
        };
        let root = match validator.validate(body, opts) {
            Ok(v) => v,
            Err(e) if e.is_syntax() => {
                return self.refuse(Rejection::ParseError, e.to_string(), report)
            }
            Err(e) => return self.refuse(Rejection::InvalidRequest, e.to_string(), report),
        };
        let (messages, batch) = match mcp::read(root, s.max_batch_size) {
            Ok(Envelope::Single(m)) => (vec![m], false),
            Ok(Envelope::Batch(ms)) => (ms, true),
            Err(Invalid(why)) => return self.refuse(Rejection::InvalidRequest, why, report),
        };
        let mut calls = Vec::new();
        for m in &messages {
            let Message::Request { id, method, params } = *m else {
                continue;
            };
            if !is_tools_call(method) {
                continue;
            }
            match mcp::read_named_call(params) {
                Ok(call) => calls.push(self.judge(id, call)),
                Err(Invalid(why)) => return self.refuse(Rejection::InvalidParams, why, report),
            }
        }
        self.conclude(calls, batch, info, store, clock, report)
    }

    /// Everything but the counters: name, hide, default, action, conditions.
    fn judge<'a>(&'a self, id: Option<Id<'a>>, call: NamedCall<'a>) -> Call<'a> {
        let name = call.name.decode();
        let policy = &self.config.policy;
        let mut out = Call {
            id,
            label: ToolLabel::Other,
            name: printable_name(call.name),
            rules: None,
            arguments: call.arguments,
            denial: None,
        };
        let Some(key) = NameKey::new(&name).filter(|_| is_tool_name(&name)) else {
            out.denial = Some(self.denial(
                &out.name,
                Reason::InvalidToolName,
                "params.name".into(),
                None,
                "the name is not a valid MCP tool name (1 to 128 characters of A-Z a-z 0-9 _ . -)",
            ));
            return out;
        };
        let rules = policy.lookup(&key);
        if let Some((id, r)) = rules {
            out.label = ToolLabel::Policy(id);
            out.rules = Some(r);
        }
        let configured = out.rules.and_then(|r| r.reason.as_deref());
        let denial = if policy.hide_all || out.rules.is_some_and(|r| r.hidden) {
            Some((
                Reason::Hidden,
                "hide".to_string(),
                "it is hidden by policy".to_string(),
            ))
        } else {
            match out.rules {
                None if policy.default == DefaultAction::Deny => Some((
                    Reason::NotAllowed,
                    "default".into(),
                    "it is not allowed by policy".into(),
                )),
                None => None,
                Some(r) => match r.action {
                    Action::Deny => Some((
                        Reason::ToolDenied,
                        format!("{}.action", r.path),
                        "this tool may not be called".into(),
                    )),
                    Action::RequireApproval => Some((
                        Reason::ApprovalRequired,
                        format!("{}.action", r.path),
                        "this tool requires human approval, which this gateway cannot grant".into(),
                    )),
                    Action::Allow => r
                        .require
                        .iter()
                        .find(|c| !c.required_holds(call.arguments))
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
                                .find(|c| c.deny_triggers(call.arguments))
                                .map(|c| {
                                    (
                                        Reason::DenyIfMatched,
                                        c.rule.clone(),
                                        explain::deny_if_matched(c),
                                    )
                                })
                        }),
                },
            }
        };
        if let Some((reason, rule, why)) = denial {
            out.denial = Some(self.denial(&out.name, reason, rule, configured, &why));
        }
        out
    }

    fn denial(
        &self,
        tool: &str,
        reason: Reason,
        rule: String,
        configured: Option<&str>,
        why: &str,
    ) -> Denial {
        Denial {
            reason,
            rule,
            counter: None,
            retry_after: None,
            message: explain::denial_message(tool, reason, configured, why),
            limit: None,
        }
    }

    /// Counts every allowed call (all or nothing), then builds the verdict.
    fn conclude(
        &self,
        mut calls: Vec<Call<'_>>,
        batch: bool,
        info: &RequestInfo,
        store: &impl CasStore,
        clock: &impl Clock,
        mut report: Report,
    ) -> Outcome {
        let mut held: Vec<(CounterId, Held)> = Vec::new();
        let mut states: Vec<LimitState> = Vec::new();
        if calls.iter().all(|c| c.denial.is_none()) {
            let now = clock.now_nanos();
            for c in &mut calls {
                if let Err(d) = self.count(c, info, store, now, &mut held, &mut states, &mut report)
                {
                    c.denial = Some(*d);
                    break;
                }
            }
            if calls.iter().any(|c| c.denial.is_some()) {
                let retries = self.config.settings.cas_retries.get();
                for (id, h) in held.drain(..).rev() {
                    if let Some(keys) = self.counters.get(id.0) {
                        if let Err(e) = release(store, keys, h, retries) {
                            report.store_error = Some(e.0.to_string());
                        }
                    }
                }
                states.clear();
            }
        }
        let denied = calls.iter().any(|c| c.denial.is_some());
        if denied && batch {
            for c in &mut calls {
                if c.denial.is_none() {
                    c.denial = Some(self.denial(
                        &c.name,
                        Reason::BatchRefused,
                        "batch".into(),
                        None,
                        "another call in the same batch was denied, so none of it was sent",
                    ));
                }
            }
        }
        report.calls = calls
            .iter()
            .map(|c| CallReport {
                tool: c.label,
                name: c.name.clone(),
                outcome: match &c.denial {
                    None => CallOutcome::Allowed,
                    Some(d) => CallOutcome::Denied {
                        reason: d.reason,
                        rule: d.rule.clone(),
                        counter: d.counter.clone(),
                    },
                },
            })
            .collect();
        if !denied || self.shadow() {
            return Outcome {
                verdict: Verdict::Forward(states),
                report,
            };
        }
        Outcome {
            verdict: Verdict::Respond(self.render(&calls, batch)),
            report,
        }
    }

    fn render(&self, calls: &[Call<'_>], batch: bool) -> crate::outcome::Reply {
        let s = &self.config.settings;
        let (style, code) = (s.denial_style, s.denial_error_code);
        let mut headers = Vec::new();
        if let Some(l) = calls
            .iter()
            .filter_map(|c| c.denial.as_ref())
            .find_map(|d| d.limit.as_ref())
        {
            reply::rate_limit_headers(l, &mut headers);
        }
        let mut body = String::new();
        let answered: Vec<&Call<'_>> = calls.iter().filter(|c| c.id.is_some()).collect();
        if batch && !answered.is_empty() {
            body.push('[');
            for (i, c) in answered.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                if let Some(d) = &c.denial {
                    reply::push_denial(&mut body, c.id.map(|i| i.raw()), style, code, d);
                }
            }
            body.push(']');
        } else {
            let first = calls
                .iter()
                .filter_map(|c| c.denial.as_ref().map(|d| (c, d)))
                .find(|(_, d)| d.reason != Reason::BatchRefused);
            if let Some((c, d)) = first {
                let id = if batch { None } else { c.id.map(|i| i.raw()) };
                reply::push_denial(&mut body, id, style, code, d);
            }
        }
        reply::json_reply(body, headers)
    }

    /// Counts one call against its limits.
    #[allow(clippy::too_many_arguments)]
    fn count(
        &self,
        c: &Call<'_>,
        info: &RequestInfo,
        store: &impl CasStore,
        now: u64,
        held: &mut Vec<(CounterId, Held)>,
        states: &mut Vec<LimitState>,
        report: &mut Report,
    ) -> Result<(), Box<Denial>> {
        let policy = &self.config.policy;
        let configured = c.rules.and_then(|r| r.reason.as_deref());
        let own = c.rules.map(|r| r.limits.as_slice()).unwrap_or(&[]);
        // Limits naming one counter count once: the smallest max, the largest increment.
        let mut groups: Vec<(CounterId, &Limit, u64)> = Vec::new();
        for l in own.iter().chain(policy.all_tools.iter()) {
            let amount = self.amount(l, c.arguments).map_err(|why| {
                self.denial(
                    &c.name,
                    Reason::InvalidIncrement,
                    l.rule.clone(),
                    configured,
                    &why,
                )
            })?;
            match groups.iter_mut().find(|(id, _, _)| *id == l.counter) {
                Some(g) => {
                    if l.max < g.1.max {
                        g.1 = l;
                    }
                    g.2 = g.2.max(amount);
                }
                None => groups.push((l.counter, l, amount)),
            }
        }
        let retries = self.config.settings.cas_retries.get();
        for (id, limit, amount) in groups {
            let (Some(def), Some(keys)) = (policy.counter(id), self.counters.get(id.0)) else {
                return Err(Box::new(self.denial(
                    &c.name,
                    Reason::StoreError,
                    limit.rule.clone(),
                    None,
                    "the policy's counters are inconsistent",
                )));
            };
            let tag = match (def.scope, info.grant) {
                (Scope::Global, _) => SHARED_TAG,
                (Scope::Grant, Some(g)) => g.tag,
                (Scope::Session, Some(g)) => g.session_tag,
                (_, None) => {
                    return Err(Box::new(self.denial(
                        &c.name,
                        Reason::NoGrant,
                        limit.rule.clone(),
                        None,
                        "the caller could not be identified for its rate limit (no credential was sent)",
                    )))
                }
            };
            let window = def.window.start(now / 1_000_000_000);
            let reset = def.window.seconds_left(now);
            let max = limit.max.get();
            let state = |count: u64| LimitState {
                counter: def.name.clone(),
                max,
                window_secs: def.window.seconds(),
                remaining: max.saturating_sub(count),
                reset_secs: reset,
            };
            match acquire(store, keys, tag, window, amount, max, retries) {
                Ok(Admission::Admitted(h)) => {
                    held.push((id, h));
                    states.push(state(h.count));
                }
                Ok(Admission::Denied { count }) => {
                    let unit = if limit.increment == Increment::One {
                        "calls"
                    } else {
                        "units"
                    };
                    let why = format!(
                        "rate limit of {max} {unit} per {} reached (counter \"{}\"); retry in {reset} seconds",
                        def.window.name(),
                        def.name
                    );
                    let mut d = self.denial(
                        &c.name,
                        Reason::RateLimited,
                        limit.rule.clone(),
                        configured,
                        &why,
                    );
                    d.counter = Some(def.name.clone());
                    d.retry_after = Some(reset);
                    d.limit = Some(state(count));
                    return Err(Box::new(d));
                }
                Err(e) => {
                    report.store_error = Some(e.0.to_string());
                    let mut d = self.denial(
                        &c.name,
                        Reason::StoreError,
                        limit.rule.clone(),
                        None,
                        "the rate-limit store failed, so the call was not sent; try again shortly",
                    );
                    d.counter = Some(def.name.clone());
                    d.retry_after = Some(1);
                    return Err(Box::new(d));
                }
            }
        }
        Ok(())
    }

    /// Units a call adds under a limit.
    fn amount(&self, l: &Limit, arguments: Option<Value<'_>>) -> Result<u64, String> {
        let path: &ArgPath = match &l.increment {
            Increment::One => return Ok(1),
            Increment::From(p) => p,
        };
        let bad = || {
            format!(
                "argument \"{}\" must be a non-negative number (it is counted against a limit)",
                path.argument()
            )
        };
        let r = path.resolve(arguments);
        // Under either reading of the keys, count the larger amount.
        let mut amount = None;
        for v in [r.exact, r.folded].into_iter().flatten() {
            let n = v.as_number().and_then(|n| n.ceil_u64()).ok_or_else(bad)?;
            amount = Some(amount.map_or(n, |a: u64| a.max(n)));
        }
        amount.ok_or_else(bad)
    }
}

fn is_tools_call(method: JsonStr<'_>) -> bool {
    NameKey::new(&method.decode()).is_some_and(|k| k.as_str() == "tools/call")
}

/// A requested name as it may appear in logs and messages: printable, at most 128 chars.
fn printable_name(name: JsonStr<'_>) -> String {
    name.chars()
        .take(128)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
