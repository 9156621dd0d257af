//! The proxy-wasm ABI 0.2.1 constants the host speaks: status codes and the enums the
//! guest passes as integers.

use std::fmt;

/// A hostcall result code (`WasmResult` in proxy-wasm-cpp-host).
///
/// The Rust SDK 0.2.5 has no variant for 6 (`INVALID_MEMORY_ACCESS`) or 12
/// (`UNIMPLEMENTED`): returning those makes it panic, so this host never does. A call it
/// cannot honour traps with a message naming the call instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Status {
    /// `OK`
    Ok = 0,
    /// `NOT_FOUND`
    NotFound = 1,
    /// `BAD_ARGUMENT`
    BadArgument = 2,
    /// `SERIALIZATION_FAILURE`
    SerializationFailure = 3,
    /// `PARSE_FAILURE`
    ParseFailure = 4,
    /// `EMPTY`
    Empty = 7,
    /// `CAS_MISMATCH`
    CasMismatch = 8,
    /// `INTERNAL_FAILURE`
    InternalFailure = 10,
}

impl Status {
    /// The value returned to the guest.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// `WasmResult::BrokenConnection`: the code `proxy_get_status` reports after a failed
/// (reset) HTTP callout, as Envoy does.
pub const BROKEN_CONNECTION: u32 = 11;

/// Log levels as the ABI numbers them (spdlog's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum LogLevel {
    /// 0
    Trace = 0,
    /// 1
    Debug = 1,
    /// 2
    Info = 2,
    /// 3
    Warn = 3,
    /// 4
    Error = 4,
    /// 5
    Critical = 5,
}

impl LogLevel {
    /// The level for an ABI number, if it is one.
    pub fn from_abi(value: u32) -> Option<LogLevel> {
        Some(match value {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        })
    }
}

/// `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes` buffer types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    /// 0
    HttpRequestBody,
    /// 1
    HttpResponseBody,
    /// 2
    DownstreamData,
    /// 3
    UpstreamData,
    /// 4
    HttpCallResponseBody,
    /// 5
    GrpcReceiveBuffer,
    /// 6
    VmConfiguration,
    /// 7
    PluginConfiguration,
    /// 8
    CallData,
}

impl BufferType {
    /// The buffer type for an ABI number, if it is one.
    pub fn from_abi(value: u32) -> Option<BufferType> {
        Some(match value {
            0 => BufferType::HttpRequestBody,
            1 => BufferType::HttpResponseBody,
            2 => BufferType::DownstreamData,
            3 => BufferType::UpstreamData,
            4 => BufferType::HttpCallResponseBody,
            5 => BufferType::GrpcReceiveBuffer,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            8 => BufferType::CallData,
            _ => return None,
        })
    }
}

/// Header map types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// 0
    HttpRequestHeaders,
    /// 1
    HttpRequestTrailers,
    /// 2
    HttpResponseHeaders,
    /// 3
    HttpResponseTrailers,
    /// 4
    GrpcReceiveInitialMetadata,
    /// 5
    GrpcReceiveTrailingMetadata,
    /// 6
    HttpCallResponseHeaders,
    /// 7
    HttpCallResponseTrailers,
}

impl MapType {
    /// The map type for an ABI number, if it is one.
    pub fn from_abi(value: u32) -> Option<MapType> {
        Some(match value {
            0 => MapType::HttpRequestHeaders,
            1 => MapType::HttpRequestTrailers,
            2 => MapType::HttpResponseHeaders,
            3 => MapType::HttpResponseTrailers,
            4 => MapType::GrpcReceiveInitialMetadata,
            5 => MapType::GrpcReceiveTrailingMetadata,
            6 => MapType::HttpCallResponseHeaders,
            7 => MapType::HttpCallResponseTrailers,
            _ => return None,
        })
    }
}

/// `proxy_continue_stream` / `proxy_close_stream` stream types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    /// 0: the HTTP request direction.
    HttpRequest,
    /// 1: the HTTP response direction.
    HttpResponse,
    /// 2: the downstream connection (network filters).
    Downstream,
    /// 3: the upstream connection (network filters).
    Upstream,
}

impl StreamType {
    /// The stream type for an ABI number, if it is one.
    pub fn from_abi(value: u32) -> Option<StreamType> {
        Some(match value {
            0 => StreamType::HttpRequest,
            1 => StreamType::HttpResponse,
            2 => StreamType::Downstream,
            3 => StreamType::Upstream,
            _ => return None,
        })
    }
}

/// Metric kinds (`proxy_define_metric`). Envoy encodes the kind in the low two bits of
/// the metric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// 0: only goes up.
    Counter,
    /// 1: set, increased and decreased.
    Gauge,
    /// 2: records values.
    Histogram,
}

impl MetricType {
    /// The metric type for an ABI number, if it is one.
    pub fn from_abi(value: u32) -> Option<MetricType> {
        Some(match value {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Histogram,
            _ => return None,
        })
    }

    /// The ABI number.
    pub fn abi(self) -> u32 {
        match self {
            MetricType::Counter => 0,
            MetricType::Gauge => 1,
            MetricType::Histogram => 2,
        }
    }
}

/// What a stream callback asked Envoy to do, decoded from the raw return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 0: go on.
    Continue,
    /// 1: stop (`Pause` in the SDK).
    Pause,
    /// Any other value: Envoy treats it as its strongest stop for that callback.
    Other(u32),
}

impl Action {
    /// Decodes a callback's return value.
    pub fn from_abi(value: u32) -> Action {
        match value {
            0 => Action::Continue,
            1 => Action::Pause,
            other => Action::Other(other),
        }
    }
}
