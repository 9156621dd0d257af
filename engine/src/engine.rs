//! The engine: one compiled configuration, its counters, and the decision for each request.

use crate::condition::ArgPath;
use crate::config::{Config, DenialStyle, GrantSource, Mode};
use crate::explain;
use crate::hash::{siphash, siphash_parts, HashKey};
use crate::http::{self, HeaderList};
use crate::json::{JsonStr, KeyRule, Kind as JsonKind, Options, Validator, Value};
use crate::listing::{ListRules, PendingList};
use crate::mcp::{self, Envelope, Id, Invalid, Message};
use crate::mcp_headers;
use crate::names::{canonical_method, is_tool_name};
use crate::outcome::{
    CallOutcome, CallReport, Forward, LimitState, Outcome, Reason, Rejection, Report, ToolLabel,
    Verdict,
};
use crate::policy::{
    Action, CounterId, DefaultAction, Increment, Kind, Limit, Policy, Rules, Scope, Surface,
};
use crate::ratelimit::{
    acquire, release, Admission, CasStore, Clock, CounterKeys, Held, StoreError, SHARED_TAG,
};
use crate::reply::{self, Denial};
use crate::uri;

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
    /// The `Mcp-Method` header (MCP 2026-07-28), as sent.
    pub mcp_method: Option<Vec<u8>>,
    /// The `Mcp-Name` header, as sent (possibly base64-wrapped).
    pub mcp_name: Option<Vec<u8>>,
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

/// How a response must be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseMode {
    /// Nothing to filter.
    Pass,
    /// A JSON body: buffer it, then filter.
    Json,
    /// An event stream: filter event by event.
    Sse,
    /// Something that cannot be filtered (compressed, unknown type): replace it.
    Fail,
}

/// One call being judged.
struct Call<'a> {
    kind: Kind,
    id: Option<Id<'a>>,
    label: ToolLabel,
    name: String,
    rules: Option<&'a Rules>,
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

    fn refuse_with(
        &self,
        kind: Rejection,
        detail: String,
        id: Option<&str>,
        mut report: Report,
    ) -> Outcome {
        let verdict = if self.shadow() {
            Verdict::Forward(Forward::default())
        } else {
            Verdict::Respond(reply::rejection_for(kind, &detail, id))
        };
        report.rejection = Some((kind, detail));
        Outcome { verdict, report }
    }

    fn refuse(&self, kind: Rejection, detail: String, report: Report) -> Outcome {
        self.refuse_with(kind, detail, None, report)
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
        let header = |name: &str| http::values(headers, name).next().map(<[u8]>::to_vec);
        Head::Inspect(RequestInfo {
            grant: self.identify(headers, attrs),
            request_id,
            mcp_method: header("mcp-method"),
            mcp_name: header("mcp-name"),
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
        if info.mcp_method.is_some() || info.mcp_name.is_some() {
            if let Err(why) = mcp_headers::check(
                info.mcp_method.as_deref(),
                info.mcp_name.as_deref(),
                &messages,
                batch,
            ) {
                let id = match messages.first() {
                    Some(Message::Request { id: Some(id), .. }) if !batch => Some(id.raw()),
                    _ => None,
                };
                return self.refuse_with(Rejection::HeaderMismatch, why, id, report);
            }
        }
        let rules = self.list_rules();
        let mut calls = Vec::new();
        let mut lists = Vec::new();
        for m in &messages {
            let Message::Request { id, method, params } = *m else {
                continue;
            };
            let Some(method) = canonical_method(&method.decode()) else {
                continue;
            };
            let judged = match method.as_str() {
                "tools/call" => Some(Kind::Tool),
                "prompts/get" if self.policy().prompts.is_some() => Some(Kind::Prompt),
                "resources/read" if self.policy().resources.is_some() => Some(Kind::Resource),
                "tools/list" | "resources/list" | "prompts/list" => {
                    let kind = match method.as_str() {
                        "tools/list" => Kind::Tool,
                        "resources/list" => Kind::Resource,
                        _ => Kind::Prompt,
                    };
                    if let (Some(id), true) = (id, rules.filters(kind)) {
                        lists.push(PendingList {
                            id: id.raw().to_string(),
                            kind,
                        });
                    }
                    None
                }
                _ => None,
            };
            let Some(kind) = judged else {
                continue;
            };
            match self.read_call(kind, id, params) {
                Ok(call) => calls.push(call),
                Err(Invalid(why)) => return self.refuse(Rejection::InvalidParams, why, report),
            }
        }
        self.conclude(calls, lists, batch, info, store, clock, report)
    }

    /// The rules for filtering list responses.
    pub fn list_rules(&self) -> ListRules<'_> {
        ListRules {
            policy: &self.config.policy,
            hide_denied_tools: self.config.settings.hide_denied_tools,
            max_depth: self.config.settings.max_json_depth,
        }
    }

    /// How to treat the response to a request with list responses to filter.
    pub fn response_mode(
        &self,
        status: &[u8],
        content_type: Option<&[u8]>,
        content_encoding: Option<&[u8]>,
    ) -> ResponseMode {
        if content_encoding.is_some_and(|e| !http::only_codings(e, &[b"identity"])) {
            return ResponseMode::Fail;
        }
        let mime = content_type
            .and_then(|c| c.split(|&b| b == b';').next())
            .map(|m| String::from_utf8_lossy(m).trim().to_ascii_lowercase());
        match mime.as_deref() {
            Some("application/json") => ResponseMode::Json,
            Some("text/event-stream") => ResponseMode::Sse,
            _ if status.starts_with(b"2") => ResponseMode::Fail,
            _ => ResponseMode::Pass,
        }
    }

    /// Reads the params of a judged call.
    fn read_call<'a>(
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
            mcp::check_member_names(p, &mcp::PARAMS_KEYS, "params")?;
            let uri = p
                .get("uri")
                .and_then(|u| u.as_str())
                .ok_or_else(|| Invalid("params.uri must be a string".into()))?;
            // Conditions on a resource see its params: `args.uri`.
            return Ok(self.judge(kind, id, uri, Some(p)));
        }
        let call = mcp::read_named_call(params)?;
        Ok(self.judge(kind, id, call.name, call.arguments))
    }

    /// Everything but the counters: name, hide, default, action, conditions.
    fn judge<'a>(
        &'a self,
        kind: Kind,
        id: Option<Id<'a>>,
        name: JsonStr<'a>,
        arguments: Option<Value<'a>>,
    ) -> Call<'a> {
        let decoded = name.decode();
        let mut out = Call {
            kind,
            id,
            label: ToolLabel::Other,
            name: printable_name(name),
            rules: None,
            arguments,
            denial: None,
        };
        let Some(surface) = self.policy().surface(kind) else {
            return out;
        };
        let invalid = match kind {
            Kind::Tool => (!is_tool_name(&decoded)).then_some((
                Reason::InvalidToolName,
                "the name is not a valid MCP tool name (1 to 128 characters of A-Z a-z 0-9 _ . -)",
            )),
            Kind::Prompt => (!is_tool_name(&decoded)).then_some((
                Reason::InvalidName,
                "the name is not a valid prompt name (1 to 128 characters of A-Z a-z 0-9 _ . -)",
            )),
            Kind::Resource => (!uri::is_acceptable(&decoded)).then_some((
                Reason::InvalidName,
                "the URI has whitespace, control characters or backslashes, or is over 2048 characters",
            )),
        };
        if let Some((reason, why)) = invalid {
            out.denial = Some(self.denial(kind, &out.name, reason, "params".into(), None, why));
            return out;
        }
        // A resource is judged as sent and as a lenient server would read it.
        let sent = decoded.into_owned();
        let lenient = (kind == Kind::Resource)
            .then(|| uri::normalize(&sent))
            .filter(|l| *l != sent);
        let readings: Vec<String> = std::iter::once(sent).chain(lenient).collect();
        for reading in &readings {
            let (rules, denial) = self.judge_name(surface, reading, arguments);
            if out.rules.is_none() {
                out.rules = rules.map(|(_, r)| r);
                if let (Kind::Tool, Some((id, _))) = (kind, rules) {
                    out.label = ToolLabel::Policy(id);
                }
            }
            if let Some((reason, rule, why)) = denial {
                let configured = rules.and_then(|(_, r)| r.reason.as_deref());
                out.denial = Some(self.denial(kind, &out.name, reason, rule, configured, &why));
                out.rules = rules.map(|(_, r)| r);
                break;
            }
        }
        out
    }

    #[allow(clippy::type_complexity)]
    fn judge_name<'a>(
        &'a self,
        surface: &'a Surface,
        name: &str,
        arguments: Option<Value<'_>>,
    ) -> (
        Option<(crate::policy::ToolId, &'a Rules)>,
        Option<(Reason, String, String)>,
    ) {
        let rules = surface.lookup(name);
        let denial = if surface.is_hidden(name) {
            Some((
                Reason::Hidden,
                surface.rule_path("hide"),
                "it is hidden by policy".to_string(),
            ))
        } else {
            match rules {
                None if surface.default == DefaultAction::Deny => Some((
                    Reason::NotAllowed,
                    surface.rule_path("default"),
                    "it is not allowed by policy".into(),
                )),
                None => None,
                Some((_, r)) => match r.action {
                    Action::Deny => Some((
                        Reason::ToolDenied,
                        format!("{}.action", r.path),
                        format!("this {} may not be used", surface.kind.noun()),
                    )),
                    Action::RequireApproval => Some((
                        Reason::ApprovalRequired,
                        format!("{}.action", r.path),
                        "it requires human approval, which this gateway cannot grant".into(),
                    )),
                    Action::Allow => r
                        .require
                        .iter()
                        .find(|c| !c.required_holds(arguments))
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
                                .find(|c| c.deny_triggers(arguments))
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
        (rules, denial)
    }

    fn denial(
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
            counter: None,
            retry_after: None,
            message: explain::denial_message(kind.noun(), name, reason, configured, why),
            limit: None,
        }
    }

    /// Counts every allowed call (all or nothing), then builds the verdict.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &self,
        mut calls: Vec<Call<'_>>,
        lists: Vec<PendingList>,
        batch: bool,
        info: &RequestInfo,
        store: &impl CasStore,
        clock: &impl Clock,
        mut report: Report,
    ) -> Outcome {
        let mut held: Vec<(CounterId, Held)> = Vec::new();
        let mut limits: Vec<LimitState> = Vec::new();
        if calls.iter().all(|c| c.denial.is_none()) {
            let now = clock.now_nanos();
            for c in &mut calls {
                if let Err(d) = self.count(c, info, store, now, &mut held, &mut limits, &mut report)
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
                limits.clear();
            }
        }
        let denied = calls.iter().any(|c| c.denial.is_some());
        if denied && batch {
            for c in &mut calls {
                if c.denial.is_none() {
                    c.denial = Some(self.denial(
                        c.kind,
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
                kind: c.kind,
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
                verdict: Verdict::Forward(Forward { limits, lists }),
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
        let code = s.denial_error_code;
        // Only a tool call has a result type that can carry an error for the model.
        let style = |c: &Call<'_>| {
            if c.kind == Kind::Tool {
                s.denial_style
            } else {
                DenialStyle::Error
            }
        };
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
                    reply::push_denial(&mut body, c.id.map(|i| i.raw()), style(c), code, d);
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
                reply::push_denial(&mut body, id, style(c), code, d);
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
        let shared: &[Limit] = if c.kind == Kind::Tool {
            &policy.all_tools
        } else {
            &[]
        };
        // Limits naming one counter count once: the smallest max, the largest increment.
        let mut groups: Vec<(CounterId, &Limit, u64)> = Vec::new();
        for l in own.iter().chain(shared.iter()) {
            let amount = self.amount(l, c.arguments).map_err(|why| {
                Box::new(self.denial(
                    c.kind,
                    &c.name,
                    Reason::InvalidIncrement,
                    l.rule.clone(),
                    configured,
                    &why,
                ))
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
                    c.kind,
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
                        c.kind,
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
                        c.kind,
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
                        c.kind,
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

/// A requested name as it may appear in logs and messages: printable, at most 128 chars.
fn printable_name(name: JsonStr<'_>) -> String {
    name.chars()
        .take(128)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
