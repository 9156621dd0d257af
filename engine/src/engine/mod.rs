//! The engine: one compiled configuration, its counters, and the decision for each request.
//!
//! A request moves through: the head ([`Engine::inspect_head`]: pass, refuse, or inspect),
//! the body ([`Engine::decide`]: parse, judge each call, count), and, when a fleet-wide
//! limit applies, the rate limit service's answer ([`Engine::resume`]).

mod conclude;
mod count;
mod judge;

pub use conclude::{Consultation, ServiceAnswer};

use crate::config::{Config, GrantSource, Mode};
use crate::hash::{siphash_parts_under, HashKey};
use crate::http::{self, HeadIndex, HeaderList};
use crate::json::{KeyRule, Options, Validator};
use crate::legacy;
use crate::listing::{ListRules, PendingList};
use crate::mcp::{self, Envelope, Id, Invalid, Message};
use crate::mcp_headers;
use crate::names::canonical_method;
use crate::outcome::{Forward, Outcome, Rejection, Report, Verdict};
use crate::policy::{Kind, Policy, Scope};
use crate::query;
use crate::ratelimit::{CasStore, Clock, CounterKeys, StoreError, SHARED_TAG};
use crate::reply;
use judge::Access;
use std::borrow::Cow;

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
    /// The (grant, session) tag in counter slots (0 when no counter is per session).
    pub session_tag: u64,
    /// The (grant, session) fingerprint the rate limit service sees (keyed by `hash_salt`;
    /// 0 when no counter is per session).
    pub session_fingerprint: u64,
}

/// What the head of an inspected request told the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The caller, if any grant source was present.
    pub grant: Option<Grant>,
    /// The `x-request-id`, printable, for logs.
    pub request_id: Option<String>,
    /// The headers mirroring the body (MCP 2026-07-28), as sent.
    pub mirrored: mcp_headers::Mirrored,
    /// A message POST of the 2024-11-05 transport: its answer travels on the GET stream.
    pub legacy_sse: bool,
}

/// The decision on a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// Nothing to inspect: pass untouched.
    Pass,
    /// A GET: pass it, but an event stream answering it may carry answers to rewritten
    /// 2024-11-05 transport messages, to restore with [`crate::legacy::restore`].
    Watch,
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

/// A loaded configuration, ready to decide.
pub struct Engine {
    config: Config,
    counters: Vec<CounterKeys>,
    /// The one policy entry that uses each counter, if only one does (fleet descriptors
    /// name the tool only then, so a shared counter stays one count at the service).
    counter_owner: Vec<Option<String>>,
    slot_key: HashKey,
    fingerprint_key: HashKey,
    /// Whether any counter is per session (else session hashes are never needed).
    counts_sessions: bool,
    /// The header names the head is indexed by: [`HEAD_NAMES`], the session header, then
    /// each grant source header in order.
    head_names: Vec<String>,
    /// Whether list answers of any kind are filtered (asked on every request).
    hides_lists: bool,
}

/// Positions in [`Engine::head_names`].
mod at {
    pub const CONTENT_TYPE: usize = 0;
    pub const CONTENT_ENCODING: usize = 1;
    pub const TRANSFER_ENCODING: usize = 2;
    pub const CONTENT_LENGTH: usize = 3;
    pub const MCP_METHOD: usize = 4;
    pub const MCP_NAME: usize = 5;
    pub const UPGRADE: usize = 6;
    pub const SESSION: usize = 7;
    /// The first grant source header.
    pub const GRANTS: usize = 8;
}

/// The fixed head names, in [`at`] order.
const HEAD_NAMES: [&str; 7] = [
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "content-length",
    mcp_headers::METHOD_HEADER,
    mcp_headers::NAME_HEADER,
    "upgrade",
];

/// The source every grant header answers as: they are one namespace of credentials.
const HEADER_SOURCE: usize = usize::MAX;

const FINGERPRINT_DEFAULT_KEY: &[u8] = b"toolgate grant fingerprint";

/// The id a refusal of a request that was read answers: its own, so a client can match
/// the error to its call, except in a batch, where no single request is answered (null).
fn answered_id(id: Option<Id<'_>>, batch: bool) -> Option<&str> {
    id.filter(|_| !batch).map(|i| i.raw())
}

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
        let counter_owner = counter_owners(&config.policy);
        let counts_sessions = config
            .policy
            .counters
            .iter()
            .any(|c| c.scope == Scope::Session);
        // A plain loop: a chain of iterators expands to a large state machine.
        let mut head_names: Vec<String> = HEAD_NAMES.iter().map(|n| n.to_string()).collect();
        head_names.push(config.settings.session_header.to_ascii_lowercase());
        for g in &config.settings.grant_sources {
            if let GrantSource::Header(h) = g {
                head_names.push(h.to_ascii_lowercase());
            }
        }
        let hides_lists = ListRules {
            policy: &config.policy,
            hide_denied_tools: config.settings.hide_denied_tools,
            max_depth: config.settings.max_json_depth,
        }
        .hides_anything();
        Ok(Engine {
            config,
            counters,
            counter_owner,
            slot_key,
            fingerprint_key,
            counts_sessions,
            head_names,
            hides_lists,
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
            grant: info.and_then(|i| i.grant).map(|g| g.fingerprint),
            request_id: info.and_then(|i| i.request_id.clone()),
            legacy_sse: info.is_some_and(|i| i.legacy_sse),
            ..Report::default()
        }
    }

    /// Refuses a request on its head alone.
    fn refuse_head(&self, kind: Rejection, detail: String, request_id: Option<String>) -> Head {
        let mut report = self.base_report(None);
        report.request_id = request_id;
        Head::Done(self.refuse(kind, detail, report))
    }

    /// Decides what the head alone allows: pass, refuse, or inspect the body.
    pub fn inspect_head(
        &self,
        method: &[u8],
        headers: &HeaderList<'_>,
        has_body: bool,
        attrs: &dyn Attributes,
    ) -> Head {
        // Before the head is indexed: the first request id sent is logged.
        let refuse_head = |kind: Rejection, detail: String| {
            let request_id = request_id(headers);
            self.refuse_head(kind, detail, request_id)
        };
        let path = http::pseudo_header(headers, ":path");
        let query = query::read(path);
        if let Some(member) = query.member {
            return refuse_head(
                Rejection::InvalidRequest,
                format!("the query string names the JSON-RPC member \"{member}\"; send the message as the body of a POST"),
            );
        }
        if !http::must_inspect(method, has_body) {
            // An HTTP/2 extended CONNECT may end its stream at once and still be upgraded
            // upstream (see below).
            if opens_a_tunnel(method, headers) {
                return refuse_head(Rejection::InvalidRequest, TUNNEL_REFUSED.into());
            }
            // Clients send these headers only with a body; on a body-less GET or DELETE they
            // name a call that a server routing on headers could act on, unjudged.
            let names_a_call = headers.iter().any(|(k, _)| mcp_headers::names_a_call(k));
            if !names_a_call {
                return if method.eq_ignore_ascii_case(b"GET") {
                    Head::Watch
                } else {
                    Head::Pass
                };
            }
            return refuse_head(
                Rejection::HeaderMismatch,
                "Mcp-Method, Mcp-Name and Mcp-Param headers describe a request in the body, but there is no body"
                    .into(),
            );
        }
        let s = &self.config.settings;
        let head = HeadIndex::new(headers, &self.head_names);
        let request_id = request_id(headers);
        let early =
            |kind: Rejection, detail: String| self.refuse_head(kind, detail, request_id.clone());
        // Rare: only with an Upgrade header is every value looked at.
        if (head.first(at::UPGRADE).is_some() || method.eq_ignore_ascii_case(b"CONNECT"))
            && opens_a_tunnel(method, headers)
        {
            return early(Rejection::InvalidRequest, TUNNEL_REFUSED.into());
        }
        match head.single(at::CONTENT_TYPE) {
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
        // Rare: only then is every value looked at.
        if head.first(at::CONTENT_ENCODING).is_some() {
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
        }
        if head.first(at::TRANSFER_ENCODING).is_some() {
            for v in http::values(headers, "transfer-encoding") {
                if !http::only_codings(v, &[b"chunked", b"identity"]) {
                    return early(
                        Rejection::UnsupportedMediaType,
                        format!("Transfer-Encoding \"{}\"", http::loggable(v)),
                    );
                }
            }
        }
        match head.single(at::CONTENT_LENGTH) {
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
        let identity =
            (at::GRANTS..self.head_names.len()).chain([at::SESSION, at::MCP_METHOD, at::MCP_NAME]);
        for i in identity {
            if head.repeated(i) {
                let name = self.head_names.get(i).map_or("", String::as_str);
                return early(Rejection::InvalidRequest, format!("repeated {name} header"));
            }
        }
        let header = |i: usize| head.first(i).map(<[u8]>::to_vec);
        let params = match mcp_headers::params(headers) {
            Ok(p) => p,
            Err(why) => return early(Rejection::InvalidRequest, why),
        };
        let grant = match self.identify(&head, &query, attrs) {
            Ok(grant) => grant,
            Err(why) => return early(Rejection::InvalidRequest, why),
        };
        Head::Inspect(RequestInfo {
            grant,
            request_id,
            mirrored: mcp_headers::Mirrored {
                method: header(at::MCP_METHOD),
                name: header(at::MCP_NAME),
                params,
            },
            legacy_sse: legacy::is_message_post(path, headers),
        })
    }

    /// The caller's grant from the first source present. Grant headers are one namespace
    /// (the same credential through any of them is one grant), and a request whose grant
    /// headers carry different credentials is refused: the server may authenticate by the
    /// one Toolgate would not count.
    fn identify(
        &self,
        head: &HeadIndex<'_>,
        query: &query::Query,
        attrs: &dyn Attributes,
    ) -> Result<Option<Grant>, String> {
        let s = &self.config.settings;
        let mut header_source = at::GRANTS;
        let mut from_header: Option<Cow<'_, [u8]>> = None;
        let mut found: Option<(usize, Cow<'_, [u8]>)> = None;
        for (i, src) in s.grant_sources.iter().enumerate() {
            let (source, value) = match src {
                GrantSource::Header(name) => {
                    header_source += 1;
                    // Authorization, Proxy-Authorization and their kin carry a scheme.
                    let scheme = name.ends_with("authorization");
                    let Some(v) = head.first(header_source - 1) else {
                        continue;
                    };
                    let v = http::credential(v, scheme)?;
                    match &from_header {
                        _ if v.is_empty() => continue,
                        Some(first) if v != *first => {
                            return Err("grant headers with different credentials; send one".into())
                        }
                        Some(_) => continue,
                        None => from_header = Some(v.clone()),
                    }
                    (HEADER_SOURCE, v)
                }
                // Only headers are looked at once a grant is found: they may conflict.
                _ if found.is_some() => continue,
                GrantSource::Property(p) => {
                    let path: Vec<&str> = p.iter().map(String::as_str).collect();
                    let Some(v) = attrs.property(&path) else {
                        continue;
                    };
                    (i, Cow::Owned(v))
                }
                GrantSource::DownstreamAddress => {
                    let Some(a) = attrs.property(&["source", "address"]) else {
                        continue;
                    };
                    (i, Cow::Owned(http::address_without_port(&a).to_vec()))
                }
            };
            if found.is_none() && !value.is_empty() {
                found = Some((source, value));
            }
        }
        let Some((source, credential)) = found else {
            return Ok(None);
        };
        let mut session = head.first(at::SESSION).unwrap_or(&[]);
        // A server of the 2024-11-05 transport finds the session by the query, whatever a
        // session header says; a server of the current one by the header. A request naming
        // one in each could be counted by the one its server does not read.
        if let (true, Some(q)) = (self.counts_sessions, &query.session) {
            if query.sessions_repeated || !session.is_empty() {
                return Err("a session named twice, in the query or the query and the session header; send one".into());
            }
            session = q;
        }
        // The source keeps a header's credential from posing as a property's or an address.
        let source = [u8::try_from(source).map_or(u8::MAX, |i| i.min(u8::MAX - 1))];
        let tag = |t: u64| t.max(SHARED_TAG + 1);
        let keys = [self.slot_key, self.fingerprint_key];
        let (session_tag, session_fingerprint) = if self.counts_sessions {
            let [t, f] = siphash_parts_under(keys, &[b"s", &source, &credential, session]);
            (tag(t), f)
        } else {
            (0, 0)
        };
        let [grant_tag, fingerprint] = siphash_parts_under(keys, &[b"g", &source, &credential]);
        Ok(Some(Grant {
            fingerprint,
            tag: tag(grant_tag),
            session_tag,
            session_fingerprint,
        }))
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

    /// The refusal of request trailers that a server merging trailers into the head (as
    /// some HTTP/2 and CGI stacks do) would read as headers the head check reads: the
    /// headers mirroring a call, other `Mcp-` headers, the body's framing and type, and
    /// grant headers. MCP requests carry no trailers; other trailers go on.
    pub fn inspect_trailers(
        &self,
        info: &RequestInfo,
        trailers: &HeaderList<'_>,
    ) -> Option<Outcome> {
        // Every name the head is indexed by.
        let read_with_head = |name: &[u8]| {
            mcp_headers::names_a_call(name)
                || name.get(..4).is_some_and(|p| http::same_name(p, b"mcp-"))
                || self
                    .head_names
                    .iter()
                    .any(|h| http::same_name(name, h.as_bytes()))
        };
        let (name, _) = trailers.iter().find(|(name, _)| read_with_head(name))?;
        Some(self.refuse(
            Rejection::InvalidRequest,
            format!(
                "trailer {} would be read as a request header by a server that merges trailers into the head",
                crate::reply::quoted(&http::loggable(name))
            ),
            self.base_report(Some(info)),
        ))
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
        crate::regex::budget(
            REGEX_STEPS.saturating_add(REGEX_STEPS_PER_BYTE.saturating_mul(body.len() as u64)),
        );
        if body.len() > s.max_body_bytes {
            return self.refuse(
                Rejection::BodyTooLarge,
                format!("the body is over {} bytes", s.max_body_bytes),
                report,
            );
        }
        let opts = Options {
            max_depth: s.max_json_depth,
            keys: KeyRule::FoldedCall,
        };
        let root = match validator.validate_indexed(body, opts) {
            Ok(v) => v,
            Err(e) if e.is_syntax() => {
                return self.refuse(Rejection::ParseError, e.to_string(), report)
            }
            Err(e) => return self.refuse(Rejection::InvalidRequest, e.to_string(), report),
        };
        // One message is borrowed as a slice of one: most requests are not batches.
        let (single, many);
        let (messages, batch): (&[Message<'_>], bool) = match mcp::read(root, s.max_batch_size) {
            Ok(Envelope::Single(m)) => {
                single = m;
                (std::slice::from_ref(&single), false)
            }
            Ok(Envelope::Batch(ms)) => {
                many = ms;
                (&many, true)
            }
            Err(Invalid(why)) => return self.refuse(Rejection::InvalidRequest, why, report),
        };
        if !info.mirrored.is_empty() {
            if let Err(why) = mcp_headers::check(&info.mirrored, messages, batch, self.policy()) {
                let id = match messages.first() {
                    Some(Message::Request { id, .. }) => answered_id(*id, batch),
                    _ => None,
                };
                return self.refuse_with(Rejection::HeaderMismatch, why, id, report);
            }
        }
        let rules = self.list_rules();
        let mut calls = Vec::with_capacity(messages.len());
        let mut lists = Vec::new();
        // While anything is hidden an answer may be withheld: it names every request.
        let mut ids = Vec::new();
        // The ids of a batch's requests that are not judged calls.
        let mut others = Vec::new();
        for m in messages {
            let Message::Request { id, method, params } = *m else {
                continue;
            };
            if let (true, Some(id)) = (self.hides_lists, id) {
                ids.push(id.raw().to_string());
            }
            let before = calls.len();
            'one: {
                let decoded = method.decode();
                let Some(method) = canonical_method(&decoded) else {
                    break 'one;
                };
                let kind = match method.as_ref() {
                    "tools/call" => Kind::Tool,
                    "prompts/get" if self.policy().prompts.is_some() => Kind::Prompt,
                    "resources/read" if self.policy().resources.is_some() => Kind::Resource,
                    "completion/complete"
                    | "resources/subscribe"
                    | "resources/unsubscribe"
                    | "subscriptions/listen" => {
                        let access = match method.as_ref() {
                            "completion/complete" => Access::Completion,
                            "subscriptions/listen" => Access::Listen,
                            _ => Access::Subscription,
                        };
                        match self.read_access(access, id, params) {
                            Ok(access) => calls.extend(access),
                            Err(Invalid(why)) => {
                                let id = answered_id(id, batch);
                                return self.refuse_with(Rejection::InvalidParams, why, id, report);
                            }
                        }
                        break 'one;
                    }
                    "tools/list"
                    | "resources/list"
                    | "resources/templates/list"
                    | "prompts/list" => {
                        let kind = match method.as_ref() {
                            "tools/list" => Kind::Tool,
                            "prompts/list" => Kind::Prompt,
                            _ => Kind::Resource,
                        };
                        if let (Some(id), true) = (id, rules.filters(kind)) {
                            lists.push(PendingList {
                                id: id.raw().to_string(),
                                kind,
                            });
                        }
                        break 'one;
                    }
                    _ => break 'one,
                };
                match self.read_call(kind, id, params) {
                    Ok(call) => calls.push(call),
                    Err(Invalid(why)) => {
                        let id = answered_id(id, batch);
                        return self.refuse_with(Rejection::InvalidParams, why, id, report);
                    }
                }
            }
            if let (true, Some(id), true) = (batch, id, calls.len() == before) {
                others.push(id.raw().to_string());
            }
        }
        self.conclude(calls, lists, ids, batch, others, info, store, clock, report)
    }

    /// Whether list answers of any kind are filtered ([`ListRules::hides_anything`]).
    pub fn hides_lists(&self) -> bool {
        self.hides_lists
    }

    /// The rules for filtering list responses.
    pub fn list_rules(&self) -> ListRules<'_> {
        ListRules {
            policy: &self.config.policy,
            hide_denied_tools: self.config.settings.hide_denied_tools,
            max_depth: self.config.settings.max_json_depth,
        }
    }

    /// How to treat the answer to a watched GET (see [`Head::Watch`]): an event stream is
    /// watched; a compressed one cannot be, so it is withheld while anything is hidden;
    /// anything else passes.
    pub fn watch_mode(
        &self,
        content_type: Option<&[u8]>,
        content_encoding: Option<&[u8]>,
    ) -> ResponseMode {
        let compressed = content_encoding.is_some_and(|e| !http::only_codings(e, &[b"identity"]));
        match media(content_type) {
            Media::Sse if !compressed => ResponseMode::Sse,
            _ if !self.hides_lists => ResponseMode::Pass,
            Media::Sse | Media::Unreadable => ResponseMode::Fail,
            // The TypeScript SDK reads its GET stream as events whatever the type says.
            // (Compressed, another type passes: the watched GET asked for no compression,
            // and other pages on the route keep theirs.)
            Media::Json | Media::Other if !compressed => ResponseMode::Sse,
            _ => ResponseMode::Pass,
        }
    }

    /// How to treat the response to a forwarded request that awaits no list: while anything
    /// is hidden, JSON and event streams are filtered by their shape (a server that keys
    /// its answers by id alone sends the answer to a concurrent list request with the same
    /// id onto this request's stream), and withheld when compressed; other bodies, which
    /// no MCP client reads as an answer, pass.
    pub fn answer_mode(
        &self,
        status: &[u8],
        content_type: Option<&[u8]>,
        content_encoding: Option<&[u8]>,
    ) -> ResponseMode {
        if !self.hides_lists {
            return ResponseMode::Pass;
        }
        match self.response_mode(status, content_type, None) {
            ResponseMode::Json | ResponseMode::Sse
                if content_encoding.is_some_and(|e| !http::only_codings(e, &[b"identity"])) =>
            {
                ResponseMode::Fail
            }
            m @ (ResponseMode::Json | ResponseMode::Sse) => m,
            ResponseMode::Fail if matches!(media(content_type), Media::Unreadable) => {
                ResponseMode::Fail
            }
            _ => ResponseMode::Pass,
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
        match media(content_type) {
            Media::Json => ResponseMode::Json,
            Media::Sse => ResponseMode::Sse,
            // Accepted, answered elsewhere: the 2024-11-05 transport answers every request
            // on its GET stream, so this body holds no listing to filter.
            _ if status == b"202" || status == b"204" => ResponseMode::Pass,
            _ if status.starts_with(b"2") => ResponseMode::Fail,
            _ => ResponseMode::Pass,
        }
    }
}

/// The request id for logs: Envoy's own `x-request-id`, by its exact name (an underscore
/// spelling, which other headers also answer to, is the client's and could name another
/// request), loggable.
fn request_id(headers: &HeaderList<'_>) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| *k == b"x-request-id")
        .map(|(_, v)| http::loggable(v).into_owned())
}

/// What an MCP client reads a body as, by its Content-Type.
enum Media {
    Json,
    Sse,
    /// JSON or events in a charset other than UTF-8: the Python SDK decodes by the charset,
    /// so the bytes the filter would read are not the text the client reads.
    Unreadable,
    Other,
}

/// The TypeScript SDK looks for a media type anywhere in the header (`includes`), so
/// `text/event-streams` and `application/json-seq` are events and JSON to it.
fn media(content_type: Option<&[u8]>) -> Media {
    let Some(value) = content_type else {
        return Media::Other;
    };
    let value = crate::lossy::lossy(value).to_ascii_lowercase();
    let has = |media: &str| crate::substring::find(value.as_bytes(), media.as_bytes()).is_some();
    let media = if has("text/event-stream") {
        Media::Sse
    } else if has("application/json") {
        Media::Json
    } else {
        return Media::Other;
    };
    let utf8 = value.split(';').skip(1).all(|parameter| {
        parameter.split_once('=').is_none_or(|(name, charset)| {
            name.trim() != "charset" || matches!(charset.trim().trim_matches('"'), "utf-8" | "utf8")
        })
    });
    if utf8 {
        media
    } else {
        Media::Unreadable
    }
}

/// For each counter, the one tool entry that uses it, if exactly one does.
fn counter_owners(policy: &Policy) -> Vec<Option<String>> {
    let mut owners: Vec<Option<Option<String>>> = vec![None; policy.counters.len()];
    let mut note = |id: usize, owner: Option<&str>| {
        if let Some(slot) = owners.get_mut(id) {
            *slot = match slot.take() {
                None => Some(owner.map(str::to_string)),
                Some(prev) if prev.as_deref() == owner => Some(prev),
                Some(_) => Some(None),
            };
        }
    };
    for e in &policy.tools.entries {
        for l in &e.limits {
            note(l.counter.0, Some(&e.name));
        }
    }
    for s in [policy.resources.as_ref(), policy.prompts.as_ref()]
        .into_iter()
        .flatten()
    {
        for e in &s.entries {
            for l in &e.limits {
                note(l.counter.0, None);
            }
        }
    }
    for l in &policy.all_tools {
        note(l.counter.0, None);
    }
    owners.into_iter().map(Option::flatten).collect()
}

/// The steps the regular-expression searches of one request may take (see
/// [`crate::regex::budget`]): a base and so many per byte of its body, about 60 ms and
/// 120 ms per MiB of a worker's time at most. Patterns as policies write them take a few
/// steps a byte (`^secret`, `(?i)(password|token)\s*[:=]\s*\S{8,}`).
const REGEX_STEPS: u64 = 1 << 22;
/// The steps added per byte of the body (see [`REGEX_STEPS`]).
const REGEX_STEPS_PER_BYTE: u64 = 8;

/// Whether a request opens a tunnel: after a WebSocket upgrade or a CONNECT, messages
/// travel as frames of one endless body that cannot be judged one by one, and no MCP
/// transport needs either (Envoy drops h2c upgrades itself).
fn opens_a_tunnel(method: &[u8], headers: &HeaderList<'_>) -> bool {
    method.eq_ignore_ascii_case(b"CONNECT")
        || http::values(headers, "upgrade").any(|v| !http::trim(v).eq_ignore_ascii_case(b"h2c"))
}

/// Why a tunnel is refused ([`opens_a_tunnel`]).
const TUNNEL_REFUSED: &str =
    "Upgrade and CONNECT open a stream Toolgate cannot judge; POST each message";
