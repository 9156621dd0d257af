//! Toolgate's own settings: everything in the configuration besides the policy.

use super::path::Path;
use super::problems::Problems;
use super::read::{array, boolean, choice, fields, integer, quote_then, string, then, Fields};
use crate::json::Value;
use std::num::NonZeroU32;

/// Enforce decisions, or only report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Denials and rejections are answered; nothing denied goes upstream.
    Enforce,
    /// Everything is forwarded; what would have been denied is logged and counted.
    Shadow,
}

/// How a denied call is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenialStyle {
    /// A tool result with `isError: true` the model can read.
    Result,
    /// A JSON-RPC error.
    Error,
}

/// Where the grant (the caller's identity) is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantSource {
    /// A request header (lower-cased name).
    Header(String),
    /// An Envoy attribute path, such as a verified JWT claim in dynamic metadata.
    Property(Vec<String>),
    /// The downstream client's IP address (without the port).
    DownstreamAddress,
}

/// What happens when the rate limit service cannot answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureMode {
    /// Deny the call (fail closed).
    Deny,
    /// Let the call through (fail open).
    Allow,
}

/// The rate limit service that fleet-wide limits (`"store": "service"`) consult.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitService {
    /// The Envoy cluster of the gRPC service.
    pub cluster: String,
    /// The rate limit domain.
    pub domain: String,
    /// How long to wait for an answer.
    pub timeout_ms: u32,
    /// What a timeout or error means.
    pub failure_mode: FailureMode,
    /// Deny without asking when this Envoy alone already counted the limit full.
    pub local_precheck: bool,
}

/// The optional settings, with their defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Enforce or shadow.
    pub mode: Mode,
    /// Result or error denials.
    pub denial_style: DenialStyle,
    /// The JSON-RPC code of error-style denials.
    pub denial_error_code: i32,
    /// Larger request bodies are refused (413).
    pub max_body_bytes: usize,
    /// Deeper JSON is refused (400, -32700).
    pub max_json_depth: u32,
    /// Larger batches are refused (400, -32600).
    pub max_batch_size: usize,
    /// Grant sources, first present wins.
    pub grant_sources: Vec<GrantSource>,
    /// The header carrying the MCP session id (lower case).
    pub session_header: String,
    /// Counter slots per (counter, scope).
    pub counter_slots: NonZeroU32,
    /// Compare-and-swap attempts before failing closed.
    pub cas_retries: NonZeroU32,
    /// Shared-data key prefix; `None` means the plugin name.
    pub key_namespace: Option<String>,
    /// Secret mixed into grant fingerprints.
    pub hash_salt: Option<String>,
    /// Pause at request headers (only with `allow_on_headers_stop_iteration`).
    pub pause_on_request_headers: bool,
    /// Also remove from `tools/list` the tools every call to which would be denied.
    pub hide_denied_tools: bool,
    /// Larger list responses (or single SSE events, while a list is awaited) fail closed.
    pub max_response_bytes: usize,
    /// The rate limit service for fleet-wide limits.
    pub rate_limit_service: Option<RateLimitService>,
}

/// The default counter slots per (counter, scope).
pub const DEFAULT_COUNTER_SLOTS: u32 = 1024;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Enforce,
            denial_style: DenialStyle::Result,
            denial_error_code: -32003,
            max_body_bytes: 1 << 20,
            max_json_depth: 64,
            max_batch_size: 64,
            grant_sources: vec![
                GrantSource::Header("authorization".into()),
                GrantSource::Header("x-api-key".into()),
                GrantSource::DownstreamAddress,
            ],
            session_header: "mcp-session-id".into(),
            counter_slots: NonZeroU32::new(DEFAULT_COUNTER_SLOTS).unwrap_or(NonZeroU32::MIN),
            cas_retries: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
            key_namespace: None,
            hash_salt: None,
            pause_on_request_headers: false,
            hide_denied_tools: false,
            max_response_bytes: 8 << 20,
            rate_limit_service: None,
        }
    }
}

/// Every settings field (besides `policy`).
pub(crate) const SETTINGS_FIELDS: &[&str] = &[
    "policy",
    "mode",
    "denial_style",
    "denial_error_code",
    "max_body_bytes",
    "max_json_depth",
    "max_batch_size",
    "grant_sources",
    "session_header",
    "counter_slots",
    "cas_retries",
    "key_namespace",
    "hash_salt",
    "pause_on_request_headers",
    "hide_denied_tools",
    "max_response_bytes",
    "rate_limit_service",
];

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

fn header_name(v: Value<'_>, path: &Path, problems: &mut Problems) -> Option<String> {
    let expected = "an HTTP header name";
    let s = string(v, path, expected, problems)?;
    if is_header_name(&s) {
        Some(s.to_ascii_lowercase())
    } else {
        problems.push(
            path,
            then(crate::reply::quoted(&s), &[" is not a header name"]),
            expected,
        );
        None
    }
}

fn grant_source(v: Value<'_>, path: &Path, problems: &mut Problems) -> Option<GrantSource> {
    let f = fields(
        v,
        path,
        "a grant source",
        &["header", "property", "downstream_address"],
        problems,
    )?;
    let mut given = 0;
    for k in ["header", "property", "downstream_address"] {
        given += usize::from(f.has(k));
    }
    if given != 1 {
        problems.push(
            path,
            {
                let mut s = quote_then(v, &[" names "]);
                crate::digits::push_decimal(&mut s, u64::try_from(given).unwrap_or(u64::MAX));
                then(s, &[" sources"])
            },
            "exactly one of {\"header\": NAME}, {\"property\": [SEGMENTS]} or {\"downstream_address\": true}",
        );
        return None;
    }
    if let Some(h) = f.get("header") {
        return header_name(h, &path.key("header"), problems).map(GrantSource::Header);
    }
    if let Some(p) = f.get("property") {
        let ppath = path.key("property");
        let expected = "a non-empty list of attribute path segments, such as [\"metadata\", \"filter_metadata\", \"envoy.filters.http.jwt_authn\", \"payload\", \"sub\"]";
        let mut segs = Vec::new();
        let mut bad = false;
        for (sp, s) in array(p, &ppath, expected, problems)? {
            if let Some(s) = string(s, &sp, "a path segment", problems) {
                bad |= s.is_empty() || s.as_bytes().contains(&0);
                segs.push(s);
            }
        }
        if bad || segs.is_empty() {
            problems.push(
                &ppath,
                quote_then(p, &[" is not an attribute path"]),
                expected,
            );
            return None;
        }
        return Some(GrantSource::Property(segs));
    }
    let d = f.get("downstream_address")?;
    let on = boolean(d, &path.key("downstream_address"), problems)?;
    if !on {
        problems.push(
            &path.key("downstream_address"),
            "false",
            "true (or leave the source out)",
        );
        return None;
    }
    Some(GrantSource::DownstreamAddress)
}

fn rate_limit_service(
    v: Value<'_>,
    path: &Path,
    problems: &mut Problems,
) -> Option<RateLimitService> {
    let f = fields(
        v,
        path,
        "the rate limit service",
        &[
            "cluster",
            "domain",
            "timeout_ms",
            "failure_mode",
            "local_precheck",
        ],
        problems,
    )?;
    let cluster = super::read::required(
        &f,
        path,
        "cluster",
        "the name of an Envoy cluster",
        problems,
    )
    .and_then(|c| {
        string(
            c,
            &path.key("cluster"),
            "the name of an Envoy cluster",
            problems,
        )
    })
    .filter(|c| {
        let ok = !c.is_empty() && !c.as_bytes().contains(&0);
        if !ok {
            problems.push(
                &path.key("cluster"),
                "\"\" is empty",
                "the name of an Envoy cluster",
            );
        }
        ok
    });
    let domain = match f.get("domain") {
        Some(d) => string(d, &path.key("domain"), "a rate limit domain", problems),
        None => Some("toolgate".into()),
    };
    let timeout_ms = match count(&f, "timeout_ms", path, 1, 60_000, problems) {
        Some(t) => u32::try_from(t).ok(),
        None if f.has("timeout_ms") => None,
        None => Some(100),
    };
    let failure_mode = match f.get("failure_mode") {
        Some(m) => choice(
            m,
            &path.key("failure_mode"),
            "a failure mode",
            &[("deny", FailureMode::Deny), ("allow", FailureMode::Allow)],
            problems,
        ),
        None => Some(FailureMode::Deny),
    };
    let local_precheck = match f.get("local_precheck") {
        Some(b) => boolean(b, &path.key("local_precheck"), problems),
        None => Some(true),
    };
    Some(RateLimitService {
        cluster: cluster?,
        domain: domain?,
        timeout_ms: timeout_ms?,
        failure_mode: failure_mode?,
        local_precheck: local_precheck?,
    })
}

fn count(
    f: &Fields<'_>,
    name: &str,
    path: &Path,
    min: i64,
    max: i64,
    problems: &mut Problems,
) -> Option<i64> {
    f.get(name)
        .and_then(|v| integer(v, &path.key(name), min, max, problems))
}

/// Reads the settings fields of a settings-form document (`policy` is read elsewhere).
pub(crate) fn read_settings(f: &Fields<'_>, path: &Path, problems: &mut Problems) -> Settings {
    let mut s = Settings::default();
    if let Some(v) = f.get("mode") {
        if let Some(m) = choice(
            v,
            &path.key("mode"),
            "a mode",
            &[("enforce", Mode::Enforce), ("shadow", Mode::Shadow)],
            problems,
        ) {
            s.mode = m;
        }
    }
    if let Some(v) = f.get("denial_style") {
        if let Some(d) = choice(
            v,
            &path.key("denial_style"),
            "a denial style",
            &[
                ("result", DenialStyle::Result),
                ("error", DenialStyle::Error),
            ],
            problems,
        ) {
            s.denial_style = d;
        }
    }
    if let Some(c) = count(
        f,
        "denial_error_code",
        path,
        i64::from(i32::MIN),
        i64::from(i32::MAX),
        problems,
    ) {
        s.denial_error_code = i32::try_from(c).unwrap_or(s.denial_error_code);
    }
    if let Some(n) = count(f, "max_body_bytes", path, 1, 64 << 20, problems) {
        s.max_body_bytes = usize::try_from(n).unwrap_or(s.max_body_bytes);
    }
    if let Some(n) = count(f, "max_json_depth", path, 1, 1024, problems) {
        s.max_json_depth = u32::try_from(n).unwrap_or(s.max_json_depth);
    }
    if let Some(n) = count(f, "max_batch_size", path, 1, 1000, problems) {
        s.max_batch_size = usize::try_from(n).unwrap_or(s.max_batch_size);
    }
    if let Some(v) = f.get("grant_sources") {
        let gpath = path.key("grant_sources");
        let items =
            array(v, &gpath, "a non-empty list of grant sources", problems).unwrap_or_default();
        if items.is_empty() && v.kind() == crate::json::Kind::Array {
            problems.push(&gpath, "[] is empty", "a non-empty list of grant sources");
        }
        let mut sources = Vec::new();
        for (p, e) in items {
            if let Some(g) = grant_source(e, &p, problems) {
                sources.push(g);
            }
        }
        if !sources.is_empty() {
            s.grant_sources = sources;
        }
    }
    if let Some(v) = f.get("session_header") {
        if let Some(h) = header_name(v, &path.key("session_header"), problems) {
            s.session_header = h;
        }
    }
    if let Some(n) = count(f, "counter_slots", path, 1, 65_536, problems) {
        s.counter_slots = u32::try_from(n)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(s.counter_slots);
    }
    if let Some(n) = count(f, "cas_retries", path, 1, 1000, problems) {
        s.cas_retries = u32::try_from(n)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(s.cas_retries);
    }
    if let Some(v) = f.get("key_namespace") {
        let p = path.key("key_namespace");
        let expected = "1 to 64 printable ASCII characters without spaces";
        if let Some(ns) = string(v, &p, expected, problems) {
            if (1..=64).contains(&ns.len()) && ns.bytes().all(|c| c.is_ascii_graphic()) {
                s.key_namespace = Some(ns);
            } else {
                problems.push(
                    &p,
                    then(crate::reply::quoted(&ns), &[" is not a key namespace"]),
                    expected,
                );
            }
        }
    }
    if let Some(v) = f.get("hash_salt") {
        let p = path.key("hash_salt");
        if let Some(salt) = string(v, &p, "a non-empty secret string", problems) {
            if salt.is_empty() {
                problems.push(&p, "\"\" is empty", "a non-empty secret string");
            } else {
                s.hash_salt = Some(salt);
            }
        }
    }
    if let Some(n) = count(f, "max_response_bytes", path, 1024, 256 << 20, problems) {
        s.max_response_bytes = usize::try_from(n).unwrap_or(s.max_response_bytes);
    }
    if let Some(v) = f.get("hide_denied_tools") {
        if let Some(b) = boolean(v, &path.key("hide_denied_tools"), problems) {
            s.hide_denied_tools = b;
        }
    }
    if let Some(v) = f.get("rate_limit_service") {
        s.rate_limit_service = rate_limit_service(v, &path.key("rate_limit_service"), problems);
    }
    if let Some(v) = f.get("pause_on_request_headers") {
        if let Some(b) = boolean(v, &path.key("pause_on_request_headers"), problems) {
            s.pause_on_request_headers = b;
        }
    }
    s
}
