//! HTTP and gRPC callouts: what the module asked for, and how the test answers.
//!
//! A callout is recorded when the module makes it; its answer is always delivered as a
//! fresh callback after the current one returned (never from inside a hostcall). A test
//! answers either through a responder given to [`crate::EnvoyBuilder`] (consulted when the
//! call is made; `None` leaves it pending) or later with [`crate::Worker::answer_http_call`]
//! and friends.

use std::sync::Arc;
use std::time::Duration;

use crate::headers::Headers;
use crate::logs::VmRole;

/// An HTTP callout (`proxy_http_call`) as the module made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// The token the module got.
    pub token: u32,
    /// The VM that made it.
    pub vm: VmRole,
    /// The context that was current when it was made.
    pub context_id: u32,
    /// The cluster name.
    pub cluster: String,
    /// Request headers (`:method`, `:path`, `:authority` are required by Envoy).
    pub headers: Headers,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Headers,
    /// The timeout the module asked for (`None` for 0: no timeout).
    pub timeout: Option<Duration>,
}

/// How an HTTP callout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpCallReply {
    /// The cluster answered (headers must include `:status`).
    Response {
        /// Response headers.
        headers: Headers,
        /// Response body.
        body: Vec<u8>,
        /// Response trailers.
        trailers: Headers,
    },
    /// The timeout fired: Envoy's async client answers a 504 `upstream request timeout`.
    Timeout,
    /// The connection was reset: the module gets no headers and `proxy_get_status`
    /// reports code 11 (`BrokenConnection`), message `reset`.
    Reset,
}

impl HttpCallReply {
    /// A response with `status`, no body.
    pub fn status(status: u16) -> HttpCallReply {
        HttpCallReply::Response {
            headers: Headers::from_pairs([(":status", status.to_string())]),
            body: Vec::new(),
            trailers: Headers::new(),
        }
    }

    /// A response with `status` and a body.
    pub fn with_body(status: u16, body: impl Into<Vec<u8>>) -> HttpCallReply {
        HttpCallReply::status(status).body(body)
    }

    /// Sets the body (of a `Response`).
    pub fn body(mut self, new_body: impl Into<Vec<u8>>) -> HttpCallReply {
        if let HttpCallReply::Response { body, .. } = &mut self {
            *body = new_body.into();
        }
        self
    }

    /// Adds a header (to a `Response`).
    pub fn header(mut self, key: &str, value: &str) -> HttpCallReply {
        if let HttpCallReply::Response { headers, .. } = &mut self {
            headers.add(key, value);
        }
        self
    }

    /// Adds a trailer (to a `Response`).
    pub fn trailer(mut self, key: &str, value: &str) -> HttpCallReply {
        if let HttpCallReply::Response { trailers, .. } = &mut self {
            trailers.add(key, value);
        }
        self
    }
}

/// A gRPC call or stream (`proxy_grpc_call` / `proxy_grpc_stream`) as the module made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// The token the module got.
    pub token: u32,
    /// The VM that made it.
    pub vm: VmRole,
    /// The context that was current when it was made.
    pub context_id: u32,
    /// The cluster (the `upstream` bytes read as a cluster name).
    pub cluster: String,
    /// The service, e.g. `envoy.service.auth.v3.Authorization`.
    pub service: String,
    /// The method, e.g. `Check`.
    pub method: String,
    /// Initial metadata.
    pub initial_metadata: Headers,
    /// The request message (unary calls) or every message sent so far (streams).
    pub messages: Vec<Vec<u8>>,
    /// The timeout (unary calls; `None` for 0).
    pub timeout: Option<Duration>,
    /// Whether this is a stream (`proxy_grpc_stream`).
    pub streaming: bool,
    /// Whether the module cancelled it (`proxy_grpc_cancel`).
    pub cancelled: bool,
    /// Whether the module closed its side (`proxy_grpc_close` or `end_stream` on send).
    pub locally_closed: bool,
}

/// An event the test delivers on a gRPC call or stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcEvent {
    /// `proxy_on_grpc_receive_initial_metadata` (streams).
    InitialMetadata(Headers),
    /// `proxy_on_grpc_receive` with a message. On a unary call Envoy delivers the
    /// response this way and nothing else (no close callback on success).
    Message(Vec<u8>),
    /// `proxy_on_grpc_receive_trailing_metadata` (streams).
    TrailingMetadata(Headers),
    /// `proxy_on_grpc_close` with a status code and message (`proxy_get_status` returns
    /// them during the callback). A unary call that fails ends this way.
    Close {
        /// The gRPC status code (4 is DEADLINE_EXCEEDED, 14 UNAVAILABLE).
        code: u32,
        /// The status message.
        message: String,
    },
}

/// Answers HTTP callouts as they are made: `Some` answers (delivered after the current
/// callback), `None` leaves the call pending for the test.
pub type HttpResponder = Arc<dyn Fn(&HttpCall) -> Option<HttpCallReply> + Send + Sync>;

/// Answers unary gRPC calls as they are made.
pub type GrpcResponder = Arc<dyn Fn(&GrpcCall) -> Option<Vec<GrpcEvent>> + Send + Sync>;

/// A host function a module can call with `proxy_call_foreign_function`: the argument
/// bytes in, the result bytes out (or a status code the SDK understands).
pub type ForeignFunction = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, crate::abi::Status> + Send + Sync>;
