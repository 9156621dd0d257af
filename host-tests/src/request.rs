//! The request a test sends, and the response its upstream gives.

use crate::headers::Headers;
use crate::properties::{Properties, PropertyValue};

/// A client request: headers, body chunks as they arrive, trailers, the properties Envoy
/// would expose for it, and what the upstream answers if the request reaches it.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) headers: Headers,
    pub(crate) chunks: Vec<Vec<u8>>,
    pub(crate) trailers: Option<Headers>,
    pub(crate) properties: Properties,
    pub(crate) upstream: UpstreamResponse,
    /// The upstream sends its response headers as soon as the request headers reach it,
    /// before any body byte (a server that flushes its headers first; HTTP/2 streaming).
    pub(crate) early_response: bool,
}

impl Request {
    /// A request with `method` and `path` (`:authority` `example.com`, `:scheme` `http`).
    pub fn new(method: &str, path: &str) -> Request {
        let mut headers = Headers::new();
        headers.add(":authority", "example.com");
        headers.add(":path", path);
        headers.add(":method", method);
        headers.add(":scheme", "http");
        let mut properties = Properties::new();
        properties.set(&["source", "address"], "10.0.0.1:45678");
        properties.set(&["source", "port"], 45678i64);
        properties.set(&["destination", "address"], "10.0.0.2:8080");
        properties.set(&["destination", "port"], 8080i64);
        Request {
            headers,
            chunks: Vec::new(),
            trailers: None,
            properties,
            upstream: UpstreamResponse::new(200),
            early_response: false,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Request {
        Request::new("POST", path)
    }

    /// Replaces a header (e.g. `:authority`).
    pub fn set_header(mut self, key: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers.replace(key, value);
        self
    }

    /// Removes a header.
    pub fn without_header(mut self, key: &str) -> Request {
        self.headers.remove(key);
        self
    }

    /// Sets a property this request exposes (e.g. `["metadata", "filter_metadata", ...]`).
    pub fn property<S: AsRef<str>>(
        mut self,
        path: &[S],
        value: impl Into<PropertyValue>,
    ) -> Request {
        self.properties.set(path, value);
        self
    }

    /// Sets `source.address` (`ip:port`) and `source.port`.
    pub fn source_address(mut self, address: &str) -> Request {
        self.properties.set(&["source", "address"], address);
        if let Some(port) = address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<i64>().ok())
        {
            self.properties.set(&["source", "port"], port);
        }
        self
    }

    /// What the upstream answers if the whole request reaches it.
    pub fn upstream_response(mut self, response: UpstreamResponse) -> Request {
        self.upstream = response;
        self
    }

    /// The upstream answers with its response headers as soon as the request headers reach
    /// it, while the request body is still on its way (its body and end follow once the
    /// whole request arrived).
    pub fn early_response(mut self) -> Request {
        self.early_response = true;
        self
    }

    /// The request headers as the test built them.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
}

/// The upstream's response: headers, body chunks, trailers.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    pub(crate) headers: Headers,
    pub(crate) chunks: Vec<Vec<u8>>,
    pub(crate) trailers: Option<Headers>,
}

impl UpstreamResponse {
    /// A response with `status`, no body.
    pub fn new(status: u16) -> UpstreamResponse {
        UpstreamResponse {
            headers: Headers::from_pairs([(":status", status.to_string())]),
            chunks: Vec::new(),
            trailers: None,
        }
    }

    /// A 200 `application/json` response with `body` in one chunk.
    pub fn json(body: impl Into<Vec<u8>>) -> UpstreamResponse {
        UpstreamResponse::new(200)
            .header("content-type", "application/json")
            .body(body)
    }
}

/// The builder methods a request and an upstream response share: each is headers, the body
/// in chunks as they arrive, and trailers.
macro_rules! message_builders {
    ($message:ident) => {
        impl $message {
            /// Adds a header (repeat it to send a repeated header).
            pub fn header(mut self, key: &str, value: impl AsRef<[u8]>) -> $message {
                self.headers.add(key, value);
                self
            }

            /// The body in one chunk (an empty body still makes one empty data frame).
            pub fn body(mut self, body: impl Into<Vec<u8>>) -> $message {
                self.chunks = vec![body.into()];
                self
            }

            /// The body as these chunks, one body callback each (unless the filter stops
            /// all iteration): e.g. SSE events.
            pub fn chunks<I, C>(mut self, chunks: I) -> $message
            where
                I: IntoIterator<Item = C>,
                C: Into<Vec<u8>>,
            {
                self.chunks = chunks.into_iter().map(Into::into).collect();
                self
            }

            /// The body cut into chunks of `size` bytes (`size` 0 is taken as 1).
            pub fn body_in_chunks(mut self, body: impl AsRef<[u8]>, size: usize) -> $message {
                self.chunks = body
                    .as_ref()
                    .chunks(size.max(1))
                    .map(<[u8]>::to_vec)
                    .collect();
                self
            }

            /// Adds a trailer (a message with trailers never has `end_of_stream` in its
            /// body callbacks).
            pub fn trailer(mut self, key: &str, value: impl AsRef<[u8]>) -> $message {
                self.trailers
                    .get_or_insert_with(Headers::new)
                    .add(key, value);
                self
            }
        }
    };
}

message_builders!(Request);
message_builders!(UpstreamResponse);
