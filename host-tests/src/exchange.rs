//! What a request turned into: the [`Exchange`] a test asserts on.

use std::collections::BTreeMap;
use std::fmt;

use crate::abi::Action;
use crate::headers::Headers;

/// One request/response exchange through the filter, as Envoy would have carried it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What happened, in one word (with details).
    pub outcome: Outcome,
    /// What reached the upstream.
    pub upstream: UpstreamView,
    /// What the client received (`None` when it received nothing: stalled).
    pub response: Option<ClientResponse>,
    /// The stream's callbacks in order, with their arguments and results.
    pub callbacks: Vec<Callback>,
    /// Time the worker spent inside the module's header, body and trailer callbacks (host
    /// calls included): what the filter costs the worker, without the host's own work.
    pub module_time: std::time::Duration,
    /// Filter state the module set with `proxy_set_property`, keyed `wasm.<path>`.
    pub filter_state: BTreeMap<String, Vec<u8>>,
    /// The stream's context id in its VM.
    pub context_id: u32,
    /// The worker that carried it.
    pub worker: usize,
}

impl Exchange {
    /// The status the client received.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    /// The body the client received, as text (lossy; empty when none).
    pub fn body_text(&self) -> String {
        self.response
            .as_ref()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .unwrap_or_default()
    }

    /// Whether the request went upstream complete and the response came back.
    pub fn is_forwarded(&self) -> bool {
        matches!(self.outcome, Outcome::Forwarded)
    }

    /// The filter's local reply, if it sent one.
    pub fn local_reply(&self) -> Option<&LocalReply> {
        match &self.outcome {
            Outcome::LocalReply(reply) => Some(reply),
            _ => None,
        }
    }

    /// A filter-state value as text.
    pub fn filter_state_text(&self, key: &str) -> Option<String> {
        self.filter_state
            .get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The sizes the body callbacks of `direction` reported, in order.
    pub fn body_sizes(&self, direction: Direction) -> Vec<usize> {
        self.callbacks
            .iter()
            .filter_map(|c| match (c, direction) {
                (Callback::RequestBody { size, .. }, Direction::Request)
                | (Callback::ResponseBody { size, .. }, Direction::Response) => Some(*size),
                _ => None,
            })
            .collect()
    }

    /// The names of the callbacks, in order (e.g. `["request_headers", "log", ...]`).
    pub fn callback_names(&self) -> Vec<&'static str> {
        self.callbacks.iter().map(Callback::name).collect()
    }
}

/// The kind of end an exchange had.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The request reached the upstream complete and its response went back through the
    /// filter to the client (see [`Exchange::upstream`] and [`Exchange::response`]).
    Forwarded,
    /// The filter answered itself (`proxy_send_local_response`).
    LocalReply(LocalReply),
    /// The exchange could not finish: the filter held it and nothing would resume it.
    Stalled(Stall),
    /// The VM trapped or had failed before (see [`Exchange::response`] for what the
    /// failure policy made of it).
    VmFailed(VmFailure),
    /// The filter reset the stream (`proxy_close_stream`), or replied locally after the
    /// client already had response headers.
    Reset,
}

/// A local reply as the filter asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u16,
    /// The headers the filter added.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
    /// `status_code_details`.
    pub details: String,
    /// gRPC status (`None` for the SDK's -1).
    pub grpc_status: Option<u32>,
}

impl LocalReply {
    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why an exchange stalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// The direction that stopped.
    pub direction: Direction,
    /// How it stopped.
    pub kind: StallKind,
    /// Callouts of this worker still waiting for an answer.
    pub pending_callouts: usize,
}

/// How a direction stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallKind {
    /// The header callback paused without `allow_on_headers_stop_iteration`: Envoy's
    /// StopAllIteration, no body callback until the filter resumes. With a real client
    /// this hangs until the route timeout (504).
    StopAllIteration,
    /// A callback paused (StopIteration) and nothing resumed the stream.
    Paused,
    /// The filter sent a local reply while its own local reply was being encoded
    /// (Envoy leaves such a stream hanging).
    LocalReplyReentered,
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} stopped ({:?}), {} callout(s) pending",
            self.direction, self.kind, self.pending_callouts
        )
    }
}

/// A VM failure: the trap and what led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFailure {
    /// The trap message (a host-raised trap names the hostcall and the reason).
    pub message: String,
    /// The callback that was running.
    pub callback: String,
    /// The module's last critical log line before the trap (the SDK logs panics there).
    pub panic: Option<String>,
}

impl fmt::Display for VmFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VM failed in {}: {}", self.callback, self.message)?;
        if let Some(panic) = &self.panic {
            write!(f, " (panic: {panic})")?;
        }
        Ok(())
    }
}

/// Request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to upstream.
    Request,
    /// Upstream (or local reply) to client.
    Response,
}

/// What reached the upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamView {
    /// The request headers, once the filter let them go (`None`: nothing reached the
    /// upstream, not even a connection).
    pub headers: Option<Headers>,
    /// The body bytes it received.
    pub body: Vec<u8>,
    /// The trailers, if forwarded.
    pub trailers: Option<Headers>,
    /// Whether it received the end of the request.
    pub complete: bool,
    /// Whether the upstream request was opened and then reset (a local reply or failure
    /// after the headers had gone).
    pub reset: bool,
}

impl UpstreamView {
    /// Whether anything reached the upstream.
    pub fn reached(&self) -> bool {
        self.headers.is_some()
    }

    /// The upstream request was opened (headers sent) but no body byte arrived.
    pub fn opened_without_body(&self) -> bool {
        self.headers.is_some() && self.body.is_empty()
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A request header as the upstream received it.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.as_ref().and_then(|h| h.get(key))
    }
}

/// What the client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    /// `:status`.
    pub status: u16,
    /// The response headers (with `:status`).
    pub headers: Headers,
    /// The body bytes.
    pub body: Vec<u8>,
    /// The body as the client received it, one entry per non-empty data frame (a filter
    /// streaming a response lets each piece go as it comes; one that buffers sends one).
    pub frames: Vec<Vec<u8>>,
    /// The trailers, if any.
    pub trailers: Option<Headers>,
    /// Whether the response ended normally (`false`: reset after the headers).
    pub complete: bool,
}

impl ClientResponse {
    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A response header.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.get(key)
    }
}

/// One stream callback, with what the host passed and what the module answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// `proxy_on_context_create(stream, root)`.
    ContextCreate,
    /// `proxy_on_request_headers`.
    RequestHeaders {
        /// Number of headers.
        headers: usize,
        /// `end_of_stream`.
        end_of_stream: bool,
        /// The answer.
        action: Action,
    },
    /// `proxy_on_request_body`.
    RequestBody {
        /// The size argument (cumulative while the filter buffers).
        size: usize,
        /// `end_of_stream`.
        end_of_stream: bool,
        /// The answer.
        action: Action,
    },
    /// `proxy_on_request_trailers`.
    RequestTrailers {
        /// Number of trailers.
        trailers: usize,
        /// The answer.
        action: Action,
    },
    /// `proxy_on_response_headers`.
    ResponseHeaders {
        /// Number of headers.
        headers: usize,
        /// `end_of_stream`.
        end_of_stream: bool,
        /// The answer.
        action: Action,
    },
    /// `proxy_on_response_body`.
    ResponseBody {
        /// The size argument.
        size: usize,
        /// `end_of_stream`.
        end_of_stream: bool,
        /// The answer.
        action: Action,
    },
    /// `proxy_on_response_trailers`.
    ResponseTrailers {
        /// Number of trailers.
        trailers: usize,
        /// The answer.
        action: Action,
    },
    /// `proxy_on_http_call_response` for a callout this stream made.
    HttpCallResponse {
        /// The callout token.
        token: u32,
    },
    /// A gRPC callback for a call this stream made.
    Grpc {
        /// The callout token.
        token: u32,
        /// Which callback (`receive`, `close`, ...).
        what: &'static str,
    },
    /// `proxy_on_log`.
    Log,
    /// `proxy_on_done`.
    Done,
    /// `proxy_on_delete`.
    Delete,
}

impl Callback {
    /// A short name: `request_headers`, `request_body`, `log`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Callback::ContextCreate => "context_create",
            Callback::RequestHeaders { .. } => "request_headers",
            Callback::RequestBody { .. } => "request_body",
            Callback::RequestTrailers { .. } => "request_trailers",
            Callback::ResponseHeaders { .. } => "response_headers",
            Callback::ResponseBody { .. } => "response_body",
            Callback::ResponseTrailers { .. } => "response_trailers",
            Callback::HttpCallResponse { .. } => "http_call_response",
            Callback::Grpc { .. } => "grpc",
            Callback::Log => "log",
            Callback::Done => "done",
            Callback::Delete => "delete",
        }
    }
}
