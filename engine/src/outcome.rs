//! What the engine decided, for the reply, the logs, the metrics and the access log.

use crate::listing::PendingList;
use crate::policy::{CounterId, Kind, ToolId};
use crate::ratelimit::Held;
use std::borrow::Cow;

/// Why a tool call was denied (the `reason` code agents and operators see).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not listed under `default: deny`.
    NotAllowed,
    /// Named in `hide`.
    Hidden,
    /// `action: deny`.
    ToolDenied,
    /// `action: require_approval`.
    ApprovalRequired,
    /// A `require` condition does not hold.
    RequireFailed,
    /// A `deny_if` condition holds.
    DenyIfMatched,
    /// A limit is exhausted.
    RateLimited,
    /// The tool name is not a valid MCP tool name.
    InvalidToolName,
    /// A prompt name or resource URI that cannot be judged unambiguously.
    InvalidName,
    /// An `increment_from` argument is missing or not a non-negative number.
    InvalidIncrement,
    /// A grant- or session-scoped limit applies but no grant source was present.
    NoGrant,
    /// The counter store failed (fail closed).
    StoreError,
    /// Another call in the same batch was denied.
    BatchRefused,
}

impl Reason {
    /// Every reason, for defining metrics up front.
    pub const ALL: [Reason; 13] = [
        Reason::NotAllowed,
        Reason::Hidden,
        Reason::ToolDenied,
        Reason::ApprovalRequired,
        Reason::RequireFailed,
        Reason::DenyIfMatched,
        Reason::RateLimited,
        Reason::InvalidToolName,
        Reason::InvalidName,
        Reason::InvalidIncrement,
        Reason::NoGrant,
        Reason::StoreError,
        Reason::BatchRefused,
    ];

    /// The reason code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NotAllowed => "not_allowed",
            Reason::Hidden => "hidden",
            Reason::ToolDenied => "tool_denied",
            Reason::ApprovalRequired => "approval_required",
            Reason::RequireFailed => "require_failed",
            Reason::DenyIfMatched => "deny_if_matched",
            Reason::RateLimited => "rate_limited",
            Reason::InvalidToolName => "invalid_tool_name",
            Reason::InvalidName => "invalid_name",
            Reason::InvalidIncrement => "invalid_increment",
            Reason::NoGrant => "no_grant",
            Reason::StoreError => "store_error",
            Reason::BatchRefused => "batch_refused",
        }
    }

    /// The index of this reason in [`Reason::ALL`].
    pub fn index(self) -> usize {
        Reason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Why a request was refused before any call in it was judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// Not JSON (-32700).
    ParseError,
    /// Not a valid JSON-RPC request (-32600).
    InvalidRequest,
    /// A judged method's params are malformed (-32602).
    InvalidParams,
    /// `Mcp-Method` / `Mcp-Name` headers disagree with the body (-32020).
    HeaderMismatch,
    /// Over the body limit (413).
    BodyTooLarge,
    /// Not `application/json`, or encoded (415).
    UnsupportedMediaType,
}

impl Rejection {
    /// Every kind, for defining metrics up front.
    pub const ALL: [Rejection; 6] = [
        Rejection::ParseError,
        Rejection::InvalidRequest,
        Rejection::InvalidParams,
        Rejection::HeaderMismatch,
        Rejection::BodyTooLarge,
        Rejection::UnsupportedMediaType,
    ];

    /// The reason code.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::ParseError => "parse_error",
            Rejection::InvalidRequest => "invalid_request",
            Rejection::InvalidParams => "invalid_params",
            Rejection::HeaderMismatch => "header_mismatch",
            Rejection::BodyTooLarge => "body_too_large",
            Rejection::UnsupportedMediaType => "unsupported_media_type",
        }
    }

    /// The index of this kind in [`Rejection::ALL`].
    pub fn index(self) -> usize {
        Rejection::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// The HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            Rejection::BodyTooLarge => 413,
            Rejection::UnsupportedMediaType => 415,
            _ => 400,
        }
    }

    /// The JSON-RPC error code of the refusal.
    pub fn rpc_code(self) -> i32 {
        match self {
            Rejection::ParseError => -32700,
            Rejection::InvalidParams => -32602,
            Rejection::HeaderMismatch => -32020,
            _ => -32600,
        }
    }
}

/// The state of one counted limit, for `RateLimit` headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitState {
    /// The counter's name.
    pub counter: String,
    /// Its `max`.
    pub max: u64,
    /// Its window in seconds.
    pub window_secs: u64,
    /// Units left in the window.
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset_secs: u64,
}

/// The tool a report line is about, as a bounded metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolLabel {
    /// A tool named in the policy.
    Policy(ToolId),
    /// Any other name (one bucket).
    Other,
}

/// How one judged call fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// Allowed (and counted).
    Allowed,
    /// Denied.
    Denied {
        /// Why.
        reason: Reason,
        /// Which rule (`tools.x.limits[0]`).
        rule: String,
        /// The counter, for rate limits.
        counter: Option<String>,
    },
}

/// One judged call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallReport {
    /// A tool call, a resource read or a prompt get.
    pub kind: Kind,
    /// Metric label.
    pub tool: ToolLabel,
    /// The requested name, printable and bounded (for logs).
    pub name: String,
    /// The decision.
    pub outcome: CallOutcome,
}

/// Everything worth logging and counting about one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Judged calls, in body order.
    pub calls: Vec<CallReport>,
    /// A refusal before judging, with its detail.
    pub rejection: Option<(Rejection, String)>,
    /// Shadow mode: nothing was enforced.
    pub shadow: bool,
    /// A counter-store failure, if one happened.
    pub store_error: Option<String>,
    /// The caller's grant fingerprint, if known (logs show it as 16 hex digits).
    pub grant: Option<u64>,
    /// The request's `x-request-id`, printable.
    pub request_id: Option<String>,
    /// A message of the 2024-11-05 transport, answered on its GET stream (see
    /// [`crate::legacy`]).
    pub legacy_sse: bool,
}

impl Report {
    /// The first denied call.
    pub fn first_denial(&self) -> Option<&CallReport> {
        self.calls
            .iter()
            .find(|c| matches!(c.outcome, CallOutcome::Denied { reason, .. } if reason != Reason::BatchRefused))
            .or_else(|| self.calls.iter().find(|c| matches!(c.outcome, CallOutcome::Denied { .. })))
    }

    /// The decision in one short string, for filter state and access logs:
    /// `allowed`, `denied:<reason>:<tool>`, `rejected:<reason>`, `passed`, with a
    /// `shadow_` prefix on denials and rejections that were not enforced.
    pub fn summary(&self) -> Cow<'static, str> {
        let prefix = if self.shadow { "shadow_" } else { "" };
        if let Some((r, _)) = &self.rejection {
            return [prefix, "rejected:", r.code()].concat().into();
        }
        if let Some(c) = self.first_denial() {
            if let CallOutcome::Denied { reason, .. } = &c.outcome {
                return [prefix, "denied:", reason.code(), ":", &field_safe(&c.name)]
                    .concat()
                    .into();
            }
        }
        // Every allowed call is recorded: no allocation for it.
        if self.calls.is_empty() {
            "passed".into()
        } else {
            "allowed".into()
        }
    }
}

/// `text` as one field of a key=value access log line: visible ASCII as sent, every other
/// byte and `"`, `\\` and `%` percent-encoded (a space would start a field of its own).
fn field_safe(text: &str) -> Cow<'_, str> {
    let plain = |b: &u8| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'%');
    if text.bytes().all(|b| plain(&b)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if plain(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            for nibble in [b >> 4, b & 0xf] {
                out.push(char::from(
                    b"0123456789ABCDEF"
                        .get(usize::from(nibble))
                        .copied()
                        .unwrap_or(b'0'),
                ));
            }
        }
    }
    Cow::Owned(out)
}

/// An HTTP response the filter sends instead of forwarding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
}

/// What the response to a forwarded request needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forward {
    /// The limits the request was counted against (for `RateLimit` headers).
    pub limits: Vec<LimitState>,
    /// The local `global` counts it took, given back if the server refuses it (see
    /// [`crate::Engine::refused_upstream`]).
    pub held: Vec<(CounterId, Held)>,
    /// List requests whose responses must be filtered.
    pub lists: Vec<PendingList>,
    /// While anything is hidden, the id of every request forwarded (raw JSON): an answer
    /// withheld answers each.
    pub ids: Vec<String>,
    /// The body to send instead of the request's (a 2024-11-05 transport message rewritten
    /// so that its answer on the GET stream can be restored, see [`crate::legacy`]).
    pub body: Option<Vec<u8>>,
    /// The answer the client gets instead of the upstream's (the denial of a rewritten
    /// 2024-11-05 transport message).
    pub answer: Option<Reply>,
}

/// Forward or answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the request on.
    Forward(Forward),
    /// Answer with this reply; nothing goes upstream.
    Respond(Reply),
    /// Ask the rate limit service first, then finish with [`crate::Engine::resume`].
    Consult(Box<crate::engine::Consultation>),
}

/// A decision and its report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What to do.
    pub verdict: Verdict,
    /// What to log and count.
    pub report: Report,
}
